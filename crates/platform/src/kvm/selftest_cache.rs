//! The start-up self-tests' answers, kept between runs.
//!
//! The syscall-entry self-test and the direct-switch self-test ([`super::selftest`]) ask the
//! host a question whose answer does not change from one run to the next: they took ~0.9 ms
//! of each `runsc do` (docs/architecture.md, "Start-up"), and KVM_GET_SUPPORTED_CPUID
//! another 0.3 ms. Their answers are kept in a small
//! file, `kvm-selftest-HASH` in `/run/runsc-cache` (root) or `$XDG_RUNTIME_DIR/runsc-cache`
//! (anyone else; no cache without it), under a key naming everything the answers depend on:
//! the boot (`/proc/sys/kernel/random/boot_id`: the host kernel and its built-in modules),
//! the KVM modules as loaded (each `/sys/module/NAME` directory's inode, new at every load,
//! its `srcversion`, and the values of the vendor module's writable parameters), the CPU
//! (CPUID vendor, signature and brand: a VM host may migrate) and the runsc binary
//! (`/proc/self/exe`'s device, inode, size and mtime: a rebuild changes the guest code the
//! tests ran). A change of any of them makes the tests run again and the file be rewritten.
//!
//! The file is hostile input: it is used only if the directory and the file belong to us
//! and nobody else may write them, and it is parsed strictly (one exact layout, the key
//! equal byte for byte); anything else and the tests run. It is written to a temporary
//! name and renamed into place, so that a concurrent run reads the old or the new one.
//! A store prunes the directory to the files used last (a use refreshes a file's mtime when
//! it is an hour old).
//!
//! Everything by path happens in [`SelftestCache::prepare`], on the VM's thread before the
//! sentry leaves the host's file system; [`SelftestCache::store`] writes through the
//! directory's descriptor, which survives the pivot to the empty root.
//! [`NO_CACHE_ENV`] turns the cache off (neither read nor written), and [`DIR_ENV`] puts it
//! elsewhere (tests).

use std::ffi::CString;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::selftest::SyscallEntry;

/// Set (to anything but `0` or empty) to ignore the cache: the self-tests run, and their
/// answers are not stored.
pub const NO_CACHE_ENV: &str = "RUNSC_NO_SELFTEST_CACHE";
/// The cache's directory instead of the default (it must exist, belong to us and be
/// writable by nobody else).
pub const DIR_ENV: &str = "RUNSC_SELFTEST_CACHE_DIR";

/// The cache file's name: this, a dash and a hash of the key (see [`file_name`]).
const FILE_PREFIX: &str = "kvm-selftest";
const MAGIC: &str = "runsc kvm self-test cache 2";
/// The file is a few KiB (mostly the CPUID entries); anything larger is not ours.
const MAX_FILE: usize = 64 << 10;
/// The most CPUID entries KVM reports (`KVM_MAX_CPUID_ENTRIES`).
const MAX_CPUID_ENTRIES: usize = 256;
/// A reason the direct switch is off, as stored (printable ASCII).
const MAX_REASON: usize = 512;
/// How many answer files the directory keeps, this run's included (one per runsc binary and
/// boot; a host has one or two binaries in use, a developer's a few builds).
const KEEP_FILES: usize = 8;
/// A temporary file older than this is a writer's that died before its rename.
const STALE_TMP: std::time::Duration = std::time::Duration::from_secs(60);
/// A file used whose mtime is older than this gets the time of its use as its mtime, so that
/// pruning keeps the answers in use rather than the ones written last (a developer's builds
/// would otherwise push out the installed binary's). Not at every use: that would be a write
/// at every start.
const USED_REFRESH: std::time::Duration = std::time::Duration::from_secs(3600);

/// What the direct-switch self-test said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectSwitch {
    /// Usable.
    On,
    /// Unusable, and why.
    Off(String),
    /// Not run (the syscall entry is ring 0, or an environment switch kept it off).
    Untested,
}

/// One entry of KVM_GET_SUPPORTED_CPUID: function, index, flags, eax, ebx, ecx, edx.
pub type CpuidEntry = [u32; 7];

/// The self-tests' answers, and the host's other answer that takes time to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub entry: SyscallEntry,
    pub direct_switch: DirectSwitch,
    /// What KVM_GET_SUPPORTED_CPUID returned (0.3 ms of host CPUIDs here). It passes the
    /// APIC ID of the host CPU that ran the query through (leaf 1 EBX, leaf 0xb EDX), so the
    /// live answer differs from CPU to CPU there; a cached one is one of them, as a live
    /// one is.
    pub cpuid: Vec<CpuidEntry>,
}

/// The cache as [`SelftestCache::prepare`] found it: where to write, the key of this run,
/// and the answers stored under it, if any.
#[derive(Debug)]
pub struct SelftestCache {
    dir: OwnedFd,
    /// The file's name in `dir`, from the key.
    name: String,
    key: String,
    answers: Option<Answers>,
    /// Why the stored answers were not used (for the debug log).
    miss: String,
}

impl SelftestCache {
    /// Finds the cache directory (creating the default one), computes this run's key and
    /// reads the stored answers. None when the cache is off or unusable (the self-tests
    /// then run as without it); the debug log says why.
    pub fn prepare() -> Option<SelftestCache> {
        if crate::env_flag(NO_CACHE_ENV) {
            tracing::debug!("self-test cache: off ({NO_CACHE_ENV} is set)");
            return None;
        }
        let (dir, create) = match std::env::var_os(DIR_ENV) {
            Some(d) if !d.is_empty() => (PathBuf::from(d), false),
            _ => (default_dir()?, true),
        };
        let dir_fd = match open_dir(&dir, create) {
            Ok(fd) => fd,
            Err(why) => {
                tracing::debug!("self-test cache: not used: {}: {why}", dir.display());
                return None;
            }
        };
        let key = match host_key() {
            Ok(key) => key,
            Err(why) => {
                tracing::debug!("self-test cache: not used: {why}");
                return None;
            }
        };
        Some(Self::load(dir_fd, key))
    }

    /// Reads the answers stored under `key` in the directory `dir`, and marks them used.
    fn load(dir: OwnedFd, key: String) -> SelftestCache {
        let name = file_name(&key);
        let (answers, miss) = match read_file(&dir, &name) {
            Ok(Some((text, file))) => match parse(&text, &key) {
                Ok(a) => {
                    mark_used(&file, &name);
                    (Some(a), String::new())
                }
                Err(why) => (None, why),
            },
            Ok(None) => (None, "no cache file yet".into()),
            Err(why) => (None, why),
        };
        SelftestCache {
            dir,
            name,
            key,
            answers,
            miss,
        }
    }

    /// The answers stored for this host, this boot and this binary, if any.
    pub fn answers(&self) -> Option<&Answers> {
        self.answers.as_ref()
    }

    /// Why [`SelftestCache::answers`] is None.
    pub fn miss(&self) -> &str {
        &self.miss
    }

    /// Stores `answers` under this run's key, then prunes the directory ([`Self::prune`]).
    /// A failure is logged: the next run tests again.
    pub fn store(&self, answers: &Answers) {
        if let Err(why) = self.write(answers) {
            tracing::debug!("self-test cache: not written: {why}");
        }
        if let Err(why) = self.prune() {
            tracing::debug!("self-test cache: not pruned: {why}");
        }
    }

    /// Removes all but the [`KEEP_FILES`] answer files used last (other binaries' and boots':
    /// /run keeps them until a reboot, and each rebuild of runsc makes one; a file's mtime
    /// is when it was written or last used, give or take [`USED_REFRESH`]) and temporary
    /// files older than [`STALE_TMP`] (a writer that died before its rename). Only after
    /// a store, which happens only when this run's answers were missing: rarely.
    fn prune(&self) -> Result<(), String> {
        use nix::fcntl::{AtFlags, OFlag};
        use nix::sys::stat::{fstatat, Mode, SFlag};
        let dir = nix::dir::Dir::openat(
            Some(self.dir.as_raw_fd()),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut answers = Vec::new();
        let mut stale = Vec::new();
        for entry in dir.into_iter().flatten() {
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if !name.starts_with(FILE_PREFIX) {
                continue;
            }
            // Not followed: a symlink planted here is judged (and removed) as itself.
            let Ok(st) = fstatat(
                Some(self.dir.as_raw_fd()),
                name,
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
                continue;
            }
            if name.ends_with(".tmp") {
                if now - st.st_mtime > STALE_TMP.as_secs() as i64 {
                    stale.push(name.to_string());
                }
            } else if name != self.name {
                answers.push((st.st_mtime, st.st_mtime_nsec, name.to_string()));
            }
        }
        // Ours is the newest; keep the newest of the others beside it.
        answers.sort_unstable_by(|a, b| b.cmp(a));
        let old = answers
            .into_iter()
            .skip(KEEP_FILES - 1)
            .map(|(_, _, name)| name);
        for name in old.chain(stale) {
            match nix::unistd::unlinkat(
                Some(self.dir.as_raw_fd()),
                name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            ) {
                Ok(()) => tracing::debug!("self-test cache: removed {name}"),
                // Another run pruning at the same time took it first.
                Err(nix::Error::ENOENT) => {}
                Err(e) => return Err(format!("{name}: {e}")),
            }
        }
        Ok(())
    }

    fn write(&self, answers: &Answers) -> Result<(), String> {
        use std::io::Write as _;
        let text = format(&self.key, answers);
        // Unique among concurrent writers: every sentry is pid 1 of its own namespace, so
        // the time tells them apart (a clash is EEXIST below: nothing written, no harm).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // SAFETY: getpid has no preconditions.
        let tmp = format!("{}.{}-{nanos}.tmp", self.name, unsafe { libc::getpid() });
        let ctmp = CString::new(tmp.clone()).expect("no NUL in the name");
        // SAFETY: openat on our directory descriptor with a NUL-terminated name; O_EXCL and
        // O_NOFOLLOW: a file or symlink of that name is not followed or reused.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                ctmp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return Err(format!("{tmp}: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: a descriptor just opened, owned by the File from here.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        let written = file.write_all(text.as_bytes());
        drop(file);
        let cname = CString::new(self.name.as_str()).expect("no NUL in the name");
        let renamed = written.map_err(|e| e.to_string()).and_then(|()| {
            // SAFETY: renameat within our directory descriptor, NUL-terminated names.
            let r = unsafe {
                libc::renameat(
                    self.dir.as_raw_fd(),
                    ctmp.as_ptr(),
                    self.dir.as_raw_fd(),
                    cname.as_ptr(),
                )
            };
            if r < 0 {
                Err(std::io::Error::last_os_error().to_string())
            } else {
                Ok(())
            }
        });
        if renamed.is_err() {
            // SAFETY: unlinkat of the temporary name we created, in our directory.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), ctmp.as_ptr(), 0) };
        }
        renamed
    }
}

/// `/run/runsc-cache` for root, `$XDG_RUNTIME_DIR/runsc-cache` for anyone else.
fn default_dir() -> Option<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Some(PathBuf::from("/run/runsc-cache"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if Path::new(&d).is_absolute() => Some(Path::new(&d).join("runsc-cache")),
        _ => {
            tracing::debug!("self-test cache: off (no XDG_RUNTIME_DIR)");
            None
        }
    }
}

/// Opens `dir` (making it first, mode 0700, if `create` and it is missing), and checks that
/// it is a directory of ours that nobody else may write.
fn open_dir(dir: &Path, create: bool) -> Result<OwnedFd, String> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| "NUL in the path")?;
    let open = || {
        // SAFETY: a NUL-terminated path; O_NOFOLLOW: the last component is not a symlink.
        unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        }
    };
    let mut fd = open();
    if fd < 0 && create && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOENT) {
        // SAFETY: a NUL-terminated path. EEXIST: another run made it meanwhile.
        unsafe { libc::mkdir(c.as_ptr(), 0o700) };
        fd = open();
    }
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: a descriptor just opened, owned from here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    check_owner(&fd, "directory")?;
    Ok(fd)
}

/// Whether `fd` belongs to our effective user and only it may write it.
fn check_owner(fd: &OwnedFd, what: &str) -> Result<(), String> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat on an open descriptor into room for one stat.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: fstat filled it.
    let st = unsafe { st.assume_init() };
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if st.st_uid != euid {
        return Err(format!("the {what} belongs to uid {}", st.st_uid));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(format!(
            "the {what} is writable by others (mode {:o})",
            st.st_mode & 0o7777
        ));
    }
    Ok(())
}

/// The cache file's text, if there is one and it may be trusted that far.
/// Sets the mtime of answers just used to now, if it is older than [`USED_REFRESH`].
fn mark_used(file: &std::fs::File, name: &str) {
    let now = std::time::SystemTime::now();
    let stale = file
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > USED_REFRESH));
    if stale {
        if let Err(e) = file.set_modified(now) {
            tracing::debug!("self-test cache: {name}: not marked used: {e}");
        }
    }
}

/// The cache file `name` in `dir`, its text and the open file; None if there is none.
fn read_file(dir: &OwnedFd, name: &str) -> Result<Option<(String, std::fs::File)>, String> {
    use std::io::Read as _;
    let cname = CString::new(name).expect("no NUL in the name");
    // SAFETY: openat on our directory descriptor with a NUL-terminated name; O_NOFOLLOW and
    // O_NONBLOCK: neither a symlink nor a FIFO planted there is followed or waited on.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            cname.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            _ => Err(format!("{name}: {e}")),
        };
    }
    // SAFETY: a descriptor just opened, owned from here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    check_owner(&fd, "file")?;
    let mut file = std::fs::File::from(fd);
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err(format!("{name} is not a regular file"));
    }
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    if bytes.len() > MAX_FILE {
        return Err(format!("{name} is larger than {MAX_FILE} bytes"));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8"))?;
    Ok(Some((text, file)))
}

/// The cache file's name for `key`: `kvm-selftest-` and the key's 64-bit FNV-1a hash, so
/// that runsc binaries used in turn on one host (an installed one and a build, or two
/// builds) each keep their own answers instead of taking turns to test and rewrite one
/// file. Old binaries' files are pruned when a new one is stored (`SelftestCache::prune`).
fn file_name(key: &str) -> String {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{FILE_PREFIX}-{hash:016x}")
}

fn entry_name(entry: SyscallEntry) -> &'static str {
    match entry {
        SyscallEntry::UserTrampoline => "user-trampoline",
        SyscallEntry::Ring0 => "ring0",
    }
}

/// A reason as stored: printable ASCII on one line, at most [`MAX_REASON`] bytes.
fn clean_reason(why: &str) -> String {
    why.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(MAX_REASON)
        .collect()
}

/// The file's text for `answers` under `key`.
pub(crate) fn format(key: &str, answers: &Answers) -> String {
    let ds = match &answers.direct_switch {
        DirectSwitch::On => "on".to_string(),
        DirectSwitch::Off(why) => format!("off {}", clean_reason(why)),
        DirectSwitch::Untested => "untested".to_string(),
    };
    let mut text = format!(
        "{MAGIC}\nkey {key}\nentry {}\ndirect-switch {ds}\ncpuid {}\n",
        entry_name(answers.entry),
        answers.cpuid.len()
    );
    for e in &answers.cpuid {
        let words: Vec<String> = e.iter().map(|w| format!("{w:08x}")).collect();
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    text
}

/// One CPUID line: seven words of exactly eight lowercase hex digits.
fn parse_cpuid_line(line: &str) -> Option<CpuidEntry> {
    let mut entry = [0u32; 7];
    let mut words = line.split(' ');
    for slot in &mut entry {
        let w = words.next()?;
        if w.len() != 8
            || !w
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        *slot = u32::from_str_radix(w, 16).ok()?;
    }
    words.next().is_none().then_some(entry)
}

/// Parses the file's text: exactly the layout [`format`] writes, with `key` as its key.
pub(crate) fn parse(text: &str, key: &str) -> Result<Answers, String> {
    let bad = |what: &str| Err(format!("the cache file: {what}; testing again"));
    let Some(body) = text.strip_suffix('\n') else {
        return bad("no final newline");
    };
    let lines: Vec<&str> = body.split('\n').collect();
    let [magic, key_line, entry, ds, count, ref cpuid_lines @ ..] = lines[..] else {
        return bad("too few lines");
    };
    if magic != MAGIC {
        return bad("not a cache file of this version");
    }
    if key_line.strip_prefix("key ") != Some(key) {
        return bad("made on another boot, host, CPU or runsc binary");
    }
    let entry = match entry.strip_prefix("entry ") {
        Some("user-trampoline") => SyscallEntry::UserTrampoline,
        Some("ring0") => SyscallEntry::Ring0,
        _ => return bad("bad entry line"),
    };
    let direct_switch = match ds.strip_prefix("direct-switch ") {
        Some("on") => DirectSwitch::On,
        Some("untested") => DirectSwitch::Untested,
        Some(off) => match off.strip_prefix("off ") {
            Some(why) if !why.is_empty() && clean_reason(why) == why => {
                DirectSwitch::Off(why.to_string())
            }
            _ => return bad("bad direct-switch line"),
        },
        None => return bad("bad direct-switch line"),
    };
    if entry == SyscallEntry::Ring0 && direct_switch != DirectSwitch::Untested {
        // The direct switch is PVM's: it is never tested on a ring-0 entry.
        return bad("a direct switch answer for a ring-0 entry");
    }
    let n = match count.strip_prefix("cpuid ") {
        Some(n) if !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()) => {
            n.parse::<usize>().unwrap_or(usize::MAX)
        }
        _ => return bad("bad cpuid line"),
    };
    if n > MAX_CPUID_ENTRIES || n != cpuid_lines.len() {
        return bad("the wrong number of CPUID entries");
    }
    let Some(cpuid) = cpuid_lines
        .iter()
        .map(|l| parse_cpuid_line(l))
        .collect::<Option<Vec<_>>>()
    else {
        return bad("a bad CPUID entry");
    };
    Ok(Answers {
        entry,
        direct_switch,
        cpuid,
    })
}

/// A value as it goes in the key: printable ASCII without spaces.
fn key_word(s: &[u8]) -> String {
    s.iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '_' })
        .collect()
}

/// This run's key: boot, KVM modules, CPU and binary (see the module's docs).
fn host_key() -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    let boot = read("/proc/sys/kernel/random/boot_id")?;
    let boot = boot.trim_ascii();
    if boot.len() != 36 || !boot.iter().all(|b| b.is_ascii_hexdigit() || *b == b'-') {
        return Err("/proc/sys/kernel/random/boot_id is not a UUID".into());
    }
    let mut key = format!("boot={}", key_word(boot));
    let _ = write!(key, " cpu={}", cpu_identity());
    for module in ["kvm", "kvm_pvm", "kvm_intel", "kvm_amd"] {
        let dir = format!("/sys/module/{module}");
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        let srcversion = std::fs::read(format!("{dir}/srcversion")).unwrap_or_default();
        let _ = write!(
            key,
            " {module}={}/{}",
            meta.ino(),
            key_word(srcversion.trim_ascii())
        );
        if module != "kvm" {
            // The vendor module's parameters that may change while it is loaded. (Plain kvm's
            // are about halt polling, huge pages and the like, not the syscall paths.)
            let mut params: Vec<_> = std::fs::read_dir(format!("{dir}/parameters"))
                .map(|d| d.flatten().collect())
                .unwrap_or_default();
            params.sort_by_key(|e| e.file_name());
            for p in params {
                let writable = p.metadata().is_ok_and(|m| m.mode() & 0o222 != 0);
                if writable {
                    let value = std::fs::read(p.path()).unwrap_or_default();
                    let _ = write!(
                        key,
                        ",{}:{}",
                        key_word(p.file_name().as_bytes()),
                        key_word(value.trim_ascii())
                    );
                }
            }
        }
    }
    let exe = std::fs::metadata("/proc/self/exe").map_err(|e| format!("/proc/self/exe: {e}"))?;
    let _ = write!(
        key,
        " exe={}:{}:{}:{}.{}",
        exe.dev(),
        exe.ino(),
        exe.size(),
        exe.mtime(),
        exe.mtime_nsec()
    );
    Ok(key)
}

/// The CPU's vendor, signature (family, model, stepping) and brand string.
fn cpu_identity() -> String {
    use std::arch::x86_64::__cpuid;
    let l0 = __cpuid(0);
    let mut vendor = Vec::with_capacity(12);
    for r in [l0.ebx, l0.edx, l0.ecx] {
        vendor.extend_from_slice(&r.to_le_bytes());
    }
    let signature = __cpuid(1).eax;
    let max_ext = __cpuid(0x8000_0000).eax;
    let mut brand = Vec::with_capacity(48);
    if max_ext >= 0x8000_0004 {
        for leaf in 0x8000_0002..=0x8000_0004u32 {
            let r = __cpuid(leaf);
            for v in [r.eax, r.ebx, r.ecx, r.edx] {
                brand.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    let brand: Vec<u8> = brand.into_iter().take_while(|&b| b != 0).collect();
    format!(
        "{}/{signature:08x}/{}",
        key_word(&vendor),
        key_word(brand.trim_ascii())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "boot=x cpu=y exe=1:2:3:4.5";

    fn cpuid() -> Vec<CpuidEntry> {
        vec![
            [0, 0, 0, 0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65],
            [7, 1, 1, 0, 0xffff_ffff, 0xdead_beef, 0],
        ]
    }

    #[test]
    fn what_is_written_is_read_back() {
        for answers in [
            Answers {
                entry: SyscallEntry::UserTrampoline,
                direct_switch: DirectSwitch::On,
                cpuid: cpuid(),
            },
            Answers {
                entry: SyscallEntry::UserTrampoline,
                direct_switch: DirectSwitch::Off("32 system calls took 33 exits".into()),
                cpuid: cpuid(),
            },
            Answers {
                entry: SyscallEntry::UserTrampoline,
                direct_switch: DirectSwitch::Untested,
                cpuid: vec![[0, 1, 2, 3, 4, 5, 6]],
            },
            Answers {
                entry: SyscallEntry::Ring0,
                direct_switch: DirectSwitch::Untested,
                cpuid: cpuid(),
            },
        ] {
            assert_eq!(parse(&format(KEY, &answers), KEY), Ok(answers));
        }
    }

    #[test]
    fn a_reason_with_a_newline_stays_on_its_line() {
        let answers = Answers {
            entry: SyscallEntry::UserTrampoline,
            direct_switch: DirectSwitch::Off("a\nentry ring0\n\u{e9}".into()),
            cpuid: cpuid(),
        };
        let back = parse(&format(KEY, &answers), KEY).unwrap();
        assert_eq!(
            back.direct_switch,
            DirectSwitch::Off("a?entry ring0??".into())
        );
    }

    #[test]
    fn anything_odd_is_refused() {
        let good = format(
            KEY,
            &Answers {
                entry: SyscallEntry::UserTrampoline,
                direct_switch: DirectSwitch::On,
                cpuid: cpuid(),
            },
        );
        assert!(parse(&good, KEY).is_ok());
        let refused = [
            String::new(),
            good.trim_end().to_string(),
            format!("{good}\n"),
            format!("{good}extra\n"),
            good.replace(MAGIC, "runsc kvm self-test cache 1"),
            good.replace("key ", "key  "),
            good.replace("entry user-trampoline", "entry ring1"),
            good.replace("entry user-trampoline", "entry ring0"),
            good.replace("direct-switch on", "direct-switch yes"),
            good.replace("direct-switch on", "direct-switch off"),
            good.replace("direct-switch on", "direct-switch off "),
            good.replace("direct-switch on", "direct-switch off \u{7}"),
            good.replace('\n', "\r\n"),
            good.replace("cpuid 2\n", "cpuid 3\n"),
            good.replace("cpuid 2\n", "cpuid 1\n"),
            good.replace("cpuid 2\n", "cpuid 02\n"),
            good.replace("cpuid 2\n", "cpuid +2\n"),
            good.replace("cpuid 2\n", "cpuid 0\n"),
            good.replace("00000007 00000001", "00000007 0000001"),
            good.replace("00000007 00000001", "00000007 0000000G"),
            good.replace("00000007 00000001", "00000007 0000000A"),
            good.replace("00000007 00000001", "00000007  00000001"),
            good.replace("deadbeef 00000000\n", "deadbeef 00000000 00000000\n"),
            good.replace("deadbeef 00000000\n", "deadbeef\n"),
            format!("{good}00000000 00000000 00000000 00000000 00000000 00000000 00000000\n"),
        ];
        for text in refused {
            assert!(parse(&text, KEY).is_err(), "accepted {text:?}");
        }
        // Another key: another boot, host or binary.
        assert!(parse(&good, "boot=z cpu=y exe=1:2:3:4.5").is_err());
        assert!(parse(&good, "boot=x cpu=y").is_err());
    }

    #[test]
    fn a_store_prunes_old_answers_and_dead_writers_files() {
        use std::time::{Duration, SystemTime};
        let dir = std::env::temp_dir().join(format!("runsc-cache-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let at = |name: &str, age_secs: u64| {
            let path = dir.join(name);
            let f = std::fs::File::create(&path).unwrap();
            f.set_modified(SystemTime::now() - Duration::from_secs(age_secs))
                .unwrap();
        };
        // Twelve other binaries' answers, a minute apart: kvm-selftest-00 the newest.
        for i in 0..12 {
            at(&format!("{FILE_PREFIX}-{i:02}"), 60 * (i + 1));
        }
        at(&format!("{FILE_PREFIX}-dead.1.tmp"), 120);
        at(&format!("{FILE_PREFIX}-live.2.tmp"), 0);
        at("someone-elses", 1000);
        std::os::unix::fs::symlink("/etc/passwd", dir.join(format!("{FILE_PREFIX}-link"))).unwrap();
        let cache = SelftestCache {
            dir: open_dir(&dir, false).unwrap(),
            name: file_name(KEY),
            key: KEY.into(),
            answers: None,
            miss: String::new(),
        };
        cache.store(&Answers {
            entry: SyscallEntry::UserTrampoline,
            direct_switch: DirectSwitch::On,
            cpuid: cpuid(),
        });
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<String> = (0..KEEP_FILES - 1)
            .map(|i| format!("{FILE_PREFIX}-{i:02}"))
            .chain([
                file_name(KEY),
                format!("{FILE_PREFIX}-link"),
                format!("{FILE_PREFIX}-live.2.tmp"),
                "someone-elses".into(),
            ])
            .collect();
        expected.sort();
        assert_eq!(left, expected);
        assert!(cache.prune().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn answers_in_use_outlive_newer_unused_ones() {
        use std::time::{Duration, SystemTime};
        let dir = std::env::temp_dir().join(format!("runsc-cache-used-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let answers = Answers {
            entry: SyscallEntry::UserTrampoline,
            direct_switch: DirectSwitch::On,
            cpuid: cpuid(),
        };
        let aged = |name: &str, text: &str, age_secs: u64| {
            std::fs::write(dir.join(name), text).unwrap();
            std::fs::File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(SystemTime::now() - Duration::from_secs(age_secs))
                .unwrap();
        };
        // The installed binary's answers, written two days ago, and as many newer files of
        // other builds as the directory keeps.
        aged(&file_name(KEY), &format(KEY, &answers), 2 * 86400);
        for i in 0..KEEP_FILES {
            aged(&format!("{FILE_PREFIX}-build{i}"), "", 60 * (i as u64 + 1));
        }
        // The installed binary starts: its answers are used...
        let installed = SelftestCache::load(open_dir(&dir, false).unwrap(), KEY.into());
        assert_eq!(installed.answers(), Some(&answers));
        // ...and then yet another build stores its own, pruning the directory.
        let other_key = "boot=x cpu=y exe=9:9:9:9.9";
        let build = SelftestCache::load(open_dir(&dir, false).unwrap(), other_key.into());
        assert!(build.answers().is_none());
        build.store(&answers);
        assert!(
            dir.join(file_name(KEY)).exists(),
            "the answers in use were pruned"
        );
        assert!(dir.join(file_name(other_key)).exists());
        let left = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(left, KEEP_FILES);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_key_has_its_own_file() {
        let a = file_name(KEY);
        assert_eq!(a, file_name(KEY));
        assert_ne!(a, file_name("boot=x cpu=y exe=1:2:3:4.6"));
        let hash = a.strip_prefix("kvm-selftest-").unwrap();
        assert_eq!(hash.len(), 16);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
    }

    #[test]
    fn the_key_names_this_boot_and_this_binary() {
        let key = host_key().unwrap();
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        assert!(
            key.starts_with(&format!("boot={} cpu=", boot.trim())),
            "{key}"
        );
        assert!(key.contains(" exe="), "{key}");
        assert!(!key.contains('\n'), "{key}");
        assert_eq!(host_key().unwrap(), key);
    }
}
