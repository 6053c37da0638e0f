//! Loopback TCP (issue 11): throughput with 1 MiB writes, 64-byte request/response
//! latency, and connect+accept+close, each native and in the sandbox in the same run
//! (`bench/programs/netbench.c`; the sandbox's sockets are host sockets behind the sentry).

use std::path::Path;

use crate::{row, Bench};
use platform::SyscallPath;

pub fn run(b: &Bench, prog: &Path, quick: bool) -> anyhow::Result<()> {
    let prog = prog.to_path_buf();
    let mib = if quick { "200" } else { "2000" };
    let nat = b.per_call(|| b.native(&prog, &["tput", mib]))?;
    let sb = b.per_call(|| b.sandboxed(SyscallPath::Ring, &prog, &["tput", mib]))?;
    // Throughput: MiB/s, and the ratio is the sandbox's share of native.
    let (nat_mibs, sb_mibs) = (1e9 / nat, 1e9 / sb);
    row(
        "TCP loopback, 1 MiB writes, native (MiB/s)",
        nat_mibs,
        "",
        Some(nat_mibs),
    );
    row(
        "TCP loopback, 1 MiB writes, sandbox (MiB/s)",
        sb_mibs,
        "",
        Some(nat_mibs),
    );
    let rr = if quick { "2000" } else { "20000" };
    let nat = b.per_call(|| b.native(&prog, &["rr", rr]))?;
    let sb = b.per_call(|| b.sandboxed(SyscallPath::Ring, &prog, &["rr", rr]))?;
    row("TCP 64-byte request/response, native", nat, "ns", Some(nat));
    row("TCP 64-byte request/response, sandbox", sb, "ns", Some(nat));
    let conns = if quick { "200" } else { "2000" };
    let nat = b.per_call(|| b.native(&prog, &["conn", conns]))?;
    let sb = b.per_call(|| b.sandboxed(SyscallPath::Ring, &prog, &["conn", conns]))?;
    row("TCP connect+accept+close, native", nat, "ns", Some(nat));
    row("TCP connect+accept+close, sandbox", sb, "ns", Some(nat));
    Ok(())
}
