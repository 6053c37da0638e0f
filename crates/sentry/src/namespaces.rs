//! Namespaces inside the sandbox (namespaces(7)): what unshare, clone's CLONE_NEW* flags and
//! setns change, and the /proc/PID/ns files that name them.
//!
//! None of this touches the host: the sentry already runs in namespaces of its own, and these
//! are the sandbox's objects. A UTS namespace holds host and domain names; an IPC namespace
//! its own System V objects and message queues; a mount namespace is the VFS's
//! ([`fs::vfs::MountNamespace`]). A pid namespace ([`PidNs`]) numbers the processes made in
//! it (and below) from 1: the sandbox's pids stay the kernel's own ids, and the calls that
//! show or take pids translate at the boundary. A user namespace ([`UserNs`]) is Linux's:
//! a parent, an owner (its creator's euid), a depth, and uid_map/gid_map written once
//! through /proc/PID (the write rules of kernel/user_namespace.c's map_write). Ids stay the
//! kernel's (the sandbox's) in credentials and files; the calls that show ids translate
//! them into the caller's namespace ([`UserNs::uid_seen`]: 65534 when unmapped) and those
//! that take ids translate them back ([`UserNs::make_kuid`]: EINVAL when unmapped). The
//! capability rules that go with it are in `crate::caps`. UTS, IPC, pid and mount
//! namespaces record the user namespace that owns them. Cgroup and time namespaces are
//! identities only (what /proc/PID/ns shows and setns joins): the sandbox has no cgroup
//! tree, and there is one clock.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use fs::vfs::{FileType, Inode, MountNamespace, StatFs};
use fs::{Errno, Stat};

use crate::ipc::IpcNs;

/// clone and unshare flags for namespaces.
pub const CLONE_NEWTIME: u64 = 0x80;
pub const CLONE_NEWNS: u64 = 0x2_0000;
pub const CLONE_NEWCGROUP: u64 = 0x200_0000;
pub const CLONE_NEWUTS: u64 = 0x400_0000;
pub const CLONE_NEWIPC: u64 = 0x800_0000;
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
pub const CLONE_NEWPID: u64 = 0x2000_0000;
pub const CLONE_NEWNET: u64 = 0x4000_0000;
/// The namespaces the sandbox makes.
pub const SUPPORTED: u64 =
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID;

/// Linux's fixed inode numbers of the initial namespaces (include/linux/proc_ns.h).
pub const INIT_IPC: u64 = 0xEFFF_FFFF;
pub const INIT_UTS: u64 = 0xEFFF_FFFE;
pub const INIT_USER: u64 = 0xEFFF_FFFD;
pub const INIT_PID: u64 = 0xEFFF_FFFC;
pub const INIT_CGROUP: u64 = 0xEFFF_FFFB;
pub const INIT_TIME: u64 = 0xEFFF_FFFA;
pub const INIT_NET: u64 = 0xEFFF_FFF9;

/// nsfs' device (Linux's is an anonymous 0:N; 0:4 where it is mounted early).
const NSFS_DEV: u64 = fs::dev::makedev(0, 4);
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// A UTS namespace: the host and NIS domain names.
pub struct UtsNs {
    pub ino: u64,
    /// The user namespace whose CAP_SYS_ADMIN sets the names.
    pub owner: Arc<UserNs>,
    /// None for the sandbox's first namespace, whose names procfs keeps (a container's host
    /// name is set there before anything runs, and unset means the host's).
    names: Option<Mutex<(Vec<u8>, Vec<u8>)>>,
}

impl UtsNs {
    fn initial() -> Arc<UtsNs> {
        Arc::new(UtsNs {
            ino: INIT_UTS,
            owner: UserNs::initial(),
            names: None,
        })
    }

    /// The names of the sandbox's first namespace are procfs'.
    pub fn is_initial(&self) -> bool {
        self.names.is_none()
    }

    /// (host name, domain name), for a namespace that isn't the first.
    pub fn names(&self) -> Option<(Vec<u8>, Vec<u8>)> {
        self.names
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Sets the host name (`host`) or the domain name; false for the first namespace.
    pub fn set(&self, host: bool, name: &[u8]) -> bool {
        let Some(m) = &self.names else { return false };
        let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
        let name = name[..name.len().min(64)].to_vec();
        if host {
            n.0 = name
        } else {
            n.1 = name
        }
        true
    }
}

/// A pid namespace: the ids it gives the sandbox's tasks (which are known by the kernel's
/// own ids, the initial namespace's). The initial namespace translates nothing. Ids are
/// kept until the namespace goes (a reaped child's id must still translate for the wait
/// that reaped it; the kernel's ids are never reused, so an old entry names nothing else):
/// two map entries per task made in it.
pub struct PidNs {
    pub ino: u64,
    /// The user namespace whose CAP_SYS_ADMIN mounts a proc for it and joins it.
    pub owner: Arc<UserNs>,
    parent: Option<Arc<PidNs>>,
    ids: Mutex<PidMap>,
}

#[derive(Default)]
struct PidMap {
    local: BTreeMap<i32, i32>,
    global: BTreeMap<i32, i32>,
    next: i32,
    /// Its init has ended: nothing new may join it (Linux clears PIDNS_ADDING).
    dead: bool,
}

impl PidNs {
    fn initial() -> Arc<PidNs> {
        Arc::new(PidNs {
            ino: INIT_PID,
            owner: UserNs::initial(),
            parent: None,
            ids: Default::default(),
        })
    }

    /// A child namespace of `parent`, owned by `owner`.
    fn child_of(parent: &Arc<PidNs>, owner: &Arc<UserNs>) -> Arc<PidNs> {
        Arc::new(PidNs {
            ino: fs::vfs::next_ns_ino(),
            owner: owner.clone(),
            parent: Some(parent.clone()),
            ids: Mutex::new(PidMap {
                next: 1,
                ..Default::default()
            }),
        })
    }

    pub fn is_initial(&self) -> bool {
        self.parent.is_none()
    }

    fn lock(&self) -> MutexGuard<'_, PidMap> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id the task `global` has here: 0 if it isn't in this namespace or below.
    pub fn view(&self, global: i32) -> i32 {
        if self.is_initial() || global <= 0 {
            return global;
        }
        self.lock().local.get(&global).copied().unwrap_or(0)
    }

    /// The task called `local` here, if there is one.
    pub fn global(&self, local: i32) -> Option<i32> {
        if self.is_initial() {
            return Some(local);
        }
        self.lock().global.get(&local).copied()
    }

    /// Gives the new task `global` an id here and in every namespace above (Linux's
    /// alloc_pid, one number per level).
    pub fn register(self: &Arc<Self>, global: i32) {
        let mut cur = Some(self.clone());
        while let Some(ns) = cur {
            if ns.is_initial() {
                break;
            }
            {
                let mut m = ns.lock();
                let id = m.next;
                m.next += 1;
                m.local.insert(global, id);
                m.global.insert(id, global);
            }
            cur = ns.parent.clone();
        }
    }

    /// The task that is pid 1 here (the namespace's init, its orphans' reaper), if it was
    /// made.
    pub fn init(&self) -> Option<i32> {
        self.global(1)
    }

    /// The namespace's init ended: its other processes are killed, and fork or clone into
    /// it fails with ENOMEM from now on (Linux's zap_pid_ns_processes and alloc_pid).
    pub fn set_dead(&self) {
        self.lock().dead = true;
    }

    /// Whether the namespace's init has ended.
    pub fn is_dead(&self) -> bool {
        !self.is_initial() && self.lock().dead
    }

    /// Whether this namespace is `ancestor` or below it.
    pub fn is_within(&self, ancestor: &PidNs) -> bool {
        if self.ino == ancestor.ino {
            return true;
        }
        self.parent.as_ref().is_some_and(|p| p.is_within(ancestor))
    }
}

/// The id the task `global` has for the process `p` (its pid namespace's): 0 if `p` can't
/// see it.
pub fn pid_view(p: &crate::procfs::ProcessInfo, global: i32) -> i32 {
    if !p.pid_nested {
        return global;
    }
    p.namespaces().pid.view(global)
}

/// The task the process `p` calls `local`, if it sees one by that id.
pub fn pid_global(p: &crate::procfs::ProcessInfo, local: i32) -> Option<i32> {
    if !p.pid_nested || local <= 0 {
        return Some(local);
    }
    p.namespaces().pid.global(local)
}

/// Linux's overflowuid and overflowgid (/proc/sys/kernel/overflow{u,g}id): what an id with
/// no mapping in the reader's user namespace reads as.
pub const OVERFLOW_ID: u32 = 65534;
/// Linux's UID_GID_MAP_MAX_EXTENTS: lines a uid_map or gid_map may have.
const MAX_EXTENTS: usize = 340;
/// Linux's create_user_ns refuses a child of a namespace deeper than this (ENOSPC).
const MAX_LEVEL: u32 = 32;

/// One line of a uid_map or gid_map: `count` ids from `first` in the namespace are the
/// kernel's (the sandbox's) ids from `lower` (Linux keeps `lower_first` as a kernel id
/// once the write has translated it through the parent's map).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub first: u32,
    pub lower: u32,
    pub count: u32,
}

/// A uid_map or gid_map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMap {
    pub extents: Vec<Extent>,
}

impl IdMap {
    /// The identity map of the initial namespace.
    fn identity() -> IdMap {
        IdMap {
            extents: vec![Extent {
                first: 0,
                lower: 0,
                count: u32::MAX,
            }],
        }
    }

    /// The kernel id of the namespace's `id` (Linux's map_id_down).
    pub fn down(&self, id: u32) -> Option<u32> {
        self.extents
            .iter()
            .find(|e| id >= e.first && id - e.first < e.count)
            .map(|e| e.lower + (id - e.first))
    }

    /// The namespace's id for the kernel id `kid` (Linux's map_id_up).
    pub fn up(&self, kid: u32) -> Option<u32> {
        self.extents
            .iter()
            .find(|e| kid >= e.lower && kid - e.lower < e.count)
            .map(|e| e.first + (kid - e.lower))
    }

    /// The kernel ids the map covers, as (first, count) ranges.
    fn kernel_ranges(&self) -> Vec<(u32, u32)> {
        self.extents.iter().map(|e| (e.lower, e.count)).collect()
    }
}

/// Which map a write or read is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    Uid,
    Gid,
}

/// A user namespace (user_namespaces(7)): the ids its processes see, and the capabilities
/// its creator and members have over the objects it owns. Ids inside the sandbox stay the
/// kernel's (the initial namespace's) everywhere; the calls that show or take ids translate
/// through the caller's namespace's maps ([`UserNs::from_kuid`], [`UserNs::make_kuid`]).
pub struct UserNs {
    pub ino: u64,
    pub parent: Option<Arc<UserNs>>,
    /// 0 for the initial namespace, one more per generation.
    pub level: u32,
    /// The creator's effective uid and gid (kernel ids).
    pub owner: u32,
    pub group: u32,
    /// The creator had CAP_SETFCAP: only then may its own process map the parent's root
    /// (Linux's parent_could_setfcap, verify_root_map).
    parent_could_setfcap: bool,
    uid_map: std::sync::OnceLock<IdMap>,
    gid_map: std::sync::OnceLock<IdMap>,
    /// /proc/PID/setgroups: "allow" until "deny" is written (then for good).
    setgroups_allowed: std::sync::atomic::AtomicBool,
    /// Serializes map and setgroups writes (Linux's userns_state_mutex).
    writing: Mutex<()>,
}

impl std::fmt::Debug for UserNs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UserNs({}, level {})", self.ino, self.level)
    }
}

static INIT_USER_NS: std::sync::LazyLock<Arc<UserNs>> = std::sync::LazyLock::new(|| {
    let ns = UserNs {
        ino: INIT_USER,
        parent: None,
        level: 0,
        owner: 0,
        group: 0,
        parent_could_setfcap: true,
        uid_map: std::sync::OnceLock::new(),
        gid_map: std::sync::OnceLock::new(),
        setgroups_allowed: std::sync::atomic::AtomicBool::new(true),
        writing: Mutex::new(()),
    };
    let _ = ns.uid_map.set(IdMap::identity());
    let _ = ns.gid_map.set(IdMap::identity());
    Arc::new(ns)
});

/// A credential's user namespace (Linux's cred->user_ns); the initial one by default.
#[derive(Clone, Debug)]
pub struct UserNsRef(pub Arc<UserNs>);

impl Default for UserNsRef {
    fn default() -> Self {
        UserNsRef(UserNs::initial())
    }
}

impl std::ops::Deref for UserNsRef {
    type Target = Arc<UserNs>;
    fn deref(&self) -> &Arc<UserNs> {
        &self.0
    }
}

impl UserNs {
    /// The sandbox's first user namespace: every id is itself.
    pub fn initial() -> Arc<UserNs> {
        INIT_USER_NS.clone()
    }

    pub fn is_initial(&self) -> bool {
        self.parent.is_none()
    }

    /// A child of `parent` made by a task with effective ids `euid`, `egid` (kernel ids),
    /// as Linux's create_user_ns: ENOSPC past the depth limit, EPERM when the creator's
    /// ids have no mapping in the parent. (The chroot check is the caller's.)
    pub fn child_of(
        parent: &Arc<UserNs>,
        euid: u32,
        egid: u32,
        could_setfcap: bool,
    ) -> Result<Arc<UserNs>, crate::errno::Errno> {
        if parent.level > MAX_LEVEL {
            return Err(crate::errno::Errno(libc::ENOSPC));
        }
        if parent.from_kuid(euid).is_none() || parent.from_kgid(egid).is_none() {
            return Err(crate::errno::Errno::EPERM);
        }
        Ok(Arc::new(UserNs {
            ino: fs::vfs::next_ns_ino(),
            parent: Some(parent.clone()),
            level: parent.level + 1,
            owner: euid,
            group: egid,
            parent_could_setfcap: could_setfcap,
            uid_map: std::sync::OnceLock::new(),
            gid_map: std::sync::OnceLock::new(),
            setgroups_allowed: std::sync::atomic::AtomicBool::new(parent.setgroups_allowed()),
            writing: Mutex::new(()),
        }))
    }

    fn map(&self, kind: MapKind) -> Option<&IdMap> {
        match kind {
            MapKind::Uid => self.uid_map.get(),
            MapKind::Gid => self.gid_map.get(),
        }
    }

    /// The kernel uid of this namespace's `uid` (Linux's make_kuid): None if unmapped.
    pub fn make_kuid(&self, uid: u32) -> Option<u32> {
        if uid == u32::MAX {
            return None;
        }
        self.map(MapKind::Uid)?.down(uid)
    }

    pub fn make_kgid(&self, gid: u32) -> Option<u32> {
        if gid == u32::MAX {
            return None;
        }
        self.map(MapKind::Gid)?.down(gid)
    }

    /// This namespace's id for the kernel uid `kuid` (Linux's from_kuid): None if unmapped.
    pub fn from_kuid(&self, kuid: u32) -> Option<u32> {
        self.map(MapKind::Uid)?.up(kuid)
    }

    pub fn from_kgid(&self, kgid: u32) -> Option<u32> {
        self.map(MapKind::Gid)?.up(kgid)
    }

    /// [`Self::from_kuid`], an unmapped id showing as the overflow uid (from_kuid_munged).
    pub fn uid_seen(&self, kuid: u32) -> u32 {
        self.from_kuid(kuid).unwrap_or(OVERFLOW_ID)
    }

    pub fn gid_seen(&self, kgid: u32) -> u32 {
        self.from_kgid(kgid).unwrap_or(OVERFLOW_ID)
    }

    /// Whether setgroups(2) may be used here (Linux's userns_may_setgroups): the gid map
    /// is written and "deny" wasn't.
    pub fn may_setgroups(&self) -> bool {
        self.gid_map.get().is_some() && self.setgroups_allowed()
    }

    pub fn setgroups_allowed(&self) -> bool {
        self.setgroups_allowed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The kernel ids this namespace maps, for the file permission checks (None: the
    /// initial namespace, which maps all).
    pub fn mapped_ids(&self) -> Option<Arc<fs::vfs::perm::MappedIds>> {
        if self.is_initial() {
            return None;
        }
        Some(Arc::new(fs::vfs::perm::MappedIds {
            uids: self
                .uid_map
                .get()
                .map(IdMap::kernel_ranges)
                .unwrap_or_default(),
            gids: self
                .gid_map
                .get()
                .map(IdMap::kernel_ranges)
                .unwrap_or_default(),
        }))
    }

    /// Whether `self` is `other` or one of its descendants.
    pub fn is_within(&self, other: &UserNs) -> bool {
        let mut cur = self;
        loop {
            if cur.ino == other.ino {
                return true;
            }
            match &cur.parent {
                Some(p) => cur = p,
                None => return false,
            }
        }
    }

    /// /proc/PID/uid_map (or gid_map) as a process in `reader` sees it (Linux's
    /// uid_m_show): the lower ids in the reader's namespace, or its parent's when the
    /// reader reads its own namespace's map; -1 for a lower id the reader can't name.
    pub fn map_text(&self, kind: MapKind, reader: &UserNs) -> Vec<u8> {
        let Some(map) = self.map(kind) else {
            return Vec::new();
        };
        let lower_ns = match &reader.parent {
            Some(p) if reader.ino == self.ino => p.as_ref(),
            _ => reader,
        };
        let mut out = String::new();
        for e in &map.extents {
            let lower = match kind {
                MapKind::Uid => lower_ns.from_kuid(e.lower),
                MapKind::Gid => lower_ns.from_kgid(e.lower),
            }
            .unwrap_or(u32::MAX);
            out.push_str(&format!("{:>10} {:>10} {:>10}\n", e.first, lower, e.count));
        }
        out.into_bytes()
    }

    /// A write of `text` to this namespace's /proc/PID/uid_map or gid_map by a task with
    /// `writer`'s credentials, as Linux's map_write: once (EPERM after), at most 340
    /// lines of "first lower count" with no overlaps (EINVAL), with CAP_SYS_ADMIN here,
    /// and lower ids the writer may use (new_idmap_permitted: its own euid or egid alone,
    /// the egid only after setgroups "deny", or anything with CAP_SETUID/CAP_SETGID in the
    /// parent) which are mapped in the parent (EPERM).
    pub fn write_map(
        self: &Arc<Self>,
        kind: MapKind,
        text: &[u8],
        writer: &crate::task::Creds,
    ) -> Result<(), crate::errno::Errno> {
        use crate::caps::{ns_capable, Cap};
        use crate::errno::Errno;
        let Some(parent) = self.parent.clone() else {
            // The initial namespace's maps are written already.
            return Err(Errno::EPERM);
        };
        // Linux's proc_{uid,gid}_map_write: the writer is in this namespace or its parent.
        if writer.user_ns.ino != self.ino && writer.user_ns.ino != parent.ino {
            return Err(Errno::EPERM);
        }
        let _lock = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        if self.map(kind).is_some() {
            return Err(Errno::EPERM);
        }
        if !ns_capable(writer, self, Cap::SysAdmin) {
            return Err(Errno::EPERM);
        }
        let mut extents = parse_map(text)?;
        // new_idmap_permitted.
        let cap = match kind {
            MapKind::Uid => Cap::Setuid,
            MapKind::Gid => Cap::Setgid,
        };
        if kind == MapKind::Uid && extents.iter().any(|e| e.lower == 0) {
            // verify_root_map: mapping the parent's root needs CAP_SETFCAP against the
            // parent (for the namespace's own process: its creator had it).
            let ok = if writer.user_ns.ino == self.ino {
                self.parent_could_setfcap
            } else {
                ns_capable(writer, &parent, Cap::Setfcap)
            };
            if !ok {
                return Err(Errno::EPERM);
            }
        }
        let own = extents.len() == 1 && extents[0].count == 1 && self.owner == writer.euid && {
            let id = extents[0].lower;
            match kind {
                MapKind::Uid => parent.make_kuid(id) == Some(writer.euid),
                MapKind::Gid => {
                    !self.setgroups_allowed() && parent.make_kgid(id) == Some(writer.egid)
                }
            }
        };
        if !own && !ns_capable(writer, &parent, cap) {
            return Err(Errno::EPERM);
        }
        // The lower ids, in the parent's terms, become kernel ids.
        for e in &mut extents {
            let (first, last) = match kind {
                MapKind::Uid => (
                    parent.make_kuid(e.lower),
                    parent.make_kuid(e.lower + (e.count - 1)),
                ),
                MapKind::Gid => (
                    parent.make_kgid(e.lower),
                    parent.make_kgid(e.lower + (e.count - 1)),
                ),
            };
            // Linux's map_id_range_down: the whole range in one extent of the parent's.
            match (first, last) {
                (Some(f), Some(l)) if l.checked_sub(f) == Some(e.count - 1) => e.lower = f,
                _ => return Err(Errno::EPERM),
            }
        }
        let map = IdMap { extents };
        let slot = match kind {
            MapKind::Uid => &self.uid_map,
            MapKind::Gid => &self.gid_map,
        };
        slot.set(map).map_err(|_| Errno::EPERM)
    }

    /// A write to /proc/PID/setgroups (Linux's proc_setgroups_write): "allow" or "deny"
    /// and optional white space (EINVAL otherwise); "allow" after "deny", or "deny" once
    /// the gid map is written, is EPERM.
    pub fn write_setgroups(&self, text: &[u8]) -> Result<(), crate::errno::Errno> {
        use crate::errno::Errno;
        if text.len() >= 8 {
            return Err(Errno::EINVAL);
        }
        let text = text.split(|&b| b == 0).next().unwrap_or_default();
        let (allow, rest) = if let Some(r) = text.strip_prefix(b"allow") {
            (true, r)
        } else if let Some(r) = text.strip_prefix(b"deny") {
            (false, r)
        } else {
            return Err(Errno::EINVAL);
        };
        if !rest.iter().all(|b| is_space(*b)) {
            return Err(Errno::EINVAL);
        }
        let _lock = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        if allow {
            if !self.setgroups_allowed() {
                return Err(Errno::EPERM);
            }
        } else {
            if self.gid_map.get().is_some() {
                return Err(Errno::EPERM);
            }
            self.setgroups_allowed
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

/// C's isspace in the "C" locale (Linux's _ctype).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Linux's simple_strtoul in base 10: the digits at the front (0 for none; wrapping as
/// the kernel's does) and the rest.
fn strtoul(s: &[u8]) -> (u32, &[u8]) {
    let n = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let v = s[..n].iter().fold(0u64, |v, &d| {
        v.wrapping_mul(10).wrapping_add((d - b'0') as u64)
    });
    (v as u32, &s[n..])
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| is_space(**b)).count();
    &s[n..]
}

/// Parses a map write as Linux's map_write does, before the permission checks: EINVAL for
/// a malformed line, -1 as an id, an empty or wrapping range, an overlap (inside or
/// outside), more than 340 lines or none.
fn parse_map(text: &[u8]) -> Result<Vec<Extent>, crate::errno::Errno> {
    use crate::errno::Errno;
    if text.len() >= 4096 {
        return Err(Errno::EINVAL);
    }
    // The kernel copies the buffer as a C string: a NUL ends it.
    let text = text.split(|&b| b == 0).next().unwrap_or_default();
    let mut out: Vec<Extent> = Vec::new();
    let mut rest = Some(text);
    while let Some(chunk) = rest {
        let (line, next) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let n = &chunk[i + 1..];
                (&chunk[..i], (!n.is_empty()).then_some(n))
            }
            None => (chunk, None),
        };
        rest = next;
        let pos = skip_spaces(line);
        let (first, pos) = strtoul(pos);
        if !pos.first().is_some_and(|b| is_space(*b)) {
            return Err(Errno::EINVAL);
        }
        let (lower, pos) = strtoul(skip_spaces(pos));
        if !pos.first().is_some_and(|b| is_space(*b)) {
            return Err(Errno::EINVAL);
        }
        let (count, pos) = strtoul(skip_spaces(pos));
        if pos.first().is_some_and(|b| !is_space(*b)) {
            return Err(Errno::EINVAL);
        }
        if !skip_spaces(pos).is_empty() {
            return Err(Errno::EINVAL);
        }
        if first == u32::MAX || lower == u32::MAX {
            return Err(Errno::EINVAL);
        }
        if first.wrapping_add(count) <= first || lower.wrapping_add(count) <= lower {
            return Err(Errno::EINVAL);
        }
        let e = Extent {
            first,
            lower,
            count,
        };
        if out.iter().any(|p| {
            ranges_overlap(p.first, p.count, e.first, e.count)
                || ranges_overlap(p.lower, p.count, e.lower, e.count)
        }) {
            return Err(Errno::EINVAL);
        }
        if out.len() + 1 == MAX_EXTENTS && rest.is_some() {
            return Err(Errno::EINVAL);
        }
        out.push(e);
    }
    if out.is_empty() {
        return Err(Errno::EINVAL);
    }
    Ok(out)
}

/// Whether [a, a+n) and [b, b+m) share an id (Linux's mappings_overlap).
fn ranges_overlap(a: u32, n: u32, b: u32, m: u32) -> bool {
    let (a_last, b_last) = (a + (n - 1), b + (m - 1));
    (a <= b && b <= a_last) || (a <= b_last && b_last <= a_last) || (b < a && a_last < b_last)
}

/// An IPC namespace and its inode number.
#[derive(Clone)]
pub struct Ipc {
    pub ino: u64,
    pub ns: Arc<IpcNs>,
    /// The user namespace whose capabilities hold over its objects.
    pub owner: Arc<UserNs>,
}

/// A process's namespaces (Linux's nsproxy plus its user and pid namespaces). The mount
/// namespace lives in the [`crate::fs_context::FsContext`], with the root and cwd in it.
#[derive(Clone)]
pub struct Namespaces {
    pub uts: Arc<UtsNs>,
    pub ipc: Ipc,
    pub cgroup: u64,
    /// The pid namespace the process is in (Linux's task_active_pid_ns).
    pub pid: Arc<PidNs>,
    /// Where children go (unshare(CLONE_NEWPID) moves only them).
    pub pid_for_children: Arc<PidNs>,
    pub time: u64,
    pub net: u64,
}

impl Namespaces {
    /// The sandbox's first namespaces, with its IPC objects `ipc`.
    pub fn initial(ipc: Arc<IpcNs>) -> Namespaces {
        Namespaces {
            uts: UtsNs::initial(),
            ipc: Ipc {
                ino: INIT_IPC,
                ns: ipc,
                owner: UserNs::initial(),
            },
            cgroup: INIT_CGROUP,
            pid: PidNs::initial(),
            pid_for_children: PidNs::initial(),
            time: INIT_TIME,
            net: INIT_NET,
        }
    }

    /// The namespaces after unshare or clone with `flags`: new ones for the CLONE_NEW*
    /// bits, owned by `owner` (the user namespace of the credentials that made them). `uts`
    /// is the current host and domain names, which a new UTS namespace copies. (The user
    /// namespace is the credentials'; the mount namespace the fs context's.)
    pub fn with_new(
        &self,
        flags: u64,
        owner: &Arc<UserNs>,
        uts: impl FnOnce() -> (Vec<u8>, Vec<u8>),
    ) -> Namespaces {
        let mut n = self.clone();
        if flags & CLONE_NEWUTS != 0 {
            n.uts = Arc::new(UtsNs {
                ino: fs::vfs::next_ns_ino(),
                owner: owner.clone(),
                names: Some(Mutex::new(uts())),
            });
        }
        if flags & CLONE_NEWIPC != 0 {
            n.ipc = Ipc {
                ino: fs::vfs::next_ns_ino(),
                ns: IpcNs::new(),
                owner: owner.clone(),
            };
        }
        if flags & CLONE_NEWCGROUP != 0 {
            n.cgroup = fs::vfs::next_ns_ino();
        }
        if flags & CLONE_NEWPID != 0 {
            n.pid_for_children = PidNs::child_of(&self.pid_for_children, owner);
        }
        n
    }

    /// What a child made by fork or clone is in: its pid namespace is its parent's
    /// `pid_for_children`.
    pub fn for_child(&self) -> Namespaces {
        let mut n = self.clone();
        n.pid = n.pid_for_children.clone();
        n
    }
}

/// What a /proc/PID/ns file names.
#[derive(Clone)]
pub enum NsRef {
    Mnt(Arc<MountNamespace>),
    Uts(Arc<UtsNs>),
    Ipc(Ipc),
    Cgroup(u64),
    User(Arc<UserNs>),
    Pid(Arc<PidNs>),
    Time(u64),
    Net(u64),
}

impl NsRef {
    /// The name in /proc/PID/ns and the link text's prefix.
    pub fn kind(&self) -> &'static str {
        match self {
            NsRef::Mnt(_) => "mnt",
            NsRef::Uts(_) => "uts",
            NsRef::Ipc(_) => "ipc",
            NsRef::Cgroup(_) => "cgroup",
            NsRef::User(_) => "user",
            NsRef::Pid(_) => "pid",
            NsRef::Time(_) => "time",
            NsRef::Net(_) => "net",
        }
    }

    /// The CLONE_NEW* flag setns' `nstype` names this kind with.
    pub fn flag(&self) -> u64 {
        match self {
            NsRef::Mnt(_) => CLONE_NEWNS,
            NsRef::Uts(_) => CLONE_NEWUTS,
            NsRef::Ipc(_) => CLONE_NEWIPC,
            NsRef::Cgroup(_) => CLONE_NEWCGROUP,
            NsRef::User(_) => CLONE_NEWUSER,
            NsRef::Pid(_) => CLONE_NEWPID,
            NsRef::Time(_) => CLONE_NEWTIME,
            NsRef::Net(_) => CLONE_NEWNET,
        }
    }

    pub fn ino(&self) -> u64 {
        match self {
            NsRef::Mnt(m) => m.ino,
            NsRef::Uts(u) => u.ino,
            NsRef::Ipc(i) => i.ino,
            NsRef::Pid(p) => p.ino,
            NsRef::User(u) => u.ino,
            NsRef::Cgroup(n) | NsRef::Time(n) | NsRef::Net(n) => *n,
        }
    }

    /// `uts:[4026531838]`, as the link reads.
    pub fn link_text(&self) -> Vec<u8> {
        format!("{}:[{}]", self.kind(), self.ino()).into_bytes()
    }
}

/// The file a /proc/PID/ns link leads to (Linux's nsfs inode): opened, it is what setns
/// takes; its inode number is the namespace's.
pub struct NsFile {
    pub target: NsRef,
}

impl Inode for NsFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            dev: NSFS_DEV,
            ino: self.target.ino(),
            nlink: 1,
            mode: libc::S_IFREG | 0o444,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(libc::EINVAL)
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(StatFs {
            fs_type: NSFS_MAGIC,
            block_size: 4096,
            name_max: 255,
            ..Default::default()
        })
    }
}

type Target = Box<dyn Fn() -> Result<NsRef, Errno> + Send + Sync>;

/// /proc/PID/ns/KIND: a magic link. Read, it says `kind:[ino]`; followed, it is the
/// namespace's [`NsFile`]. ENOENT once the process is gone; EACCES (from `target`) for a
/// reader the ptrace access check refuses.
pub struct NsLink {
    ino: u64,
    dev: u64,
    target: Target,
}

impl NsLink {
    pub fn build(ino: u64, dev: u64, target: Target) -> Arc<dyn Inode> {
        Arc::new(NsLink { ino, dev, target })
    }
}

impl Inode for NsLink {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            dev: self.dev,
            ino: self.ino,
            nlink: 1,
            mode: libc::S_IFLNK | 0o777,
            blksize: 1024,
            ..Default::default()
        })
    }

    fn file_type(&self) -> FileType {
        FileType::Symlink
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        (self.target)().map(|t| t.link_text())
    }

    fn magic_link(&self) -> Option<Arc<dyn Inode>> {
        // A process that is gone (or a reader refused) leaves a link that leads nowhere:
        // the walk's readlink gives the error.
        (self.target)()
            .ok()
            .map(|target| Arc::new(NsFile { target }) as Arc<dyn Inode>)
    }
}

#[cfg(test)]
mod userns_tests {
    use super::*;
    use crate::caps::{ns_capable, Cap};
    use crate::errno::Errno;
    use crate::task::Creds;

    #[test]
    fn map_parsing() {
        let ok = parse_map(b" 0 1000 1\n5\t2000 10\n").expect("valid");
        assert_eq!(ok.len(), 2);
        for bad in [
            &b""[..],
            b"0 0",
            b"0 0 0",
            b"0 0 1 x",
            b"4294967295 0 1",
            b"0 0 1\n\n",
            b"0 0 2\n1 5 1",
            b"0 0 1\n5 0 1",
            b"4294967295 0 2",
        ] {
            assert_eq!(parse_map(bad), Err(Errno::EINVAL), "{:?}", bad);
        }
        let lines: String = (0..340).map(|i| format!("{i} {i} 1\n")).collect();
        assert!(parse_map(lines.as_bytes()).is_ok());
        let lines: String = (0..341).map(|i| format!("{i} {i} 1\n")).collect();
        assert_eq!(parse_map(lines.as_bytes()), Err(Errno::EINVAL));
    }

    fn user(uid: u32, ns: &Arc<UserNs>) -> Creds {
        let mut c = Creds::login(uid, uid, Vec::new());
        c.user_ns = UserNsRef(ns.clone());
        c
    }

    #[test]
    fn maps_and_capabilities() {
        let init = UserNs::initial();
        let creator = user(1000, &init);
        let ns = UserNs::child_of(&init, 1000, 1000, false).expect("child");
        // Unmapped: nothing translates.
        assert_eq!(ns.uid_seen(1000), OVERFLOW_ID);
        assert_eq!(ns.make_kuid(0), None);
        // The creator (outside) has every capability in it; a stranger none.
        assert!(ns_capable(&creator, &ns, Cap::SysAdmin));
        assert!(!ns_capable(&user(1001, &init), &ns, Cap::SysAdmin));
        // A member without the effective bit has none; the initial namespace is out of
        // reach from inside.
        let mut inside = user(1000, &ns);
        inside.caps = crate::caps::CapSets::full();
        assert!(ns_capable(&inside, &ns, Cap::SysAdmin));
        assert!(!ns_capable(&inside, &init, Cap::SysAdmin));
        assert!(!crate::caps::capable(&inside, Cap::SysAdmin));
        // Only its own uid, once; not the parent's root without CAP_SETFCAP.
        assert_eq!(
            ns.write_map(MapKind::Uid, b"0 0 1\n", &inside),
            Err(Errno::EPERM)
        );
        assert_eq!(
            ns.write_map(MapKind::Uid, b"0 1000 2\n", &inside),
            Err(Errno::EPERM)
        );
        ns.write_map(MapKind::Uid, b"0 1000 1\n", &inside)
            .expect("own uid");
        assert_eq!(
            ns.write_map(MapKind::Uid, b"0 1000 1\n", &inside),
            Err(Errno::EPERM)
        );
        assert_eq!((ns.uid_seen(1000), ns.make_kuid(0)), (0, Some(1000)));
        // The gid only after "deny".
        assert_eq!(
            ns.write_map(MapKind::Gid, b"0 1000 1\n", &inside),
            Err(Errno::EPERM)
        );
        ns.write_setgroups(b"deny").expect("deny");
        ns.write_map(MapKind::Gid, b"0 1000 1\n", &inside)
            .expect("own gid");
        assert!(!ns.may_setgroups());
        // Files: only those whose owner and group are mapped.
        let m = ns.mapped_ids().expect("not initial");
        assert!(m.maps(1000, 1000));
        assert!(!m.maps(0, 1000) && !m.maps(1000, 0));
        assert_eq!(
            String::from_utf8_lossy(&ns.map_text(MapKind::Uid, &ns)),
            "         0       1000          1\n"
        );
    }

    #[test]
    fn nesting_limit() {
        let mut ns = UserNs::initial();
        let mut levels = 0;
        loop {
            match UserNs::child_of(&ns, 0, 0, true) {
                Ok(child) => {
                    child.uid_map.set(IdMap::identity()).expect("fresh");
                    child.gid_map.set(IdMap::identity()).expect("fresh");
                    ns = child;
                    levels += 1;
                }
                Err(e) => {
                    assert_eq!(e, Errno(libc::ENOSPC));
                    break;
                }
            }
        }
        // As Linux (parent level > 32 refused): 33 below the initial namespace.
        assert_eq!(levels, 33);
    }
}
