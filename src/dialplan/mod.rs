//! Dialplans: the call flows operators write as YAML files under `dialplans/` (format in
//! dialplans/README.md). `DialplanSet` loads and checks them (every problem at once, as
//! `file:line:column`); `Interpreter` runs one per call as a sans-IO state machine that the
//! call task drives. Files are read only when loading (`DialplanSet::load`, and the system
//! tz database when the config names a time zone); nothing here plays audio or touches a
//! socket.

mod actions;
mod condition;
mod hours;
mod interp;
mod model;
mod parse;
mod parse_step;
mod set;
mod suggest;
mod validate;
mod vars;
mod yaml;

#[cfg(test)]
mod default_flow_tests;
#[cfg(test)]
mod interp_tests;
#[cfg(test)]
pub(crate) mod test_harness;

use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

pub use actions::{
    Action, CallInfo, Enqueue, Input, ListenId, ListenRequest, PlayId, PromptToPlay, Speech,
    SpeechResult, Unavailable,
};
pub use condition::Condition;
pub use hours::{Calendar, Opening, Schedule};
pub use interp::Interpreter;
pub use model::*;
/// One dialplan file's text to a dialplan, or every problem with its position (for tools
/// such as the fuzz targets; the engine loads folders through `DialplanSet`).
pub use parse::parse;
pub use set::{DialplanSet, LoadError};
pub use validate::{QueueInfo, TrunkInfo, ValidationContext};
pub use vars::{Var, Vars};

/// The `[dialplan]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialplanConfig {
    /// Folder holding the dialplan files (`*.yaml`).
    pub directory: PathBuf,
    /// IANA time zone the `hours` steps read the clock in.
    pub timezone: Timezone,
    /// Dates on which every schedule is closed (e.g. a closure announced for the whole
    /// service); each schedule may list its own holidays too.
    pub holidays: Vec<jiff::civil::Date>,
}

impl Default for DialplanConfig {
    fn default() -> Self {
        DialplanConfig {
            directory: PathBuf::from("dialplans"),
            timezone: Timezone::default(),
            holidays: Vec::new(),
        }
    }
}

impl DialplanConfig {
    pub fn calendar(&self) -> Calendar {
        Calendar {
            timezone: self.timezone.zone.clone(),
            holidays: self.holidays.clone(),
        }
    }
}

/// A time zone from the system's tz database, checked when the config is read.
#[derive(Debug, Clone)]
pub struct Timezone {
    pub name: String,
    pub zone: jiff::tz::TimeZone,
}

impl Default for Timezone {
    /// Asia/Shanghai; without a tz database, its fixed UTC+8 (China has had no daylight
    /// saving time since 1991, so the two agree).
    fn default() -> Self {
        let name = "Asia/Shanghai";
        Timezone {
            name: name.to_owned(),
            zone: jiff::tz::TimeZone::get(name)
                .unwrap_or_else(|_| jiff::tz::TimeZone::fixed(jiff::tz::offset(8))),
        }
    }
}

impl serde::Serialize for Timezone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let zone = jiff::tz::TimeZone::get(&name)
            .map_err(|e| serde::de::Error::custom(format!("unknown time zone `{name}`: {e}")))?;
        Ok(Timezone { name, zone })
    }
}
