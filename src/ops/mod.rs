//! Running Hortus for years on a small server: backups that restore ([`backup`], [`restore`]),
//! the copy of the database kept before a schema migration (`db::snapshot`), a hardened systemd
//! unit ([`service`]), logs a terminal or a collector can read ([`logs`]), the Prometheus endpoint ([`metrics`]), and the deployment seen
//! from outside ([`check`]).
//!
//! Everything here takes plain parameters (a site directory, a database path or connection), not
//! the server's state: these commands run beside a live `hortus serve`, or with none at all.

pub mod backup;
pub mod check;
pub mod logs;
pub mod metrics;
pub mod restore;
pub mod service;
