//! Programs whose standard streams are a terminal: each runs on a fresh pseudo-terminal,
//! natively and under `runsc do`, and what the terminal shows and the exit status must
//! match. Each run's process (the program natively, runsc for the sandbox) leads a session
//! whose controlling terminal is the pty (setsid and TIOCSCTTY before exec); in the sandbox
//! the first process leads the sandbox's own first session, with the terminal as its
//! controlling terminal, so both see themselves as a login shell's command does.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use conformance::{build, diff_lines, loud, runsc_do_command, skip_without_kvm, Libc};

/// What a run showed on the terminal, and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    screen: String,
    status: Option<i32>,
}

/// Opens a pty pair of 24 rows and 80 columns: (master, slave).
fn open_pty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let ws = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors; no name buffer; termios NULL; ws is valid.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two fresh descriptors that we now own.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Something done on the terminal's side once the program has shown some text.
#[derive(Clone, Copy)]
enum Action {
    /// Typed input (^C is 0x03).
    Type(&'static [u8]),
    /// A new window size (rows, columns), as a terminal emulator sets it on the master.
    Resize(u16, u16),
}

/// Runs `cmd` with the slave of a fresh pty as stdin, stdout and stderr and as the
/// controlling terminal of a new session; returns what the master read.
fn run_on_pty(cmd: Command) -> Shown {
    run_on_pty_with(cmd, &[])
}

/// As [`run_on_pty`], doing each step's action once the screen shows its text.
fn run_on_pty_with(mut cmd: Command, steps: &[(&str, Action)]) -> Shown {
    let (master, slave) = open_pty();
    for set in [Command::stdin, Command::stdout, Command::stderr] {
        set(&mut cmd, Stdio::from(slave.try_clone().expect("dup slave")));
    }
    // SAFETY: setsid and ioctl are async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn on the pty");
    // The command holds copies of the slave too: the master reads EOF (EIO) only once
    // every copy outside the child is closed.
    drop(cmd);
    drop(slave);
    let screen = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let mut writer = std::fs::File::from(master.try_clone().expect("dup master"));
    let mut reader = std::fs::File::from(master);
    let shared = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Reading the master ends with EIO once every slave descriptor is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            shared
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&buf[..n]);
        }
        let _ = tx.send(());
    });
    let start = Instant::now();
    let shows = |text: &str| {
        let s = screen.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&s).contains(text)
    };
    for (text, action) in steps {
        while !shows(text) && start.elapsed() < conformance::TIMEOUT {
            std::thread::sleep(Duration::from_millis(5));
        }
        match action {
            Action::Type(bytes) => writer.write_all(bytes).expect("type on the pty"),
            Action::Resize(rows, cols) => {
                let ws = libc::winsize {
                    ws_row: *rows,
                    ws_col: *cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                // SAFETY: TIOCSWINSZ reads one winsize from ws.
                let r = unsafe { libc::ioctl(writer.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                assert_eq!(r, 0, "resize: {}", std::io::Error::last_os_error());
            }
        }
    }
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st.code();
        }
        if start.elapsed() > conformance::TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break Some(-1000);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(writer);
    let screen = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => {
            String::from_utf8_lossy(&screen.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        }
        Err(_) => "<the terminal stayed open>".into(),
    };
    Shown { screen, status }
}

fn native(prog: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .env_clear()
        .envs(conformance::fixed_env())
        .current_dir(conformance::run_dir());
    cmd
}

/// Runs `prog args` both ways on a pty and compares; returns a failure description.
fn compare(label: &str, prog: &Path, args: &[&str]) -> Option<String> {
    compare_with(label, prog, args, &[])
}

/// As [`compare`], with the terminal's side acting as `steps` say.
fn compare_with(
    label: &str,
    prog: &Path,
    args: &[&str],
    steps: &[(&str, Action)],
) -> Option<String> {
    let want = run_on_pty_with(native(prog, args), steps);
    let got = run_on_pty_with(runsc_do_command(prog, args), steps);
    if want == got {
        return None;
    }
    Some(format!(
        "{label}: native and sandbox differ on a terminal\n--- status: native {:?}, sandbox {:?}\n--- diff (native -> sandbox)\n{}\n--- sandbox screen\n{}",
        want.status,
        got.status,
        diff_lines(&want.screen, &got.screen),
        got.screen
    ))
}

fn finish(failures: Vec<String>) {
    if !failures.is_empty() {
        panic!("{}", failures.join("\n\n"));
    }
}

#[test]
fn terminal_ioctls_on_a_pty() {
    if skip_without_kvm("terminal_ioctls_on_a_pty") {
        return;
    }
    let mut failures = Vec::new();
    for libc in Libc::ALL {
        let prog = build("tty_ioctl", libc);
        let want = run_on_pty(native(&prog, &[]));
        // The program must have seen a terminal natively, or the test tests nothing.
        assert!(
            want.screen.contains("isatty: 1 1 1") && want.status == Some(0),
            "tty_ioctl ({}) natively on a pty: {want:?}",
            libc.name()
        );
        failures.extend(compare(&format!("tty_ioctl ({})", libc.name()), &prog, &[]));
    }
    finish(failures);
}

#[test]
fn programs_on_a_pty() {
    if skip_without_kvm("programs_on_a_pty") {
        return;
    }
    let cases: &[(&str, &[&str])] = &[
        ("/bin/ls", &["-d", "/"]),
        ("/bin/bash", &["-c", "echo hi"]),
        // An interactive shell takes the terminal for its jobs (setpgid, TIOCSPGRP) and
        // complains if the foreground group or the session doesn't add up.
        ("/bin/bash", &["-i", "-c", "echo hi; /bin/true; echo $?"]),
        ("/bin/stty", &["-a"]),
        // /dev/tty is the controlling terminal, and nothing for a new session without one.
        (
            "/bin/sh",
            &[
                "-c",
                "echo via-tty >/dev/tty; stty -F /dev/tty size; setsid -w sh -c 'echo x >/dev/tty'; echo $?",
            ],
        ),
        (
            "/usr/bin/python3",
            &[
                "-c",
                "import os, sys; print(1, sys.stdin.isatty(), os.get_terminal_size())",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (prog, args) in cases {
        let path = Path::new(prog);
        if !path.exists() {
            loud(&format!("programs_on_a_pty: {prog} is missing, skipped"));
            continue;
        }
        failures.extend(compare(&format!("{prog} {args:?}"), path, args));
    }
    finish(failures);
}

/// A sanity check of the harness itself: the pty is the controlling terminal natively.
#[test]
fn pty_harness_gives_a_controlling_terminal() {
    let shown = run_on_pty(native(
        Path::new("/bin/sh"),
        &["-c", "test -t 0 && echo tty"],
    ));
    assert_eq!(shown.screen.trim(), "tty", "{shown:?}");
}

/// What the terminal sends its foreground group reaches the sandbox's: ^C (SIGINT), ^\
/// (SIGQUIT) and SIGWINCH after a resize, which runsc receives in the sandbox's place.
#[test]
fn terminal_signals_reach_the_foreground() {
    if skip_without_kvm("terminal_signals_reach_the_foreground") {
        return;
    }
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        loud("terminal_signals_reach_the_foreground: /usr/bin/python3 is missing, skipped");
        return;
    }
    let script = r#"
import os, signal
got = []
def on(s, f):
    got.append(s)
    # os.write, not print: the next signal may come while the previous handler's print is
    # still inside the buffered writer, which Python refuses ("reentrant call").
    os.write(1, f"got {signal.Signals(s).name} {tuple(os.get_terminal_size())}\n".encode())
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGWINCH):
    signal.signal(s, on)
print("ready", flush=True)
while len(got) < 3:
    signal.pause()
print("done", flush=True)
"#;
    let steps = [
        ("ready", Action::Resize(30, 100)),
        ("got SIGWINCH", Action::Type(b"\x03")),
        ("got SIGINT", Action::Type(b"\x1c")),
    ];
    let failure = compare_with("python3 signals", python, &["-c", script], &steps);
    finish(failure.into_iter().collect());
}
