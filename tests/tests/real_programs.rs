//! Dynamically linked Debian programs from the host, run natively and under `runsc do`
//! with the same arguments: stdout and exit status must match. Programs missing on the host
//! are skipped loudly.

use std::path::Path;
use std::process::Command;

use conformance::{loud, run_with_timeout, runsc_do_command, skip_without_kvm, Input};

/// (program, arguments). Only what a single process can do: no fork yet.
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
