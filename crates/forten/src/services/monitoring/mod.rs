//! monitoring-service (SPEC §8).
