//! Namespaces inside the sandbox (namespaces(7)): what unshare, clone's CLONE_NEW* flags and
//! setns change, and the /proc/PID/ns files that name them.
//!
//! None of this touches the host: the sentry already runs in namespaces of its own, and these
//! are the sandbox's objects. A UTS namespace holds host and domain names; an IPC namespace
//! its own System V objects and message queues; a mount namespace is the VFS's
//! ([`fs::vfs::MountNamespace`]). A pid namespace ([`PidNs`]) numbers the processes made in
//! it (and below) from 1: the sandbox's pids stay the kernel's own ids, and the calls that
//! show or take pids translate at the boundary. Cgroup, user and time namespaces are
//! identities only (what /proc/PID/ns shows and setns joins): the sandbox has no cgroup tree,
//! user namespaces map every id to itself, and there is one clock.

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
    /// None for the sandbox's first namespace, whose names procfs keeps (a container's host
    /// name is set there before anything runs, and unset means the host's).
    names: Option<Mutex<(Vec<u8>, Vec<u8>)>>,
}

impl UtsNs {
    fn initial() -> Arc<UtsNs> {
        Arc::new(UtsNs {
            ino: INIT_UTS,
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
            parent: None,
            ids: Default::default(),
        })
    }

    /// A child namespace of `parent`.
    fn child_of(parent: &Arc<PidNs>) -> Arc<PidNs> {
        Arc::new(PidNs {
            ino: fs::vfs::next_ns_ino(),
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

/// An IPC namespace and its inode number.
#[derive(Clone)]
pub struct Ipc {
    pub ino: u64,
    pub ns: Arc<IpcNs>,
}

/// A process's namespaces (Linux's nsproxy plus its user and pid namespaces). The mount
/// namespace lives in the [`crate::fs_context::FsContext`], with the root and cwd in it.
#[derive(Clone)]
pub struct Namespaces {
    pub uts: Arc<UtsNs>,
    pub ipc: Ipc,
    pub cgroup: u64,
    pub user: u64,
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
            },
            cgroup: INIT_CGROUP,
            user: INIT_USER,
            pid: PidNs::initial(),
            pid_for_children: PidNs::initial(),
            time: INIT_TIME,
            net: INIT_NET,
        }
    }

    /// The namespaces after unshare or clone with `flags`: new ones for the CLONE_NEW*
    /// bits. `uts` is the current host and domain names, which a new UTS namespace copies.
    pub fn with_new(&self, flags: u64, uts: impl FnOnce() -> (Vec<u8>, Vec<u8>)) -> Namespaces {
        let mut n = self.clone();
        if flags & CLONE_NEWUTS != 0 {
            n.uts = Arc::new(UtsNs {
                ino: fs::vfs::next_ns_ino(),
                names: Some(Mutex::new(uts())),
            });
        }
        if flags & CLONE_NEWIPC != 0 {
            n.ipc = Ipc {
                ino: fs::vfs::next_ns_ino(),
                ns: IpcNs::new(),
            };
        }
        if flags & CLONE_NEWCGROUP != 0 {
            n.cgroup = fs::vfs::next_ns_ino();
        }
        if flags & CLONE_NEWUSER != 0 {
            n.user = fs::vfs::next_ns_ino();
        }
        if flags & CLONE_NEWPID != 0 {
            n.pid_for_children = PidNs::child_of(&self.pid_for_children);
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
    User(u64),
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
            NsRef::Cgroup(n) | NsRef::User(n) | NsRef::Time(n) | NsRef::Net(n) => *n,
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

type Target = Box<dyn Fn() -> Option<NsRef> + Send + Sync>;

/// /proc/PID/ns/KIND: a magic link. Read, it says `kind:[ino]`; followed, it is the
/// namespace's [`NsFile`]. ENOENT once the process is gone.
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
        (self.target)().map(|t| t.link_text()).ok_or(libc::ENOENT)
    }

    fn magic_link(&self) -> Option<Arc<dyn Inode>> {
        // A process that is gone leaves a link that leads nowhere: ENOENT from the
        // walk's readlink of the (empty) text.
        (self.target)().map(|target| Arc::new(NsFile { target }) as Arc<dyn Inode>)
    }
}
