//! Setup: the buildings, doors, cameras and users of a plan, created through the gateway.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::engine::Beater;
use super::gateway::{CallError, Gateway};
use super::plan::{Access, CameraRef, DoorRef, Plan};

/// A camera the simulator heartbeats.
#[derive(Debug)]
pub(crate) struct Camera {
    /// Its id.
    pub(crate) id: String,
    /// Its heartbeat state. An async mutex held across the heartbeat call, so that an outage
    /// that takes it knows no heartbeat is in flight once it has it.
    pub(crate) beat: Mutex<Beat>,
}

/// A camera's heartbeat state.
#[derive(Debug, Default)]
pub(crate) struct Beat {
    /// Silenced by an outage: the heartbeat loop leaves it alone.
    pub(crate) silenced: bool,
    /// When the last heartbeat answered 200 was sent.
    pub(crate) last_sent: Option<Instant>,
}

/// What the setup created: ids by the plan's indexes.
#[derive(Debug)]
pub(crate) struct World {
    /// A tag unique to this run (in e-mails and unknown badge ids).
    pub(crate) tag: String,
    /// Building ids.
    pub(crate) buildings: Vec<String>,
    /// Door ids per building.
    pub(crate) doors: Vec<Vec<String>>,
    /// Cameras per building.
    pub(crate) cameras: Vec<Vec<Arc<Camera>>>,
    /// User ids, as [`Plan::users`].
    pub(crate) users: Vec<String>,
}

impl World {
    /// A door's id.
    pub(crate) fn door(&self, d: DoorRef) -> &str {
        &self.doors[d.building][d.door]
    }

    /// A camera.
    pub(crate) fn camera(&self, c: CameraRef) -> &Arc<Camera> {
        &self.cameras[c.building][c.camera]
    }

    /// Every camera.
    pub(crate) fn all_cameras(&self) -> impl Iterator<Item = &Arc<Camera>> {
        self.cameras.iter().flatten()
    }

    /// Whether `id` is one of the run's doors.
    pub(crate) fn is_door(&self, id: &str) -> bool {
        self.doors.iter().flatten().any(|d| d == id)
    }

    /// The id of the n-th unknown badge.
    pub(crate) fn unknown_user(&self, n: usize) -> String {
        format!("unknown-{}-{n}", self.tag)
    }
}

const DOOR_NAMES: [&str; 8] = [
    "Main entrance",
    "Loading dock",
    "Server room",
    "Lobby",
    "Stairwell",
    "Roof access",
    "Garage",
    "Lab",
];

/// Users created at once (argon2 hashing is the auth-service's heaviest work).
const USER_CONCURRENCY: usize = 4;

/// How the setup went wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    /// A call failed.
    #[error("setup: {0}")]
    Call(#[from] CallError),
    /// A new user's access profile did not appear.
    #[error(
        "setup: the access profile of user {0} did not appear within {1:?} (is user.created reaching the access-service?)"
    )]
    NoProfile(String, Duration),
}

/// Creates the plan's world. Each camera joins `beater` as soon as it exists, so that its
/// heartbeats start before its timeout runs out; `users_created` counts each 201.
pub(crate) async fn create(
    gateway: &Gateway,
    plan: &Plan,
    tag: &str,
    beater: &Beater,
    users_created: impl Fn(),
) -> Result<World, SetupError> {
    let cfg = &plan.config;
    let timeout_secs = cfg.heartbeat_timeout.as_secs().max(1);
    let mut world = World {
        tag: tag.to_owned(),
        buildings: Vec::new(),
        doors: Vec::new(),
        cameras: Vec::new(),
        users: Vec::new(),
    };
    for b in 0..cfg.buildings {
        let building = gateway
            .create(
                "/api/buildings",
                &json!({"name": format!("Simulated building {} ({tag})", b + 1),
                        "address": format!("{} Simulation Way", b + 1)}),
            )
            .await?;
        let mut doors = Vec::new();
        for d in 0..cfg.doors_per_building {
            let name = format!("{} {}", DOOR_NAMES[d % DOOR_NAMES.len()], d + 1);
            doors.push(
                gateway
                    .create("/api/doors", &json!({"name": name, "buildingId": building}))
                    .await?,
            );
        }
        let mut cameras = Vec::new();
        for c in 0..cfg.cameras_per_building {
            let id = gateway
                .create(
                    "/api/cameras",
                    &json!({"name": format!("Camera {}", c + 1), "buildingId": building,
                            "location": DOOR_NAMES[c % DOOR_NAMES.len()],
                            "heartbeatTimeoutSeconds": timeout_secs}),
                )
                .await?;
            let camera = Arc::new(Camera {
                id,
                beat: Mutex::new(Beat::default()),
            });
            beater.add(camera.clone()).await;
            cameras.push(camera);
        }
        world.buildings.push(building);
        world.doors.push(doors);
        world.cameras.push(cameras);
    }

    let users_created = &users_created;
    world.users = stream::iter(plan.users.iter().enumerate())
        .map(|(i, u)| async move {
            let body = json!({
                "email": format!("sim-{tag}-{}@simulate.forten.test", i + 1),
                "password": format!("simulate-{tag}-pw"),
                "firstName": u.first_name,
                "lastName": u.last_name,
                "role": "user",
            });
            let id = gateway.create("/api/users", &body).await?;
            users_created();
            Ok::<_, SetupError>(id)
        })
        .buffered(USER_CONCURRENCY)
        .try_collect()
        .await?;

    // restricted users get their profile now; everyone's must exist before the run
    for (spec, id) in plan.users.iter().zip(&world.users) {
        if let Access::Only(doors) = &spec.access {
            let ids: Vec<&str> = doors.iter().map(|d| world.door(*d)).collect();
            let path = format!("/api/access/profiles/{id}");
            let answer = gateway
                .call(Method::PUT, &path, Some(&json!({"doorIds": ids})))
                .await?;
            if !matches!(answer.status, StatusCode::OK | StatusCode::CREATED) {
                return Err(CallError::Status {
                    method: Method::PUT,
                    path,
                    status: answer.status,
                    body: answer.body.to_string(),
                }
                .into());
            }
        }
    }
    let limit = Duration::from_secs(30);
    for id in &world.users {
        let deadline = Instant::now() + limit;
        let path = format!("/api/access/profiles/{id}");
        loop {
            let answer = gateway.call(Method::GET, &path, None).await?;
            if answer.status == StatusCode::OK {
                break;
            }
            if Instant::now() >= deadline {
                return Err(SetupError::NoProfile(id.clone(), limit));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(world)
}
