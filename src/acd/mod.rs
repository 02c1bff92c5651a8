//! ACD (automatic call distribution): queues and agent states, owned by one actor
//! (`actor`) around a sans-IO router (`router`). Call tasks enqueue calls and report what
//! happens to agent legs; the API logs agents in and out; the registrar reports phones.
//! This module does no SIP and no media: the call task INVITEs and bridges as told.

mod actor;
mod check;
mod config;
mod estimate;
mod messages;
mod router;

pub use actor::{AcdHandle, AcdMsg, spawn};
pub use config::{AcdConfig, AgentConfig, OverflowTarget, QueueConfig, Strategy};
pub use estimate::estimated_wait;
pub use messages::{
    AcdSnapshot, AgentAction, AgentState, AgentView, ControlError, EnqueueRequest, HungUpBy, Input,
    InputError, Instruction, LeaveReason, OfferId, OfferOutcome, Output, QueueView, Target,
    WaitingView,
};
pub use router::Router;
