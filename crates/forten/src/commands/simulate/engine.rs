//! The run: camera heartbeats in the background, the plan's actions at their times, each
//! confirmed outcome counted in the [`Tally`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::gateway::{CallError, Gateway};
use super::plan::{Action, ActionKind, Swiper};
use super::tally::Tally;
use super::world::{Beat, Camera, World};

/// Who the simulator acts as on alerts.
pub(crate) const ACTOR: &str = "forten-simulate";

/// What the actions share. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub(crate) gateway: Gateway,
    pub(crate) world: Arc<World>,
    /// The counts; a std mutex, never held across an await.
    pub(crate) tally: Arc<Mutex<Tally>>,
    /// The cameras' heartbeat timeout.
    pub(crate) heartbeat_timeout: Duration,
}

impl Engine {
    /// Changes the tally.
    pub(crate) fn count(&self, f: impl FnOnce(&mut Tally)) {
        count(&self.tally, f);
    }

    /// Counts a failed request: ambiguous (may have been served) or refused.
    fn failed(&self, route: &str, e: &CallError) {
        self.count(|t| {
            if e.is_ambiguous() {
                t.ambiguous += 1;
            } else {
                let status = e.status().map_or(0, |s| s.as_u16());
                *t.refused.entry(format!("{route} {status}")).or_default() += 1;
            }
        });
    }

    /// Runs one action to its end.
    pub(crate) async fn act(&self, action: &Action) {
        match &action.kind {
            ActionKind::Swipe {
                swiper,
                door,
                method,
                expect_granted,
            } => {
                let user = match swiper {
                    Swiper::User(i) => self.world.users[*i].clone(),
                    Swiper::Unknown(n) => self.world.unknown_user(*n),
                };
                let body = json!({"userId": user, "doorId": self.world.door(*door),
                    "accessMethod": method.as_str()});
                self.swipe(&body, *expect_granted).await;
            }
            ActionKind::ForceDoor { door } => {
                let path = format!("/api/doors/{}/forced", self.world.door(*door));
                match self
                    .gateway
                    .expect(Method::POST, &path, None, StatusCode::OK)
                    .await
                {
                    Ok(_) => self.count(|t| t.forced += 1),
                    Err(e) => self.failed("POST /api/doors/{id}/forced", &e),
                }
            }
            ActionKind::CameraOutage { camera, hold } => {
                self.outage(self.world.camera(*camera), *hold).await;
            }
            ActionKind::AcknowledgeAlert { pick } => self.acknowledge(*pick).await,
            ActionKind::ResolveAlert { pick } => self.resolve(*pick).await,
        }
    }

    async fn swipe(&self, body: &Value, expect_granted: bool) {
        match self
            .gateway
            .expect(
                Method::POST,
                "/api/access/attempts",
                Some(body),
                StatusCode::OK,
            )
            .await
        {
            Ok(answer) => {
                let granted = match answer["decision"].as_str() {
                    Some("granted") => true,
                    Some("denied") => false,
                    _ => {
                        // a 200 without a decision: an event was published, of which type
                        // the simulator cannot say
                        self.count(|t| {
                            t.ambiguous += 1;
                            t.notes
                                .push(format!("attempt answered without a decision: {answer}"));
                        });
                        return;
                    }
                };
                self.count(|t| {
                    if granted {
                        t.granted += 1;
                    } else {
                        t.denied += 1;
                    }
                    if granted != expect_granted {
                        t.unexpected_decisions += 1;
                    }
                });
            }
            Err(e) => self.failed("POST /api/access/attempts", &e),
        }
    }

    /// The camera's `status` as the monitoring-service has it.
    async fn camera_status(&self, camera: &Camera) -> Option<String> {
        let c = self
            .gateway
            .get(&format!("/api/cameras/{}", camera.id))
            .await
            .ok()?;
        c["status"].as_str().map(str::to_owned)
    }

    /// A camera outage: silence it, wait until the monitoring-service has it offline, hold,
    /// heartbeat it back online.
    async fn outage(&self, camera: &Camera, hold: Duration) {
        {
            let mut beat = camera.beat.lock().await;
            if beat.silenced {
                self.count(|t| {
                    t.notes.push(format!(
                        "camera {}: outage skipped, already in one",
                        camera.id
                    ));
                });
                return;
            }
            beat.silenced = true;
        }
        let limit = self.heartbeat_timeout + Duration::from_secs(20);
        let deadline = Instant::now() + limit;
        let mut offline = false;
        while Instant::now() < deadline {
            if self.camera_status(camera).await.as_deref() == Some("offline") {
                offline = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut beat = camera.beat.lock().await;
        if !offline {
            // it may still go offline: whatever the next heartbeat does is uncertain
            self.count(|t| {
                t.ambiguous += 1;
                t.notes.push(format!(
                    "camera {}: not seen offline within {limit:?} of falling silent",
                    camera.id
                ));
            });
            beat.silenced = false;
            return;
        }
        self.count(|t| t.camera_offline += 1);
        tokio::time::sleep(hold).await;
        // back: the heartbeat that finds it offline publishes camera.online; a failed one
        // leaves it offline (the service reverts), so try until it is online
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let sent = Instant::now();
            match heartbeat(&self.gateway, camera).await {
                Ok(_) => {
                    self.count(|t| t.camera_online += 1);
                    beat.last_sent = Some(sent);
                    break;
                }
                Err(e) => {
                    if e.is_ambiguous()
                        && self.camera_status(camera).await.as_deref() == Some("online")
                    {
                        // served after all (only this heartbeat could bring it back)
                        self.count(|t| t.camera_online += 1);
                        beat.last_sent = Some(sent);
                        break;
                    }
                    if Instant::now() >= deadline {
                        self.count(|t| {
                            t.ambiguous += 1;
                            t.notes.push(format!(
                                "camera {}: could not bring it back online: {e}",
                                camera.id
                            ));
                        });
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
        beat.silenced = false;
    }

    /// Every alert of the run's doors with the given status (all when `None`), newest first;
    /// each is remembered as triggered.
    pub(crate) async fn alerts(&self, status: Option<&str>) -> Result<Vec<Value>, CallError> {
        const PAGE: usize = 1000;
        let mut ours = Vec::new();
        let mut offset = 0;
        loop {
            let mut path = format!("/api/alerts?limit={PAGE}&offset={offset}");
            if let Some(s) = status {
                path.push_str(&format!("&status={s}"));
            }
            let page = self.gateway.get(&path).await?;
            let alerts = page["alerts"].as_array().cloned().unwrap_or_default();
            let n = alerts.len();
            ours.extend(
                alerts
                    .into_iter()
                    .filter(|a| a["source"].as_str().is_some_and(|s| self.world.is_door(s))),
            );
            if n < PAGE {
                break;
            }
            offset += PAGE;
        }
        self.count(|t| {
            for a in &ours {
                if let Some(id) = a["id"].as_str() {
                    t.alerts.insert(id.to_owned());
                }
            }
        });
        Ok(ours)
    }

    async fn acknowledge(&self, pick: usize) {
        let open = match self.alerts(Some("open")).await {
            Ok(a) => a,
            Err(e) => return self.failed("GET /api/alerts", &e),
        };
        let Some(id) = pick_id(&open, pick) else {
            return;
        };
        let path = format!("/api/alerts/{id}/acknowledge");
        let body = json!({"acknowledgedBy": ACTOR});
        match self
            .gateway
            .expect(Method::POST, &path, Some(&body), StatusCode::OK)
            .await
        {
            Ok(_) => self.count(|t| {
                t.acknowledged.insert(id);
            }),
            // another action got there first
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => {}
            Err(e) if e.is_ambiguous() => {
                if self.settled_by_us(&id, "acknowledgedBy").await {
                    self.count(|t| {
                        t.acknowledged.insert(id);
                    });
                } else {
                    self.failed("POST /api/alerts/{id}/acknowledge", &e);
                }
            }
            Err(e) => self.failed("POST /api/alerts/{id}/acknowledge", &e),
        }
    }

    async fn resolve(&self, pick: usize) {
        let mut candidates = match self.alerts(Some("acknowledged")).await {
            Ok(a) => a,
            Err(e) => return self.failed("GET /api/alerts", &e),
        };
        if candidates.is_empty() {
            candidates = match self.alerts(Some("open")).await {
                Ok(a) => a,
                Err(e) => return self.failed("GET /api/alerts", &e),
            };
        }
        let Some(id) = pick_id(&candidates, pick) else {
            return;
        };
        let path = format!("/api/alerts/{id}/resolve");
        let body = json!({"resolvedBy": ACTOR});
        match self
            .gateway
            .expect(Method::POST, &path, Some(&body), StatusCode::OK)
            .await
        {
            Ok(_) => self.count(|t| {
                t.resolved.insert(id);
            }),
            Err(e) if e.status() == Some(StatusCode::CONFLICT) => {}
            Err(e) if e.is_ambiguous() => {
                if self.settled_by_us(&id, "resolvedBy").await {
                    self.count(|t| {
                        t.resolved.insert(id);
                    });
                } else {
                    self.failed("POST /api/alerts/{id}/resolve", &e);
                }
            }
            Err(e) => self.failed("POST /api/alerts/{id}/resolve", &e),
        }
    }

    /// After an ambiguous acknowledge or resolve: whether the alert now carries our name in
    /// `field` (then our call was served: only the simulator uses that name).
    async fn settled_by_us(&self, id: &str, field: &str) -> bool {
        match self.gateway.get(&format!("/api/alerts/{id}")).await {
            Ok(a) => a[field].as_str() == Some(ACTOR),
            Err(_) => false,
        }
    }

    /// Deletes the run's cameras, so that none falls silent after the run and publishes
    /// `camera.offline` into a later one. Call once the heartbeat loop has stopped.
    pub(crate) async fn delete_cameras(&self) {
        let deletes = self.world.all_cameras().map(|c| async move {
            let path = format!("/api/cameras/{}", c.id);
            let _guard = c.beat.lock().await;
            match self
                .gateway
                .expect(Method::DELETE, &path, None, StatusCode::NO_CONTENT)
                .await
            {
                Ok(_) => {}
                Err(e) => self.count(|t| {
                    t.notes.push(format!(
                        "camera {} not deleted ({e}): it will go offline after the run",
                        c.id
                    ));
                }),
            }
        });
        join_all(deletes).await;
    }
}

/// Changes a shared tally.
pub(crate) fn count(tally: &Mutex<Tally>, f: impl FnOnce(&mut Tally)) {
    if let Ok(mut t) = tally.lock() {
        f(&mut t);
    }
}

/// A copy of a shared tally.
pub(crate) fn snapshot(tally: &Mutex<Tally>) -> Tally {
    tally.lock().map(|t| t.clone()).unwrap_or_default()
}

/// One heartbeat of `camera` (whose [`Beat`](super::world::Beat) the caller holds).
async fn heartbeat(gateway: &Gateway, camera: &Camera) -> Result<Value, CallError> {
    gateway
        .expect(
            Method::POST,
            &format!("/api/cameras/{}/heartbeat", camera.id),
            None,
            StatusCode::OK,
        )
        .await
}

/// The cameras' heartbeats: every camera not silenced by an outage, every interval. Cameras
/// join as the setup creates them, so that none outlives its timeout unheard.
#[derive(Debug, Clone)]
pub(crate) struct Beater {
    gateway: Gateway,
    tally: Arc<Mutex<Tally>>,
    timeout: Duration,
    /// A std mutex: held only to add or copy the list.
    cameras: Arc<Mutex<Vec<Arc<Camera>>>>,
}

impl Beater {
    /// Heartbeats through `gateway`; gaps past `timeout` are noted in `tally`.
    pub(crate) fn new(gateway: Gateway, tally: Arc<Mutex<Tally>>, timeout: Duration) -> Self {
        Self {
            gateway,
            tally,
            timeout,
            cameras: Arc::default(),
        }
    }

    /// Adds a camera and heartbeats it at once.
    pub(crate) async fn add(&self, camera: Arc<Camera>) {
        if let Ok(mut list) = self.cameras.lock() {
            list.push(camera.clone());
        }
        self.beat(&camera, camera.beat.lock().await).await;
    }

    /// Heartbeats every `interval` until `stop`.
    pub(crate) async fn run(&self, interval: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let cameras = self.cameras.lock().map(|l| l.clone()).unwrap_or_default();
            join_all(cameras.iter().map(|c| async move {
                // a camera held by an outage (silent, or being brought back) is skipped: one
                // camera's outage must never hold up the others' heartbeats
                if let Ok(beat) = c.beat.try_lock() {
                    self.beat(c, beat).await;
                }
            }))
            .await;
        }
    }

    /// One heartbeat, unless an outage silenced the camera.
    async fn beat(&self, camera: &Camera, mut beat: tokio::sync::MutexGuard<'_, Beat>) {
        if beat.silenced {
            return;
        }
        let sent = Instant::now();
        if heartbeat(&self.gateway, camera).await.is_ok() {
            if let Some(prev) = beat.last_sent {
                // the service saw the two heartbeats at most this far apart
                let gap = Instant::now() - prev;
                if gap > self.timeout {
                    let (id, timeout) = (camera.id.clone(), self.timeout);
                    count(&self.tally, |t| {
                        t.notes.push(format!(
                            "camera {id}: {gap:.1?} between heartbeats, past its {timeout:?} timeout: an outage the simulator did not plan may have happened"
                        ));
                    });
                }
            }
            beat.last_sent = Some(sent);
        }
    }
}

/// The id of the `pick`-th alert (modulo their number).
fn pick_id(alerts: &[Value], pick: usize) -> Option<String> {
    if alerts.is_empty() {
        return None;
    }
    alerts[pick % alerts.len()]["id"]
        .as_str()
        .map(str::to_owned)
}
