//! ACD router benchmark: routing decisions per second with 1,000 agents in 100 queues, and
//! memory per queued call.
//!
//! - `route/idle_agents`: a call arrives, the router picks an agent among the queue's free
//!   members (one decision), the agent answers and the call ends (bookkeeping).
//! - `route/backlog_4000`: every agent busy and 4,000 callers waiting; a call ends, the
//!   freed agent is given the best waiting caller across its queues (one decision), the
//!   agent answers, and a new caller arrives to keep the backlog.
//! - Memory: a counting global allocator measures the bytes still allocated after
//!   10,000 callers wait (no agent logged in), divided by the callers.
//!
//! Run: `cargo bench --bench acd_routing`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use hotline::acd::{
    AcdConfig, AgentAction, AgentConfig, EnqueueRequest, HungUpBy, Input, Instruction,
    OfferOutcome, Output, QueueConfig, Router, Strategy,
};

/// Counts the bytes currently allocated by the process.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `dealloc`; the system allocator handles the move.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const QUEUES: usize = 100;
const AGENTS: usize = 1000;
const QUEUES_PER_AGENT: usize = 5;

/// A fixed pseudo-random sequence (xorshift), so every run routes the same calls.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// 100 queues with the four one-at-a-time strategies in turn; 1,000 agents, each in 5
/// queues with skill levels 1-9, 80 % Mandarin, 10 % Cantonese, 10 % both.
fn config(announce: bool) -> AcdConfig {
    let strategies = [
        Strategy::LongestIdle,
        Strategy::RoundRobin,
        Strategy::FewestCalls,
        Strategy::SkillsBased,
    ];
    let queues = (0..QUEUES)
        .map(|i| QueueConfig {
            name: format!("q{i}"),
            strategy: strategies[i % strategies.len()],
            wrap_up_s: 0,
            announce_period_s: if announce { 30 } else { 0 },
            max_wait_s: announce.then_some(600),
            language_relax_s: Some(60),
            ..QueueConfig::default()
        })
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let agents = (0..AGENTS)
        .map(|i| {
            let languages = match rng.below(10) {
                0 => vec!["yue".to_owned()],
                1 => vec!["cmn".to_owned(), "yue".to_owned()],
                _ => vec!["cmn".to_owned()],
            };
            let skills = (0..QUEUES_PER_AGENT)
                .map(|_| (format!("q{}", rng.below(QUEUES)), 1 + rng.below(9) as u8))
                .collect();
            AgentConfig {
                id: format!("a{i}"),
                uri: Some(format!("sip:a{i}@pbx.example")),
                languages,
                skills,
                ..AgentConfig::default()
            }
        })
        .collect();
    AcdConfig {
        queues,
        agents,
        ..AcdConfig::default()
    }
}

/// A caller for a random queue: 90 % Mandarin, 10 % Cantonese.
fn request(call_id: String, rng: &mut Rng) -> EnqueueRequest {
    EnqueueRequest {
        call_id,
        queue: format!("q{}", rng.below(QUEUES)),
        language: if rng.below(10) == 0 { "yue" } else { "cmn" }.to_owned(),
        intent: None,
        priority: 0,
        caller: "13800000000".to_owned(),
    }
}

/// A router with every agent logged in, answering every offer at once.
struct Load {
    router: Router,
    now: Instant,
    rng: Rng,
    calls: u64,
    connected: VecDeque<String>,
}

impl Load {
    fn new(seed: u64) -> Load {
        let now = Instant::now();
        let mut router = Router::new(&config(false), now).expect("bench config is valid");
        for i in 0..AGENTS {
            router
                .control(now, &format!("a{i}"), AgentAction::Login)
                .expect("trunk agents can log in");
        }
        while router.poll_output().is_some() {}
        Load {
            router,
            now,
            rng: Rng(seed),
            calls: 0,
            connected: VecDeque::new(),
        }
    }

    fn input(&mut self, input: Input) {
        let _ = self.router.handle_input(self.now, input);
        self.answer();
    }

    /// A new caller arrives.
    fn arrive(&mut self) -> String {
        self.calls += 1;
        let call_id = format!("c{}", self.calls);
        let request = request(call_id.clone(), &mut self.rng);
        self.input(Input::Enqueue(request));
        call_id
    }

    /// Answers every offer made since the last call.
    fn answer(&mut self) {
        let mut made = Vec::new();
        while let Some(out) = self.router.poll_output() {
            if let Output::Call {
                call_id,
                instruction: Instruction::Offer { offer, .. },
            } = out
            {
                made.push((call_id, offer));
            }
        }
        for (call_id, offer) in made {
            let answered = Input::OfferOutcome {
                call_id: call_id.clone(),
                offer,
                outcome: OfferOutcome::Answered,
            };
            let _ = self.router.handle_input(self.now, answered);
            while let Some(out) = self.router.poll_output() {
                black_box(out);
            }
            self.connected.push_back(call_id);
        }
    }

    fn end(&mut self, call_id: String) {
        let end = Input::CallEnded {
            call_id,
            hung_up_by: HungUpBy::Agent,
        };
        self.input(end);
    }
}

fn route_with_idle_agents(c: &mut Criterion) {
    let mut load = Load::new(7);
    c.bench_function("route/idle_agents", |b| {
        b.iter(|| {
            let call_id = load.arrive();
            load.connected.clear();
            load.end(call_id);
        })
    });
}

fn route_with_backlog(c: &mut Criterion) {
    let mut load = Load::new(11);
    for _ in 0..AGENTS + 4000 {
        load.arrive();
    }
    let snapshot = load.router.snapshot(load.now);
    let waiting: usize = snapshot.queues.iter().map(|q| q.waiting.len()).sum();
    let free = snapshot.queues.iter().map(|q| q.available).sum::<u32>();
    println!(
        "backlog: {} calls connected, {waiting} callers waiting, {free} free agent memberships",
        load.connected.len()
    );
    c.bench_function("route/backlog_4000", |b| {
        b.iter(|| {
            if let Some(done) = load.connected.pop_front() {
                load.end(done);
            }
            load.arrive();
        })
    });
}

/// Bytes per waiting caller, with and without announcement and maximum-wait timers.
fn memory_per_queued_call() {
    const CALLERS: usize = 10_000;
    for announce in [false, true] {
        let now = Instant::now();
        let mut router = Router::new(&config(announce), now).expect("bench config is valid");
        let mut rng = Rng(3);
        let before = LIVE.load(Ordering::Relaxed);
        for i in 0..CALLERS {
            let input = Input::Enqueue(request(format!("call-{i:08}@10.0.0.1"), &mut rng));
            let _ = router.handle_input(now, input);
            while let Some(out) = router.poll_output() {
                black_box(out);
            }
        }
        let after = LIVE.load(Ordering::Relaxed);
        let per_call = (after - before) as f64 / CALLERS as f64;
        println!(
            "memory per queued call ({} timers): {per_call:.0} bytes ({CALLERS} callers, \
             Call-ID of 22 bytes, caller number of 11)",
            if announce {
                "announcement + max-wait"
            } else {
                "no"
            }
        );
        // Ends the callers so the router's memory is returned before the next measure.
        for i in 0..CALLERS {
            let gone = Input::CallerGone {
                call_id: format!("call-{i:08}@10.0.0.1"),
                by: HungUpBy::Caller,
            };
            let _ = router.handle_input(now + Duration::from_secs(1), gone);
            while router.poll_output().is_some() {}
        }
        black_box(&router);
    }
}

criterion_group!(benches, route_with_idle_agents, route_with_backlog);

fn main() {
    memory_per_queued_call();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
