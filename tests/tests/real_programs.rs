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
    (
        "/bin/sh",
        &[
            "-c",
            "echo a | cat; (exit 3) || echo status $?; x=$(printf y); echo $x",
        ],
    ),
    ("/usr/bin/python3", &["-c", PYTHON]),
    ("/usr/bin/python3", &["-c", PYTHON_POOL]),
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
