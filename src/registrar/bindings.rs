//! The location service: each user's contact bindings and when they expire, changed the
//! way RFC 3261 §10.3 says (add, refresh, remove, requests ordered by Call-ID and CSeq).

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The Contact URI, where requests for the user go.
    pub contact: String,
    pub expires: Instant,
    /// When the binding was last added or refreshed: the newest is the one to call.
    pub updated: Instant,
    call_id: String,
    cseq: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Set { contact: String, expires: Duration },
    Remove { contact: String },
}

impl Change {
    fn contact(&self) -> &str {
        match self {
            Change::Set { contact, .. } | Change::Remove { contact } => contact,
        }
    }
}

/// A REGISTER with the same Call-ID as a binding but a CSeq not above it: it arrived out
/// of order and must not change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("REGISTER out of order (CSeq not above the binding's)")]
pub struct OutOfOrder;

#[derive(Debug, Default)]
pub struct Bindings {
    by_user: HashMap<String, Vec<Binding>>,
}

impl Bindings {
    /// Applies every change of one REGISTER, or none of them.
    pub fn apply(
        &mut self,
        user: &str,
        changes: &[Change],
        call_id: &str,
        cseq: u32,
        now: Instant,
    ) -> Result<(), OutOfOrder> {
        let current = self.of(user);
        let out_of_order = changes.iter().any(|change| {
            current
                .iter()
                .any(|b| b.contact == change.contact() && b.call_id == call_id && cseq <= b.cseq)
        });
        if out_of_order {
            return Err(OutOfOrder);
        }
        let list = self.by_user.entry(user.to_owned()).or_default();
        for change in changes {
            list.retain(|b| b.contact != change.contact());
            if let Change::Set { contact, expires } = change {
                list.push(Binding {
                    contact: contact.clone(),
                    expires: now + *expires,
                    updated: now,
                    call_id: call_id.to_owned(),
                    cseq,
                });
            }
        }
        if list.is_empty() {
            self.by_user.remove(user);
        }
        Ok(())
    }

    pub fn of(&self, user: &str) -> &[Binding] {
        self.by_user.get(user).map_or(&[], Vec::as_slice)
    }

    /// The contact of the user's most recently refreshed binding.
    pub fn best(&self, user: &str) -> Option<&str> {
        self.of(user)
            .iter()
            .max_by_key(|b| b.updated)
            .map(|b| b.contact.as_str())
    }

    /// Drops bindings expired at `now`; returns the users who lost any.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut touched = Vec::new();
        self.by_user.retain(|user, list| {
            let before = list.len();
            list.retain(|b| b.expires > now);
            if list.len() != before {
                touched.push(user.clone());
            }
            !list.is_empty()
        });
        touched
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.by_user.values().flatten().map(|b| b.expires).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(contact: &str, secs: u64) -> Change {
        Change::Set {
            contact: contact.to_owned(),
            expires: Duration::from_secs(secs),
        }
    }

    #[test]
    fn refresh_remove_and_expire() {
        let t0 = Instant::now();
        let mut b = Bindings::default();
        b.apply("u", &[set("sip:u@a", 60)], "cid", 1, t0).unwrap();
        b.apply(
            "u",
            &[set("sip:u@b", 120)],
            "other",
            7,
            t0 + Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(b.best("u"), Some("sip:u@b"));
        // A refresh of the first binding makes it the newest.
        b.apply(
            "u",
            &[set("sip:u@a", 60)],
            "cid",
            2,
            t0 + Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(b.best("u"), Some("sip:u@a"));
        assert_eq!(b.next_expiry(), Some(t0 + Duration::from_secs(62)));
        assert_eq!(b.expire(t0 + Duration::from_secs(62)), ["u"]);
        assert_eq!(b.best("u"), Some("sip:u@b"));
        let remove = Change::Remove {
            contact: "sip:u@b".into(),
        };
        b.apply("u", &[remove], "other", 8, t0).unwrap();
        assert_eq!(b.best("u"), None);
        assert_eq!(b.next_expiry(), None);
    }

    #[test]
    fn an_old_cseq_of_the_same_call_id_changes_nothing() {
        let t0 = Instant::now();
        let mut b = Bindings::default();
        b.apply("u", &[set("sip:u@a", 60)], "cid", 5, t0).unwrap();
        let both = [set("sip:u@new", 60), set("sip:u@a", 3600)];
        assert_eq!(b.apply("u", &both, "cid", 5, t0), Err(OutOfOrder));
        assert_eq!(b.of("u").len(), 1, "nothing applied");
        // Another Call-ID (the phone restarted) may replace it whatever its CSeq.
        b.apply("u", &[set("sip:u@a", 30)], "new-cid", 1, t0)
            .unwrap();
        assert_eq!(b.of("u")[0].expires, t0 + Duration::from_secs(30));
    }
}
