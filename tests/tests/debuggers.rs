//! strace and gdb inside the sandbox (ptrace, crates/sentry/src/ptrace/): Debian's
//! `strace -f` of a shell pipeline and `gdb -batch` setting a breakpoint, stepping and
//! printing, each run natively and under `runsc do` and compared in substance (pids and
//! addresses taken out, strace's lines sorted: the interleaving of processes is the
//! scheduler's). A host without strace or gdb skips loudly. Yama's rules are checked
//! against what Linux with Yama in scope 1 gives (the hosts here have no Yama to compare
//! with).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use conformance::{
    fixed_env, loud, run_dir, run_with_timeout, runsc_do_command, skip_without_kvm, Input,
};

const STRACE: &str = "/usr/bin/strace";
const GDB: &str = "/usr/bin/gdb";

/// strace's lines without pids and addresses, a call that another process's line split
/// ("<unfinished ...>" then "<... NAME resumed>") joined again, sorted.
fn normalize_strace(text: &str) -> Vec<String> {
    let mut pending: std::collections::HashMap<String, String> = Default::default();
    let mut lines = Vec::new();
    for l in text.lines() {
        let (pid, body) = match l.strip_prefix("[pid ") {
            Some(rest) => rest
                .split_once("] ")
                .map_or(("".to_string(), rest), |(p, r)| (p.trim().to_string(), r)),
            None => ("".to_string(), l),
        };
        let body = if let Some(head) = body.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_string());
            continue;
        } else if let Some(rest) = body.strip_prefix("<... ") {
            let tail = rest.split_once(" resumed>").map_or(rest, |(_, t)| t);
            format!("{}{tail}", pending.remove(&pid).unwrap_or_default())
        } else {
            body.to_string()
        };
        let words: Vec<String> = body
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(|w| match w.strip_prefix("0x") {
                Some(hex) => format!(
                    "ADDR{}",
                    hex.trim_start_matches(|c: char| c.is_ascii_hexdigit())
                ),
                None => w.to_string(),
            })
            .collect();
        lines.push(words.join(" "));
    }
    lines.sort();
    lines
}

#[test]
fn strace_follows_a_pipeline() {
    if skip_without_kvm("strace_follows_a_pipeline") {
        return;
    }
    if !Path::new(STRACE).exists() {
        loud("SKIPPED: strace is not installed on this host");
        return;
    }
    let args = [
        "-f",
        "-qq",
        "-e",
        "trace=execve,exit_group,write,pipe2,dup2",
        "-e",
        "signal=none",
        "/bin/sh",
        "-c",
        "echo hi | tr a-z A-Z; printf 'a\\nb\\n' | wc -l; echo done",
    ];
    let native = Command::new(STRACE)
        .args(args)
        .env_clear()
        .envs(fixed_env())
        .current_dir(run_dir())
        .output()
        .expect("run strace");
    let mut cmd = runsc_do_command(Path::new(STRACE), &args);
    let sandboxed = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(120))
        .expect("run strace in the sandbox");
    assert_eq!(
        String::from_utf8_lossy(&native.stdout),
        String::from_utf8_lossy(&sandboxed.stdout),
        "the traced pipeline's output"
    );
    assert_eq!(native.status.code(), Some(sandboxed.status));
    let n = normalize_strace(&String::from_utf8_lossy(&native.stderr));
    let s = normalize_strace(&String::from_utf8_lossy(&sandboxed.stderr));
    assert!(
        n.iter().any(|l| l.starts_with("execve(\"/usr/bin/tr\"")),
        "{n:#?}"
    );
    assert_eq!(n, s, "strace's view, native vs sandbox");
}

const DEBUGGEE: &str = r#"
#include <stdio.h>
static int square(int x)
{
	int y = x * x;
	return y;
}
int main(void)
{
	int total = 0;
	for (int i = 1; i <= 3; i++)
		total += square(i);
	printf("total %d\n", total);
	return 0;
}
"#;

const GDB_SCRIPT: &str = "set pagination off
break square
run
print x
next
next
print y
bt 1
continue
print x
delete
step
stepi
info registers rip
finish
continue
";

/// A static debuggee with debugging information, and the gdb script, in the run directory.
fn debuggee() -> (PathBuf, PathBuf) {
    let dir = run_dir().join("debuggers");
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let src = dir.join("debuggee.c");
    std::fs::write(&src, DEBUGGEE).expect("write the debuggee");
    let bin = dir.join("debuggee");
    let built = Command::new("gcc")
        .args(["-g", "-O0", "-static", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("run gcc");
    assert!(built.success(), "gcc failed");
    let script = dir.join("debuggee.gdb");
    std::fs::write(&script, GDB_SCRIPT).expect("write the gdb script");
    (bin, script)
}

/// gdb's output with the inferior's pid taken out.
fn normalize_gdb(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("(process ") {
            Some(i) => {
                let rest = &l[i + 9..];
                let end = rest.find(')').unwrap_or(rest.len());
                format!("{}(process PID{}", &l[..i], &rest[end..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn gdb_breaks_steps_and_prints() {
    if skip_without_kvm("gdb_breaks_steps_and_prints") {
        return;
    }
    if !Path::new(GDB).exists() {
        loud("SKIPPED: gdb is not installed on this host");
        return;
    }
    let (bin, script) = debuggee();
    let args = [
        "-batch".as_ref(),
        "-nx".as_ref(),
        "-x".as_ref(),
        script.as_os_str(),
        bin.as_os_str(),
    ];
    let native = Command::new(GDB)
        .args(args)
        .env_clear()
        .envs(fixed_env())
        .current_dir(run_dir())
        .output()
        .expect("run gdb");
    let mut cmd = runsc_do_command(Path::new(GDB), &args);
    let sandboxed = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(180))
        .expect("run gdb in the sandbox");
    let n = normalize_gdb(&String::from_utf8_lossy(&native.stdout));
    let s = normalize_gdb(&String::from_utf8_lossy(&sandboxed.stdout));
    assert!(n.contains("Breakpoint 1, square (x=1)"), "{n}");
    assert!(n.contains("Value returned is"), "{n}");
    assert_eq!(n, s, "gdb's session, native vs sandbox");
    // No warnings from gdb in the sandbox that natively it doesn't give.
    assert_eq!(
        String::from_utf8_lossy(&native.stderr),
        String::from_utf8_lossy(&sandboxed.stderr),
        "gdb's warnings"
    );
    assert_eq!(native.status.code(), Some(sandboxed.status));
}

/// Yama, scope 1, as an unprivileged user: a sibling may attach only while the target has
/// named any tracer with PR_SET_PTRACER; the parent always may.
const YAMA: &str = r#"#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

static int to_a[2], from_a[2];

static const char *res(long r) { return r == 0 ? "0" : errno == EPERM ? "EPERM" : strerror(errno); }

/* B: tries to attach to its sibling A. */
static void attacher(pid_t a, const char *what)
{
	pid_t b = fork();
	if (b == 0) {
		long r = ptrace(PTRACE_ATTACH, a, 0, 0);
		printf("%s: %s\n", what, res(r));
		fflush(stdout);
		if (r == 0) {
			int st;
			waitpid(a, &st, __WALL);
			ptrace(PTRACE_DETACH, a, 0, 0);
		}
		_exit(0);
	}
	int st;
	waitpid(b, &st, 0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	char scope[8] = "?";
	int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY);
	if (fd >= 0) { ssize_t n = read(fd, scope, sizeof scope - 1); scope[n > 0 ? n - 1 : 0] = 0; close(fd); }
	printf("scope %s\n", scope);
	if (setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) { printf("setuid failed\n"); return 1; }
	/* The change of ids made the process not dumpable, which only CAP_SYS_PTRACE gets
	 * past (and A, forked next, would inherit it): dumpable again, so that Yama decides. */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	if (pipe(to_a) || pipe(from_a)) return 1;
	pid_t a = fork();
	if (a == 0) {
		char c;
		close(to_a[1]);
		close(from_a[0]);
		while (read(to_a[0], &c, 1) == 1) {
			if (c == 'y') prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
			if (c == 'n') prctl(PR_SET_PTRACER, 0, 0, 0, 0);
			if (write(from_a[1], &c, 1) != 1) _exit(2);
		}
		_exit(0);
	}
	char c;
	attacher(a, "sibling attach");
	c = 'y'; write(to_a[1], &c, 1); read(from_a[0], &c, 1);
	attacher(a, "sibling attach after PR_SET_PTRACER_ANY");
	c = 'n'; write(to_a[1], &c, 1); read(from_a[0], &c, 1);
	attacher(a, "sibling attach after PR_SET_PTRACER 0");
	long r = ptrace(PTRACE_ATTACH, a, 0, 0);
	printf("parent attach: %s\n", res(r));
	if (r == 0) { int st; waitpid(a, &st, 0); ptrace(PTRACE_DETACH, a, 0, 0); }
	close(to_a[1]);
	int st;
	waitpid(a, &st, 0);
	printf("child exit %d\n", WEXITSTATUS(st));
	return 0;
}
"#;

#[test]
fn yama_scope_one_is_enforced() {
    if skip_without_kvm("yama_scope_one_is_enforced") {
        return;
    }
    let dir = run_dir().join("debuggers");
    std::fs::create_dir_all(&dir).expect("create the run directory");
    let src = dir.join("yama.c");
    std::fs::write(&src, YAMA).expect("write yama.c");
    let bin = dir.join("yama");
    let built = Command::new("gcc")
        .args(["-O2", "-static", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("run gcc");
    assert!(built.success(), "gcc failed");
    let mut cmd = runsc_do_command::<&str>(&bin, &[]);
    let out = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "scope 1\n\
         sibling attach: EPERM\n\
         sibling attach after PR_SET_PTRACER_ANY: 0\n\
         sibling attach after PR_SET_PTRACER 0: EPERM\n\
         parent attach: 0\n\
         child exit 0\n"
    );
    assert_eq!(out.status, 0);
}
