//! The C programs the benchmarks run, built statically on first use.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

pub struct Programs {
    pub syscall_loop: PathBuf,
    pub donothing: PathBuf,
}

fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("programs")
}

pub fn build_one(out_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let src = source_dir().join(format!("{name}.c"));
    let out = out_dir.join(name);
    let fresh = match (out.metadata(), src.metadata()) {
        (Ok(o), Ok(s)) => o.modified()? >= s.modified()?,
        _ => false,
    };
    if !fresh {
        let status = Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(&out)
            .arg(&src)
            .status()
            .context("running gcc (apt-get install gcc libc6-dev)")?;
        if !status.success() {
            bail!("gcc failed on {}", src.display());
        }
    }
    Ok(out)
}

/// Builds every benchmark program into `out_dir`.
pub fn build(out_dir: &Path) -> anyhow::Result<Programs> {
    std::fs::create_dir_all(out_dir)?;
    Ok(Programs {
        syscall_loop: build_one(out_dir, "syscall_loop")?,
        donothing: build_one(out_dir, "donothing")?,
    })
}
