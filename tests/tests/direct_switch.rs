//! The KVM platform's choice of PVM's direct switch: `runsc do --debug` says which path runs,
//! it is on by default where the host has it, `RUNSC_NO_DIRECT_SWITCH=1`
//! forces the exit path, and a program gives the same result either way. And the cache of
//! the start-up self-tests' answers (`platform::kvm::selftest_cache`): used when its key
//! matches, ignored (the self-tests run again and it is rewritten) when it does not, when it
//! is damaged or when others may write it, and left alone with `RUNSC_NO_SELFTEST_CACHE=1`.

use std::time::Duration;

use conformance::{build, run_with_timeout, runsc_do_command, skip_without_kvm, Input, Libc};

fn run(no_direct_switch: bool) -> (String, String, i32) {
    // The self-tests run: their answers are what this test is about, not a cache's.
    run_with(no_direct_switch, &[("RUNSC_NO_SELFTEST_CACHE", "1")])
}

fn run_with(no_direct_switch: bool, env: &[(&str, &str)]) -> (String, String, i32) {
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
    with_debug.envs(env.iter().copied());
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

/// The lines of a `runsc do --debug` log about the self-tests and the cache.
fn selftest_lines(err: &str) -> Vec<String> {
    err.lines()
        .filter(|l| {
            l.contains("syscall entry: ")
                || l.contains("direct switch: ")
                || l.contains("self-test cache: ")
        })
        .map(String::from)
        .collect()
}

/// A cache file's text without the CPUID entries' values (their leaf and subleaf kept):
/// KVM_GET_SUPPORTED_CPUID passes the host CPU's APIC ID through (leaf 1 EBX, leaf 0xb EDX),
/// so two queries on different CPUs differ there.
fn shape(text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .map(|(i, l)| match i {
            0..=4 => l.to_string(),
            _ => l.split(' ').take(2).collect::<Vec<_>>().join(" "),
        })
        .collect()
}

#[test]
fn the_self_tests_answers_are_cached_until_the_key_changes() {
    use std::os::unix::fs::PermissionsExt;
    if skip_without_kvm("the_self_tests_answers_are_cached_until_the_key_changes") {
        return;
    }
    let dir = conformance::ScratchDir::new("selftest-cache");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    // The one file a run leaves there: kvm-selftest-HASH (of the key).
    let find_file = || {
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| n.starts_with("kvm-selftest-"))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        dir.path().join(&names[0])
    };
    let dir_env = dir.path().to_str().unwrap().to_string();
    let env = [("RUNSC_SELFTEST_CACHE_DIR", dir_env.as_str())];
    let expected = "registers across faults: ok\n";

    // No file yet: the self-tests run and their answers are stored.
    let (out, err, code) = run_with(false, &env);
    assert_eq!((out.as_str(), code), (expected, 0), "stderr: {err}");
    assert!(err.contains("self-test cache: no cache file yet"), "{err}");
    let lines = selftest_lines(&err);
    assert!(lines.iter().all(|l| !l.contains("(cached")), "{lines:#?}");
    let file = find_file();
    let stored = std::fs::read_to_string(&file).expect("the cache file was written");
    let entry = if err.contains("syscall entry: Ring0") {
        "entry ring0"
    } else {
        "entry user-trampoline"
    };
    assert!(stored.contains(&format!("\n{entry}\n")), "{stored}");
    let ds_on = err.contains("direct switch: on (self-test");
    let ds_line = stored.lines().nth(3).unwrap_or_default().to_string();
    assert_eq!(ds_line == "direct-switch on", ds_on, "{stored}");

    // The same host, boot and binary: the stored answers, and the same choice.
    let (out, err, code) = run_with(false, &env);
    assert_eq!((out.as_str(), code), (expected, 0), "stderr: {err}");
    assert!(err.contains("(cached)"), "{:#?}", selftest_lines(&err));
    if ds_on {
        assert!(
            err.contains("direct switch: on (cached self-test answer)"),
            "{:#?}",
            selftest_lines(&err)
        );
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), stored);

    // The host's CPUID as KVM supports it is cached too: a program sees the same CPUID
    // (features, XSAVE sizes) from the cached list as from KVM.
    assert!(stored.contains("\ncpuid "), "{stored}");
    let fpu = build("fpu", Libc::Glibc);
    let fpu_run = |cache: &[(&str, &str)]| {
        let mut cmd = runsc_do_command::<&str>(&fpu, &[]);
        cmd.envs(cache.iter().copied());
        let out = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            out.status,
        )
    };
    let uncached = fpu_run(&[("RUNSC_NO_SELFTEST_CACHE", "1")]);
    assert_eq!(uncached.1, 0, "{}", uncached.0);
    assert_eq!(fpu_run(&env), uncached);

    // A file whose key differs (made on another boot, or planted), one damaged, one others
    // may write, and a symlink: the self-tests run again and the file is rewritten with this
    // run's key.
    let other_boot = stored.replacen("key boot=", "key boot=0", 1);
    let lying = stored.replacen(entry, "entry something-else", 1);
    let cases: [(&str, &dyn Fn()); 4] = [
        ("made on another boot", &|| {
            std::fs::write(&file, &other_boot).unwrap()
        }),
        ("bad entry line", &|| std::fs::write(&file, &lying).unwrap()),
        ("writable by others", &|| {
            std::fs::write(&file, &stored).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        }),
        ("symbolic links", &|| {
            let target = dir.path().join("elsewhere");
            std::fs::write(&target, &stored).unwrap();
            std::fs::remove_file(&file).unwrap();
            std::os::unix::fs::symlink(&target, &file).unwrap();
        }),
    ];
    for (why, make) in cases {
        make();
        let (out, err, code) = run_with(false, &env);
        assert_eq!((out.as_str(), code), (expected, 0), "{why}: stderr: {err}");
        let lines = selftest_lines(&err);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("self-test cache: ") && l.contains(why)),
            "{why}: {lines:#?}"
        );
        assert!(
            lines.iter().all(|l| !l.contains("(cached")),
            "{why}: {lines:#?}"
        );
        assert_eq!(find_file(), file, "{why}");
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(meta.is_file(), "{why}: not replaced by a file");
        assert_eq!(meta.permissions().mode() & 0o022, 0, "{why}");
        assert_eq!(
            shape(&std::fs::read_to_string(&file).unwrap()),
            shape(&stored),
            "{why}"
        );
    }

    // RUNSC_NO_SELFTEST_CACHE: neither read nor written.
    std::fs::write(&file, &other_boot).unwrap();
    let mut off = env.to_vec();
    off.push(("RUNSC_NO_SELFTEST_CACHE", "1"));
    let (out, err, code) = run_with(false, &off);
    assert_eq!((out.as_str(), code), (expected, 0), "stderr: {err}");
    assert!(
        err.contains("self-test cache: off (RUNSC_NO_SELFTEST_CACHE is set)"),
        "{:#?}",
        selftest_lines(&err)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), other_boot);
}
