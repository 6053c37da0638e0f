//! Benchmarks of the foundation: the cost of a system call through each transport, and of
//! starting a program, as ratios against native Linux measured in the same run.
//!
//! Usage: `cargo build --release -p runsc -p bench && target/release/bench [--quick]`;
//! `target/release/bench --net` runs only the loopback TCP rows (`net.rs`), `--real` only
//! the real programs (`real.rs`: python, find, a shell pipeline script, tar), `--load` only
//! getpid and python quiet and with two host processes spinning (`load.rs`);
//! `target/release/bench --startup [N]` only the start-to-exit rows, best and median of N
//! runs each (default 50), taken in turn so that load changes hit all of them alike;
//! `target/release/bench --imgfs` runs the ImgFS benchmark instead (`imgfs.rs`), and
//! `target/release/bench --containerfs` the ContainerFS ones (`containerfs.rs`: layered file
//! operations, cold start and conversion of the Debian image); `target/release/bench
//! --docker` times `docker run --rm IMG true` with runc and runsc in a private dockerd
//! (`docker.rs`, `bench/docker-run.sh`).
//!
//! These are measurements, not tests: the machines are shared and noisy, so each figure is
//! the median of several runs and nothing here fails on a slow result.

mod containerfs;
mod docker;
mod goals;
mod imgfs;
mod load;
mod net;
mod ops;
mod programs;
mod real;
mod transport;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _};
use platform::SyscallPath;

/// Median of a set of samples.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs a command and parses the one number it prints (ns per call).
fn run_for_number(cmd: &mut Command) -> anyhow::Result<f64> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("{cmd:?} printed {text:?}"))
}

/// Wall time of running a command to completion, in microseconds.
fn time_run(cmd: &mut Command) -> anyhow::Result<f64> {
    let start = Instant::now();
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    let us = start.elapsed().as_secs_f64() * 1e6;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(us)
}

struct Bench {
    runsc: PathBuf,
    programs: programs::Programs,
    runs: usize,
    iterations: u64,
}

impl Bench {
    fn native(&self, program: &PathBuf, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args);
        c
    }

    fn sandboxed(&self, path: SyscallPath, program: &PathBuf, args: &[&str]) -> Command {
        let mut c = Command::new(&self.runsc);
        c.arg("do");
        if path == SyscallPath::ExitOnly {
            c.arg("--syscall-path=exit");
        }
        c.arg("--").arg(program).args(args);
        c
    }

    fn per_call(&self, mut make: impl FnMut() -> Command) -> anyhow::Result<f64> {
        let samples = (0..self.runs)
            .map(|_| run_for_number(&mut make()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(median(samples))
    }
}

fn row(name: &str, value: f64, unit: &str, native: Option<f64>) {
    let ratio = native.map(|n| value / n);
    let goal = goals::column(name, value, ratio);
    match ratio {
        Some(r) => println!("{name:<44} {value:>12.2} {unit:<3} {r:>9.1}x{goal}"),
        None => println!("{name:<44} {value:>12.2} {unit:<3}{goal}"),
    }
}

/// `--startup N`: start to exit of the do-nothing program natively, under `runsc do` and
/// under `runsc do` without its namespaces, N runs of each in turn; best and median.
fn startup(b: &Bench, runs: usize) -> anyhow::Result<()> {
    let nothing = &b.programs.donothing;
    type Make<'a> = Box<dyn Fn() -> Command + 'a>;
    let kinds: [(&str, Make); 3] = [
        ("native", Box::new(|| b.native(nothing, &[]))),
        (
            "runsc do",
            Box::new(|| b.sandboxed(SyscallPath::Ring, nothing, &[])),
        ),
        (
            "runsc do, no namespaces",
            Box::new(|| {
                let mut c = b.sandboxed(SyscallPath::Ring, nothing, &[]);
                c.env("RUNSC_NO_NAMESPACES", "1");
                c
            }),
        ),
    ];
    let mut samples = vec![Vec::with_capacity(runs); kinds.len()];
    for _ in 0..runs.max(1) {
        for (k, (_, make)) in kinds.iter().enumerate() {
            samples[k].push(time_run(&mut make())?);
        }
    }
    println!("start to exit, do-nothing program, {runs} runs each, taken in turn");
    for ((name, _), mut v) in kinds.iter().zip(samples) {
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "  {name:<26} best {:>7.2} ms   median {:>7.2} ms",
            v[0] / 1000.0,
            v[v.len() / 2] / 1000.0
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // The sandbox rows measure PVM's direct switch where the host has it (runsc's default);
    // the "no direct switch" rows turn it off.
    std::env::remove_var(platform::kvm::DIRECT_SWITCH_ENV);
    let quick = std::env::args().any(|a| a == "--quick");
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("bench has no directory")?;
    let runsc = dir.join("runsc");
    if !runsc.exists() {
        bail!(
            "{} is missing: cargo build --release -p runsc",
            runsc.display()
        );
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        bail!("/dev/kvm is not usable: the benchmarks need KVM");
    }
    if std::env::args().any(|a| a == "--docker") {
        return docker::run(&runsc, quick);
    }
    if std::env::args().any(|a| a == "--imgfs") {
        return imgfs::main(&runsc, &dir.join("bench-programs"));
    }
    if std::env::args().any(|a| a == "--containerfs") {
        let target = dir.parent().context("bench's directory has no parent")?;
        return containerfs::main(&runsc, &dir.join("bench-programs"), target, quick);
    }
    let b = Bench {
        runsc,
        programs: programs::build(&dir.join("bench-programs"))?,
        runs: if quick { 3 } else { 7 },
        iterations: if quick { 20_000 } else { 100_000 },
    };
    if let Some(i) = std::env::args().position(|a| a == "--startup") {
        let n = match std::env::args().nth(i + 1) {
            Some(n) => n.parse().context("--startup N: a number of runs")?,
            None => 50,
        };
        return startup(&b, n);
    }
    let net_program = programs::build_one(&dir.join("bench-programs"), "netbench")?;
    if std::env::args().any(|a| a == "--net") {
        net::run(&b, &net_program, quick)?;
        goals::summary();
        return Ok(());
    }
    if std::env::args().any(|a| a == "--real") {
        real::run(&b, quick)?;
        goals::summary();
        return Ok(());
    }
    if std::env::args().any(|a| a == "--load") {
        load::run(&b, quick)?;
        goals::summary();
        return Ok(());
    }
    let n = b.iterations.to_string();
    let loop_prog = &b.programs.syscall_loop;

    println!(
        "{:<44} {:>12} {:<3} {:>10}",
        "benchmark", "cost", "", "vs native"
    );
    println!("{}", "-".repeat(72));

    let native_getpid = b.per_call(|| b.native(loop_prog, &["getpid", &n]))?;
    row("getpid, native", native_getpid, "ns", Some(native_getpid));
    let ring = b.per_call(|| b.sandboxed(SyscallPath::Ring, loop_prog, &["getpid", &n]))?;
    row("getpid, sandbox, ring", ring, "ns", Some(native_getpid));
    let ring_no_ds = b.per_call(|| {
        let mut c = b.sandboxed(SyscallPath::Ring, loop_prog, &["getpid", &n]);
        c.env(platform::kvm::NO_DIRECT_SWITCH_ENV, "1");
        c
    })?;
    row(
        "getpid, sandbox, ring, no direct switch",
        ring_no_ds,
        "ns",
        Some(native_getpid),
    );
    // A small seccomp filter (arch check, 8-call allowlist) run on every call: natively
    // by the host kernel's JIT, in the sandbox by the sentry's interpreter.
    let native_filtered = b.per_call(|| b.native(loop_prog, &["getpid-seccomp", &n]))?;
    row(
        "getpid + seccomp filter, native",
        native_filtered,
        "ns",
        Some(native_filtered),
    );
    let ring_filtered =
        b.per_call(|| b.sandboxed(SyscallPath::Ring, loop_prog, &["getpid-seccomp", &n]))?;
    row(
        "getpid + seccomp filter, sandbox, ring",
        ring_filtered,
        "ns",
        Some(native_filtered),
    );
    row(
        "  (filter's own cost in the sandbox)",
        ring_filtered - ring,
        "ns",
        None,
    );
    let exit_n = (b.iterations / 10).to_string();
    let exit =
        b.per_call(|| b.sandboxed(SyscallPath::ExitOnly, loop_prog, &["getpid", &exit_n]))?;
    row(
        "getpid, sandbox, exit fallback only",
        exit,
        "ns",
        Some(native_getpid),
    );

    let native_nosys = b.per_call(|| b.native(loop_prog, &["nosys", &n]))?;
    row(
        "unknown syscall (ENOSYS), native",
        native_nosys,
        "ns",
        Some(native_nosys),
    );
    let bare_ring = median(
        (0..b.runs)
            .map(|_| transport::bare_round_trip(SyscallPath::Ring, b.iterations))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    row(
        "bare transport, ring (no sentry work)",
        bare_ring,
        "ns",
        Some(native_nosys),
    );
    let bare_exit = median(
        (0..b.runs)
            .map(|_| transport::bare_round_trip(SyscallPath::ExitOnly, b.iterations / 10))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    row(
        "bare transport, exit (no sentry work)",
        bare_exit,
        "ns",
        Some(native_nosys),
    );

    let start_runs = if quick { 5 } else { 21 };
    let nothing = &b.programs.donothing;
    let native_start = median(
        (0..start_runs)
            .map(|_| time_run(&mut b.native(nothing, &[])))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    row(
        "start to exit, do-nothing program, native",
        native_start,
        "us",
        Some(native_start),
    );
    let sandbox_start = median(
        (0..start_runs)
            .map(|_| time_run(&mut b.sandboxed(SyscallPath::Ring, nothing, &[])))
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    row(
        "start to exit, do-nothing program, runsc do",
        sandbox_start,
        "us",
        Some(native_start),
    );
    // The same without the sentry's namespaces and empty root (boot::confine): what they
    // cost at start.
    let unconfined_start = median(
        (0..start_runs)
            .map(|_| {
                time_run(
                    b.sandboxed(SyscallPath::Ring, nothing, &[])
                        .env("RUNSC_NO_NAMESPACES", "1"),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    );
    row(
        "start to exit, do-nothing program, runsc do, no namespaces",
        unconfined_start,
        "us",
        Some(native_start),
    );
    let ops_program = programs::build_one(&dir.join("bench-programs"), "ops")?;
    ops::run(&b, &ops_program, quick)?;
    real::run(&b, quick)?;
    load::run(&b, quick)?;
    net::run(&b, &net_program, quick)?;
    goals::summary();
    Ok(())
}
