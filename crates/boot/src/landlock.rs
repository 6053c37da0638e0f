//! The sentry's Landlock ruleset (issue 13, defense in depth): the host files it may still
//! open once the sandbox is built.
//!
//! The sentry holds every host file it needs as a descriptor taken before the sandbox
//! starts (the root or rootfs directory, bind-mount sources, images, /dev/kvm, the standard
//! streams, the log, the control socket), and then lives in an empty root
//! (`crate::confine`). But it may run as host root with CAP_DAC_OVERRIDE and friends
//! (`crate::caps::KEPT`, which hostfs volumes need), so a compromised sentry could still
//! walk out of a held directory: `openat(rootfs_fd, "../../etc/shadow")`, or
//! `/proc/self/fd/N/..`. Landlock closes that in the kernel, whatever the uid and the
//! capabilities: once [`restrict`] has run, a path the sentry opens must lie beneath one of
//! the trees the sandbox was given, with the rights it was given there:
//!
//! - every live hostfs root (`fs::hostfs::live_roots`: the host root or the bundle's
//!   rootfs, each bind-mount source, directory or file): read-only ones may be read and
//!   listed; writable ones (rw volumes and binds) may also be written, truncated, and have
//!   files, directories, symlinks, fifos and sockets made, removed, renamed and linked in
//!   them. Never execution (the sentry never runs a host program; its seccomp filter has no
//!   execve), nor device nodes (hostfs never makes or opens one);
//! - its own /proc (read): /proc/cpuinfo, /proc/net/*, /proc/sys/net/* and hostfs's reopens
//!   through `/proc/self/fd/N` (whose target must itself be in a tree above).
//!
//! What this adds to the pivot: `..` of a tree that is a mount's root (Docker's overlay
//! rootfs) already stays in it, since the pivot detached the old root's mounts; but a tree
//! that is a plain directory (a volume or bind source, an OCI rootfs that is a directory)
//! has its parents in the same detached mount, reachable by `..`, and so has any other
//! directory the sentry holds a descriptor of. Landlock refuses those.
//!
//! Rules are made from the held descriptors, so no host path is looked up again. Images,
//! /dev/kvm, the streams, the log and the control socket need no rule: Landlock checks a
//! file when it is opened, and those are open already and never opened again.
//!
//! Every file-system right of the newest Landlock ABI this crate knows is handled, and
//! abstract unix sockets and signals are scoped to the sandbox (nothing the sentry does
//! needs either outward: it signals only its own threads, and `runsc do`'s waiting parent
//! signalling the sentry is inward). With `CompatLevel::BestEffort` an older kernel gets
//! what it supports; a kernel without Landlock gets a warning, once, and the sandbox runs
//! (as it does where the host refuses namespaces). TCP ports are not restricted: guests
//! connect anywhere.
//!
//! Landlock domains are per thread on kernels before ABI 8 (`all_threads` is asked for and
//! dropped there), so [`restrict`] runs before the sentry starts any thread; threads
//! started later inherit the domain.
//!
//! `--landlock=off` or `RUNSC_NO_LANDLOCK=1` turns it off (to debug, or to measure it).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};

use ::landlock::{
    make_bitflags, Access, AccessFs, BitFlags, CompatLevel, Compatible, LandlockStatus,
    PathBeneath, RestrictSelfAttr, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, ABI,
};

/// Set to 1 to run the sentry without its Landlock ruleset.
pub const DISABLE_ENV: &str = "RUNSC_NO_LANDLOCK";

/// Makes the sentry try, right after [`restrict`], host opens relative to the directory
/// trees it was given, and write one line per try to stderr (`runsc: landlock self-test:
/// TREE OP:PATH -> ok`, `-> ok (the tree itself)` or `-> errno N`); tests check that what
/// lies outside is refused.
/// `DIR OP:PATH[,OP:PATH...]`: the tries are made in each tree whose host path is beneath
/// DIR (a test's own scratch directory, so that nothing else is touched even if a try that
/// should fail succeeds); OP is `read` (open for reading), `write` (open for writing,
/// created if missing) or `proc` (open for reading through the tree's `/proc/self/fd/N`),
/// PATH relative to the tree. Only the host user who starts runsc can ask for it; the guest
/// can't.
pub const SELFTEST_ENV: &str = "RUNSC_LANDLOCK_SELFTEST";

/// The newest ABI whose rights we ask for; older kernels get what they support.
const ABI_ASKED: ABI = ABI::V10;

/// Whether the sentry restricts itself (`--landlock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Enforce,
    Off,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "off" => Ok(Mode::Off),
            _ => Err(format!("unknown landlock mode {s:?} (enforce or off)")),
        }
    }
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Sets the mode from `--landlock` (once, in `main`; the default is [`Mode::Enforce`]).
pub fn set_mode(mode: Mode) {
    let _ = MODE.set(mode);
}

fn enabled() -> bool {
    let env_off = platform::env_flag(DISABLE_ENV);
    !env_off && MODE.get().copied().unwrap_or(Mode::Enforce) == Mode::Enforce
}

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("the sentry's Landlock ruleset: {0}")]
    Ruleset(#[from] ::landlock::RulesetError),
    #[error("the sentry's Landlock ruleset: {what}: {source}")]
    Tree {
        what: String,
        source: std::io::Error,
    },
    #[error(
        "the sentry's Landlock ruleset: threads {0} existed when it was applied, and this \
         kernel restricts only the calling thread and the threads it starts later: a \
         start-up order bug (restrict before starting any thread)"
    )]
    Threads(String),
}

/// Read-only trees: open files for reading, list directories.
fn read_rights() -> BitFlags<AccessFs> {
    make_bitflags!(AccessFs::{ReadFile | ReadDir})
}

/// Writable trees: every right but execution, device nodes and device ioctls, which the
/// sentry never needs on a host file.
fn write_rights() -> BitFlags<AccessFs> {
    AccessFs::from_all(ABI_ASKED)
        & !make_bitflags!(AccessFs::{Execute | MakeChar | MakeBlock | IoctlDev})
}

/// A tree the sandbox may reach, and how.
struct Tree {
    fd: Arc<OwnedFd>,
    /// For messages: the host path it was opened from.
    what: String,
    directory: bool,
    access: BitFlags<AccessFs>,
}

/// The trees of the ruleset: the live hostfs roots, then the sentry's /proc.
fn trees() -> Result<Vec<Tree>, LandlockError> {
    let mut trees: Vec<Tree> = fs::hostfs::live_roots()
        .into_iter()
        .map(|r| Tree {
            fd: r.fd,
            what: r.path.display().to_string(),
            directory: r.directory,
            access: if r.writable {
                write_rights()
            } else {
                read_rights()
            },
        })
        .collect();
    // The sentry's own procfs after the pivot (the host's when it kept the host's root),
    // looked up in its own root.
    // SAFETY: a NUL-terminated path; the descriptor is owned right away.
    let raw = unsafe {
        libc::open(
            c"/proc".as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(LandlockError::Tree {
            what: "/proc".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    trees.push(Tree {
        // SAFETY: open returned a new descriptor that nothing else owns.
        fd: Arc::new(unsafe { OwnedFd::from_raw_fd(raw) }),
        what: "/proc".into(),
        directory: true,
        access: read_rights(),
    });
    Ok(trees)
}

/// Restricts the calling thread (and the threads it starts later) to the trees the sandbox
/// was given. Call once the sandbox's host files are open and the root is pivoted, before
/// any other thread starts and before the seccomp filter (which has no Landlock calls).
/// Returns whether a ruleset was enforced (fully or partly).
pub fn restrict() -> Result<bool, LandlockError> {
    if !enabled() {
        tracing::debug!("landlock: off");
        // The same tries, so that a test sees them succeed when the ruleset is off.
        if let Some(test) = std::env::var_os(SELFTEST_ENV) {
            self_test(&trees()?, &test.to_string_lossy());
        }
        return Ok(false);
    }
    let start = std::time::Instant::now();
    let threads = thread_names();
    let trees = trees()?;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(ABI_ASKED))?
        .scope(Scope::from_all(ABI_ASKED))?
        .create()?
        // ABI 8: every thread at once; dropped before (hence restrict before threads).
        .all_threads(true)?;
    for t in &trees {
        // A file takes only a file's rights (a directory's would be EINVAL).
        let access = if t.directory {
            t.access
        } else {
            t.access & AccessFs::from_file(ABI_ASKED)
        };
        tracing::debug!("landlock: {} beneath {}", describe(access), t.what);
        ruleset = ruleset.add_rule(PathBeneath::new(t.fd.as_fd(), access))?;
    }
    let status = ruleset.restrict_self()?;
    report(&status, trees.len(), start.elapsed());
    if threads.len() > 1 && !status.all_threads && status.ruleset != RulesetStatus::NotEnforced {
        // A thread that existed before is not restricted on a kernel without ABI 8: refuse
        // to run half confined rather than warn (a warning let such a regression through).
        return Err(LandlockError::Threads(threads.join(", ")));
    }
    let enforced = status.ruleset != RulesetStatus::NotEnforced;
    if let Some(test) = std::env::var_os(SELFTEST_ENV) {
        self_test(&trees, &test.to_string_lossy());
    }
    Ok(enforced)
}

/// The names of this process's threads that run user code (`/proc/self/task/*/comm`).
/// Kernel workers attached to the process are left out: KVM's per-VM
/// `kvm-nx-lpage-recovery` is one (PF_USER_WORKER in the task's flags); they never run the
/// sentry's code, so Landlock has nothing to restrict in them. So are threads that have
/// ended: one just joined (the VM's set-up thread) can still be listed for a moment, with
/// its stat unreadable or its state X (dead) or Z; the full suite saw that 2 times in 512
/// runs of `runsc do`. pthread_join returns when the kernel clears the thread's tid, in
/// exit_mm, before exit_notify: such a thread can still show state R or D, with
/// PF_EXITING (set in exit_signals, before exit_mm) in its flags; it runs no more user
/// code either.
pub(crate) fn thread_names() -> Vec<String> {
    const PF_EXITING: u64 = 0x4;
    const PF_USER_WORKER: u64 = 0x4000;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|t| {
            let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                return false;
            };
            // The state is the 3rd field and the flags the 9th, after the parenthesised
            // name (which may hold spaces).
            let mut rest = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace())
                .into_iter()
                .flatten();
            let state = rest.next().unwrap_or("");
            let flags = rest.nth(5).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
            !matches!(state, "X" | "x" | "Z") && flags & (PF_EXITING | PF_USER_WORKER) == 0
        })
        .map(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| t.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

fn describe(access: BitFlags<AccessFs>) -> &'static str {
    if access.contains(AccessFs::WriteFile) {
        "read-write"
    } else {
        "read-only"
    }
}

fn report(status: &RestrictionStatus, rules: usize, took: std::time::Duration) {
    let effective = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => Some(effective_abi),
        _ => None,
    };
    match (&status.ruleset, effective) {
        (RulesetStatus::NotEnforced, _) | (_, None) => {
            let why = match status.landlock {
                LandlockStatus::NotEnabled => "Landlock is not enabled at boot",
                LandlockStatus::NotImplemented => "Landlock is not built into the kernel",
                LandlockStatus::Available { .. } => "no Landlock right this kernel supports",
            };
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                tracing::warn!(
                    "landlock: the sentry's host file access is not restricted ({why}); the \
                     sandbox runs without it"
                )
            });
        }
        (s, Some(abi)) => {
            // Partly: the best-effort mode left out what this kernel lacks.
            let mut lacking: Vec<String> = (AccessFs::from_all(ABI_ASKED)
                & !AccessFs::from_all(abi))
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
            lacking.extend(
                (Scope::from_all(ABI_ASKED) & !Scope::from_all(abi))
                    .iter()
                    .map(|s| format!("scope {s:?}")),
            );
            if !status.all_threads {
                lacking.push("all threads at once".into());
            }
            let how = if *s == RulesetStatus::FullyEnforced {
                "fully".to_string()
            } else {
                format!("without what ABI {abi} lacks: {}", lacking.join(", "))
            };
            tracing::info!(
                "landlock: the sentry opens host files only beneath {rules} trees, and signals \
                 and abstract unix sockets only within the sandbox; {how} (ABI {abi}, \
                 {took:?})"
            );
        }
    }
}

/// See [`SELFTEST_ENV`].
fn self_test(trees: &[Tree], spec: &str) {
    let Some((under, ops)) = spec.split_once(' ') else {
        eprintln!("runsc: landlock self-test: expected DIR OP:PATH[,OP:PATH...]");
        return;
    };
    let under = std::path::Path::new(under);
    for t in trees
        .iter()
        .filter(|t| t.directory && std::path::Path::new(&t.what).starts_with(under))
    {
        for op in ops.split(',').filter(|s| !s.is_empty()) {
            let (kind, rel) = op.split_once(':').unwrap_or((op, "."));
            let result = match try_open(t.fd.as_fd(), kind, rel) {
                Ok(true) => "ok (the tree itself)".to_string(),
                Ok(false) => "ok".to_string(),
                Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
            };
            eprintln!(
                "runsc: landlock self-test: {} {kind}:{rel} -> {result}",
                t.what
            );
        }
    }
}

/// Opens `rel` in the tree `dir` as `kind` asks; true if what opened is the tree's root
/// itself (`..` of a mount's root once the sentry's root is pivoted: the old root's mounts
/// are detached, so `..` stays where it is).
fn try_open(dir: BorrowedFd<'_>, kind: &str, rel: &str) -> std::io::Result<bool> {
    use std::ffi::CString;
    let flags = libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
    let (at, path, flags) = match kind {
        "read" => (dir.as_raw_fd(), rel.to_string(), flags | libc::O_RDONLY),
        "write" => (
            dir.as_raw_fd(),
            rel.to_string(),
            flags | libc::O_WRONLY | libc::O_CREAT,
        ),
        "proc" => (
            libc::AT_FDCWD,
            format!("/proc/self/fd/{}/{rel}", dir.as_raw_fd()),
            flags | libc::O_RDONLY,
        ),
        _ => return Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
    };
    let path = CString::new(path).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated path and a descriptor we hold; the result is closed below.
    let fd = unsafe { libc::openat(at, path.as_ptr(), flags, 0o600) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat returned a new descriptor that nothing else owns.
    let opened = unsafe { OwnedFd::from_raw_fd(fd) };
    let id = |fd: BorrowedFd<'_>| {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat of a descriptor we hold into room for one stat.
        (unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } == 0).then(|| {
            // SAFETY: fstat succeeded and filled it.
            let st = unsafe { st.assume_init() };
            (st.st_dev, st.st_ino)
        })
    };
    Ok(id(opened.as_fd()).is_some() && id(opened.as_fd()) == id(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_trees_get_no_write_right_and_nothing_gets_execute_or_devices() {
        let read = read_rights();
        for right in AccessFs::from_write(ABI_ASKED) {
            assert!(!read.contains(right), "{right:?} on a read-only tree");
        }
        let write = write_rights();
        for never in [
            AccessFs::Execute,
            AccessFs::MakeChar,
            AccessFs::MakeBlock,
            AccessFs::IoctlDev,
        ] {
            assert!(!write.contains(never), "{never:?}");
        }
        for needed in [
            AccessFs::WriteFile,
            AccessFs::Truncate,
            AccessFs::MakeReg,
            AccessFs::MakeSock,
            AccessFs::Refer,
            AccessFs::RemoveFile,
        ] {
            assert!(write.contains(needed), "{needed:?}");
        }
        assert!("enforce".parse::<Mode>() == Ok(Mode::Enforce));
        assert!("no".parse::<Mode>().is_err());
    }
}
