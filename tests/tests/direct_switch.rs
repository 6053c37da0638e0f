//! The KVM platform's choice of PVM's direct switch: `runsc do --debug` says which path runs,
//! it is on by default where the host has it, `RUNSC_NO_DIRECT_SWITCH=1`
//! forces the exit path, and a program gives the same result either way.

use std::time::Duration;

use conformance::{build, run_with_timeout, runsc_do_command, skip_without_kvm, Input, Libc};

fn run(no_direct_switch: bool) -> (String, String, i32) {
    let prog = build("fault_contexts", Libc::Glibc);
    let mut cmd = runsc_do_command(&prog, &["regs"]);
    // `runsc do --debug`: the flag goes before the program.
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut with_debug = std::process::Command::new(cmd.get_program());
    with_debug.arg(&args[0]).arg("--debug").args(&args[1..]);
    with_debug.env_remove("RUNSC_NO_DIRECT_SWITCH");
    with_debug.env_remove("RUNSC_DIRECT_SWITCH");
    if no_direct_switch {
        with_debug.env("RUNSC_NO_DIRECT_SWITCH", "1");
    }
    cmd = with_debug;
    let out = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status,
    )
}

#[test]
fn the_log_names_the_path_and_both_paths_agree() {
    if skip_without_kvm("the_log_names_the_path_and_both_paths_agree") {
        return;
    }
    let (out_off, err_off, code_off) = run(true);
    assert!(
        err_off.contains("direct switch: off (RUNSC_NO_DIRECT_SWITCH is set)"),
        "stderr: {err_off}"
    );
    assert!(
        err_off.contains("exits (no direct switch)"),
        "stderr: {err_off}"
    );
    let (out_on, err_on, code_on) = run(false);
    // Whether the host has it depends on the host; the log must say either way.
    let on = err_on.contains("direct switch: on (self-test");
    assert!(
        on || err_on.contains("direct switch: off ("),
        "stderr: {err_on}"
    );
    if std::path::Path::new("/sys/module/kvm_pvm").exists() && !on {
        eprintln!("NOTE: PVM host without a usable direct switch: {err_on}");
    }
    assert_eq!(out_off, "registers across faults: ok\n");
    assert_eq!((out_on, code_on), (out_off, code_off));
}
