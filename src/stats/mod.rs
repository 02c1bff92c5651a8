//! Statistics: the durable event log (SQLite, optionally an Asterisk queue_log too) and
//! every figure supervisors see, folded from the events alone so that a replay after a
//! restart gives the same numbers. `fold`, `view`, `figures`, `queue_log::lines` and `tz`
//! are pure; `log`, `queue_log::QueueLogFile` and the `actor` that owns them do the I/O.
//! Definitions of every figure are in `figures.rs`. Nothing here touches calls or agents:
//! it only listens.

pub mod actor;
pub mod config;
pub mod figures;
pub mod fold;
pub mod log;
pub mod queue_log;
pub mod tz;
mod view;

#[cfg(test)]
mod fold_tests;

pub use actor::{Stats, StatsError, StatsHandle, Update, replay};
pub use config::{FoldSettings, QueueStatsConfig, StatsConfig};
pub use figures::{AgentStatus, AgentView, Figures, Overview, QueueDay, QueueView};
pub use fold::{Fold, Roster};
pub use log::{EventLog, StoredEvent};
