//! Linux AIO with a real program (issue 15): `fio --ioengine=libaio`, natively and in the
//! sandbox, with verification of every block written and `userspace_reap`, which takes
//! completions straight from the ring io_setup mapped (so the ring must be a real mapping
//! the sentry fills). The differential semantics are the conformance program `aio`.

use std::process::Command;
use std::time::Duration;

use conformance::{loud, run_with_timeout, runsc_do_command, skip_without_kvm};

const FIO: &str = "/usr/bin/fio";

/// What must agree between the two runs: fio's error, and per direction the bytes moved
/// and the I/Os done (deterministic with `randrepeat`).
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    error: i64,
    read_bytes: i64,
    write_bytes: i64,
    read_ios: i64,
    write_ios: i64,
}

fn summary(json: &str) -> Summary {
    // fio may print notes before the JSON document.
    let start = json
        .find('{')
        .unwrap_or_else(|| panic!("no JSON in fio's output:\n{json}"));
    let v: serde_json::Value =
        serde_json::from_str(&json[start..]).unwrap_or_else(|e| panic!("fio's JSON: {e}\n{json}"));
    let job = &v["jobs"][0];
    let int = |p: &serde_json::Value| {
        p.as_i64()
            .unwrap_or_else(|| panic!("missing field in fio's JSON:\n{json}"))
    };
    Summary {
        error: int(&job["error"]),
        read_bytes: int(&job["read"]["io_bytes"]),
        write_bytes: int(&job["write"]["io_bytes"]),
        read_ios: int(&job["read"]["total_ios"]),
        write_ios: int(&job["write"]["total_ios"]),
    }
}

fn fio_args(file: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--name=aio",
        "--ioengine=libaio",
        "--iodepth=16",
        "--bs=4k",
        "--size=2m",
        "--direct=0",
        "--randrepeat=1",
        "--verify=crc32c",
        "--output-format=json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--filename={file}"));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_native(test: &str, args: &[String]) -> Summary {
    // One directory per test: the tests of this file run in parallel in one process.
    let dir = std::env::temp_dir().join(format!("{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = Command::new(FIO)
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("run fio");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "native fio failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    summary(&String::from_utf8_lossy(&out.stdout))
}

fn run_sandboxed(args: &[String]) -> Summary {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = runsc_do_command(std::path::Path::new(FIO), &argv);
    let out = run_with_timeout(
        &mut cmd,
        &conformance::Input::Null,
        Duration::from_secs(180),
    )
    .expect("run fio in the sandbox");
    assert_eq!(
        out.status,
        0,
        "fio in the sandbox failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    summary(&String::from_utf8_lossy(&out.stdout))
}

fn compare(test: &str, file_native: &str, file_sandbox: &str, extra: &[&str]) {
    if skip_without_kvm(test) {
        return;
    }
    if !std::path::Path::new(FIO).exists() {
        loud(&format!(
            "*** SKIPPED: {FIO} is missing: test `{test}` did NOT run (install fio) ***"
        ));
        return;
    }
    let native = run_native(test, &fio_args(file_native, extra));
    let sandboxed = run_sandboxed(&fio_args(file_sandbox, extra));
    assert_eq!(native.error, 0, "native fio reported an error: {native:?}");
    assert_eq!(sandboxed, native, "fio in the sandbox differs from native");
}

/// Random reads and writes at depth 16, every block verified, completions reaped from the
/// ring in user space.
#[test]
fn fio_libaio_randrw_userspace_reap() {
    let pid = std::process::id();
    compare(
        "fio_libaio_randrw_userspace_reap",
        &format!("aio-native-{pid}"),
        &format!("/tmp/aio-sandbox-{pid}"),
        &["--rw=randrw", "--userspace_reap=1"],
    );
}

/// Sequential writes with an fsync every 8 and reads back through io_getevents.
#[test]
fn fio_libaio_write_fsync_verify() {
    let pid = std::process::id();
    compare(
        "fio_libaio_write_fsync_verify",
        &format!("aio-native-fsync-{pid}"),
        &format!("/tmp/aio-sandbox-fsync-{pid}"),
        &["--rw=write", "--fsync=8"],
    );
}
