//! The `[acd]` config section as operators write it: queues and agents. Defaults live here;
//! the cross-reference checks are in `check`. No state, no I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::registrar::Secret;

/// The `[acd]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcdConfig {
    /// `[acd.queue_defaults]`: what every queue has unless it says otherwise (any queue key
    /// but `name` and `overflow`). Applied by `with_queue_defaults` once the file is read;
    /// not written back out (each queue carries the result).
    #[serde(skip_serializing)]
    pub queue_defaults: QueueConfig,
    /// `[[acd.queues]]`
    pub queues: Vec<QueueConfig>,
    /// `[[acd.agents]]`
    pub agents: Vec<AgentConfig>,
}

/// How a queue chooses among the agents free to take a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The agent free for the longest time since their last call (or login, resume).
    #[default]
    LongestIdle,
    /// The next member after the one offered last, in config order.
    RoundRobin,
    /// The member who answered the fewest calls of this queue since logging in, then
    /// longest idle.
    FewestCalls,
    /// Every free member at once; the first to answer takes the call.
    RingAll,
    /// The highest skill level for the queue, then longest idle.
    SkillsBased,
}

/// Where a caller goes when they leave a queue without an agent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverflowTarget {
    /// `overflow = { queue = "general" }`: join that queue (a new stay, at the back of its
    /// priority class).
    Queue(String),
    /// `overflow = { step = "voicemail" }`: leave the ACD and continue the dialplan there.
    Step(String),
}

impl fmt::Display for OverflowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverflowTarget::Queue(q) => write!(f, "queue:{q}"),
            OverflowTarget::Step(s) => write!(f, "step:{s}"),
        }
    }
}

/// One `[[acd.queues]]` entry.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub name: String,
    pub strategy: Strategy,
    /// How long one agent rings before the next is tried.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub ring_timeout_s: u64,
    /// After a caller has been offered to every eligible agent without success, wait this
    /// long before offering the same agents again.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub retry_s: u64,
    /// Longest wait before the caller leaves for `overflow` (or is timed out without one).
    /// Absent: no limit.
    #[serde(deserialize_with = "crate::duration::opt_seconds")]
    pub max_wait_s: Option<u64>,
    pub overflow: Option<OverflowTarget>,
    /// A caller's language is a hard requirement for this long, then any member may take
    /// the call. Absent: it never relaxes.
    #[serde(deserialize_with = "crate::duration::opt_seconds")]
    pub language_relax_s: Option<u64>,
    /// Accept callers while no member is logged in (paused members count as logged in).
    pub join_when_empty: bool,
    /// Send waiting callers to `overflow` when the last member logs out.
    pub leave_when_empty: bool,
    /// After-call work before the agent gets the next call.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub wrap_up_s: u64,
    /// Position and estimated wait are announced this often; 0 turns announcements off.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub announce_period_s: u64,
    /// After this many unanswered offers in a row an agent is paused with reason
    /// "no answer"; 0 never pauses.
    pub max_no_answer: u32,
    /// Handle time assumed for wait estimates until the queue has completed calls.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub handle_time_estimate_s: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            name: String::new(),
            strategy: Strategy::default(),
            ring_timeout_s: 15,
            retry_s: 5,
            max_wait_s: None,
            overflow: None,
            language_relax_s: None,
            join_when_empty: true,
            leave_when_empty: false,
            wrap_up_s: 10,
            announce_period_s: 30,
            max_no_answer: 3,
            handle_time_estimate_s: 180,
        }
    }
}

/// One `[[acd.agents]]` entry.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    pub id: String,
    pub name: String,
    /// The user name the agent's phone registers with; the agent id when absent.
    pub sip_user: Option<String>,
    /// Digest password of the phone. Without it the phone cannot register, and the agent
    /// needs `uri`.
    pub password: Option<Secret>,
    /// A SIP URI reached through the trunk, for agents on the existing PBX.
    pub uri: Option<String>,
    /// Languages spoken (`cmn`, `yue`).
    pub languages: Vec<String>,
    /// Queue name -> skill level (higher is better); the agent serves exactly these queues.
    pub skills: BTreeMap<String, u8>,
    /// Calls offered or connected at once.
    pub max_offers: u32,
    /// Log in as soon as the phone registers, instead of waiting for the API.
    pub auto_login: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            id: String::new(),
            name: String::new(),
            sip_user: None,
            password: None,
            uri: None,
            languages: vec!["cmn".to_owned()],
            skills: BTreeMap::new(),
            max_offers: 1,
            auto_login: false,
        }
    }
}

impl AgentConfig {
    pub fn sip_user(&self) -> &str {
        self.sip_user.as_deref().unwrap_or(&self.id)
    }
}

impl AcdConfig {
    /// Fills each queue's keys it does not set from `[acd.queue_defaults]`. `file` is the
    /// whole config as TOML, already read into `self` (so both tables are known to be
    /// valid): it tells which keys each queue set itself.
    pub fn with_queue_defaults(mut self, file: &toml::Table) -> Result<AcdConfig, toml::de::Error> {
        let acd = file.get("acd").and_then(toml::Value::as_table);
        let Some(defaults) = acd
            .and_then(|a| a.get("queue_defaults"))
            .and_then(toml::Value::as_table)
        else {
            return Ok(self);
        };
        let queues = acd
            .and_then(|a| a.get("queues"))
            .and_then(toml::Value::as_array);
        for (queue, raw) in self.queues.iter_mut().zip(queues.into_iter().flatten()) {
            let Some(raw) = raw.as_table() else { continue };
            let mut merged = defaults.clone();
            merged.extend(raw.clone());
            *queue = QueueConfig::deserialize(toml::Value::Table(merged))?;
        }
        Ok(self)
    }

    /// The digest credentials of every agent whose phone registers, for the registrar.
    pub fn credentials(&self) -> Vec<(String, Secret)> {
        self.agents
            .iter()
            .filter_map(|a| Some((a.sip_user().to_owned(), a.password.clone()?)))
            .collect()
    }
}
