//! Agent control requests from the API to the ACD actor: the API sends an `AgentControl`
//! on an `mpsc::Sender<AgentControl>` and waits for the reply on its oneshot. The ACD
//! decides; the API only relays and maps the answer to an HTTP status.

use serde::Deserialize;
use tokio::sync::oneshot;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AgentCommand {
    Login,
    Logout { reason: String },
    Pause { reason: String },
    Resume,
}

#[derive(Debug)]
pub struct AgentControl {
    pub agent: String,
    pub command: AgentCommand,
    /// The name of the admin token that asked (for the ACD's logs), never the token.
    pub requested_by: String,
    pub reply: oneshot::Sender<Result<(), ControlError>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no agent {0:?}")]
    UnknownAgent(String),
    /// The command does not apply in the agent's state (logging in a logged-in agent...).
    #[error("{0}")]
    Refused(String),
}

/// A request to load the dialplans again (admin); the reply is the number of dialplans now
/// in force, or every problem found (the running ones then stay).
#[derive(Debug)]
pub struct ReloadRequest {
    pub requested_by: String,
    pub reply: oneshot::Sender<Result<usize, Vec<String>>>,
}
