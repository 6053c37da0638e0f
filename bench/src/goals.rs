//! The goals the issues set for each measured operation, printed beside its row, and a tally
//! of the goals met and missed in a run (issue 12 item 6: "the bench prints each with its
//! goal beside it"; issue 11 item 7 for the network rows).

use std::sync::atomic::{AtomicUsize, Ordering};

/// What a sandbox row must reach.
#[derive(Clone, Copy)]
enum Goal {
    /// At most this many times native's cost.
    Ratio(f64),
    /// At most this much, in the row's own unit (an absolute latency).
    Absolute(f64),
    /// At least this share of native (throughputs and rates, where more is better).
    Share(f64),
}

/// (row name, goal, issue). The names are the sandbox rows' names as printed.
const GOALS: &[(&str, Goal, u32)] = &[
    ("getpid, sandbox, ring", Goal::Absolute(1_000.0), 12),
    ("open+close, sandbox", Goal::Ratio(3.0), 12),
    ("stat, sandbox", Goal::Ratio(3.0), 12),
    ("4 KiB read (pread), sandbox", Goal::Ratio(3.0), 12),
    (
        "4 KiB write then read through a pipe, sandbox",
        Goal::Ratio(5.0),
        12,
    ),
    (
        "futex ping-pong between two threads, sandbox",
        Goal::Ratio(5.0),
        12,
    ),
    (
        "signal to self and back (raise, handler, sigreturn), sandbox",
        Goal::Ratio(5.0),
        12,
    ),
    ("thread create and join, sandbox", Goal::Ratio(5.0), 12),
    (
        "fork+exec+wait of a static do-nothing, sandbox",
        Goal::Ratio(3.0),
        12,
    ),
    (
        "start to exit, do-nothing program, runsc do",
        Goal::Absolute(5_000.0),
        12,
    ),
    ("python3 -c pass, runsc do", Goal::Ratio(1.5), 12),
    // Issue 12 item 5: the ratio is to the same row measured quiet just before.
    (
        "getpid, sandbox, ring, two host spinners",
        Goal::Ratio(3.0),
        12,
    ),
    (
        "python3 -c pass, runsc do, two host spinners",
        Goal::Ratio(2.0),
        12,
    ),
    ("find /usr -type f | wc -l, runsc do", Goal::Ratio(3.0), 12),
    ("bash pipeline script, runsc do", Goal::Ratio(3.0), 12),
    ("tar czf of /usr/share/doc, runsc do", Goal::Ratio(1.3), 12),
    (
        "TCP loopback, 1 MiB writes, sandbox (MiB/s)",
        Goal::Share(0.5),
        11,
    ),
    (
        "TCP 64-byte request/response, sandbox",
        Goal::Ratio(4.0),
        11,
    ),
];

static MET: AtomicUsize = AtomicUsize::new(0);
static MISSED: AtomicUsize = AtomicUsize::new(0);

/// The goal column for a row (`value` in its unit, `ratio` to native), counted in the tally;
/// empty for a row without a goal.
pub fn column(name: &str, value: f64, ratio: Option<f64>) -> String {
    let Some(&(_, goal, issue)) = GOALS.iter().find(|(n, _, _)| *n == name) else {
        return String::new();
    };
    let (text, met) = match (goal, ratio) {
        (Goal::Ratio(r), Some(x)) => (format!("<= {r}x"), x <= r),
        (Goal::Share(s), Some(x)) => (format!(">= {s} of native"), x >= s),
        (Goal::Absolute(a), _) => (format!("<= {a}"), value <= a),
        (_, None) => return String::new(),
    };
    let verdict = if met {
        MET.fetch_add(1, Ordering::Relaxed);
        "met"
    } else {
        MISSED.fetch_add(1, Ordering::Relaxed);
        "MISSED"
    };
    format!("  goal {text} (#{issue}): {verdict}")
}

/// Prints how many goals this run met and missed.
pub fn summary() {
    let (met, missed) = (MET.load(Ordering::Relaxed), MISSED.load(Ordering::Relaxed));
    if met + missed > 0 {
        println!("goals: {met} met, {missed} missed (of the rows measured in this run)");
    }
}
