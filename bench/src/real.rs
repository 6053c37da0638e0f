//! Real programs start to exit, as a new user would try them (issue 12's goals): Python's
//! start-up, a file-tree walk, a shell pipeline script (process creation and pipes), and a
//! compressed archive (file reads and CPU). Each runs natively and under `runsc do` in the
//! same run; `runsc do` sees the host's root, so both read the same files.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{median, row, time_run, Bench};

/// A bash script of short pipelines: each line forks and execs a few programs joined by pipes.
const PIPELINE_SCRIPT: &str = "for i in $(seq 1 20); do \
     seq 1 2000 | sort -rn | head -n 1 >/dev/null; \
     printf '%s\\n' a b c | tr a-z A-Z | wc -l >/dev/null; \
     done";

/// (row name without the suffix, program, arguments, what must exist on the host)
const PROGRAMS: &[(&str, &str, &[&str], &str)] = &[
    (
        "python3 -c pass",
        "/usr/bin/python3",
        &["-c", "pass"],
        "/usr/bin/python3",
    ),
    (
        "find /usr -type f | wc -l",
        "/bin/sh",
        &["-c", "find /usr -type f | wc -l"],
        "/usr/bin/find",
    ),
    (
        "bash pipeline script",
        "/bin/bash",
        &["-c", PIPELINE_SCRIPT],
        "/bin/bash",
    ),
    (
        "tar czf of /usr/share/doc",
        "/bin/sh",
        // GNU tar skips reading the files when the archive is /dev/null itself; a pipe
        // makes it do the work.
        &["-c", "tar czf - /usr/share/doc 2>/dev/null | wc -c"],
        "/usr/share/doc",
    ),
];

/// The python that `python3 -c pass` runs, if this host has one.
pub fn python() -> Option<&'static Path> {
    PROGRAMS
        .iter()
        .find(|(name, ..)| name.starts_with("python3"))
        .map(|&(_, program, ..)| Path::new(program))
}

pub fn run(b: &Bench, quick: bool) -> anyhow::Result<()> {
    let runs = if quick { 3 } else { 7 };
    for &(name, program, args, needs) in PROGRAMS {
        if !Path::new(needs).exists() {
            println!("*** SKIPPED: {name} (no {needs} on this host)");
            continue;
        }
        let native = timed(runs, || {
            let mut c = Command::new(program);
            c.args(args);
            c
        })?;
        let sandbox = timed(runs, || {
            let mut c = Command::new(&b.runsc);
            c.arg("do").arg("--").arg(program).args(args);
            c
        })?;
        row(&format!("{name}, native"), native, "us", Some(native));
        row(&format!("{name}, runsc do"), sandbox, "us", Some(native));
    }
    Ok(())
}

/// Median wall time of `runs` runs, output discarded.
fn timed(runs: usize, make: impl Fn() -> Command) -> anyhow::Result<f64> {
    let samples = (0..runs)
        .map(|_| time_run(make().stdout(Stdio::null())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(median(samples))
}
