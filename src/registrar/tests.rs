//! REGISTER flows in virtual time, with SIP text parsed by rsip and a test phone that
//! computes its digest answers on its own (the digest functions are checked against the
//! RFC vectors in `digest`).

use std::path::Path;
use std::time::{Duration, Instant};

use rsip::prelude::*;

use super::test_phone::{Phone, URI, challenge_in};
use super::*;

fn registrar(now: Instant) -> Registrar {
    let credentials = vec![
        ("1001".to_owned(), Secret::new("right")),
        ("1002".to_owned(), Secret::new("other")),
    ];
    Registrar::new(&RegistrarConfig::default(), credentials, [42; 32], now).expect("valid")
}

const CONTACT: &str = "Contact: <sip:1001@127.0.0.1:5070>\r\n";

/// The nonce of the challenge for `algorithm`, and whether it says stale.
fn challenge(reply: &Reply, algorithm: &str) -> (String, bool) {
    assert_eq!(reply.status, rsip::StatusCode::Unauthorized, "{reply:?}");
    challenge_in(&reply.headers, algorithm)
}

fn contacts(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .iter()
        .filter_map(|h| match h {
            rsip::Header::Contact(c) => Some(c.value().to_owned()),
            _ => None,
        })
        .collect()
}

#[test]
fn challenge_then_register_with_sha256_or_md5() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut phone = Phone::new("1001", "right");
    let first = r.handle_request(t0, phone.source, &phone.request(CONTACT, None));
    assert_eq!(first.verdict, Verdict::Challenged);
    let algorithms: Vec<bool> = first
        .headers
        .iter()
        .map(|h| h.to_string().contains("algorithm=SHA-256"))
        .collect();
    assert_eq!(algorithms, [true, false], "SHA-256 offered first, then MD5");
    assert_eq!(r.poll_change(), None);

    let (nonce, stale) = challenge(&first, "SHA-256");
    assert!(!stale);
    let auth = phone.answer(&nonce, "SHA-256", "1001");
    let ok = r.handle_request(t0, phone.source, &phone.request(CONTACT, Some(&auth)));
    assert_eq!(ok.status, rsip::StatusCode::OK, "{ok:?}");
    assert_eq!(contacts(&ok), ["<sip:1001@127.0.0.1:5070>;expires=3600"]);
    assert_eq!(
        r.poll_change(),
        Some(BindingChange {
            user: "1001".into(),
            contact: Some("sip:1001@127.0.0.1:5070".into())
        })
    );
    // The used nonce is remembered until its lifetime ends.
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(300)));

    let mut md5_phone = Phone::new("1002", "other");
    let contact = "Contact: <sip:1002@127.0.0.1:5072>\r\n";
    let own = r.handle_request(t0, md5_phone.source, &md5_phone.request(contact, None));
    let (nonce, _) = challenge(&own, "MD5");
    let auth = md5_phone.answer(&nonce, "MD5", "1002");
    let ok = r.handle_request(
        t0,
        md5_phone.source,
        &md5_phone.request(contact, Some(&auth)),
    );
    assert_eq!(
        ok.verdict,
        Verdict::Registered {
            user: "1002".into(),
            algorithm: Algorithm::Md5,
        }
    );
    assert_eq!(r.counters().registered, 2);
    assert_eq!(r.counters().challenges, 2);
}

#[test]
fn wrong_password_and_unknown_user_get_403_and_never_register() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut liar = Phone::new("1001", "wrong").from("10.0.0.1");
    let (nonce, _) = challenge(
        &r.handle_request(t0, liar.source, &liar.request(CONTACT, None)),
        "MD5",
    );
    let auth = liar.answer(&nonce, "MD5", "1001");
    let reply = r.handle_request(t0, liar.source, &liar.request(CONTACT, Some(&auth)));
    assert_eq!(reply.status, rsip::StatusCode::Forbidden);
    assert_eq!(
        reply.verdict,
        Verdict::WrongCredentials {
            user: "1001".into()
        }
    );

    let mut stranger = Phone::new("9999", "guess").from("10.0.0.2");
    let contact = "Contact: <sip:9999@127.0.0.1:5099>\r\n";
    let (nonce, _) = challenge(
        &r.handle_request(t0, stranger.source, &stranger.request(contact, None)),
        "MD5",
    );
    let auth = stranger.answer(&nonce, "MD5", "9999");
    let reply = r.handle_request(t0, stranger.source, &stranger.request(contact, Some(&auth)));
    assert_eq!(reply.status, rsip::StatusCode::Forbidden);
    assert_eq!(
        reply.verdict,
        Verdict::UnknownUser {
            user: "9999".into()
        }
    );

    // Right credentials of 1002 cannot register 1001's address.
    let mut thief = Phone::new("1001", "other").from("10.0.0.3");
    let (nonce, _) = challenge(
        &r.handle_request(t0, thief.source, &thief.request(CONTACT, None)),
        "MD5",
    );
    let auth = thief.answer(&nonce, "MD5", "1002");
    let reply = r.handle_request(t0, thief.source, &thief.request(CONTACT, Some(&auth)));
    assert_eq!(reply.status, rsip::StatusCode::Forbidden);

    assert_eq!(r.poll_change(), None);
    let c = r.counters();
    assert_eq!(
        (c.wrong_credentials, c.unknown_users, c.registered),
        (2, 1, 0)
    );
}

#[test]
fn a_replayed_nonce_count_is_refused_and_counted() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut phone = Phone::new("1001", "right");
    let (nonce, _) = challenge(
        &r.handle_request(t0, phone.source, &phone.request(CONTACT, None)),
        "SHA-256",
    );
    let auth = phone.answer(&nonce, "SHA-256", "1001");
    let first = r.handle_request(t0, phone.source, &phone.request(CONTACT, Some(&auth)));
    assert_eq!(first.status, rsip::StatusCode::OK);
    // The same Authorization again (an eavesdropper's copy): nc did not grow.
    let replay = r.handle_request(t0, phone.source, &phone.request(CONTACT, Some(&auth)));
    assert_eq!(
        replay.verdict,
        Verdict::Replay {
            user: "1001".into()
        }
    );
    assert_eq!(replay.status, rsip::StatusCode::Unauthorized);
    assert_eq!(r.counters().replays, 1);
    // The phone itself goes on with the next nonce count.
    let next = phone.answer(&nonce, "SHA-256", "1001");
    let again = r.handle_request(t0, phone.source, &phone.request(CONTACT, Some(&next)));
    assert_eq!(again.status, rsip::StatusCode::OK);
}

#[test]
fn an_expired_nonce_is_stale_and_a_foreign_one_is_challenged() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut phone = Phone::new("1001", "right");
    let (nonce, _) = challenge(
        &r.handle_request(t0, phone.source, &phone.request(CONTACT, None)),
        "SHA-256",
    );
    let late = t0 + Duration::from_secs(301);
    let auth = phone.answer(&nonce, "SHA-256", "1001");
    let reply = r.handle_request(late, phone.source, &phone.request(CONTACT, Some(&auth)));
    assert_eq!(
        reply.verdict,
        Verdict::Stale {
            user: "1001".into()
        }
    );
    // A wrong password on an expired nonce gets the same answer: the stale nonce tells
    // nothing about the password.
    let mut guesser = Phone::new("1001", "wrong").from("10.0.0.9");
    let auth = guesser.answer(&nonce, "SHA-256", "1001");
    let guess = r.handle_request(late, guesser.source, &guesser.request(CONTACT, Some(&auth)));
    assert_eq!(guess.status, reply.status);
    assert_eq!(
        guess.verdict,
        Verdict::Stale {
            user: "1001".into()
        }
    );
    let (fresh, stale) = challenge(&reply, "SHA-256");
    assert!(stale);
    assert_ne!(fresh, nonce);
    let auth = phone.answer(&fresh, "SHA-256", "1001");
    let ok = r.handle_request(late, phone.source, &phone.request(CONTACT, Some(&auth)));
    assert_eq!(ok.status, rsip::StatusCode::OK);

    // A nonce another registrar (or a previous run) minted is simply challenged.
    let mut before_restart = registrar(t0);
    let mut other = Phone::new("1001", "right");
    let (foreign, _) = challenge(
        &before_restart.handle_request(t0, other.source, &other.request(CONTACT, None)),
        "MD5",
    );
    let mut r2 = Registrar::new(
        &RegistrarConfig::default(),
        vec![("1001".to_owned(), Secret::new("right"))],
        [43; 32],
        t0,
    )
    .expect("valid");
    let auth = other.answer(&foreign, "MD5", "1001");
    let reply = r2.handle_request(t0, other.source, &other.request(CONTACT, Some(&auth)));
    assert_eq!(reply.verdict, Verdict::Challenged);
    assert_eq!(r.counters().stale, 2);
}

/// Registers `phone` with `headers` in two steps (challenge, answer) and returns the reply.
fn register(r: &mut Registrar, now: Instant, phone: &mut Phone, headers: &str) -> Reply {
    let (nonce, _) = challenge(
        &r.handle_request(now, phone.source, &phone.request(headers, None)),
        "MD5",
    );
    let auth = phone.answer(&nonce, "MD5", phone.user);
    r.handle_request(now, phone.source, &phone.request(headers, Some(&auth)))
}

#[test]
fn bindings_expire_and_the_acd_hears_of_it() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut phone = Phone::new("1001", "right");
    let reply = register(
        &mut r,
        t0,
        &mut phone,
        &format!("{CONTACT}Expires: 120\r\n"),
    );
    assert_eq!(contacts(&reply), ["<sip:1001@127.0.0.1:5070>;expires=120"]);
    assert!(r.poll_change().is_some());
    r.handle_timeout(t0 + Duration::from_secs(119));
    assert_eq!(r.poll_change(), None);
    r.handle_timeout(t0 + Duration::from_secs(120));
    assert_eq!(
        r.poll_change(),
        Some(BindingChange {
            user: "1001".into(),
            contact: None
        })
    );
}

#[test]
fn refresh_unregister_and_limits() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut phone = Phone::new("1001", "right");
    let brief = register(&mut r, t0, &mut phone, &format!("{CONTACT}Expires: 30\r\n"));
    assert_eq!(brief.status, rsip::StatusCode::IntervalTooBrief);
    assert_eq!(brief.headers[0].to_string(), "Min-Expires: 60");
    assert_eq!(r.poll_change(), None);

    let long = "Contact: <sip:1001@127.0.0.1:5070>;expires=99999\r\n";
    let reply = register(&mut r, t0, &mut phone, long);
    assert_eq!(contacts(&reply), ["<sip:1001@127.0.0.1:5070>;expires=3600"]);
    assert!(r.poll_change().is_some());

    // A second phone for the same user becomes the one to call; a refresh of the first
    // makes it the newest again.
    let later = t0 + Duration::from_secs(10);
    let desk = "Contact: <sip:1001@127.0.0.1:5071>\r\n";
    register(&mut r, later, &mut phone, desk);
    assert_eq!(
        r.poll_change().and_then(|c| c.contact),
        Some("sip:1001@127.0.0.1:5071".into())
    );
    let query = register(&mut r, later, &mut phone, "");
    assert_eq!(contacts(&query).len(), 2);

    let gone = register(&mut r, later, &mut phone, "Contact: *\r\nExpires: 0\r\n");
    assert_eq!(gone.status, rsip::StatusCode::OK);
    assert!(contacts(&gone).is_empty());
    assert_eq!(r.poll_change().map(|c| c.contact), Some(None));
}

#[test]
fn unregister_one_contact_and_out_of_order_requests() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut phone = Phone::new("1001", "right");
    register(&mut r, t0, &mut phone, CONTACT);
    r.poll_change();
    // The same Call-ID with an older CSeq must not touch the binding.
    let (nonce, _) = challenge(
        &r.handle_request(t0, phone.source, &phone.request(CONTACT, None)),
        "MD5",
    );
    let auth = phone.answer(&nonce, "MD5", "1001");
    phone.cseq -= 3;
    let stale_order = r.handle_request(
        t0,
        phone.source,
        &phone.request(
            "Contact: <sip:1001@127.0.0.1:5070>;expires=0\r\n",
            Some(&auth),
        ),
    );
    assert_eq!(
        stale_order.verdict,
        Verdict::OutOfOrder {
            user: "1001".into()
        }
    );
    phone.cseq += 10;
    let bye = register(&mut r, t0, &mut phone, &format!("{CONTACT}Expires: 0\r\n"));
    assert_eq!(bye.status, rsip::StatusCode::OK);
    assert_eq!(r.poll_change().map(|c| c.contact), Some(None));
}

#[test]
fn malformed_or_misdirected_requests() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut phone = Phone::new("1001", "right");
    let (nonce, _) = challenge(
        &r.handle_request(t0, phone.source, &phone.request(CONTACT, None)),
        "MD5",
    );
    let auth = phone.answer(&nonce, "MD5", "1001");
    let elsewhere = auth.replace(URI, "sip:10.0.0.9");
    let reply = r.handle_request(t0, phone.source, &phone.request(CONTACT, Some(&elsewhere)));
    assert_eq!(reply.status, rsip::StatusCode::BadRequest);
    let no_qop = auth.replace(", qop=auth", "");
    let reply = r.handle_request(t0, phone.source, &phone.request(CONTACT, Some(&no_qop)));
    assert_eq!(reply.status, rsip::StatusCode::BadRequest);
    let options = rsip::Request::try_from(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKo\r\n\
         From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: o\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
            .as_bytes(),
    )
    .expect("valid SIP");
    let reply = r.handle_request(t0, std::net::Ipv4Addr::LOCALHOST.into(), &options);
    assert_eq!(reply.status, rsip::StatusCode::MethodNotAllowed);
    assert_eq!(r.counters().bad_requests, 2);
}

#[test]
fn config_problems_point_at_their_keys() {
    let text = "[registrar]\nrealm = \"\"\nmin_expires_s = 600\nmax_expires_s = 60\n\
                allow = [\"10.0.0.0/8\", \"ten\"]\n";
    let config = crate::config::Config::parse(Path::new("h.toml"), text)
        .expect("valid TOML")
        .registrar;
    let lines: Vec<String> = config
        .diagnostics(Path::new("h.toml"), text)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            "h.toml:2:1: the realm must not be empty",
            "h.toml:4:1: max_expires_s is below min_expires_s",
            "h.toml:5:24: \"ten\" is not an address prefix like 10.0.0.0/8 or ::1/128"
        ]
    );
    let err = Registrar::new(&config, Vec::new(), [0; 32], Instant::now()).err();
    assert_eq!(err.map(|e| e.problems.len()), Some(3));
}

#[test]
fn a_wrong_answer_spends_its_nonce_and_guessing_is_slowed_then_locked_out() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut guesser = Phone::new("1001", "guess-0").from("203.0.113.5");
    let (nonce, _) = challenge(
        &r.handle_request(t0, guesser.source, &guesser.request(CONTACT, None)),
        "MD5",
    );
    let auth = guesser.answer(&nonce, "MD5", "1001");
    let first = r.handle_request(t0, guesser.source, &guesser.request(CONTACT, Some(&auth)));
    assert_eq!(first.status, rsip::StatusCode::Forbidden);
    // The same nonce again, even with the right password: a new challenge, unchecked.
    let mut right = Phone::new("1001", "right").from("203.0.113.5");
    right.nc = 5;
    let auth = right.answer(&nonce, "MD5", "1001");
    let again = r.handle_request(t0, right.source, &right.request(CONTACT, Some(&auth)));
    assert_eq!(again.status, rsip::StatusCode::Unauthorized);
    assert_eq!(
        again.verdict,
        Verdict::Replay {
            user: "1001".into()
        }
    );

    // Guesses as fast as the guesser can: only one per growing wait is checked, then
    // none for the lockout.
    let mut checked = 1;
    let mut now = t0;
    for _ in 0..2000 {
        now += Duration::from_millis(50);
        let (nonce, _) = challenge(
            &r.handle_request(now, guesser.source, &guesser.request(CONTACT, None)),
            "MD5",
        );
        let auth = guesser.answer(&nonce, "MD5", "1001");
        let reply = r.handle_request(now, guesser.source, &guesser.request(CONTACT, Some(&auth)));
        assert_eq!(reply.status, rsip::StatusCode::Forbidden);
        if matches!(reply.verdict, Verdict::WrongCredentials { .. }) {
            checked += 1;
        }
    }
    assert_eq!(
        checked, 5,
        "max_failures (5) answers checked in 100 s of guessing"
    );
    let locked: Vec<Lockout> = std::iter::from_fn(|| r.poll_lockout()).collect();
    assert_eq!(locked.len(), 2, "the user and the source: {locked:?}");
    assert!(r.counters().held > 1900);

    // Even the right password from the locked-out source is not checked.
    let mut right = Phone::new("1001", "right").from("203.0.113.5");
    let reply = register(&mut r, now, &mut right, CONTACT);
    assert_eq!(
        reply.verdict,
        Verdict::Held {
            user: "1001".into(),
            by: Held::Source
        }
    );
    assert_eq!(r.poll_change(), None);
}

#[test]
fn the_agents_own_phone_registers_while_an_attacker_is_locked_out() {
    let t0 = Instant::now();
    let mut r = registrar(t0);
    let mut phone = Phone::new("1001", "right").from("192.168.1.20");
    assert_eq!(
        register(&mut r, t0, &mut phone, CONTACT).status,
        rsip::StatusCode::OK
    );
    let mut attacker = Phone::new("1001", "guess").from("198.51.100.7");
    let mut now = t0;
    for _ in 0..5 {
        now += Duration::from_secs(20);
        register(&mut r, now, &mut attacker, CONTACT);
    }
    assert_eq!(r.counters().wrong_credentials, 5);
    // The user is locked out for anyone else, but not for its own phone's address.
    let mut other = Phone::new("1001", "right").from("198.51.100.8");
    let held = register(&mut r, now, &mut other, CONTACT);
    assert_eq!(
        held.verdict,
        Verdict::Held {
            user: "1001".into(),
            by: Held::User
        }
    );
    let refresh = register(&mut r, now, &mut phone, CONTACT);
    assert_eq!(refresh.status, rsip::StatusCode::OK, "{refresh:?}");
}

#[test]
fn phones_outside_the_allow_list_are_refused_unchallenged() {
    let t0 = Instant::now();
    let config = RegistrarConfig {
        allow: vec!["192.168.0.0/16".into()],
        ..RegistrarConfig::default()
    };
    let credentials = vec![("1001".to_owned(), Secret::new("right"))];
    let mut r = Registrar::new(&config, credentials, [42; 32], t0).expect("valid");
    let mut outside = Phone::new("1001", "right").from("10.1.2.3");
    let reply = r.handle_request(t0, outside.source, &outside.request(CONTACT, None));
    assert_eq!(reply.status, rsip::StatusCode::Forbidden);
    assert_eq!(reply.verdict, Verdict::SourceNotAllowed);
    let mut inside = Phone::new("1001", "right").from("192.168.7.9");
    assert_eq!(
        register(&mut r, t0, &mut inside, CONTACT).status,
        rsip::StatusCode::OK
    );
}
