//! Dynamically linked Debian programs from the host, run natively and under `runsc do`
//! with the same arguments: stdout and exit status must match. Programs missing on the host
//! are skipped loudly.

use std::path::Path;
use std::process::Command;

use conformance::{loud, run_with_timeout, runsc_do_command, skip_without_kvm, Input};

/// A bash script exercising pipelines, subshells, command substitution, traps,
/// redirections, `wait` and coreutils, in a private temporary directory.
const SHELL_SCRIPT: &str = r#"
set -e
d=$(mktemp -d /tmp/runsc-real-XXXXXX)
trap 'rm -rf "$d"' EXIT
cd "$d"
printf 'b\na\nc\n' > in.txt
sort in.txt | head -2 | tr '\n' ' '; echo
( cd / && pwd ); echo "sub=$(echo nested $(echo deeper))"
sleep 0.05 & sleep 0.05 & wait; echo waited
echo err 1>&2 2>/dev/null
mkdir -p a/b && echo x > a/b/f && cp -a a c && mv c e && ls -R e | tr '\n' ' '; echo
tar czf t.tgz a && rm -r a && tar xzf t.tgz && cat a/b/f
find . -type f -name f | sort | xargs cat
sha256sum in.txt | cut -c1-16
wc -l < in.txt
date +%Y-is-a-year | grep -c year
date -u -d @1700000000 '+%F %T %Z %A'
date -d '2024-02-29 12:34:56' '+%Y-%m-%d %H:%M:%S %j'
ls -la e/b | awk 'NR > 1 { print $1, $3, ($1 ~ /^d/ ? "dir" : $5), $NF }'
trap 'echo got USR1' USR1; kill -USR1 $$; echo after the trap
exec 3> fd3.txt; echo through fd 3 >&3; exec 3>&-; cat fd3.txt
cat <<END | tr a-z A-Z
here document $(echo with substitution)
END
{ echo grouped; echo to stderr >&2; } 2>/dev/null | wc -l
(sleep 0.05; exit 4) & p=$!; wait $p || echo "wait status $?"
diff <(printf 'a\nb\n') <(printf 'a\nc\n') | grep -c '^[<>]'
cat /dev/stdin <<< "a here string through /dev/stdin"
echo "a pipe through /dev/fd/0" | cat /dev/fd/0
exec 4< <(echo "process substitution held open"); read -r line < /dev/fd/4; echo "$line"
"#;

/// Busybox applets (a static binary) in a temporary tree, run by busybox's own shell.
const BUSYBOX_SCRIPT: &str = r#"
set -e
b=/bin/busybox
d=$($b mktemp -d /tmp/runsc-bb-XXXXXX)
trap '$b rm -rf "$d"' EXIT
cd "$d"
$b seq 1 20 | $b sort -rn | $b head -3 | $b tr '\n' ' '; echo
$b printf 'b\na\nc\na\n' > in.txt
$b wc -l < in.txt
$b sort -u in.txt | $b xargs echo sorted:
$b sed -n 's/a/A/p' in.txt
$b awk '{ n[$1]++ } END { for (k in n) s += n[k]; print "lines", s, NR }' in.txt
$b grep -c '[ab]' in.txt
$b mkdir -p t/x/y && echo hi > t/x/y/f && echo ho > t/g && $b chmod 640 t/g
$b cp -a t u && $b mv u v && $b find v | $b sort
$b ls -ln v | $b awk 'NR > 1 { print $1, $3, ($1 ~ /^d/ ? "dir" : $5), $NF }'
$b tar czf t.tgz t && $b rm -r t && $b tar xzf t.tgz && $b cat t/x/y/f t/g
$b gzip -c in.txt > in.gz && $b gzip -dc in.gz | $b sha256sum
$b seq 3 | $b xargs -n1 echo item
$b find . -name f -type f | $b sort | $b xargs $b cat
echo "sub $(echo $($b echo nested))"; ( cd / && $b pwd )
$b sleep 0.05 & $b sleep 0.05 & wait; echo waited
$b date -u -d @1700000000 '+%F %T'
"#;

/// A Python program using threads and subprocess.
const PYTHON: &str = r#"
import subprocess, threading
print(subprocess.run(["echo", "from subprocess"], capture_output=True, text=True).stdout.strip())
out = []
ts = [threading.Thread(target=lambda i=i: out.append(i * i)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sorted(out))
"#;

/// A multiprocessing pool: forked workers, pipes, and locks that are POSIX named semaphores
/// (futexes in a /dev/shm file that every worker maps).
const PYTHON_POOL: &str = r#"
import multiprocessing as m
def sq(x): return x*x
if __name__=="__main__":
  with m.Pool(2) as p: print(sum(p.map(sq, range(100))))
"#;

/// Python's pty module on the sandbox's own pseudo-terminals: a child on the slave as its
/// controlling terminal, a line typed through the master (echo, ICRNL, ONLCR), then ^C.
const PYTHON_PTY: &str = r#"
import os, pty, signal
pid, fd = pty.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    print("tty:", os.isatty(0), os.ttyname(0).startswith("/dev/pts/"), os.tcgetpgrp(0) == os.getpid())
    print("got", repr(input("name? ")), flush=True)
    input()
    os._exit(3)
out = b""
while not out.endswith(b"name? "):
    out += os.read(fd, 1024)
os.write(fd, b"bob\r")
while not out.endswith(b"'bob'\r\n"):
    out += os.read(fd, 1024)
os.write(fd, b"\x03")
while True:
    try:
        d = os.read(fd, 1024)
    except OSError:
        break
    if not d:
        break
    out += d
st = os.waitpid(pid, 0)[1]
print(repr(out), os.WIFSIGNALED(st) and os.WTERMSIG(st))
"#;

/// `tail -f` following a file through inotify: the writer waits until tail holds an inotify
/// descriptor (so the test fails by timeout if tail fell back to polling), appends two
/// lines and exits; `--pid` makes tail read what is left and exit after it.
const TAIL_F: &str = r#"
set -e
d=$(mktemp -d /tmp/runsc-tail-XXXXXX)
trap 'rm -rf "$d"' EXIT
cd "$d"
echo first > log
mkfifo go
( read t < go
  until ls -l /proc/$t/fd 2>/dev/null | grep -q inotify; do sleep 0.05; done
  echo second >> log; echo third >> log ) & w=$!
tail -f --pid=$w -s 0.1 log & t=$!
echo $t > go
wait $t; echo "tail status $?"
"#;

/// (program, arguments), each run natively and in the sandbox.
const CASES: &[(&str, &[&str])] = &[
    ("/bin/true", &[]),
    ("/bin/false", &[]),
    ("/bin/echo", &["hello", "dynamic", "world"]),
    ("/bin/ls", &["-la", "/etc/hostname", "/etc/debian_version"]),
    ("/bin/cat", &["/etc/debian_version"]),
    ("/usr/bin/sha256sum", &["/etc/debian_version"]),
    ("/usr/bin/wc", &["-c", "/etc/debian_version"]),
    ("/usr/bin/head", &["-c", "5", "/etc/debian_version"]),
    (
        "/bin/sh",
        &[
            "-c",
            "echo from dash; x=$((6*7)); echo $x; exec /bin/echo exec works",
        ],
    ),
    (
        "/bin/bash",
        &[
            "-c",
            "a=(1 2 3); echo ${#a[@]} ${a[2]}; [[ abc == a* ]] && echo glob",
        ],
    ),
    // libcap2-bin's capsh: the capability sets, bounding set, securebits and the
    // set*id fixups as a real program reads and changes them (issue 15).
    ("/usr/sbin/capsh", &["--print"]),
    ("/usr/sbin/capsh", &["--drop=cap_net_raw", "--print"]),
    ("/usr/sbin/capsh", &["--keep=1", "--uid=1000", "--print"]),
    ("/usr/sbin/capsh", &["--secbits=0x2f", "--print"]),
    (
        "/usr/sbin/capsh",
        &[
            "--caps=cap_chown,cap_setpcap+eip",
            "--addamb=cap_chown",
            "--print",
        ],
    ),
    ("/usr/sbin/capsh", &["--user=nobody", "--print"]),
    (
        "/usr/bin/perl",
        &["-e", "print join(',', map { $_ * 2 } 1..5), \"\\n\""],
    ),
    (
        "/usr/bin/python3",
        &[
            "-c",
            "import json, hashlib; print(json.dumps({'k': hashlib.sha256(b'x').hexdigest()[:8]}))",
        ],
    ),
    ("/usr/bin/env", &["-i", "A=1", "/usr/bin/printenv", "A"]),
    ("/bin/bash", &["-c", SHELL_SCRIPT]),
    ("/bin/sh", &["-c", SHELL_SCRIPT]),
    ("/bin/busybox", &["sh", "-c", BUSYBOX_SCRIPT]),
    (
        "/bin/sh",
        &[
            "-c",
            "echo a | cat; (exit 3) || echo status $?; x=$(printf y); echo $x",
        ],
    ),
    ("/usr/bin/python3", &["-c", PYTHON]),
    ("/bin/sh", &["-c", TAIL_F]),
    ("/usr/bin/python3", &["-c", PYTHON_POOL]),
    ("/usr/bin/python3", &["-c", PYTHON_PTY]),
    (
        "/usr/bin/script",
        &[
            "-qc",
            "tty | cut -c1-9; stty size; stty -a | head -1; echo hi",
            "/dev/null",
        ],
    ),
    (
        "/usr/bin/perl",
        &[
            "-e",
            "my $p = fork; if ($p == 0) { exit 7 } waitpid($p, 0); print $? >> 8, \"\\n\"",
        ],
    ),
];

#[test]
fn debian_programs_match_native() {
    if skip_without_kvm("debian_programs_match_native") {
        return;
    }
    let mut failures = Vec::new();
    for (prog, args) in CASES {
        if !Path::new(prog).exists() {
            loud(&format!("SKIPPED: {prog} is not installed on this host"));
            continue;
        }
        let native = Command::new(prog)
            .args(*args)
            .output()
            .expect("run natively");
        let mut cmd = runsc_do_command(Path::new(prog), args);
        let sandboxed =
            match run_with_timeout(&mut cmd, &Input::Null, std::time::Duration::from_secs(60)) {
                Ok(o) => o,
                Err(e) => {
                    failures.push(format!("{prog} {args:?}: {e}"));
                    continue;
                }
            };
        let native_status = native.status.code().unwrap_or(-1);
        if native.stdout != sandboxed.stdout || native_status != sandboxed.status {
            failures.push(format!(
                "{prog} {args:?}: native {native_status} {:?}, sandbox {} {:?} (stderr {:?})",
                String::from_utf8_lossy(&native.stdout),
                sandboxed.status,
                String::from_utf8_lossy(&sandboxed.stdout),
                String::from_utf8_lossy(&sandboxed.stderr),
            ));
        }
    }
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
}

/// `> /dev/stdout` and `> /dev/stderr` when `runsc do`'s standard streams are host files (a
/// shell's O_CREAT|O_TRUNC open through /proc/self/fd): the writes reach those files, as
/// natively, and the command succeeds. The truncation asked for was EPERM, which failed the
/// redirection. (Only the reopened descriptors write: the sandbox shares the host file's
/// offset with the original descriptor where Linux gives the reopen its own, so a write
/// through the original one afterwards lands elsewhere than natively.)
#[test]
fn dev_stdout_and_stderr_reach_host_files() {
    let name = "dev_stdout_and_stderr_reach_host_files";
    if skip_without_kvm(name) {
        return;
    }
    let dir = conformance::ScratchDir::new("devstd");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let status = Command::new(conformance::runsc_path())
        .args(["do", "--", "/bin/sh", "-c"])
        .arg("echo to stdout > /dev/stdout && echo to stderr > /dev/stderr")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).expect("create out"))
        .stderr(std::fs::File::create(&err).expect("create err"))
        .status()
        .expect("run runsc");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(status.success(), "{status:?}: {}", read(&err));
    assert_eq!(read(&out), "to stdout\n");
    assert_eq!(read(&err), "to stderr\n");
}
