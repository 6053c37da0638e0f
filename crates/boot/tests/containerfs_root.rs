//! A sandbox whose root is a ContainerFS layer stack: a static program stored in a layer
//! runs, sees the merged tree (changed, whited-out and opaque entries, a symlink), maps its
//! own file, changes a layer file (copy-up keeping its identity), and execs itself.

use std::path::{Path, PathBuf};
use std::process::Command;

use fs::imgfs::fuzzing::tar_member;

fn run_layers() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_run_layers"))
}

#[test]
fn a_program_runs_from_a_layer_stack() {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        eprintln!("SKIPPED: no usable /dev/kvm");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let probe = tmp.path().join("probe");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/layers_probe.c");
    let cc = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&probe)
        .arg(&src)
        .status()
        .expect("gcc");
    assert!(cc.success());
    let elf = std::fs::read(&probe).unwrap();
    use tar::EntryType as T;
    let mut l0 = tar::Builder::new(Vec::new());
    tar_member(&mut l0, "bin/", T::Directory, 0o755, b"", "").unwrap();
    tar_member(&mut l0, "bin/probe", T::Regular, 0o755, &elf, "").unwrap();
    tar_member(&mut l0, "etc/", T::Directory, 0o755, b"", "").unwrap();
    tar_member(&mut l0, "etc/msg", T::Regular, 0o644, b"base", "").unwrap();
    tar_member(&mut l0, "etc/gone", T::Regular, 0o644, b"gone", "").unwrap();
    tar_member(&mut l0, "opt/", T::Directory, 0o755, b"", "").unwrap();
    tar_member(&mut l0, "opt/old", T::Regular, 0o644, b"old", "").unwrap();
    tar_member(&mut l0, "lib/", T::Directory, 0o755, b"", "").unwrap();
    tar_member(&mut l0, "lib/x", T::Regular, 0o644, b"x", "").unwrap();
    let mut l1 = tar::Builder::new(Vec::new());
    tar_member(&mut l1, "etc/", T::Directory, 0o755, b"", "").unwrap();
    tar_member(&mut l1, "etc/msg", T::Regular, 0o644, b"upper", "").unwrap();
    tar_member(&mut l1, "etc/.wh.gone", T::Regular, 0o644, b"", "").unwrap();
    tar_member(&mut l1, "opt/", T::Directory, 0o755, b"", "").unwrap();
    tar_member(&mut l1, "opt/.wh..wh..opq", T::Regular, 0o644, b"", "").unwrap();
    tar_member(&mut l1, "opt/new", T::Regular, 0o644, b"new", "").unwrap();
    tar_member(&mut l1, "lib", T::Symlink, 0o777, b"", "usr/lib").unwrap();
    let mut layers = Vec::new();
    for (i, t) in [l0, l1].into_iter().enumerate() {
        let out = tmp.path().join(format!("l{i}.img"));
        let bytes = t.into_inner().unwrap();
        fs::imgfs::build_from_tar(&bytes[..], "l.tar", &out, &Default::default(), None).unwrap();
        layers.push(out);
    }
    let index = tmp.path().join("index.cfs");
    let refs: Vec<&Path> = layers.iter().map(|p| p.as_path()).collect();
    fs::containerfs::write_index(&refs, &index).unwrap();

    let out = Command::new(run_layers())
        .arg(&index)
        .args(&layers)
        .args(["--", "/bin/probe"])
        .output()
        .expect("run_layers");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "/etc/msg: 5 \"upper\"\n\
         /etc/gone: absent\n\
         /opt/old: absent\n\
         /opt/new: 3 \"new\"\n\
         readlink /lib: 7 usr/lib\n\
         mmap self: ELF\n\
         append: 2\n\
         identity kept: file 1 dir 1\n\
         /etc/msg: 7 \"upper+w\"\n\
         unlink /opt/new: 0\n\
         /opt/new: absent\n\
         mkdir /proc exists: 1\n\
         child ran from the layer\n\
         child exit: 7\n",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0));
    // The layers were only read.
    assert!(fs::containerfs::ContainerFs::open(&layers, &index).is_ok());
}

#[test]
fn a_bad_index_is_refused_before_the_sandbox_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("bad.cfs");
    std::fs::write(&index, b"not an index").unwrap();
    let layer = tmp.path().join("l.img");
    std::fs::write(&layer, b"").unwrap();
    let out = Command::new(run_layers())
        .arg(&index)
        .arg(&layer)
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(
        stderr.contains("bad.cfs") && stderr.contains("too short"),
        "{stderr}"
    );
}
