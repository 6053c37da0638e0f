//! The sandbox on a busy host (issue 12 item 5): a getpid loop and `python3 -c pass` under
//! `runsc do`, quiet and then with two host processes spinning (one per core of the
//! machines we run on), each loaded figure as a ratio to its quiet one. The goals:
//! getpid within 3x of quiet, python within 2x.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use platform::SyscallPath;

use crate::{median, real, row, time_run, Bench};

/// Host processes that spin until dropped.
struct Spinners(Vec<Child>);

impl Spinners {
    fn start(n: usize) -> anyhow::Result<Self> {
        let mut children = Vec::with_capacity(n);
        for _ in 0..n {
            children.push(
                Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()?,
            );
        }
        Ok(Spinners(children))
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What is measured: getpid per call (ns) and python's start to exit (us).
fn measure(b: &Bench, python: Option<&Path>, runs: usize) -> anyhow::Result<(f64, Option<f64>)> {
    let n = b.iterations.to_string();
    let getpid =
        b.per_call(|| b.sandboxed(SyscallPath::Ring, &b.programs.syscall_loop, &["getpid", &n]))?;
    let python = match python {
        Some(p) => {
            let samples = (0..runs)
                .map(|_| {
                    time_run(
                        b.sandboxed(SyscallPath::Ring, &p.to_path_buf(), &["-c", "pass"])
                            .stdout(Stdio::null()),
                    )
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Some(median(samples))
        }
        None => None,
    };
    Ok((getpid, python))
}

pub fn run(b: &Bench, quick: bool) -> anyhow::Result<()> {
    let runs = if quick { 5 } else { 9 };
    let python = real::python().filter(|p| p.exists());
    if python.is_none() {
        println!("*** SKIPPED: python3 under load (no /usr/bin/python3 on this host)");
    }
    let quiet = measure(b, python, runs)?;
    let loaded = {
        let _spinners = Spinners::start(2)?;
        measure(b, python, runs)?
    };
    row(
        "getpid, sandbox, ring, two host spinners",
        loaded.0,
        "ns",
        Some(quiet.0),
    );
    if let (Some(q), Some(l)) = (quiet.1, loaded.1) {
        row(
            "python3 -c pass, runsc do, two host spinners",
            l,
            "us",
            Some(q),
        );
    }
    println!("  (ratios of the two rows above: to the same figure measured quiet just before)");
    Ok(())
}
