//! Loopback TCP (issue 11): throughput with 1 MiB writes, 64-byte request/response
//! latency, and connect+accept+close, each native and in the sandbox in the same run
//! (`bench/programs/netbench.c`; the sandbox's sockets are host sockets behind the sentry),
//! and Python's HTTP server (single-threaded) in the sandbox and natively, loaded from the
//! host by this process (sequential HTTP/1.0 requests for a 4 KiB file).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

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
    let python = Path::new("/usr/bin/python3");
    if python.exists() {
        let requests = if quick { 200 } else { 1000 };
        let native = http_rate(Command::new(python), requests)?;
        let mut sandboxed = Command::new(&b.runsc);
        sandboxed.arg("do").arg("--").arg(python);
        let sandbox = http_rate(sandboxed, requests)?;
        row(
            "python3 HTTPServer, native (requests/s)",
            native,
            "",
            Some(native),
        );
        row(
            "python3 HTTPServer, sandbox (requests/s)",
            sandbox,
            "",
            Some(native),
        );
    }
    Ok(())
}

/// Starts Python's HTTP server through `cmd` (python3 itself, or runsc do -- python3)
/// serving a directory with a 4 KiB file, waits until it answers, then times `requests`
/// sequential GETs from here: requests per second.
fn http_rate(mut cmd: Command, requests: u32) -> anyhow::Result<f64> {
    let dir = std::env::temp_dir().join(format!("netbench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("f"), vec![b'x'; 4096])?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    // One thread (HTTPServer, not the ThreadingHTTPServer of `-m http.server`): a thread per
    // request would measure thread creation, not the network.
    let script = format!(
        "import functools, http.server as h; h.HTTPServer(('127.0.0.1', {port}), \
         functools.partial(h.SimpleHTTPRequestHandler, directory={:?})).serve_forever()",
        dir.display().to_string()
    );
    let mut child = cmd
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the HTTP server")?;
    let result = (|| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(port).is_err() {
            if Instant::now() > deadline {
                bail!("the HTTP server did not answer within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let start = Instant::now();
        for _ in 0..requests {
            get(port)?;
        }
        Ok(requests as f64 / start.elapsed().as_secs_f64())
    })();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn get(port: u16) -> anyhow::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(b"GET /f HTTP/1.0\r\n\r\n")?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    if !resp.starts_with(b"HTTP/1.0 200") || resp.len() < 4096 {
        bail!("bad response ({} bytes)", resp.len());
    }
    Ok(())
}
