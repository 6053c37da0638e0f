//! `bench --docker`: `docker run --rm IMG true` with runc and with runsc, medians and their
//! ratio measured in the same run (issue 10, item 8: the goal is runsc within 1.5x of runc),
//! and the memory an idle `sleep` container takes under each. The Docker side is
//! `bench/docker-run.sh` (a private dockerd); without Docker (or root) it says SKIPPED,
//! which this prints loudly.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::{median, row};

/// Values of the `KIND RUNTIME N` lines of `out` for `runtime`.
fn values(out: &str, kind: &str, runtime: &str) -> Vec<f64> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(kind) && w.next() == Some(runtime))
                .then(|| w.next()?.parse().ok())
                .flatten()
        })
        .collect()
}

pub fn run(runsc: &Path, quick: bool) -> anyhow::Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker-run.sh");
    let runs = if quick { 5 } else { 11 };
    let out = Command::new("bash")
        .arg(&script)
        .arg(runsc)
        .arg(runs.to_string())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}{}",
            script.display(),
            out.status,
            stdout,
            stderr
        );
    }
    let (runc, sandbox) = (
        values(&stdout, "sample", "runc"),
        values(&stdout, "sample", "runsc"),
    );
    if runc.is_empty() || sandbox.is_empty() {
        let why = stdout
            .lines()
            .chain(stderr.lines())
            .find(|l| l.contains("SKIPPED"))
            .map_or("no samples", |l| l.trim_start_matches("SKIPPED: "));
        eprintln!("*** SKIPPED: bench --docker: {why} ***");
        return Ok(());
    }
    let (runc, sandbox) = (median(runc) / 1e3, median(sandbox) / 1e3);
    println!(
        "{:<44} {:>12} {:<3} {:>10}",
        format!("docker, medians of {runs} runs"),
        "value",
        "",
        "vs runc"
    );
    println!("{}", "-".repeat(72));
    row("docker run --rm IMG true, runc", runc, "ms", Some(runc));
    row("docker run --rm IMG true, runsc", sandbox, "ms", Some(runc));
    // The memory of an idle container: one sample each (it barely moves).
    let base = values(&stdout, "rss", "runc").first().copied();
    for rt in ["runc", "runsc"] {
        if let Some(&v) = values(&stdout, "rss", rt).first() {
            row(&format!("idle sleep container RSS, {rt}"), v, "kB", base);
        }
    }
    println!(
        "ratio runsc/runc for docker run --rm IMG true: {:.2} (goal: at most 1.5)",
        sandbox / runc
    );
    Ok(())
}
