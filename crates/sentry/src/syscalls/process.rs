//! Process identity, exit, limits and other per-process calls.

use platform::UserRegs;

use crate::caps::{capable, own_capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::task::{ExitStatus, TaskState, RLIM_NLIMITS};

pub fn exit(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    // Ends this thread; the process ends with its last thread.
    t.exit = Some(ExitStatus::Code(a[0] as u8));
    t.thread_exit = true;
    Ok(0)
}

pub fn exit_group(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    t.group.exit(ExitStatus::Code(a[0] as u8));
    t.exit = Some(ExitStatus::Code(a[0] as u8));
    Ok(0)
}

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;
/// Highest user address plus one, as Linux's TASK_SIZE_MAX checks it for segment bases.
const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;

pub fn arch_prctl(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    match a[0] {
        ARCH_SET_FS | ARCH_SET_GS => {
            if a[1] >= TASK_SIZE_MAX {
                return Err(Errno::EPERM);
            }
            if a[0] == ARCH_SET_FS {
                regs.fs_base = a[1];
            } else {
                regs.gs_base = a[1];
            }
            Ok(0)
        }
        ARCH_GET_FS => {
            t.mm.copy_out(a[1], &regs.fs_base.to_le_bytes())?;
            Ok(0)
        }
        ARCH_GET_GS => {
            t.mm.copy_out(a[1], &regs.gs_base.to_le_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn set_tid_address(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    t.clear_child_tid = a[0];
    Ok(t.tid as u64)
}

pub fn set_robust_list(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    // sizeof(struct robust_list_head)
    if a[1] != 24 {
        return Err(Errno::EINVAL);
    }
    t.robust_list = (a[0], a[1]);
    Ok(0)
}

/// get_robust_list: the calling thread's list (pid 0 or its own tid); musl asks for it to
/// learn whether the kernel supports robust mutexes at all.
pub fn get_robust_list(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, head_addr, len_addr) = (a[0] as i32, a[1], a[2]);
    let pid = if pid > 0 {
        crate::namespaces::pid_global(&t.process, pid).ok_or(Errno::ESRCH)?
    } else {
        pid
    };
    if pid != 0 && pid != t.tid {
        // Another thread's list needs ptrace rights, which nobody has in the sandbox.
        return Err(if t.kernel.group(pid).is_some() || pid < 0 {
            Errno::EPERM
        } else {
            Errno::ESRCH
        });
    }
    t.mm.copy_out(head_addr, &t.robust_list.0.to_le_bytes())?;
    t.mm.copy_out(len_addr, &24u64.to_le_bytes())?;
    Ok(0)
}

fn utsname_field(s: &[u8]) -> [u8; 65] {
    let mut f = [0u8; 65];
    let n = s.len().min(64);
    f[..n].copy_from_slice(&s[..n]);
    f
}

pub fn uname(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let host = nix::sys::utsname::uname().map_err(Errno::from)?;
    let (nodename, domainname) = t.kernel.procfs.uts_names(&t.process.namespaces().uts);
    let fields = [
        b"Linux".as_slice(),
        &nodename,
        host.release().as_encoded_bytes(),
        host.version().as_encoded_bytes(),
        b"x86_64".as_slice(),
        &domainname,
    ];
    let mut out = Vec::with_capacity(6 * 65);
    for f in fields {
        out.extend_from_slice(&utsname_field(f));
    }
    t.mm.copy_out(a[0], &out)?;
    Ok(0)
}

// Pids as the caller's pid namespace numbers them (crate::namespaces::PidNs): a parent
// outside it is 0.
pub fn getpid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(t.own_pid() as u64)
}

pub fn gettid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(crate::namespaces::pid_view(&t.process, t.tid) as u64)
}

pub fn getppid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(crate::namespaces::pid_view(&t.process, t.kernel.ppid(t.pid)) as u64)
}

/// The process a pid argument names: 0 is the caller.
fn target(t: &TaskState, pid: u64) -> Result<i32, Errno> {
    let pid = pid as i32;
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    if pid == 0 {
        return Ok(t.pid);
    }
    crate::namespaces::pid_global(&t.process, pid).ok_or(Errno::ESRCH)
}

pub fn getpgid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let pid = target(t, a[0])?;
    t.kernel
        .ids(pid)
        .map(|(pgid, _)| crate::namespaces::pid_view(&t.process, pgid) as u64)
        .ok_or(Errno::ESRCH)
}

pub fn getpgrp(t: &mut TaskState, r: &mut UserRegs, _: [u64; 6]) -> SysResult {
    getpgid(t, r, [0; 6])
}

pub fn getsid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let pid = target(t, a[0])?;
    t.kernel
        .ids(pid)
        .map(|(_, sid)| crate::namespaces::pid_view(&t.process, sid) as u64)
        .ok_or(Errno::ESRCH)
}

pub fn setpgid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let global = |p: i32| crate::namespaces::pid_global(&t.process, p).unwrap_or(i32::MAX);
    t.kernel
        .setpgid(t.pid, global(a[0] as i32), global(a[1] as i32))
        .map(|_| 0)
        .map_err(Errno)
}

pub fn setsid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    t.kernel.setsid(t.pid).map(|s| s as u64).map_err(Errno)
}

// The ids a task sees are its user namespace's (unmapped ones: the overflow id); the
// credentials keep the kernel's.

pub fn getuid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(t.creds.user_ns.uid_seen(t.creds.uid) as u64)
}

pub fn geteuid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(t.creds.user_ns.uid_seen(t.creds.euid) as u64)
}

pub fn getgid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(t.creds.user_ns.gid_seen(t.creds.gid) as u64)
}

pub fn getegid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(t.creds.user_ns.gid_seen(t.creds.egid) as u64)
}

fn write_ids(t: &mut TaskState, addrs: [u64; 3], ids: [u32; 3]) -> SysResult {
    for (addr, id) in addrs.into_iter().zip(ids) {
        t.mm.copy_out(addr, &id.to_le_bytes())?;
    }
    Ok(0)
}

pub fn getresuid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let c = &t.creds;
    let ids = [c.uid, c.euid, c.suid].map(|id| c.user_ns.uid_seen(id));
    write_ids(t, [a[0], a[1], a[2]], ids)
}

pub fn getresgid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let c = &t.creds;
    let ids = [c.gid, c.egid, c.sgid].map(|id| c.user_ns.gid_seen(id));
    write_ids(t, [a[0], a[1], a[2]], ids)
}

/// An id argument: -1 (as u32) leaves the id alone.
fn id_arg(v: u64) -> Option<u32> {
    let v = v as u32;
    (v != u32::MAX).then_some(v)
}

/// A uid argument in the caller's user namespace, as a kernel uid: -1 is None, an id the
/// namespace doesn't map EINVAL (Linux's make_kuid and uid_valid).
fn uid_arg(t: &TaskState, v: u64) -> Result<Option<u32>, Errno> {
    match id_arg(v) {
        None => Ok(None),
        Some(id) => t.creds.user_ns.make_kuid(id).map(Some).ok_or(Errno::EINVAL),
    }
}

fn gid_arg(t: &TaskState, v: u64) -> Result<Option<u32>, Errno> {
    match id_arg(v) {
        None => Ok(None),
        Some(id) => t.creds.user_ns.make_kgid(id).map(Some).ok_or(Errno::EINVAL),
    }
}

/// Installs new credentials for the calling thread, as Linux's commit_creds: a new
/// effective user or group, or permitted capabilities the thread didn't have, make the
/// process non-dumpable and forget its parent-death signal. The task's RLIMIT_NPROC charge
/// follows its real uid, and the main thread's ids are the ones other processes' signals
/// are checked against and /proc shows.
pub(super) fn commit_creds(t: &mut TaskState, new: crate::task::Creds) {
    if crate::caps::lowers_trust(&t.creds, &new) {
        t.process.set_dumpable(false);
        t.group
            .parent_death_signal
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }
    let old_uid = t.creds.uid;
    t.creds = new;
    t.group.set_thread_caps(t.tid, t.creds.caps);
    t.kernel.tasks.transfer(old_uid, t.creds.uid);
    if t.tid == t.pid {
        t.group.set_uids(crate::caps::Uids::of(&t.creds));
        t.process.set_creds(&t.creds);
    }
}

/// A change of user ids: the capability fixups (cap_task_fix_setuid) and commit.
fn set_uids(t: &mut TaskState, ids: [u32; 3]) {
    let mut new = t.creds.clone();
    [new.uid, new.euid, new.suid] = ids;
    crate::caps::fix_setuid(&t.creds, &mut new);
    commit_creds(t, new);
}

fn set_gids(t: &mut TaskState, ids: [u32; 3]) {
    let mut new = t.creds.clone();
    [new.gid, new.egid, new.sgid] = ids;
    commit_creds(t, new);
}

/// setresuid/setresgid rules: with CAP_SETUID (CAP_SETGID) anything; otherwise each new id
/// must be one of the current real, effective or saved ids.
fn set_res(current: [u32; 3], new: [Option<u32>; 3], privileged: bool) -> Result<[u32; 3], Errno> {
    let mut out = current;
    for (slot, id) in out.iter_mut().zip(new) {
        if let Some(id) = id {
            if !privileged && !current.contains(&id) {
                return Err(Errno::EPERM);
            }
            *slot = id;
        }
    }
    Ok(out)
}

pub fn setresuid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let new = [uid_arg(t, a[0])?, uid_arg(t, a[1])?, uid_arg(t, a[2])?];
    let c = &t.creds;
    let ids = set_res([c.uid, c.euid, c.suid], new, own_capable(c, Cap::Setuid))?;
    set_uids(t, ids);
    Ok(0)
}

pub fn setresgid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let new = [gid_arg(t, a[0])?, gid_arg(t, a[1])?, gid_arg(t, a[2])?];
    let c = &t.creds;
    let ids = set_res([c.gid, c.egid, c.sgid], new, own_capable(c, Cap::Setgid))?;
    set_gids(t, ids);
    Ok(0)
}

pub fn setuid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let id = uid_arg(t, a[0])?.ok_or(Errno::EINVAL)?;
    let c = &t.creds;
    let ids = if own_capable(c, Cap::Setuid) {
        // Privileged: all three change.
        [id, id, id]
    } else if id == c.uid || id == c.suid {
        [c.uid, id, c.suid]
    } else {
        return Err(Errno::EPERM);
    };
    set_uids(t, ids);
    Ok(0)
}

pub fn setgid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let id = gid_arg(t, a[0])?.ok_or(Errno::EINVAL)?;
    let c = &t.creds;
    let ids = if own_capable(c, Cap::Setgid) {
        [id, id, id]
    } else if id == c.gid || id == c.sgid {
        [c.gid, id, c.sgid]
    } else {
        return Err(Errno::EPERM);
    };
    set_gids(t, ids);
    Ok(0)
}

/// setreuid/setregid rules on (real, effective, saved): unprivileged callers may set the
/// real id to the real or effective one and the effective id to any of the three; the saved
/// id follows the effective one when the real id is set or the effective id leaves the real.
fn set_re(
    current: [u32; 3],
    r: Option<u32>,
    e: Option<u32>,
    privileged: bool,
) -> Result<[u32; 3], Errno> {
    let [real, effective, saved] = current;
    if !privileged
        && (r.is_some_and(|r| r != real && r != effective)
            || e.is_some_and(|e| !current.contains(&e)))
    {
        return Err(Errno::EPERM);
    }
    let new_real = r.unwrap_or(real);
    let new_effective = e.unwrap_or(effective);
    let new_saved = if r.is_some() || e.is_some_and(|e| e != real) {
        new_effective
    } else {
        saved
    };
    Ok([new_real, new_effective, new_saved])
}

pub fn setreuid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (r, e) = (uid_arg(t, a[0])?, uid_arg(t, a[1])?);
    let c = &t.creds;
    let ids = set_re([c.uid, c.euid, c.suid], r, e, own_capable(c, Cap::Setuid))?;
    set_uids(t, ids);
    Ok(0)
}

pub fn setregid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (r, e) = (gid_arg(t, a[0])?, gid_arg(t, a[1])?);
    let c = &t.creds;
    let ids = set_re([c.gid, c.egid, c.sgid], r, e, own_capable(c, Cap::Setgid))?;
    set_gids(t, ids);
    Ok(0)
}
/// setfsuid/setfsgid: file-system ids follow the effective ids here; report the old one.
pub fn setfsuid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(t.creds.user_ns.uid_seen(t.creds.euid) as u64)
}

pub fn setfsgid(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(t.creds.user_ns.gid_seen(t.creds.egid) as u64)
}

/// Linux's NGROUPS_MAX.
const NGROUPS_MAX: usize = 65536;

pub fn setgroups(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let n = a[0] as usize;
    if n > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    // Linux's may_setgroups: CAP_SETGID in the caller's namespace, whose gid map is
    // written and whose setgroups file doesn't say "deny".
    if !own_capable(&t.creds, Cap::Setgid) || !t.creds.user_ns.may_setgroups() {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; n * 4];
    t.mm.copy_in(a[1], &mut raw)?;
    let mut groups: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| {
            let g = u32::from_le_bytes(c.try_into().expect("4 bytes"));
            t.creds.user_ns.make_kgid(g).ok_or(Errno::EINVAL)
        })
        .collect::<Result<_, _>>()?;
    groups.sort_unstable();
    let mut new = t.creds.clone();
    new.groups = groups;
    commit_creds(t, new);
    Ok(0)
}

const LINUX_CAPABILITY_VERSION_1: u32 = 0x1998_0330;
const LINUX_CAPABILITY_VERSION_2: u32 = 0x2007_1026;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Linux's cap_validate_magic: how many 32-bit words of each set the version has; an
/// unknown version is answered with the preferred one, written back, and EINVAL.
fn cap_words(t: &mut TaskState, header: u64) -> Result<usize, Errno> {
    match t.mm.read_u32(header)? {
        LINUX_CAPABILITY_VERSION_1 => Ok(1),
        LINUX_CAPABILITY_VERSION_2 | LINUX_CAPABILITY_VERSION_3 => Ok(2),
        _ => {
            t.mm.copy_out(header, &LINUX_CAPABILITY_VERSION_3.to_le_bytes())?;
            Err(Errno::EINVAL)
        }
    }
}

/// The capability sets of the task `pid` names (0: the caller), as last committed (the
/// task's own state may be locked by a sleep).
fn caps_of(t: &TaskState, pid: i32) -> Result<crate::caps::CapSets, Errno> {
    if pid == 0 {
        return Ok(t.creds.caps);
    }
    let pid = crate::namespaces::pid_global(&t.process, pid).ok_or(Errno::ESRCH)?;
    if pid == t.tid {
        return Ok(t.creds.caps);
    }
    if let Some(caps) =
        crate::process::ThreadGroup::find_thread(&t.kernel, pid).and_then(|g| g.thread_caps(pid))
    {
        return Ok(caps);
    }
    // A zombie (no live thread): its main thread's last credentials.
    t.kernel
        .procfs
        .process(pid)
        .map(|p| p.creds().caps)
        .ok_or(Errno::ESRCH)
}

/// capget: the effective, permitted and inheritable sets of a task, 32 bits per word (a
/// version 1 header gets the low word only).
pub fn capget(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let words = match cap_words(t, a[0]) {
        // Programs probe the preferred version with a NULL data pointer: that succeeds.
        Err(Errno::EINVAL) if a[1] == 0 => return Ok(0),
        Err(e) => return Err(e),
        Ok(_) if a[1] == 0 => return Ok(0),
        Ok(w) => w,
    };
    let pid = t.mm.read_u32(a[0] + 4)? as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let caps = caps_of(t, pid)?;
    let mut out = Vec::new();
    for w in 0..words {
        for set in [caps.effective, caps.permitted, caps.inheritable] {
            out.extend_from_slice(&((set >> (32 * w)) as u32).to_le_bytes());
        }
    }
    t.mm.copy_out(a[1], &out)?;
    Ok(0)
}

/// capset: the calling thread's sets only, by Linux's rules (caps::capset).
pub fn capset(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let words = cap_words(t, a[0])?;
    let pid = t.mm.read_u32(a[0] + 4)? as i32;
    if pid != 0 && pid != t.tid {
        return Err(Errno::EPERM);
    }
    let mut raw = vec![0u8; words * 12];
    t.mm.copy_in(a[1], &mut raw)?;
    let word = |w: usize, i: usize| {
        u32::from_le_bytes(
            raw[w * 12 + i * 4..w * 12 + i * 4 + 4]
                .try_into()
                .expect("4 bytes"),
        ) as u64
    };
    let (mut e, mut p, mut i) = (0u64, 0u64, 0u64);
    for w in 0..words {
        e |= word(w, 0) << (32 * w);
        p |= word(w, 1) << (32 * w);
        i |= word(w, 2) << (32 * w);
    }
    let mut new = t.creds.clone();
    crate::caps::capset(&mut new, e, p, i)?;
    commit_creds(t, new);
    Ok(0)
}

/// prctl's Yama option (not in the libc crate for Linux).
const PR_SET_PTRACER: i32 = 0x5961_6d61;

pub fn prctl(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    match a[0] as i32 {
        // Yama: who may attach to this process besides its ancestors (0: nobody more,
        // -1: anyone).
        PR_SET_PTRACER => {
            let tracer = a[1] as i64;
            if tracer != -1 && tracer != 0 && t.kernel.alive(tracer as i32) != Some(true) {
                return Err(Errno::EINVAL);
            }
            t.kernel.ptrace.set_ptracer(t.pid, tracer as i32);
            Ok(0)
        }
        libc::PR_SET_NAME => {
            let mut name = vec![0u8; 16];
            t.mm.copy_in(a[1], &mut name[..16]).or_else(|_| {
                // A short name at the end of a mapping: read what is there, up to the NUL.
                t.mm.copy_in_cstring(a[1], 16).map(|s| {
                    name = s;
                })
            })?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(15).min(15);
            name.truncate(end);
            if t.tid == t.pid {
                // The main thread's name is the process's, as /proc/PID/comm shows it.
                let mut image = t.process.image();
                image.comm = name.clone();
                t.process.set_image(image);
            }
            t.prctl.name = name;
            Ok(0)
        }
        libc::PR_GET_NAME => {
            let mut name = if t.prctl.name.is_empty() {
                t.process.comm()
            } else {
                t.prctl.name.clone()
            };
            name.resize(16, 0);
            t.mm.copy_out(a[1], &name)?;
            Ok(0)
        }
        libc::PR_SET_PDEATHSIG => {
            if a[1] > 64 {
                return Err(Errno::EINVAL);
            }
            t.group
                .parent_death_signal
                .store(a[1] as i32, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        libc::PR_GET_PDEATHSIG => {
            let sig = t
                .group
                .parent_death_signal
                .load(std::sync::atomic::Ordering::Relaxed);
            t.mm.copy_out(a[1], &sig.to_le_bytes())?;
            Ok(0)
        }
        libc::PR_SET_CHILD_SUBREAPER => {
            t.group
                .child_subreaper
                .store(a[1] != 0, std::sync::atomic::Ordering::Relaxed);
            Ok(0)
        }
        libc::PR_GET_CHILD_SUBREAPER => {
            let on = t
                .group
                .child_subreaper
                .load(std::sync::atomic::Ordering::Relaxed);
            t.mm.copy_out(a[1], &(on as i32).to_le_bytes())?;
            Ok(0)
        }
        libc::PR_SET_NO_NEW_PRIVS => {
            if a[1] != 1 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            t.seccomp.set_no_new_privs();
            Ok(0)
        }
        libc::PR_GET_NO_NEW_PRIVS => {
            if a[1] != 0 || a[2] != 0 || a[3] != 0 || a[4] != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(t.seccomp.no_new_privs() as u64)
        }
        libc::PR_GET_SECCOMP => Ok(t.seccomp.mode() as u64),
        libc::PR_SET_SECCOMP => super::seccomp::prctl_set_seccomp(t, a[1], a[2]),
        libc::PR_GET_DUMPABLE => Ok(t.process.dumpable() as u64),
        libc::PR_SET_DUMPABLE => {
            if a[1] > 1 {
                return Err(Errno::EINVAL);
            }
            t.process.set_dumpable(a[1] == 1);
            Ok(0)
        }
        libc::PR_GET_TIMERSLACK => Ok(50_000),
        option => {
            // The capability options (PR_CAPBSET_*, PR_CAP_AMBIENT, securebits, keepcaps).
            let mut new = t.creds.clone();
            match crate::caps::prctl(&mut new, option, [a[1], a[2], a[3], a[4]]) {
                Some(Ok(v)) => {
                    if new.caps != t.creds.caps {
                        commit_creds(t, new);
                    }
                    Ok(v)
                }
                Some(Err(e)) => Err(e),
                None => Err(Errno::EINVAL),
            }
        }
    }
}

pub fn getgroups(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let size = a[0] as i32;
    let n = t.creds.groups.len();
    if size < 0 {
        return Err(Errno::EINVAL);
    }
    if size == 0 {
        return Ok(n as u64);
    }
    if (size as usize) < n {
        return Err(Errno::EINVAL);
    }
    let ns = &t.creds.user_ns;
    let bytes: Vec<u8> = t
        .creds
        .groups
        .iter()
        .flat_map(|&g| ns.gid_seen(g).to_le_bytes())
        .collect();
    t.mm.copy_out(a[1], &bytes)?;
    Ok(n as u64)
}

const GRND_NONBLOCK: u64 = 1;
const GRND_RANDOM: u64 = 2;
const GRND_INSECURE: u64 = 4;

pub fn getrandom(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[2];
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0
        || flags & (GRND_RANDOM | GRND_INSECURE) == (GRND_RANDOM | GRND_INSECURE)
    {
        return Err(Errno::EINVAL);
    }
    // Linux returns at most 32 MiB - 1 per call; we return at most 64 KiB, which callers
    // handle as any short read.
    let len = a[1].min(1 << 16) as usize;
    let mut buf = vec![0u8; len];
    crate::kernel::fill_random(&mut buf)?;
    t.mm.copy_out(a[0], &buf)?;
    Ok(len as u64)
}

fn rlimit_bytes(l: (u64, u64)) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&l.0.to_le_bytes());
    b[8..].copy_from_slice(&l.1.to_le_bytes());
    b
}

/// Applies a new limit; only a privileged task may raise the hard limit.
fn set_limit(t: &mut TaskState, resource: usize, soft: u64, hard: u64) -> Result<(), Errno> {
    if soft > hard {
        return Err(Errno::EINVAL);
    }
    // RLIMIT_NOFILE can't pass fs.nr_open, even for a privileged caller.
    if resource == libc::RLIMIT_NOFILE as usize && hard > crate::rlimit::NR_OPEN {
        return Err(Errno::EPERM);
    }
    if hard > t.rlimits[resource].1 && !capable(&t.creds, Cap::SysResource) {
        return Err(Errno::EPERM);
    }
    t.rlimits[resource] = (soft, hard);
    *t.process.limits.lock().unwrap_or_else(|e| e.into_inner()) = t.rlimits;
    Ok(())
}

pub fn prlimit64(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, resource, new, old) = (a[0] as i32, a[1] as usize, a[2], a[3]);
    // The caller's own limits only (another process's would need its task state); `pid` is
    // in the caller's pid namespace.
    if pid != 0 && crate::namespaces::pid_global(&t.process, pid) != Some(t.pid) {
        return Err(Errno::ESRCH);
    }
    if resource >= RLIM_NLIMITS {
        return Err(Errno::EINVAL);
    }
    let new_limit = if new != 0 {
        let mut b = [0u8; 16];
        t.mm.copy_in(new, &mut b)?;
        let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        Some((w(0), w(8)))
    } else {
        None
    };
    if old != 0 {
        let cur = rlimit_bytes(t.rlimits[resource]);
        t.mm.copy_out(old, &cur)?;
    }
    if let Some((soft, hard)) = new_limit {
        set_limit(t, resource, soft, hard)?;
    }
    Ok(0)
}

pub fn getrlimit(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    prlimit64(t, regs, [0, a[0], 0, a[1], 0, 0])
}

pub fn setrlimit(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    prlimit64(t, regs, [0, a[0], a[1], 0, 0, 0])
}

/// getcpu: the host CPU (and NUMA node) the calling thread's vCPU runs on, which is where
/// its code runs, so the answer is as current as Linux's. The cache argument has been
/// unused since Linux 2.6.24.
pub fn getcpu(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (mut cpu, mut node) = (0u32, 0u32);
    // SAFETY: two valid out-pointers; the kernel ignores the third argument.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getcpu,
            &mut cpu as *mut u32,
            &mut node as *mut u32,
            0usize,
        )
    };
    if r != 0 {
        (cpu, node) = (0, 0);
    }
    if a[0] != 0 {
        t.mm.copy_out(a[0], &cpu.to_le_bytes())?;
    }
    if a[1] != 0 {
        t.mm.copy_out(a[1], &node.to_le_bytes())?;
    }
    Ok(0)
}

pub fn sched_yield(_: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    std::thread::yield_now();
    Ok(0)
}

pub fn umask(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let old = t.umask;
    t.umask = a[0] as u32 & 0o777;
    Ok(old as u64)
}
