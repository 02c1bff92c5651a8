//! hotline: a SIP/RTP IVR and call-routing engine for citizen-service hotlines.
//!
//! Sans-IO protocol and decision cores (`sip`, `media`, `dialplan`, `acd`, `speech`'s
//! classifier, `stats`) sit under thin tokio edges (`endpoint`, `call`, `media::worker`,
//! `api`). ARCHITECTURE.md maps the modules and the messages between them.

pub mod acd;
pub mod api;
pub mod call;
pub mod cidr;
pub mod config;
pub mod diag;
pub mod dialplan;
pub mod duration;
pub mod endpoint;
pub mod engine;
pub mod events;
pub mod media;
pub mod metrics;
pub mod prompts;
pub mod registrar;
pub mod secret;
pub mod sip;
pub mod speech;
pub mod stats;
pub mod time;
