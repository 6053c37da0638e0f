//! Networking end to end (hostinet): real programs against the host, `--network=none`,
//! read-only netlink, and host descriptors after connection churn. The differential
//! socket semantics are the conformance programs inet_tcp, inet_udp and inet_ifaces.
//!
//! Nothing here changes the host: the one test that tries to change an interface runs in
//! the fresh namespace of `--network=none`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conformance::{
    build, diff_lines, run_native, run_with_timeout, runsc_do_command, runsc_do_command_with,
    skip_without_kvm, Case, Input, Libc, ScratchDir,
};

const PYTHON: &str = "/usr/bin/python3";

/// A loopback port free right now (bound, then released).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` from 127.0.0.1:`port`, retrying the connection until `deadline`; the body.
fn http_get(port: u16, path: &str, deadline: Instant) -> Result<Vec<u8>, String> {
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(30))).ok();
                write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    .map_err(|e| e.to_string())?;
                let mut resp = Vec::new();
                s.read_to_end(&mut resp).map_err(|e| e.to_string())?;
                let at = resp
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .ok_or("no header end")?;
                if !resp.starts_with(b"HTTP/1.0 200") {
                    return Err(format!(
                        "status: {}",
                        String::from_utf8_lossy(&resp[..at.min(80)])
                    ));
                }
                return Ok(resp[at + 4..].to_vec());
            }
            Err(e) if Instant::now() > deadline => return Err(format!("connect: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `python3 -m http.server` in the sandbox, fetched from the host.
#[test]
fn python_http_server_serves_the_host() {
    if skip_without_kvm("python_http_server_serves_the_host") {
        return;
    }
    let dir = ScratchDir::new("net-http");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    dir.file("data.bin", &body, 0o644);
    let port = free_port();
    let port_s = port.to_string();
    let args = [
        "-m",
        "http.server",
        port_s.as_str(),
        "--bind",
        "127.0.0.1",
        "--directory",
        dir.path().to_str().expect("utf-8 path"),
    ];
    let mut cmd = runsc_do_command(std::path::Path::new(PYTHON), &args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _server = Killed(cmd.spawn().expect("spawn runsc"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = http_get(port, "/data.bin", deadline).expect("fetch from the sandboxed server");
    assert!(got == body, "body differs: {} bytes", got.len());
    // A second request on a new connection (the server keeps serving).
    let again = http_get(port, "/data.bin", deadline).expect("second fetch");
    assert!(again == body);
}

/// An asyncio echo server and clients in one Python process (the event loop on epoll,
/// non-blocking connects and accepts, half-close), native against sandbox.
#[test]
fn python_asyncio_echo_matches_native() {
    if skip_without_kvm("python_asyncio_echo_matches_native") {
        return;
    }
    const SCRIPT: &str = r#"
import asyncio

async def handle(reader, writer):
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()

async def client(port, n):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = []
    for i in range(50):
        writer.write(f"client {n} line {i}\n".encode())
        await writer.drain()
        got.append(await reader.readline())
    writer.write_eof()
    rest = await reader.read()
    writer.close()
    await writer.wait_closed()
    return n, len(got), got[0].decode().strip(), got[-1].decode().strip(), rest

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for r in sorted(await asyncio.gather(*(client(port, n) for n in range(8)))):
            print(*r)

asyncio.run(main())
"#;
    let python = std::path::Path::new(PYTHON);
    let native = run_native(python, &Case::args(["-c", SCRIPT])).expect("native python");
    let mut cmd = runsc_do_command(python, &["-c", SCRIPT]);
    let out =
        run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(120)).expect("run python");
    let (want, got) = (
        String::from_utf8_lossy(&native.stdout),
        String::from_utf8_lossy(&out.stdout),
    );
    assert!(want.lines().count() == 8, "native: {want}");
    assert!(
        want == got,
        "asyncio echo differs (- native, + sandbox):\n{}\nsandbox stderr: {}",
        diff_lines(&want, &got),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// python urllib in the sandbox against a server on the host.
#[test]
fn python_urllib_reaches_a_host_server() {
    if skip_without_kvm("python_urllib_reaches_a_host_server") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).expect("read request");
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 12\r\n\r\nhello, host\n")
            .expect("respond");
        String::from_utf8_lossy(&req).into_owned()
    });
    let code = format!(
        "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/x').read().decode(), end='')"
    );
    let mut cmd = runsc_do_command(std::path::Path::new(PYTHON), &["-c", code.as_str()]);
    let out =
        run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(120)).expect("run python");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello, host\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let req = server.join().expect("server thread");
    assert!(req.starts_with("GET /x HTTP/1.1"), "request: {req}");
}

/// `getent hosts localhost` (glibc's resolver: /etc/hosts, AI_ADDRCONFIG through netlink)
/// answers as natively.
#[test]
fn getent_hosts_matches_native() {
    if skip_without_kvm("getent_hosts_matches_native") {
        return;
    }
    let prog = std::path::Path::new("/usr/bin/getent");
    for args in [["hosts", "localhost"], ["ahosts", "localhost"]] {
        let case = Case::args(args);
        let native = run_native(prog, &case).expect("native");
        let sandboxed = conformance::run_sandboxed(prog, &case).expect("sandboxed");
        assert_eq!(
            String::from_utf8_lossy(&native.stdout),
            String::from_utf8_lossy(&sandboxed.stdout),
            "getent {args:?}: stderr {}",
            String::from_utf8_lossy(&sandboxed.stderr)
        );
        assert_eq!(native.status, sandboxed.status);
    }
}

/// `prog` run natively the way `--network=none` runs it in the sandbox: in a throwaway
/// network namespace of its own with only loopback up (`unshare --net`, as root), so that
/// the two sides see the same per-namespace defaults (sysctls, addresses) whatever the
/// host's own namespace holds. Without root or `unshare`, it says so and runs `prog` in the
/// host's namespace. Neither changes the host: the namespace dies with the program.
fn run_native_without_network(prog: &std::path::Path) -> conformance::Outcome {
    let unshare = std::path::Path::new("/usr/bin/unshare");
    let ip = std::path::Path::new("/usr/sbin/ip");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !(root && unshare.exists() && ip.exists()) {
        eprintln!(
            "network_none: native side runs in the host's network namespace \
             (needs root, {} and {})",
            unshare.display(),
            ip.display()
        );
        return run_native(prog, &Case::default()).expect("native");
    }
    let script = format!("{} link set lo up && exec \"$0\"", ip.display());
    let case = Case::args([
        "--net",
        "--",
        "/bin/sh",
        "-c",
        &script,
        &prog.to_string_lossy(),
    ]);
    let out = run_native(unshare, &case).expect("native in a new network namespace");
    assert_eq!(
        out.status,
        0,
        "unshare --net: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `--network=none`: only loopback, which works (the TCP conformance program gives its
/// native output there), and changes through netlink are refused.
#[test]
fn network_none_has_only_a_working_loopback() {
    if skip_without_kvm("network_none_has_only_a_working_loopback") {
        return;
    }
    let none = ["--network=none"];
    let mut cmd =
        runsc_do_command_with(&none, std::path::Path::new("/bin/cat"), &["/proc/net/dev"]);
    let out = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).expect("run");
    assert_eq!(
        out.status,
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev = String::from_utf8_lossy(&out.stdout);
    let ifaces: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "/proc/net/dev: {dev}");

    let prog = build("inet_tcp", Libc::Glibc);
    let native = run_native_without_network(&prog);
    let mut cmd = runsc_do_command_with(&none, &prog, &[] as &[&str]);
    let sandboxed =
        run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(120)).expect("run");
    let (want, got) = (
        String::from_utf8_lossy(&native.stdout),
        String::from_utf8_lossy(&sandboxed.stdout),
    );
    assert!(
        want == got,
        "inet_tcp under --network=none differs from native (- native, + sandbox):\n{}\nsandbox stderr: {}",
        diff_lines(&want, &got),
        String::from_utf8_lossy(&sandboxed.stderr)
    );

    // Netlink reads work.
    let ip = std::path::Path::new("/usr/sbin/ip");
    if ip.exists() {
        let mut cmd = runsc_do_command_with(&none, ip, &["-o", "addr"]);
        let out = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).expect("ip");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status == 0 && text.contains("127.0.0.1/8"),
            "ip addr: {text}"
        );
    } else {
        eprintln!("SKIPPED: the ip addr check: no /usr/sbin/ip (apt-get install iproute2)");
    }
}

/// Changes to interfaces, addresses and routes (rtnetlink, as `ip` makes them): in the
/// sandbox's own namespace (`--network=none`) by root, they work as in a fresh namespace
/// natively, and an unprivileged process gets the host's answer (RTNETLINK answers:
/// Operation not permitted); in the host's namespace (`--network=host`) even root is
/// refused. The refused change sets lo's MTU to what it is: harmless if it ever got through.
#[test]
fn network_changes_reach_only_the_sandboxs_own_namespace() {
    let test = "network_changes_reach_only_the_sandboxs_own_namespace";
    if skip_without_kvm(test) {
        return;
    }
    let (sh, ip, setpriv) = ("/bin/sh", "/usr/sbin/ip", "/usr/bin/setpriv");
    let unshare = "/usr/bin/unshare";
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || ![ip, setpriv, unshare]
            .iter()
            .all(|p| std::path::Path::new(p).exists())
    {
        conformance::loud(&format!(
            "*** SKIPPED: {test}: needs root, {ip}, {setpriv} and {unshare} ***"
        ));
        return;
    }
    let script = "exec 2>&1; ip link set lo mtu 1500 && ip addr add 10.9.8.7/32 dev lo \
        && ip route add 10.9.9.0/24 dev lo && ip -o link show lo | grep -o 'mtu [0-9]*' \
        && ip -4 -o addr show lo | awk '{print $4}' && ip route show \
        && ip link set lo down && ip -o link show lo | grep -c LOWER_UP; \
        setpriv --reuid 1000 --regid 1000 --clear-groups ip addr add 10.1.1.1/32 dev lo; \
        echo unprivileged $?";
    let native_script = format!("ip link set lo up && {script}");
    let native = run_native(
        std::path::Path::new(unshare),
        &Case::args(["--net", "--", sh, "-c", &native_script]),
    )
    .expect("native in a new network namespace");
    let mut cmd = runsc_do_command_with(
        &["--network=none"],
        std::path::Path::new(sh),
        &["-c", script],
    );
    let sandboxed = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).expect("run");
    let (want, got) = (
        String::from_utf8_lossy(&native.stdout),
        String::from_utf8_lossy(&sandboxed.stdout),
    );
    assert!(want.contains("unprivileged 2"), "native: {want}");
    assert!(
        want == got,
        "ip changes under --network=none differ (- native, + sandbox):\n{}\nsandbox stderr: {}",
        diff_lines(&want, &got),
        String::from_utf8_lossy(&sandboxed.stderr)
    );

    let mtu = std::fs::read_to_string("/sys/class/net/lo/mtu").unwrap_or_else(|_| "65536".into());
    let mut cmd = runsc_do_command_with(
        &["--network=host"],
        std::path::Path::new(ip),
        &["link", "set", "lo", "mtu", mtu.trim()],
    );
    let out = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status == 2 && err.contains("RTNETLINK answers: Operation not permitted"),
        "ip link set in the host's namespace: status {} stderr {err}",
        out.status
    );
}

fn host_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// 10,000 connections opened and closed: the runsc process holds as many host
/// descriptors afterwards as after a warm-up round.
#[test]
fn connection_churn_leaks_no_host_descriptors() {
    if skip_without_kvm("connection_churn_leaks_no_host_descriptors") {
        return;
    }
    let prog = build("inet_churn", Libc::Glibc);
    let mut cmd = runsc_do_command(&prog, &[] as &[&str]);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = Killed(cmd.spawn().expect("spawn runsc"));
    let pid = conformance::sentry_pid(child.0.id());
    let mut stdin = child.0.stdin.take().expect("stdin");
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut round = |n: u32| {
        writeln!(stdin, "{n}").expect("write");
        stdin.flush().expect("flush");
        let line = lines
            .recv_timeout(Duration::from_secs(300))
            .expect("the guest answers");
        assert_eq!(line, "done");
        host_fds(pid)
    };
    let warm = round(100);
    let start = Instant::now();
    let after = round(10_000);
    eprintln!(
        "10,000 connect+accept+close: {:.2} s; host fds {warm} -> {after}",
        start.elapsed().as_secs_f64()
    );
    assert!(
        after <= warm + 2,
        "host descriptors grew from {warm} to {after} over 10,000 connections"
    );
}
