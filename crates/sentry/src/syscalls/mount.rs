//! Namespaces and mounts, inside the sandbox: chroot, unshare, setns, mount, umount2 and
//! pivot_root. Everything here changes the sandbox's own objects (the VFS's mount trees, the
//! namespaces of `crate::namespaces`); the host's mounts and namespaces are never touched.
//! Permission is CAP_SYS_ADMIN (CAP_SYS_CHROOT for chroot) in the user namespace that owns
//! the object (see `crate::caps`): a mount namespace's owner for mount, umount2 and
//! pivot_root (and only file systems Linux marks FS_USERNS_MOUNT when that owner isn't
//! the initial namespace), the caller's own namespace for unshare and clone, the target's
//! owner for setns.

use std::sync::Arc;

use fs::vfs::{mount_flags as mf, Location, Mount, PropagationChange, ResolveFlags};
use platform::UserRegs;

use super::path::{fs_creds, read_path, resolve_at};
use crate::caps::{capable, ns_capable, own_capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::namespaces::{self as ns, Namespaces, NsFile, NsRef, UserNs};
use crate::task::TaskState;

// mount(2)'s flags (linux/mount.h).
const MS_RDONLY: u64 = 1;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_REMOUNT: u64 = 32;
const MS_NOATIME: u64 = 1024;
const MS_NODIRATIME: u64 = 2048;
const MS_BIND: u64 = 4096;
const MS_MOVE: u64 = 8192;
const MS_REC: u64 = 16384;
const MS_SILENT: u64 = 32768;
const MS_UNBINDABLE: u64 = 1 << 17;
const MS_PRIVATE: u64 = 1 << 18;
const MS_SLAVE: u64 = 1 << 19;
const MS_SHARED: u64 = 1 << 20;
const MS_RELATIME: u64 = 1 << 21;
const MS_STRICTATIME: u64 = 1 << 24;
const MS_NOUSER: u64 = 1 << 31;
const MS_MGC_VAL: u64 = 0xC0ED_0000;
const MS_MGC_MSK: u64 = 0xffff_0000;

const UMOUNT_NOFOLLOW: u64 = 8;

const PAGE: usize = 4096;

/// chroot(2), with Linux's order of checks: the path (ENOENT, ENOTDIR...), search
/// permission on it (EACCES), then CAP_SYS_CHROOT (EPERM).
pub fn chroot(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let loc = resolve_dir(t, &path, true)?;
    fs::vfs::perm::check_inode(&**loc.inode(), &fs_creds(t), fs::vfs::perm::MAY_EXEC)
        .map_err(Errno)?;
    if !capable(&t.creds, Cap::SysChroot) {
        return Err(Errno::EPERM);
    }
    t.fs.set_root(loc);
    Ok(0)
}

/// Resolves a path that must name a directory (LOOKUP_DIRECTORY).
fn resolve_dir(t: &TaskState, path: &[u8], follow: bool) -> Result<Location, Errno> {
    let flags = if follow {
        ResolveFlags::follow()
    } else {
        ResolveFlags::nofollow()
    };
    let loc = resolve_at(t, libc::AT_FDCWD as u64, path, flags)?;
    if loc.inode().file_type() != fs::vfs::FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(loc)
}

/// The user namespace that owns a mount namespace (the initial one unless unshare or
/// clone made it with a new user namespace's credentials).
pub fn mnt_owner(mnt: &fs::vfs::MountNamespace) -> Arc<UserNs> {
    mnt.owner
        .get()
        .and_then(|o| o.clone().downcast::<UserNs>().ok())
        .unwrap_or_else(UserNs::initial)
}

/// Linux's may_mount: CAP_SYS_ADMIN in the user namespace that owns the caller's mount
/// namespace.
fn may_mount(t: &TaskState) -> Result<(), Errno> {
    if ns_capable(&t.creds, &mnt_owner(&t.fs.ns()), Cap::SysAdmin) {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// A copy of the mount namespace `from` owned by `owner`, locked when the owner isn't the
/// original's (Linux's copy_mnt_ns with CL_UNPRIVILEGED): mounts root in a new user
/// namespace inherits stay where they are and keep their read-only and other flags.
pub(super) fn copy_mnt_ns(
    from: &fs::vfs::MountNamespace,
    owner: &Arc<UserNs>,
) -> (Arc<fs::vfs::MountNamespace>, fs::vfs::mount::MountMap) {
    let (copy, map) = from.copy();
    if mnt_owner(from).ino != owner.ino {
        copy.lock_all();
    }
    let _ = copy.owner.set(owner.clone());
    (copy, map)
}

/// Linux's current_chrooted: the caller's root isn't its mount namespace's root (the
/// topmost mount on it).
fn chrooted(t: &TaskState) -> bool {
    let nsp = t.fs.ns();
    let root = nsp.root();
    let top = nsp.mounted_at(&root).unwrap_or(root);
    !t.fs.root().same(&top)
}

/// The credentials a task gets with a new user namespace (Linux's create_user_ns and
/// set_cred_user_ns): a child of its own, owned by its effective ids, in which it has
/// every capability; the securebits and the inheritable and ambient sets are cleared.
/// EPERM for a chroot'ed caller, ENOSPC past the nesting limit.
pub(super) fn creds_in_new_userns(t: &TaskState) -> Result<crate::task::Creds, Errno> {
    if chrooted(t) {
        return Err(Errno::EPERM);
    }
    let c = &t.creds;
    let ns = UserNs::child_of(&c.user_ns, c.euid, c.egid, own_capable(c, Cap::Setfcap))?;
    let mut new = c.clone();
    new.user_ns = ns::UserNsRef(ns);
    new.caps = crate::caps::CapSets::full();
    Ok(new)
}

/// unshare(2): Linux's implied flags and checks (ksys_unshare, check_unshare_flags), then
/// new namespaces for the CLONE_NEW* bits. CLONE_FS and CLONE_SYSVSEM have nothing to
/// separate here (the fs context changes in place; SEM_UNDO lists are per process already).
pub fn unshare(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    const CLONE_VM: u64 = 0x100;
    const CLONE_FS: u64 = 0x200;
    const CLONE_FILES: u64 = 0x400;
    const CLONE_SIGHAND: u64 = 0x800;
    const CLONE_THREAD: u64 = 0x10000;
    const CLONE_SYSVSEM: u64 = 0x40000;
    let mut flags = a[0];
    if flags & ns::CLONE_NEWUSER != 0 {
        flags |= CLONE_THREAD | CLONE_FS;
    }
    if flags & CLONE_VM != 0 {
        flags |= CLONE_SIGHAND;
    }
    if flags & CLONE_SIGHAND != 0 {
        flags |= CLONE_THREAD;
    }
    if flags & ns::CLONE_NEWNS != 0 {
        flags |= CLONE_FS;
    }
    let allowed = CLONE_THREAD
        | CLONE_FS
        | ns::CLONE_NEWNS
        | CLONE_SIGHAND
        | CLONE_VM
        | CLONE_FILES
        | CLONE_SYSVSEM
        | ns::CLONE_NEWUTS
        | ns::CLONE_NEWIPC
        | ns::CLONE_NEWNET
        | ns::CLONE_NEWUSER
        | ns::CLONE_NEWPID
        | ns::CLONE_NEWCGROUP
        | ns::CLONE_NEWTIME;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL);
    }
    // Only a single-threaded process may unshare its threads, handlers or memory.
    if flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != 0 && t.group.thread_count() > 1 {
        return Err(Errno::EINVAL);
    }
    let new = flags & (ns::SUPPORTED | ns::CLONE_NEWNET | ns::CLONE_NEWTIME);
    // A user namespace first (anyone may make one); the others are owned by the caller's
    // namespace, the new one if there is one, and need CAP_SYS_ADMIN in it (Linux's
    // unshare_nsproxy_namespaces), which the creator has.
    let creds = if new & ns::CLONE_NEWUSER != 0 {
        Some(creds_in_new_userns(t)?)
    } else {
        None
    };
    let owner = creds.as_ref().unwrap_or(&t.creds).user_ns.0.clone();
    if new & !ns::CLONE_NEWUSER != 0 && !ns_capable(&t.creds, &owner, Cap::SysAdmin) {
        return Err(Errno::EPERM);
    }
    // The sandbox's network is its own already, and it has one clock.
    if new & (ns::CLONE_NEWNET | ns::CLONE_NEWTIME) != 0 {
        return Err(Errno::EPERM);
    }
    if flags & CLONE_FILES != 0 && t.fds.shared_with_another_process() {
        let own = Arc::new(crate::fdtable::FdTable::copy_of(&t.fds));
        t.fds.remove_process();
        t.fds = own;
        t.process.set_fd_table(&t.fds);
    }
    if new & ns::CLONE_NEWNS != 0 {
        let (copy, map) = copy_mnt_ns(&t.fs.ns(), &owner);
        let (root, cwd) = (map.translate(&t.fs.root()), map.translate(&t.fs.cwd()));
        t.fs.enter(copy, root, cwd);
    }
    if new & !(ns::CLONE_NEWNS | ns::CLONE_NEWUSER) != 0 {
        let cur = t.process.namespaces();
        let procfs = t.kernel.procfs.clone();
        let next = cur.with_new(new, &owner, || procfs.uts_names(&cur.uts));
        t.process.set_namespaces(next);
        if new & ns::CLONE_NEWIPC != 0 {
            cur.ipc.ns.process_left(t.pid);
        }
    }
    if let Some(creds) = creds {
        super::process::commit_creds(t, creds);
    }
    Ok(0)
}

/// setns(2) with a /proc/PID/ns file: `nstype` 0 or the file's kind (else EINVAL); a file
/// that is no namespace's EINVAL (pidfds aren't taken yet). Each kind's install checks, as
/// Linux's: CAP_SYS_ADMIN (EPERM); a mount namespace also CAP_SYS_CHROOT, and a
/// single-threaded caller (EINVAL), which moves to the namespace's root; a user namespace
/// is EINVAL for the caller's own or from a threaded process; a pid namespace moves only
/// the children to come.
pub fn setns(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let nstype = a[1] as i32 as i64 as u64;
    let target = file
        .inode()
        .and_then(|i| {
            i.as_any()
                .downcast_ref::<NsFile>()
                .map(|f| f.target.clone())
        })
        .ok_or(Errno::EINVAL)?;
    if nstype != 0 && nstype != target.flag() {
        return Err(Errno::EINVAL);
    }
    let single = t.group.thread_count() == 1;
    let mut n: Namespaces = t.process.namespaces();
    // CAP_SYS_ADMIN in the user namespace that owns the target (Linux's *_install), and
    // in the caller's own for what it leaves behind.
    let c = &t.creds;
    let admin_in =
        |owner: &UserNs| ns_capable(c, owner, Cap::SysAdmin) && own_capable(c, Cap::SysAdmin);
    let admin = match &target {
        NsRef::Uts(u) => admin_in(&u.owner),
        NsRef::Ipc(i) => admin_in(&i.owner),
        NsRef::Mnt(m) => admin_in(&mnt_owner(m)),
        NsRef::User(u) => ns_capable(c, u, Cap::SysAdmin),
        NsRef::Pid(p) => admin_in(&p.owner),
        // The rest belong to the initial user namespace here.
        _ => capable(c, Cap::SysAdmin),
    };
    let ipc_target = matches!(target, NsRef::Ipc(_));
    match target {
        NsRef::Mnt(mnt) => {
            if !single {
                return Err(Errno::EINVAL);
            }
            if !admin || !own_capable(&t.creds, Cap::SysChroot) {
                return Err(Errno::EPERM);
            }
            let root = mnt.root();
            let root = mnt.mounted_at(&root).unwrap_or(root);
            t.fs.enter(mnt, root.clone(), root);
            return Ok(0);
        }
        NsRef::User(u) => {
            // Linux's userns_install: not the caller's own, single-threaded,
            // CAP_SYS_ADMIN in the target; the caller then has every capability there.
            if u.ino == t.creds.user_ns.ino || !single {
                return Err(Errno::EINVAL);
            }
            if !admin {
                return Err(Errno::EPERM);
            }
            let mut new = t.creds.clone();
            new.user_ns = ns::UserNsRef(u);
            new.caps = crate::caps::CapSets::full();
            super::process::commit_creds(t, new);
            return Ok(0);
        }
        _ if !admin => return Err(Errno::EPERM),
        NsRef::Uts(u) => n.uts = u,
        NsRef::Ipc(i) => n.ipc = i,
        NsRef::Cgroup(c) => n.cgroup = c,
        // Only the caller's own pid namespace or one below it (Linux's pidns_install).
        NsRef::Pid(p) if !p.is_within(&n.pid) => return Err(Errno::EINVAL),
        NsRef::Pid(p) => n.pid_for_children = p,
        NsRef::Time(x) => n.time = x,
        // The sandbox has one network namespace: joining it changes nothing.
        NsRef::Net(_) => {}
    }
    let old_ipc = t.process.namespaces().ipc;
    t.process.set_namespaces(n);
    // Linux's commit_nsset orphans the caller's segments on any IPC setns, into its own
    // namespace too.
    if ipc_target {
        old_ipc.ns.process_left(t.pid);
    }
    Ok(0)
}

/// Reads an optional string argument of mount (type, source): NULL is None, a string
/// longer than a page EINVAL, a bad pointer EFAULT (Linux's strndup_user).
fn mount_string(t: &mut TaskState, addr: u64) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    match t.mm.copy_in_cstring(addr, PAGE) {
        Ok(s) => Ok(Some(s)),
        Err(Errno::ENAMETOOLONG) => Err(Errno::EINVAL),
        Err(e) => Err(e),
    }
}

/// Reads mount's data argument: at most a page, ending at its NUL or at the page's last
/// byte (Linux's copy_mount_options, which reads what it can).
fn mount_data(t: &mut TaskState, addr: u64) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    match t.mm.copy_in_cstring(addr, PAGE) {
        Ok(s) => Ok(Some(s)),
        Err(Errno::ENAMETOOLONG) => {
            let mut buf = vec![0u8; PAGE - 1];
            t.mm.copy_in(addr, &mut buf)?;
            Ok(Some(buf))
        }
        Err(e) => Err(e),
    }
}

/// The per-mount flags mount's `flags` ask for (Linux's path_mount): relatime unless
/// noatime or strictatime; a remount that names no atime flag keeps the mount's.
fn mount_flags_of(flags: u64, old: Option<u32>) -> u32 {
    let mut m = mf::RELATIME;
    for (ms, bit) in [
        (MS_NOSUID, mf::NOSUID),
        (MS_NODEV, mf::NODEV),
        (MS_NOEXEC, mf::NOEXEC),
        (MS_RDONLY, mf::RDONLY),
    ] {
        if flags & ms != 0 {
            m |= bit;
        }
    }
    if flags & MS_NOATIME != 0 {
        m = (m & !mf::RELATIME) | mf::NOATIME;
    }
    if flags & MS_NODIRATIME != 0 {
        m |= mf::NODIRATIME;
    }
    if flags & MS_STRICTATIME != 0 {
        m &= !(mf::RELATIME | mf::NOATIME);
    }
    let atime = MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
    if let Some(old) = old {
        if flags & atime == 0 {
            let mask = mf::RELATIME | mf::NOATIME | mf::NODIRATIME;
            m = (m & !mask) | (old & mask);
        }
    }
    m
}

/// mount(2): Linux's order: the strings (EFAULT), the target (path errors), MS_NOUSER
/// (EINVAL), CAP_SYS_ADMIN (EPERM), then by kind: remount (of a bind mount's flags alone
/// with MS_BIND), bind, propagation change, move, new mount.
pub fn mount(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let source = mount_string(t, a[0])?;
    let target = read_path(t, a[1])?;
    let fstype = mount_string(t, a[2])?;
    let mut flags = a[3];
    let data = mount_data(t, a[4])?;
    let at = resolve_at(t, libc::AT_FDCWD as u64, &target, ResolveFlags::follow())?;
    if flags & MS_MGC_MSK == MS_MGC_VAL {
        flags &= !MS_MGC_MSK;
    }
    if flags & MS_NOUSER != 0 {
        return Err(Errno::EINVAL);
    }
    may_mount(t)?;
    let nsp = t.fs.ns();
    if flags & (MS_REMOUNT | MS_BIND) == MS_REMOUNT | MS_BIND {
        // Only the mount's own flags change (Linux's do_reconfigure_mnt).
        if !nsp.contains(&at.mount) || !at.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        let new = mount_flags_of(flags, Some(at.mount.flags()));
        if !at.mount.may_set_flags(new) {
            return Err(Errno::EPERM);
        }
        at.mount.set_flags(new);
        return Ok(0);
    }
    if flags & MS_REMOUNT != 0 {
        if !nsp.contains(&at.mount) || !at.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        // Reconfiguring the file system needs CAP_SYS_ADMIN over its superblock's user
        // namespace (do_remount): one inherited from a more privileged namespace belongs to
        // the initial one here.
        if at.mount.is_inherited() && !capable(&t.creds, Cap::SysAdmin) {
            return Err(Errno::EPERM);
        }
        if let Some(d) = &data {
            check_remount_options(&at.mount, d)?;
        }
        let new = mount_flags_of(flags, Some(at.mount.flags()));
        if !at.mount.may_set_flags(new) {
            return Err(Errno::EPERM);
        }
        at.mount.set_flags(new);
        return Ok(0);
    }
    if flags & MS_BIND != 0 {
        let source = source.filter(|s| !s.is_empty()).ok_or(Errno::EINVAL)?;
        let src = resolve_at(t, libc::AT_FDCWD as u64, &source, ResolveFlags::follow())?;
        if !nsp.contains(&at.mount) {
            return Err(Errno::EINVAL);
        }
        return nsp
            .bind(&at, &src, flags & MS_REC != 0)
            .map(|_| 0)
            .map_err(|e| Errno(if e == libc::EISDIR { libc::ENOTDIR } else { e }));
    }
    let propagation = flags & (MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE);
    if propagation != 0 {
        if !at.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        // Exactly one kind, with nothing but MS_REC and MS_SILENT beside it.
        let kind = flags & !(MS_REC | MS_SILENT);
        let change = match kind {
            MS_SHARED => PropagationChange::Shared,
            MS_PRIVATE => PropagationChange::Private,
            MS_SLAVE => PropagationChange::Slave,
            MS_UNBINDABLE => PropagationChange::Unbindable,
            _ => return Err(Errno::EINVAL),
        };
        return nsp
            .set_propagation(&at, change, flags & MS_REC != 0)
            .map(|_| 0)
            .map_err(Errno);
    }
    if flags & MS_MOVE != 0 {
        let source = source.filter(|s| !s.is_empty()).ok_or(Errno::EINVAL)?;
        let from = resolve_at(t, libc::AT_FDCWD as u64, &source, ResolveFlags::follow())?;
        return nsp.move_mount(&from, &at).map(|_| 0).map_err(Errno);
    }
    let fstype = fstype.ok_or(Errno::EINVAL)?;
    mount_capable(t, &fstype)?;
    let source = String::from_utf8_lossy(source.as_deref().unwrap_or(b"none")).into_owned();
    let data = data.unwrap_or_default();
    let mount =
        super::mount_fs::new_mount(t, &fstype, &source, &data, mount_flags_of(flags, None))?;
    if !nsp.contains(&at.mount) {
        return Err(Errno::EINVAL);
    }
    // The same superblock again on its own root (proc over the same pid namespace's proc).
    if mount.sb_key != 0
        && at.is_mount_root()
        && at.mount.fs_type == mount.fs_type
        && super::mount_fs::sb_key_of(&at.mount) == mount.sb_key
    {
        return Err(Errno::EBUSY);
    }
    nsp.attach(&at, mount)
        .map(|_| 0)
        .map_err(|e| Errno(if e == libc::EISDIR { libc::ENOTDIR } else { e }))
}

/// Linux's mount_capable for a new file system: CAP_SYS_ADMIN in the user namespace the
/// file system belongs to. The types Linux marks FS_USERNS_MOUNT belong to the caller's
/// (tmpfs, devpts), its IPC namespace's owner (mqueue), its pid namespace's (proc) or its
/// network namespace's (sysfs: the initial one here). The sandbox has no other types
/// (mount_fs gives ENODEV, which Linux checks first).
fn mount_capable(t: &TaskState, fstype: &[u8]) -> Result<(), Errno> {
    let c = &t.creds;
    let n = t.process.namespaces();
    let ok = match fstype {
        b"tmpfs" | b"devpts" => own_capable(c, Cap::SysAdmin),
        b"mqueue" => ns_capable(c, &n.ipc.owner, Cap::SysAdmin),
        b"proc" => ns_capable(c, &n.pid.owner, Cap::SysAdmin),
        b"sysfs" => capable(c, Cap::SysAdmin),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// A remount's options: a tmpfs takes its own again; the others take what they mount with.
fn check_remount_options(m: &Mount, data: &[u8]) -> Result<(), Errno> {
    if m.fs_type == "tmpfs" {
        super::mount_fs::tmpfs_options(data).map(|_| ())
    } else {
        Ok(())
    }
}

/// umount2(2): unknown flags EINVAL, CAP_SYS_ADMIN (EPERM), the path (UMOUNT_NOFOLLOW
/// leaves a final symlink), then the namespace's rules (`MountNamespace::umount`); MNT_FORCE
/// needs CAP_SYS_ADMIN too, which the caller has by then.
pub fn umount2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[1];
    let known = (fs::vfs::mount::MNT_FORCE
        | fs::vfs::mount::MNT_DETACH
        | fs::vfs::mount::MNT_EXPIRE) as u64
        | UMOUNT_NOFOLLOW;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    may_mount(t)?;
    let path = read_path(t, a[0])?;
    let follow = if flags & UMOUNT_NOFOLLOW != 0 {
        ResolveFlags::nofollow()
    } else {
        ResolveFlags::follow()
    };
    let loc = resolve_at(t, libc::AT_FDCWD as u64, &path, follow)?;
    let nsp = t.fs.ns();
    nsp.umount(loc, (flags & !UMOUNT_NOFOLLOW) as u32)
        .map(|_| 0)
        .map_err(Errno)
}

/// pivot_root(2): CAP_SYS_ADMIN (EPERM), both paths (directories), then the tree's rules
/// (`MountNamespace::pivot_root`). Every process whose root or working directory was the
/// old root moves to the new one, as Linux's chroot_fs_refs.
pub fn pivot_root(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    may_mount(t)?;
    let new_path = read_path(t, a[0])?;
    let old_path = read_path(t, a[1])?;
    let new_root = resolve_dir(t, &new_path, true)?;
    let put_old = resolve_dir(t, &old_path, true)?;
    let nsp = t.fs.ns();
    let cur_root = t.fs.root();
    // Linux's do_pivot_root: a locked new root would uncover what it hides.
    if new_root.mount.is_locked() {
        return Err(Errno::EINVAL);
    }
    nsp.pivot_root(&new_root, &put_old, &cur_root)
        .map_err(Errno)?;
    let new_loc = Location {
        dentry: new_root.mount.root.clone(),
        mount: new_root.mount.clone(),
    };
    for p in t.kernel.procfs.processes() {
        if !Arc::ptr_eq(&p.fs.ns(), &nsp) {
            continue;
        }
        if p.fs.root().same(&cur_root) {
            p.fs.set_root(new_loc.clone());
        }
        if p.fs.cwd().same(&cur_root) {
            p.fs.set_cwd(new_loc.clone());
        }
    }
    Ok(0)
}
