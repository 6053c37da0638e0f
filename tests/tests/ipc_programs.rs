//! System V IPC and POSIX message queues with real programs (issue 15): util-linux's
//! `ipcmk`, `ipcs` and `ipcrm` in the sandbox (which read /proc/sysvipc and
//! /proc/sys/kernel), and python's `multiprocessing.shared_memory` across processes. The
//! differential semantics are the conformance programs sysv_shm, sysv_msg, sysv_sem and
//! posix_mq. Nothing here touches the host's IPC namespace: the native runs only read.

use std::process::Command;
use std::time::Duration;

use conformance::{diff_lines, loud, run_with_timeout, runsc_do_command, skip_without_kvm};

const IPCS: &str = "/usr/bin/ipcs";
const PYTHON: &str = "/usr/bin/python3";

fn sandbox(args: &[&str]) -> (i32, String, String) {
    let mut cmd = runsc_do_command(std::path::Path::new(args[0]), &args[1..]);
    let out = run_with_timeout(
        &mut cmd,
        &conformance::Input::Null,
        Duration::from_secs(120),
    )
    .unwrap_or_else(|e| panic!("running {args:?} in the sandbox: {e}"));
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn have(path: &str, test: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    loud(&format!(
        "*** SKIPPED: {path} is missing: test `{test}` did NOT run (install util-linux / python3) ***"
    ));
    false
}

/// `ipcs -l` reads the limits from /proc/sys/kernel: the sandbox's are Linux's defaults, the
/// same as this host's unless someone changed them.
#[test]
fn ipcs_limits_match_native() {
    if skip_without_kvm("ipcs_limits_match_native") || !have(IPCS, "ipcs_limits_match_native") {
        return;
    }
    let native = Command::new(IPCS).arg("-l").output().expect("ipcs -l");
    let native = String::from_utf8_lossy(&native.stdout).into_owned();
    let defaults = ["32000", "8192", "16384", "4096"]
        .iter()
        .all(|v| native.contains(v));
    if !defaults {
        loud("*** SKIPPED: this host's IPC limits are not Linux's defaults: ipcs -l not compared ***");
        return;
    }
    let (status, out, err) = sandbox(&[IPCS, "-l"]);
    assert_eq!(status, 0, "ipcs -l in the sandbox failed: {err}");
    assert_eq!(
        out,
        native,
        "ipcs -l differs:\n{}",
        diff_lines(&native, &out)
    );
}

/// Objects made by ipcmk show in ipcs with their sizes, owners and modes, and ipcrm removes
/// them all.
#[test]
fn ipcmk_ipcs_ipcrm() {
    if skip_without_kvm("ipcmk_ipcs_ipcrm") || !have(IPCS, "ipcmk_ipcs_ipcrm") {
        return;
    }
    let script = "ipcmk -M 8192 -p 0640 >/dev/null && ipcmk -Q -p 0600 >/dev/null && \
                  ipcmk -S 3 >/dev/null && \
                  echo '--- ipcs'; ipcs | sed -E 's/^0x[0-9a-f]+ +[0-9]+ +/KEY ID /'; \
                  echo '--- ipcs -u'; ipcs -u; \
                  ipcrm -a && echo '--- after ipcrm -a'; ipcs";
    let (status, out, err) = sandbox(&["/bin/sh", "-c", script]);
    assert_eq!(status, 0, "the script failed: {err}\n{out}");
    let (made, rest) = out.split_once("--- ipcs -u").expect("sections");
    let (usage, after) = rest.split_once("--- after ipcrm -a").expect("sections");
    let rows: Vec<&str> = made.lines().filter(|l| l.starts_with("KEY ID")).collect();
    assert_eq!(rows.len(), 3, "three objects expected in:\n{made}");
    let fields = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    // Message queue: owner perms used-bytes messages.
    let q = fields(rows[0]);
    assert_eq!(&q[3..], ["600", "0", "0"], "queue row: {}", rows[0]);
    // Shared memory: owner perms bytes nattch (status empty).
    let m = fields(rows[1]);
    assert_eq!(&m[3..], ["640", "8192", "0"], "segment row: {}", rows[1]);
    // Semaphores: owner perms nsems.
    let s = fields(rows[2]);
    assert_eq!(&s[3..], ["644", "3"], "semaphore row: {}", rows[2]);
    assert!(
        usage.contains("allocated queues = 1")
            && usage.contains("segments allocated 1")
            && usage.contains("used arrays = 1")
            && usage.contains("allocated semaphores = 3"),
        "ipcs -u:\n{usage}"
    );
    assert!(
        !after.lines().any(|l| l.starts_with("0x")),
        "objects left after ipcrm -a:\n{after}"
    );
}

/// python's multiprocessing.shared_memory (POSIX shared memory under /dev/shm) between a
/// parent and children, with a multiprocessing lock (a named POSIX semaphore): the same
/// output natively and in the sandbox.
#[test]
fn python_shared_memory() {
    if skip_without_kvm("python_shared_memory") || !have(PYTHON, "python_shared_memory") {
        return;
    }
    let program = r#"
import multiprocessing as mp
from multiprocessing import shared_memory

def child(name, i, lock):
    shm = shared_memory.SharedMemory(name=name)
    with lock:
        shm.buf[i] = i * 3
        shm.buf[100] += 1
    shm.close()

if __name__ == "__main__":
    mp.set_start_method("fork")
    shm = shared_memory.SharedMemory(create=True, size=4096)
    lock = mp.Lock()
    procs = [mp.Process(target=child, args=(shm.name, i, lock)) for i in range(1, 9)]
    for p in procs: p.start()
    for p in procs: p.join()
    print("exit codes", [p.exitcode for p in procs])
    print("values", list(shm.buf[1:9]), "count", shm.buf[100])
    print("size at least 4096:", shm.size >= 4096)
    shm.close()
    shm.unlink()
    try:
        shared_memory.SharedMemory(name=shm.name)
    except FileNotFoundError:
        print("unlinked")
"#;
    let native = Command::new(PYTHON)
        .args(["-c", program])
        .output()
        .expect("python natively");
    let native_out = String::from_utf8_lossy(&native.stdout).into_owned();
    if !native.status.success() {
        loud(&format!(
            "*** SKIPPED: python's shared_memory fails natively here: python_shared_memory did NOT run ({}) ***",
            String::from_utf8_lossy(&native.stderr)
        ));
        return;
    }
    let (status, out, err) = sandbox(&[PYTHON, "-c", program]);
    assert_eq!(status, 0, "python in the sandbox failed: {err}\n{out}");
    assert_eq!(out, native_out, "{}", diff_lines(&native_out, &out));
}

/// /dev/mqueue lists the sandbox's POSIX message queues, and reading one gives Linux's
/// status line (sandbox only: this host has no mqueue mounted to compare with).
#[test]
fn dev_mqueue_lists_queues() {
    if skip_without_kvm("dev_mqueue_lists_queues") {
        return;
    }
    let dir = conformance::ScratchDir::new("dev-mqueue");
    let src = dir.file(
        "mqls.c",
        br#"#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
	struct mq_attr a = {0, 4, 128, 0};
	mqd_t q = mq_open("/listed-queue", O_RDWR | O_CREAT, 0640, &a);
	if (q == (mqd_t)-1 || mq_send(q, "hello", 5, 1) || mq_send(q, "there!", 6, 2)) return 1;
	fflush(stdout);
	if (system("ls /dev/mqueue && cat /dev/mqueue/listed-queue && grep -c ' /dev/mqueue mqueue ' /proc/mounts")) return 2;
	mq_unlink("/listed-queue");
	fflush(stdout);
	return system("ls /dev/mqueue | wc -l") ? 3 : 0;
}
"#,
        0o644,
    );
    let prog = dir.path().join("mqls");
    let gcc = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&prog)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(gcc.success(), "gcc failed");
    let prog = prog.to_str().expect("utf-8 path").to_owned();
    let (status, out, err) = sandbox(&[&prog]);
    assert_eq!(status, 0, "{err}\n{out}");
    assert_eq!(
        out,
        "listed-queue\nQSIZE:11         NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n1\n0\n"
    );
}

/// Where Debian's PostgreSQL keeps its programs (/usr/lib/postgresql/VERSION/bin), if it
/// is installed.
fn pg_bin() -> Option<String> {
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|b| b.display().to_string())
}

/// A PostgreSQL cluster's life as an unprivileged user (initdb refuses root): initdb, a
/// server on a Unix socket only, SQL through psql, pgbench's tables and 100 transactions
/// from two clients, a fast shutdown. The server uses System V and POSIX shared memory,
/// semaphores in shared memory, fork, signals, fsync and sync_file_range.
const PG_SCRIPT: &str = r#"set -e
B=PG_BIN
D=$(mktemp -d /tmp/pgdata.XXXXXX)
$B/initdb -D $D/data -A trust -U postgres --no-sync >$D/initdb.log 2>&1 || { echo "initdb failed"; tail -5 $D/initdb.log; exit 1; }
echo initdb ok
$B/pg_ctl -D $D/data -o "-k $D -c listen_addresses= -c dynamic_shared_memory_type=posix" -l $D/server.log -w -t 120 start >/dev/null || { echo "start failed"; tail -20 $D/server.log; exit 1; }
$B/psql -h $D -U postgres -At -c "create table t(x int); insert into t select generate_series(1,1000); select count(*), sum(x) from t;" postgres
$B/pgbench -h $D -U postgres -i -q postgres >/dev/null 2>&1 && echo pgbench init ok
$B/pgbench -h $D -U postgres -t 50 -c 2 -j 2 postgres 2>&1 | grep -E "^number of transactions actually processed"
$B/pg_ctl -D $D/data -m fast -w stop >/dev/null
echo stopped
rm -rf $D
"#;

/// PostgreSQL (issue 15 item 7) runs in the sandbox as natively. The native run is in an IPC
/// namespace of its own (`unshare --ipc`), so the host's System V objects are never touched.
#[test]
fn postgresql_cluster_runs_as_natively() {
    let test = "postgresql_cluster_runs_as_natively";
    let bin = pg_bin().unwrap_or_else(|| "/usr/lib/postgresql/VERSION/bin".into());
    if skip_without_kvm(test)
        || !have(&format!("{bin}/initdb"), test)
        || !have("/usr/bin/setpriv", test)
        || !have("/usr/bin/unshare", test)
    {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        loud(&format!(
            "*** SKIPPED: `{test}` runs the cluster as uid 1000 through setpriv, which needs root: did NOT run ***"
        ));
        return;
    }
    let script = PG_SCRIPT.replace("PG_BIN", &bin);
    let as_user = [
        "/usr/bin/setpriv",
        "--reuid",
        "1000",
        "--regid",
        "1000",
        "--clear-groups",
        "/bin/bash",
        "-c",
        &script,
    ];
    let mut native = Command::new("/usr/bin/unshare");
    native.arg("--ipc").args(as_user);
    let native = run_with_timeout(
        &mut native,
        &conformance::Input::Null,
        Duration::from_secs(300),
    )
    .expect("native PostgreSQL run");
    assert_eq!(
        native.status,
        0,
        "natively: {}",
        String::from_utf8_lossy(&native.stdout)
    );
    let native = String::from_utf8_lossy(&native.stdout).into_owned();
    let mut cmd = runsc_do_command(std::path::Path::new(as_user[0]), &as_user[1..]);
    let out = run_with_timeout(
        &mut cmd,
        &conformance::Input::Null,
        Duration::from_secs(600),
    )
    .unwrap_or_else(|e| panic!("running PostgreSQL in the sandbox: {e}"));
    let sandbox = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        (out.status, sandbox.as_str()),
        (0, native.as_str()),
        "PostgreSQL in the sandbox differs:\n{}\nstderr: {}",
        diff_lines(&native, &sandbox),
        String::from_utf8_lossy(&out.stderr)
    );
}
