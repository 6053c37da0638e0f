//! The fixed-budget runner of the stable tests: every seed as is, then `cases`
//! deterministic mutants (of the seeds, and of mutants that were accepted), each run
//! under a time check on a worker thread. A panic or a case over the time limit fails
//! the run, with the input saved under `$CARGO_TARGET_DIR/fuzz-crashes/` and the command
//! that replays it. Knobs: `FUZZ_CASES` (per target), `FUZZ_SEED`, `FUZZ_SECONDS` (wall
//! clock cap per target).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::mutate::Mutator;
use crate::Outcome;

/// How much to run.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Mutants to run after the seeds.
    pub cases: usize,
    /// Stop early (and say so) past this much wall-clock time.
    pub max_time: Duration,
    /// One case running longer than this is a hang.
    pub case_timeout: Duration,
    /// The seed of the mutation sequence.
    pub seed: u64,
}

fn env_num(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

impl Budget {
    /// `cases` mutants, unless the environment says otherwise.
    pub fn from_env(cases: usize) -> Budget {
        Budget {
            cases: env_num("FUZZ_CASES").map_or(cases, |n| n as usize),
            max_time: Duration::from_secs(env_num("FUZZ_SECONDS").unwrap_or(45)),
            case_timeout: Duration::from_secs(20),
            seed: env_num("FUZZ_SEED").unwrap_or(0x5eed_f00d),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    /// Inputs run (seeds and mutants).
    pub cases: usize,
    /// Inputs the target accepted.
    pub accepted: usize,
    pub elapsed: Duration,
    /// The wall-clock cap stopped the run before `cases`.
    pub cut_short: bool,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fuzz {}: {} inputs, {} accepted, {:.1} s{}",
            self.target,
            self.cases,
            self.accepted,
            self.elapsed.as_secs_f64(),
            if self.cut_short {
                " (cut short by the time cap: a busy machine)"
            } else {
                ""
            }
        )
    }
}

/// Where failing inputs are saved.
pub fn crash_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("fuzz-crashes")
}

fn save(target: &str, case: usize, input: &[u8]) -> String {
    let dir = crash_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{target}-{case}.bin"));
    match std::fs::write(&path, input) {
        Ok(()) => format!(
            "input saved as {p}; replay with: FUZZ_TARGET={target} FUZZ_INPUT={p} \
             cargo test --release -p fuzz --test stable -- --ignored replay --nocapture",
            p = path.display()
        ),
        Err(e) => format!("could not save the input to {}: {e}", path.display()),
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".into()
    }
}

struct Shared {
    /// The case running (1-based; 0 before the first).
    case: AtomicUsize,
    /// When it started, in ns since the run started.
    started_ns: AtomicU64,
    /// Its input.
    input: Mutex<Vec<u8>>,
}

/// Runs `target` on `seeds` and `budget.cases` mutants of them. Panics (failing the
/// test) on a panic of the target or a case over the time limit.
pub fn run(
    name: &'static str,
    target: fn(&[u8]) -> Outcome,
    seeds: Vec<Vec<u8>>,
    budget: &Budget,
) -> Report {
    assert!(!seeds.is_empty(), "fuzz {name}: no seeds");
    let shared = Arc::new(Shared {
        case: AtomicUsize::new(0),
        started_ns: AtomicU64::new(0),
        input: Mutex::new(Vec::new()),
    });
    let t0 = Instant::now();
    let (tx, rx) = mpsc::channel::<Result<Report, (usize, Vec<u8>, String)>>();
    let worker = {
        let shared = shared.clone();
        let budget = budget.clone();
        std::thread::Builder::new()
            .name(format!("fuzz-{name}"))
            .stack_size(64 << 20)
            .spawn(move || {
                crate::alloc::set_current(name);
                let mut m = Mutator::new(budget.seed ^ fnv(name));
                // Accepted mutants join the pool mutated from (at most 64 of them).
                let mut pool: Vec<Vec<u8>> = Vec::new();
                let mut accepted = 0;
                let total = seeds.len() + budget.cases;
                let mut ran = 0;
                for i in 0..total {
                    if t0.elapsed() > budget.max_time {
                        break;
                    }
                    let input = if i < seeds.len() {
                        seeds[i].clone()
                    } else {
                        let from_pool = !pool.is_empty() && m.rng().u8(..3) == 0;
                        let base = if from_pool {
                            pool[m.rng().usize(..pool.len())].clone()
                        } else {
                            seeds[m.rng().usize(..seeds.len())].clone()
                        };
                        m.mutant(name, &base, &seeds)
                    };
                    *shared.input.lock().unwrap_or_else(|e| e.into_inner()) = input.clone();
                    shared
                        .started_ns
                        .store(t0.elapsed().as_nanos() as u64, Ordering::SeqCst);
                    shared.case.store(i + 1, Ordering::SeqCst);
                    let refused = crate::alloc::refused();
                    let r = catch_unwind(AssertUnwindSafe(|| target(&input)));
                    if crate::alloc::refused() > refused {
                        let _ = tx.send(Err((
                            i,
                            input,
                            "an allocation over the memory limit was refused (see the line \
                             above): an unbounded allocation"
                                .into(),
                        )));
                        return;
                    }
                    match r {
                        Ok(Outcome::Accepted) => {
                            accepted += 1;
                            if i >= seeds.len() {
                                if pool.len() < 64 {
                                    pool.push(input);
                                } else {
                                    let k = m.rng().usize(..pool.len());
                                    pool[k] = input;
                                }
                            }
                        }
                        Ok(Outcome::Rejected) => {}
                        Err(p) => {
                            let _ = tx.send(Err((i, input, panic_text(&*p))));
                            return;
                        }
                    }
                    ran += 1;
                }
                let _ = tx.send(Ok(Report {
                    target: name,
                    cases: ran,
                    accepted,
                    elapsed: t0.elapsed(),
                    cut_short: ran < total,
                }));
            })
            .expect("spawn the fuzz worker")
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(report)) => {
                let _ = worker.join();
                return report;
            }
            Ok(Err((case, input, msg))) => {
                let _ = worker.join();
                panic!(
                    "fuzz {name}: case {case} ({} bytes) failed: {msg}\n{}",
                    input.len(),
                    save(name, case, &input)
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("fuzz {name}: the worker died without a report")
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let started = Duration::from_nanos(shared.started_ns.load(Ordering::SeqCst));
                let running = t0.elapsed().saturating_sub(started);
                if running > budget.case_timeout {
                    let case = shared.case.load(Ordering::SeqCst);
                    let input = shared
                        .input
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    // The worker is left running: a hang cannot be interrupted.
                    panic!(
                        "fuzz {name}: case {} ({} bytes) still running after {:.0} s: a hang\n{}",
                        case.saturating_sub(1),
                        input.len(),
                        running.as_secs_f64(),
                        save(name, case.saturating_sub(1), &input)
                    );
                }
            }
        }
    }
}

/// FNV-1a of a name: each target gets its own mutation sequence from one seed.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
