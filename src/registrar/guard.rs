//! Password-guessing defence for the registrar, sans-IO. Wrong answers are counted per user
//! and per source address; after each one that user and that source must wait before
//! their next answer is even checked (1 s, doubling), and after `max_failures` in a row
//! they are locked out for `lockout`: requests are refused without looking at the
//! password. A phone that has registered a user from an address keeps registering from
//! it while that user is locked out, so an attacker elsewhere cannot shut out the agent's
//! own phone (the source lockout still stops the attacker). A quiet hour forgets the
//! count. Owns only these counts; it never sees a password.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The wait after the first wrong answer; it doubles with each further one.
const FIRST_DELAY: Duration = Duration::from_secs(1);
/// A user or source with no wrong answer for this long starts again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// How often counts are swept for forgetting: the endpoint asks for the next timeout on
/// every turn of its loop, so it must not scan every tracked user and source to answer.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Tracked users and sources (each map): beyond this, the stalest record makes room.
const MAX_TRACKED: usize = 65_536;
/// Addresses remembered per user as its phones'.
const MAX_KNOWN_SOURCES: usize = 8;

/// Why a request was refused unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// The user had wrong answers (waiting, or locked out).
    User,
    /// The source address had wrong answers.
    Source,
}

/// A user or a source reached `max_failures`: what the edge logs as a WARN and counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lockout {
    pub held: Held,
    /// The user name or the address.
    pub who: String,
    pub failures: u32,
    pub until: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// Nothing from this user or source is checked before then.
    until: Instant,
    last: Instant,
}

pub struct Guard {
    max_failures: u32,
    lockout: Duration,
    users: HashMap<String, Failures>,
    sources: HashMap<IpAddr, Failures>,
    /// The addresses each user registered from.
    known: HashMap<String, HashSet<IpAddr>>,
    lockouts: VecDeque<Lockout>,
    /// The next sweep, while there are counts to forget.
    sweep_at: Option<Instant>,
}

impl Guard {
    pub fn new(max_failures: u32, lockout: Duration) -> Guard {
        Guard {
            max_failures: max_failures.max(1),
            lockout,
            users: HashMap::new(),
            sources: HashMap::new(),
            known: HashMap::new(),
            lockouts: VecDeque::new(),
            sweep_at: None,
        }
    }

    /// Whether an answer from `source` for `user` may be checked now.
    pub fn check(&self, now: Instant, user: &str, source: IpAddr) -> Result<(), Held> {
        if self.sources.get(&source).is_some_and(|f| f.until > now) {
            return Err(Held::Source);
        }
        let own_phone = self.known.get(user).is_some_and(|s| s.contains(&source));
        if !own_phone && self.users.get(user).is_some_and(|f| f.until > now) {
            return Err(Held::User);
        }
        Ok(())
    }

    /// A wrong answer from `source` for `user` (an unknown user name counts as well).
    pub fn failed(&mut self, now: Instant, user: &str, source: IpAddr) {
        self.sweep_at.get_or_insert(now + SWEEP_EVERY);
        let (max, lockout) = (self.max_failures, self.lockout);
        if let Some(l) = count(&mut self.users, user.to_owned(), now, max, lockout) {
            self.lockouts.push_back(Lockout {
                held: Held::User,
                who: user.to_owned(),
                failures: l.0,
                until: l.1,
            });
        }
        if let Some(l) = count(&mut self.sources, source, now, max, lockout) {
            self.lockouts.push_back(Lockout {
                held: Held::Source,
                who: source.to_string(),
                failures: l.0,
                until: l.1,
            });
        }
    }

    /// The right answer: the user and the source start again, and the source is the
    /// user's phone from now on.
    pub fn succeeded(&mut self, user: &str, source: IpAddr) {
        self.users.remove(user);
        self.sources.remove(&source);
        if !self.known.contains_key(user) && self.known.len() >= MAX_TRACKED {
            return;
        }
        let known = self.known.entry(user.to_owned()).or_default();
        if known.len() >= MAX_KNOWN_SOURCES {
            known.clear();
        }
        known.insert(source);
    }

    /// Forgets counts that have been quiet for `FORGET_AFTER` (up to `SWEEP_EVERY` late).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.sweep_at.is_none_or(|at| at > now) {
            return;
        }
        let keep = |f: &Failures| now.saturating_duration_since(f.last) < FORGET_AFTER;
        self.users.retain(|_, f| keep(f));
        self.sources.retain(|_, f| keep(f));
        let counting = !self.users.is_empty() || !self.sources.is_empty();
        self.sweep_at = counting.then_some(now + SWEEP_EVERY);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sweep_at
    }

    pub fn poll_lockout(&mut self) -> Option<Lockout> {
        self.lockouts.pop_front()
    }
}

/// Counts one failure of `key`; returns (failures, until) when it has just been locked out.
fn count<K: Hash + Eq + Clone>(
    map: &mut HashMap<K, Failures>,
    key: K,
    now: Instant,
    max: u32,
    lockout: Duration,
) -> Option<(u32, Instant)> {
    if !map.contains_key(&key) && map.len() >= MAX_TRACKED {
        let stalest = map
            .iter()
            .min_by_key(|(_, f)| f.last)
            .map(|(k, _)| k.clone());
        if let Some(k) = stalest {
            map.remove(&k);
        }
    }
    let f = map.entry(key).or_insert(Failures {
        count: 0,
        until: now,
        last: now,
    });
    f.count = f.count.saturating_add(1);
    f.last = now;
    if f.count >= max {
        f.until = now + lockout;
        return (f.count == max).then_some((f.count, f.until));
    }
    f.until = now + FIRST_DELAY * 2u32.saturating_pow(f.count - 1);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn waits_grow_then_lock_out_with_one_report() {
        let t = Instant::now();
        let mut g = Guard::new(4, 300 * S);
        let attacker = ip("10.0.0.66");
        g.failed(t, "1001", attacker);
        assert_eq!(g.check(t, "1001", attacker), Err(Held::Source));
        assert_eq!(g.check(t, "1001", ip("10.0.0.7")), Err(Held::User));
        assert_eq!(g.check(t + S, "1001", attacker), Ok(()));
        g.failed(t + S, "1001", attacker);
        assert_eq!(g.check(t + 2 * S, "1001", attacker), Err(Held::Source));
        assert_eq!(
            g.check(t + 3 * S, "1001", attacker),
            Ok(()),
            "2 s after the 2nd"
        );
        g.failed(t + 3 * S, "1001", attacker);
        assert_eq!(
            g.check(t + 7 * S, "1001", attacker),
            Ok(()),
            "4 s after the 3rd"
        );
        assert_eq!(g.poll_lockout(), None);
        g.failed(t + 7 * S, "1001", attacker);
        let locked = std::iter::from_fn(|| g.poll_lockout()).collect::<Vec<_>>();
        assert_eq!(locked.len(), 2, "the user and the source, once each");
        assert_eq!(locked[0].held, Held::User);
        assert_eq!(locked[1].who, "10.0.0.66");
        assert_eq!(locked[1].until, t + 307 * S);
        assert_eq!(g.check(t + 306 * S, "1001", attacker), Err(Held::Source));
        assert_eq!(g.check(t + 307 * S, "1001", attacker), Ok(()));
        g.failed(t + 307 * S, "1001", attacker);
        assert_eq!(g.poll_lockout(), None, "reported once per run of failures");
    }

    #[test]
    fn the_users_own_phone_is_not_locked_out_by_an_attacker() {
        let t = Instant::now();
        let mut g = Guard::new(3, 300 * S);
        let phone = ip("192.168.1.20");
        g.succeeded("1001", phone);
        for i in 0..3 {
            g.failed(t + i * 10 * S, "1001", ip("203.0.113.9"));
        }
        assert_eq!(
            g.check(t + 30 * S, "1001", ip("203.0.113.9")),
            Err(Held::Source)
        );
        assert_eq!(
            g.check(t + 30 * S, "1001", ip("203.0.113.10")),
            Err(Held::User)
        );
        assert_eq!(g.check(t + 30 * S, "1001", phone), Ok(()));
        assert_eq!(g.check(t + 30 * S, "1002", ip("192.168.1.21")), Ok(()));
    }

    #[test]
    fn success_resets_and_a_quiet_hour_forgets() {
        let t = Instant::now();
        let mut g = Guard::new(3, 300 * S);
        let phone = ip("10.1.1.1");
        g.failed(t, "1001", phone);
        g.failed(t + S, "1001", phone);
        g.succeeded("1001", phone);
        g.failed(t + 10 * S, "1001", phone);
        assert_eq!(
            g.check(t + 11 * S, "1001", phone),
            Ok(()),
            "counting from one again"
        );

        g.failed(t + 11 * S, "1002", ip("10.1.1.2"));
        assert_eq!(
            g.poll_timeout(),
            Some(t + SWEEP_EVERY),
            "a sweep, not a scan"
        );
        g.handle_timeout(t + SWEEP_EVERY);
        assert_eq!(
            g.check(t + SWEEP_EVERY, "1001", phone),
            Ok(()),
            "not forgotten yet, but nothing holds it"
        );
        assert_eq!(
            g.poll_timeout(),
            Some(t + 2 * SWEEP_EVERY),
            "still counting"
        );
        g.handle_timeout(t + 11 * S + FORGET_AFTER);
        assert_eq!(g.poll_timeout(), None, "a quiet hour forgot both");
        g.failed(t + 12 * S + FORGET_AFTER, "1002", ip("10.1.1.2"));
        assert_eq!(
            g.check(t + 13 * S + FORGET_AFTER, "1002", ip("10.1.1.2")),
            Ok(()),
            "a first failure again: one second"
        );
    }
}
