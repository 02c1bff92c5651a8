//! Nonces: minted without keeping state (the issue time and a counter, authenticated with a
//! hash keyed by a secret the edge draws at start), so unauthenticated REGISTER floods
//! cost no memory. Only nonces that carried credentials are remembered until they expire:
//! with the highest `nc` seen (right credentials), to refuse replays, or as spent (a
//! wrong answer), so that each guess costs the guesser a new challenge.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::sip::digest::same_bytes;

/// What a nonce presented by a client is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    Fresh,
    /// Ours, but older than the lifetime.
    Stale,
    /// Not minted by this registrar (forged, garbled, or from before a restart).
    Unknown,
}

pub struct Nonces {
    secret: [u8; 32],
    epoch: Instant,
    counter: u64,
    lifetime: Duration,
    /// nonce -> (highest nc accepted, none once a wrong answer spent it; when the nonce
    /// expires).
    used: HashMap<String, (Option<u32>, Instant)>,
    /// When `used` is next swept (while it holds anything): the endpoint asks for the next
    /// expiry on every loop turn, and a guessing flood fills `used` with spent nonces, so
    /// the answer must not scan it.
    sweep_at: Option<Instant>,
}

impl Nonces {
    pub fn new(secret: [u8; 32], epoch: Instant, lifetime: Duration) -> Nonces {
        Nonces {
            secret,
            epoch,
            counter: 0,
            lifetime,
            used: HashMap::new(),
            sweep_at: None,
        }
    }

    pub fn mint(&mut self, now: Instant) -> String {
        let issued = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX);
        self.counter += 1;
        let counter = self.counter;
        format!(
            "{issued:016x}{counter:016x}{}",
            hex::encode(self.tag(issued, counter))
        )
    }

    fn tag(&self, issued: u64, counter: u64) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        h.update(counter.to_be_bytes());
        let full = h.finalize();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    pub fn check(&self, nonce: &str, now: Instant) -> NonceState {
        let field = |range: std::ops::Range<usize>| {
            nonce
                .get(range)
                .and_then(|s| u64::from_str_radix(s, 16).ok())
        };
        let (Some(issued), Some(counter), Some(tag)) = (
            field(0..16),
            field(16..32),
            nonce.get(32..).and_then(|s| hex::decode(s).ok()),
        ) else {
            return NonceState::Unknown;
        };
        if nonce.len() != 64 || !same_bytes(&tag, &self.tag(issued, counter)) {
            return NonceState::Unknown;
        }
        let issued_at = self.epoch + Duration::from_millis(issued);
        if now.saturating_duration_since(issued_at) > self.lifetime {
            NonceState::Stale
        } else {
            NonceState::Fresh
        }
    }

    /// Records `nc` for a fresh nonce that carried valid credentials; false when it is not
    /// above every `nc` already seen with that nonce (a replay).
    pub fn accept_nc(&mut self, nonce: &str, nc: u32, now: Instant) -> bool {
        let expires = now + self.lifetime;
        match self.used.get_mut(nonce) {
            Some((None, _)) => false,
            Some((Some(last), _)) if nc <= *last => false,
            Some((Some(last), _)) => {
                *last = nc;
                true
            }
            None => {
                self.remember(nonce, Some(nc), expires);
                true
            }
        }
    }

    /// A wrong answer came with this fresh nonce: it answers nothing any more.
    pub fn spend(&mut self, nonce: &str, now: Instant) {
        let expires = now + self.lifetime;
        self.remember(nonce, None, expires);
    }

    fn remember(&mut self, nonce: &str, nc: Option<u32>, expires: Instant) {
        self.used.insert(nonce.to_owned(), (nc, expires));
        self.sweep_at.get_or_insert(expires);
    }

    /// Whether a wrong answer spent this nonce.
    pub fn is_spent(&self, nonce: &str) -> bool {
        matches!(self.used.get(nonce), Some((None, _)))
    }

    /// Forgets nonces past their lifetime: they are stale now, so replays of them fail anyway.
    /// (Swept once per nonce lifetime: a nonce is forgotten up to a lifetime late, by then
    /// long stale.)
    pub fn expire(&mut self, now: Instant) {
        if self.sweep_at.is_none_or(|at| at > now) {
            return;
        }
        self.used.retain(|_, (_, expires)| *expires > now);
        self.sweep_at = (!self.used.is_empty()).then_some(now + self.lifetime);
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.sweep_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_unique_checked_and_age() {
        let t0 = Instant::now();
        let mut n = Nonces::new([7; 32], t0, Duration::from_secs(300));
        let a = n.mint(t0);
        let b = n.mint(t0);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(
            n.check(&a, t0 + Duration::from_secs(300)),
            NonceState::Fresh
        );
        assert_eq!(
            n.check(&a, t0 + Duration::from_secs(301)),
            NonceState::Stale
        );
        let mut forged = a.clone().into_bytes();
        forged[63] = if forged[63] == b'0' { b'1' } else { b'0' };
        let forged = String::from_utf8(forged).expect("ascii");
        assert_eq!(n.check(&forged, t0), NonceState::Unknown);
        assert_eq!(n.check("short", t0), NonceState::Unknown);
        assert_eq!(n.check("日本語", t0), NonceState::Unknown);
        let other = Nonces::new([8; 32], t0, Duration::from_secs(300));
        assert_eq!(other.check(&a, t0), NonceState::Unknown, "another secret");
    }

    #[test]
    fn nc_must_grow_per_nonce_until_it_expires() {
        let t0 = Instant::now();
        let mut n = Nonces::new([1; 32], t0, Duration::from_secs(60));
        let a = n.mint(t0);
        assert!(n.accept_nc(&a, 1, t0));
        assert!(!n.accept_nc(&a, 1, t0), "replay");
        assert!(n.accept_nc(&a, 2, t0));
        assert_eq!(n.next_expiry(), Some(t0 + Duration::from_secs(60)));
        let b = n.mint(t0);
        n.spend(&b, t0);
        assert!(n.is_spent(&b) && !n.is_spent(&a));
        assert!(!n.accept_nc(&b, 1, t0), "a spent nonce answers nothing");
        n.expire(t0 + Duration::from_secs(61));
        assert_eq!(n.next_expiry(), None);
    }
}
