//! Registrar for agent phones: REGISTER with digest authentication (RFC 7616/2617, MD5 and
//! SHA-256, qop=auth) and contact bindings with expiry (RFC 3261 §10), sans-IO. The edge
//! feeds it parsed requests and time, sends its replies, and passes its binding changes to
//! the ACD (`AcdHandle::registration`). It owns no socket and reads no clock.

mod bindings;
mod guard;
mod nonce;
mod register;
mod request;

pub use crate::secret::Secret;
pub use crate::sip::digest::Algorithm;
pub use guard::{Held, Lockout};
pub use register::{AuthCounters, BindingChange, Registrar, Reply, Verdict};
pub use request::{Contacts, RegisterRequest, RequestError};

use std::path::Path;

use serde::Deserialize;

use crate::diag::Diagnostic;
use crate::diag::{PathKey, Problem};

/// The `[registrar]` section of the config file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {
    /// The digest realm phones authenticate in.
    pub realm: String,
    /// How long a nonce may be used before the phone is challenged again (stale=true).
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub nonce_lifetime_s: u64,
    /// Shorter registrations get 423 Interval Too Brief.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub min_expires_s: u32,
    /// Longer registrations are granted this long.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub max_expires_s: u32,
    /// For a REGISTER that asks for no particular time.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub default_expires_s: u32,
    /// Offered in challenges, in order of preference: "SHA-256", "MD5".
    pub algorithms: Vec<Algorithm>,
    /// Wrong answers in a row, per user and per source address, before it is locked out.
    /// After each wrong answer the next is not checked for 1 s, doubling each time.
    pub max_failures: u32,
    /// How long a locked-out user or source is refused without checking. A phone that
    /// registered the user before keeps registering from its address meanwhile.
    #[serde(deserialize_with = "crate::duration::seconds")]
    pub lockout_s: u64,
    /// Source networks (CIDR) agent phones may register from; empty: any.
    pub allow: Vec<String>,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            realm: "hotline".to_owned(),
            nonce_lifetime_s: 300,
            min_expires_s: 60,
            max_expires_s: 3600,
            default_expires_s: 3600,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            max_failures: 5,
            lockout_s: 300,
            allow: Vec::new(),
        }
    }
}

impl RegistrarConfig {
    /// Every problem of the section, with paths from the file's root.
    pub fn problems(&self) -> Vec<Problem> {
        let at = |key: &str, message: &str| Problem {
            path: vec![
                PathKey::Key("registrar".to_owned()),
                PathKey::Key(key.to_owned()),
            ],
            message: message.to_owned(),
        };
        let mut out = Vec::new();
        if self.realm.is_empty() {
            out.push(at("realm", "the realm must not be empty"));
        }
        if self.nonce_lifetime_s == 0 {
            out.push(at(
                "nonce_lifetime_s",
                "nonce_lifetime_s must be at least 1",
            ));
        }
        if self.min_expires_s == 0 {
            out.push(at("min_expires_s", "min_expires_s must be at least 1"));
        }
        if self.min_expires_s > self.max_expires_s {
            out.push(at("max_expires_s", "max_expires_s is below min_expires_s"));
        }
        if self.algorithms.is_empty() {
            out.push(at("algorithms", "offer at least one algorithm"));
        }
        if self.max_failures == 0 {
            out.push(at("max_failures", "max_failures must be at least 1"));
        }
        for (i, cidr) in self.allow.iter().enumerate() {
            if let Err(e) = cidr.parse::<crate::cidr::Cidr>() {
                let mut problem = at("allow", &e.to_string());
                problem.path.push(PathKey::Index(i));
                out.push(problem);
            }
        }
        out
    }

    pub fn diagnostics(&self, file: &Path, text: &str) -> Vec<Diagnostic> {
        crate::diag::diagnostics(file, text, self.problems())
    }
}

#[cfg(test)]
pub(crate) mod test_phone;
#[cfg(test)]
mod tests;
