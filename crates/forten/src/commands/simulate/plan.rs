//! The plan of a simulation: what to create and which actions to take when, drawn from a
//! seed. Pure: the same [`PlanConfig`] (seed included) always gives the same [`Plan`], on any
//! machine and any version of the dependencies (the generator is our own SplitMix64).

use std::time::Duration;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever — a dependency's
/// generator could change its stream between versions and break "same seed, same plan".
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub(crate) const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // 53 random bits: every value exactly representable
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64;
        v / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n` > 0; 0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        // multiply-high (Lemire): bias below 2^-40 for the sizes used here
        let hi = (u128::from(self.next_u64()) * u128::from(n64)) >> 64;
        usize::try_from(hi).unwrap_or(0)
    }

    /// `true` with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An exponential wait with mean `1 / rate` seconds (Poisson arrivals).
    fn exp_secs(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}

/// What a plan is drawn from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlanConfig {
    /// The seed.
    pub(crate) seed: u64,
    /// Mean actions per second.
    pub(crate) rate: f64,
    /// How long actions are started for.
    pub(crate) duration: Duration,
    /// Buildings created.
    pub(crate) buildings: usize,
    /// Doors per building.
    pub(crate) doors_per_building: usize,
    /// Cameras per building.
    pub(crate) cameras_per_building: usize,
    /// Badge holders created.
    pub(crate) users: usize,
    /// Share of swipes that are meant to be denied (0 to 1).
    pub(crate) deny_share: f64,
    /// Heartbeat timeout of the cameras (whole seconds, at least 1).
    pub(crate) heartbeat_timeout: Duration,
}

impl Default for PlanConfig {
    /// Seed 1, 20 actions/s for 60 s, 3 buildings of 3 doors and 2 cameras, 8 users, 20 %
    /// denials, 2 s heartbeat timeout.
    fn default() -> Self {
        Self {
            seed: 1,
            rate: 20.0,
            duration: Duration::from_secs(60),
            buildings: 3,
            doors_per_building: 3,
            cameras_per_building: 2,
            users: 8,
            deny_share: 0.2,
            heartbeat_timeout: Duration::from_secs(2),
        }
    }
}

/// A door, by building and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct DoorRef {
    /// Index of its building.
    pub(crate) building: usize,
    /// Index among the building's doors.
    pub(crate) door: usize,
}

/// A camera, by building and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CameraRef {
    /// Index of its building.
    pub(crate) building: usize,
    /// Index among the building's cameras.
    pub(crate) camera: usize,
}

/// Which doors a planned user may open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Every door (the default profile, `ACCESS_DEFAULT_POLICY=all`).
    All,
    /// Only these doors (a profile set with `PUT /api/access/profiles/{userId}`).
    Only(Vec<DoorRef>),
}

impl Access {
    /// Whether `door` is allowed.
    pub(crate) fn allows(&self, door: DoorRef) -> bool {
        match self {
            Self::All => true,
            Self::Only(doors) => doors.contains(&door),
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserSpec {
    /// First name.
    pub(crate) first_name: &'static str,
    /// Last name.
    pub(crate) last_name: &'static str,
    /// Their doors.
    pub(crate) access: Access,
}

/// Who swipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Swiper {
    /// A created user (index into [`Plan::users`]).
    User(usize),
    /// A badge nobody was given (the n-th unknown one): denied `unknown_user`.
    Unknown(usize),
}

/// How a door is asked to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Badge card.
    Card,
    /// PIN code.
    Pin,
    /// Phone.
    Mobile,
    /// Fingerprint, face.
    Biometric,
}

impl Method {
    /// Its wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Pin => "pin",
            Self::Mobile => "mobile",
            Self::Biometric => "biometric",
        }
    }
}

/// One action of the run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ActionKind {
    /// A badge swipe (`POST /api/access/attempts`).
    Swipe {
        /// Who.
        swiper: Swiper,
        /// Where.
        door: DoorRef,
        /// How.
        method: Method,
        /// Whether the plan means it to be granted.
        expect_granted: bool,
    },
    /// A door forced open (`POST /api/doors/{id}/forced`).
    ForceDoor {
        /// Which.
        door: DoorRef,
    },
    /// A camera goes silent until seen offline, stays so for `hold`, then heartbeats again.
    CameraOutage {
        /// Which.
        camera: CameraRef,
        /// How long it stays offline once seen so.
        hold: Duration,
    },
    /// Acknowledge one of the run's open alerts (the `pick`-th modulo how many there are).
    AcknowledgeAlert {
        /// Which one.
        pick: usize,
    },
    /// Resolve one of the run's acknowledged (else open) alerts.
    ResolveAlert {
        /// Which one.
        pick: usize,
    },
}

/// An action and when to start it (from the start of the run).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Action {
    /// Offset from the run's start.
    pub(crate) at: Duration,
    /// What.
    pub(crate) kind: ActionKind,
}

/// What a simulation creates and does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// What it was drawn from.
    pub(crate) config: PlanConfig,
    /// Users, in creation order.
    pub(crate) users: Vec<UserSpec>,
    /// The actions, in time order.
    pub(crate) actions: Vec<Action>,
}

impl Plan {
    /// How many actions of each kind: (swipes, swipes meant to be denied, forced doors,
    /// outages, acknowledgements, resolutions).
    pub(crate) fn counts(&self) -> PlanCounts {
        let mut c = PlanCounts::default();
        for a in &self.actions {
            match &a.kind {
                ActionKind::Swipe { expect_granted, .. } => {
                    c.swipes += 1;
                    if !expect_granted {
                        c.denials += 1;
                    }
                }
                ActionKind::ForceDoor { .. } => c.forced += 1,
                ActionKind::CameraOutage { .. } => c.outages += 1,
                ActionKind::AcknowledgeAlert { .. } => c.acknowledgements += 1,
                ActionKind::ResolveAlert { .. } => c.resolutions += 1,
            }
        }
        c
    }
}

/// How many actions of each kind a plan holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PlanCounts {
    /// Badge swipes.
    pub(crate) swipes: usize,
    /// Of those, meant to be denied.
    pub(crate) denials: usize,
    /// Forced doors.
    pub(crate) forced: usize,
    /// Camera outages.
    pub(crate) outages: usize,
    /// Alert acknowledgements.
    pub(crate) acknowledgements: usize,
    /// Alert resolutions.
    pub(crate) resolutions: usize,
}

const FIRST: [&str; 12] = [
    "Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken",
    "Margaret", "Niklaus",
];
const LAST: [&str; 12] = [
    "Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Perlman",
    "Thompson", "Hamilton", "Wirth",
];

/// Share of actions that force a door.
const FORCE_SHARE: f64 = 0.03;
/// Share that start a camera outage (when a camera is free for one).
const OUTAGE_SHARE: f64 = 0.03;
/// Share that acknowledge an alert.
const ACK_SHARE: f64 = 0.04;
/// Share that resolve one.
const RESOLVE_SHARE: f64 = 0.03;
/// Time the monitoring watchdog may take to notice a silent camera past its timeout (it
/// looks every second), plus slack for a loaded machine.
const WATCHDOG_SLACK: Duration = Duration::from_secs(3);
/// Time between an outage's recovery and the camera's next outage, so that a heartbeat
/// separates them.
const OUTAGE_GAP: Duration = Duration::from_millis(1500);

/// Draws the plan of `config`.
pub(crate) fn generate(config: &PlanConfig) -> Plan {
    let mut rng = Rng::new(config.seed);
    let doors: Vec<DoorRef> = (0..config.buildings)
        .flat_map(|b| {
            (0..config.doors_per_building).map(move |d| DoorRef {
                building: b,
                door: d,
            })
        })
        .collect();
    let cameras: Vec<CameraRef> = (0..config.buildings)
        .flat_map(|b| {
            (0..config.cameras_per_building).map(move |c| CameraRef {
                building: b,
                camera: c,
            })
        })
        .collect();

    // users: about a quarter restricted to a strict subset of the doors (at least one
    // restricted user whenever there are two users and two doors, so that profile denials
    // happen)
    let restricted = if doors.len() >= 2 && config.users >= 2 {
        (config.users / 4).max(1)
    } else {
        0
    };
    let users: Vec<UserSpec> = (0..config.users)
        .map(|i| {
            let access = if i >= config.users - restricted {
                let mut allowed: Vec<DoorRef> =
                    doors.iter().copied().filter(|_| rng.chance(0.4)).collect();
                if allowed.is_empty() {
                    allowed.push(doors[rng.below(doors.len())]);
                }
                if allowed.len() == doors.len() {
                    allowed.remove(rng.below(allowed.len()));
                }
                Access::Only(allowed)
            } else {
                Access::All
            };
            UserSpec {
                first_name: FIRST[rng.below(FIRST.len())],
                last_name: LAST[rng.below(LAST.len())],
                access,
            }
        })
        .collect();
    let restricted_ids: Vec<usize> = (0..users.len())
        .filter(|&i| users[i].access != Access::All)
        .collect();

    let end = config.duration.as_secs_f64();
    let outage_len = |hold: Duration| config.heartbeat_timeout + WATCHDOG_SLACK + hold + OUTAGE_GAP;
    let mut camera_free = vec![0.0_f64; cameras.len()];
    let mut unknown = 0;
    let mut actions = Vec::new();
    let mut t = rng.exp_secs(config.rate);
    while t < end && !doors.is_empty() {
        let roll = rng.unit();
        let mut kind = None;
        if roll < FORCE_SHARE {
            kind = Some(ActionKind::ForceDoor {
                door: doors[rng.below(doors.len())],
            });
        } else if roll < FORCE_SHARE + OUTAGE_SHARE {
            let hold = Duration::from_millis(500 + 500 * rng.below(4) as u64);
            let len = outage_len(hold).as_secs_f64();
            let start = rng.below(cameras.len().max(1));
            // the first camera from a random start that is free now and done before the end
            let free = (0..cameras.len())
                .map(|k| (start + k) % cameras.len())
                .find(|&c| camera_free[c] <= t && t + len <= end);
            if let Some(c) = free {
                camera_free[c] = t + len;
                kind = Some(ActionKind::CameraOutage {
                    camera: cameras[c],
                    hold,
                });
            }
        } else if roll < FORCE_SHARE + OUTAGE_SHARE + ACK_SHARE {
            kind = Some(ActionKind::AcknowledgeAlert {
                pick: rng.below(1 << 16),
            });
        } else if roll < FORCE_SHARE + OUTAGE_SHARE + ACK_SHARE + RESOLVE_SHARE {
            kind = Some(ActionKind::ResolveAlert {
                pick: rng.below(1 << 16),
            });
        }
        let kind = kind.unwrap_or_else(|| {
            swipe(
                &mut rng,
                config,
                &doors,
                &users,
                &restricted_ids,
                &mut unknown,
            )
        });
        actions.push(Action {
            at: Duration::from_secs_f64(t),
            kind,
        });
        t += rng.exp_secs(config.rate);
    }
    Plan {
        config: config.clone(),
        users,
        actions,
    }
}

/// A swipe: denied with probability `deny_share` (by an unknown badge, or a restricted user
/// at a door outside their profile), else granted (any user at a door they may open).
fn swipe(
    rng: &mut Rng,
    config: &PlanConfig,
    doors: &[DoorRef],
    users: &[UserSpec],
    restricted: &[usize],
    unknown: &mut usize,
) -> ActionKind {
    let method = match rng.below(10) {
        0..=5 => Method::Card,
        6 | 7 => Method::Mobile,
        8 => Method::Pin,
        _ => Method::Biometric,
    };
    let deny = users.is_empty() || rng.chance(config.deny_share);
    if deny {
        if !restricted.is_empty() && rng.chance(0.5) {
            let user = restricted[rng.below(restricted.len())];
            let outside: Vec<DoorRef> = doors
                .iter()
                .copied()
                .filter(|d| !users[user].access.allows(*d))
                .collect();
            if !outside.is_empty() {
                return ActionKind::Swipe {
                    swiper: Swiper::User(user),
                    door: outside[rng.below(outside.len())],
                    method,
                    expect_granted: false,
                };
            }
        }
        *unknown += 1;
        return ActionKind::Swipe {
            swiper: Swiper::Unknown(*unknown),
            door: doors[rng.below(doors.len())],
            method,
            expect_granted: false,
        };
    }
    let user = rng.below(users.len());
    let allowed: Vec<DoorRef> = doors
        .iter()
        .copied()
        .filter(|d| users[user].access.allows(*d))
        .collect();
    ActionKind::Swipe {
        swiper: Swiper::User(user),
        door: allowed[rng.below(allowed.len())],
        method,
        expect_granted: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> PlanConfig {
        PlanConfig {
            seed,
            duration: Duration::from_secs(20),
            ..PlanConfig::default()
        }
    }

    #[test]
    fn the_generator_is_splitmix64() {
        // reference values of SplitMix64 seeded with 1234567
        let mut rng = Rng::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            assert!(rng.below(3) < 3);
        }
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        let a = generate(&config(1));
        let b = generate(&config(1));
        assert_eq!(a, b);
        assert!(!a.actions.is_empty());
        let c = generate(&config(2));
        assert_ne!(a.actions, c.actions, "another seed, another plan");
    }

    #[test]
    fn a_plan_holds_every_kind_of_action_in_time_order() {
        let plan = generate(&config(1));
        let c = plan.counts();
        // ~400 actions at 20/s over 20 s
        assert!((300..500).contains(&plan.actions.len()), "{c:?}");
        assert!(c.forced > 0 && c.outages > 0, "{c:?}");
        assert!(c.acknowledgements > 0 && c.resolutions > 0, "{c:?}");
        #[allow(clippy::cast_precision_loss)]
        let share = c.denials as f64 / c.swipes as f64;
        assert!((0.12..0.28).contains(&share), "denial share {share}");
        assert!(plan.actions.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(plan.actions.iter().all(|a| a.at < Duration::from_secs(20)));
    }

    #[test]
    fn planned_decisions_follow_the_profiles() {
        let plan = generate(&config(3));
        assert!(plan.users.iter().any(|u| u.access != Access::All));
        let mut by_profile = 0;
        for a in &plan.actions {
            if let ActionKind::Swipe {
                swiper,
                door,
                expect_granted,
                ..
            } = a.kind
            {
                match swiper {
                    Swiper::User(u) => {
                        assert_eq!(plan.users[u].access.allows(door), expect_granted);
                        by_profile += usize::from(!expect_granted);
                    }
                    Swiper::Unknown(_) => assert!(!expect_granted),
                }
            }
        }
        assert!(by_profile > 0, "some denials come from profiles");
    }

    #[test]
    fn outages_of_one_camera_never_overlap_and_end_before_the_run_does() {
        let cfg = config(5);
        let plan = generate(&cfg);
        let mut last_end: std::collections::HashMap<CameraRef, Duration> = Default::default();
        for a in &plan.actions {
            if let ActionKind::CameraOutage { camera, hold } = a.kind {
                let len = cfg.heartbeat_timeout + WATCHDOG_SLACK + hold + OUTAGE_GAP;
                if let Some(end) = last_end.get(&camera) {
                    assert!(a.at >= *end, "{camera:?} overlaps");
                }
                assert!(a.at + len <= cfg.duration + Duration::from_millis(1));
                last_end.insert(camera, a.at + len);
            }
        }
    }

    #[test]
    fn no_denial_share_means_no_planned_denials() {
        let plan = generate(&PlanConfig {
            deny_share: 0.0,
            ..config(9)
        });
        assert_eq!(plan.counts().denials, 0);
    }
}
