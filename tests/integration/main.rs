//! The integration tests, in one binary so the shared harness is compiled once: the real
//! engine binary against real peers over loopback (SIPp, baresip, linphonec, Kamailio),
//! a real browser (headless Chromium), the real Vosk model on real audio, and espeak-ng
//! and sox for prompts and test audio. `make test` runs them (`--features integration`);
//! a plain `cargo test` runs only what needs no external program.

#[path = "../common/mod.rs"]
mod common;
#[path = "../speech_support/mod.rs"]
mod speech_support;

mod acd_calls;
mod baresip_harness;
mod dashboard_chromium;
mod dialplan_check;
mod ivr_flow;
mod registrar;
mod reload;
mod sip_calls;
mod sip_malformed;
mod speech_clips;
mod speech_remote;
mod supervisor_run;
mod transfer;
mod trunk_qualify;
mod trunk_signalling;
mod wideband;
