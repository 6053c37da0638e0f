//! Copying between files inside the sentry, and memory files: sendfile, copy_file_range,
//! memfd_create, and fcntl's F_ADD_SEALS / F_GET_SEALS.
//!
//! Data moves through a sentry buffer with the descriptions' own read and write paths, so
//! every pair of files the sandbox can open works alike (Linux refuses some pairs across
//! filesystems with EXDEV; inside the sandbox nothing needs to).

use std::sync::{Arc, Mutex, OnceLock};

use fs::lock::FileKey;
use fs::tmpfs::{Tmpfs, TmpfsInode, TmpfsOptions};
use fs::vfs::{Dentry, FileType, Inode, Location, Mount, OpenFile, Owner};
use platform::UserRegs;

use super::fd::fd_limit;
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Linux caps a single transfer at this many bytes.
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Bytes moved through the sentry per step.
const CHUNK: usize = 1 << 20;
/// The largest file offset (MAX_LFS_FILESIZE, tmpfs's `s_maxbytes`).
const MAX_OFFSET: i64 = i64::MAX;

fn fs_err(e: i32) -> Errno {
    Errno(e)
}

fn path_only(file: &OpenFile) -> bool {
    file.flags() & libc::O_PATH as u32 != 0
}

/// `rw_verify_area`: a transfer of `count` bytes at `pos` must stay within signed offsets.
fn verify_area(pos: i64, count: u64) -> Result<(), Errno> {
    if count > i64::MAX as u64 || pos < 0 || pos.checked_add(count as i64).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Writes all of `buf` to `out` at its offset (a stream may take it in pieces). Returns how
/// much went, and the error that stopped it short, if any.
fn write_all(out: &OpenFile, buf: &[u8]) -> (usize, Option<i32>) {
    let mut done = 0;
    while done < buf.len() {
        match out.write(&buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// Whether `file` is a pipe (F_GETPIPE_SZ works on pipes only).
fn is_pipe(file: &OpenFile) -> bool {
    file.special_desc()
        .is_some_and(|d| d.pipe_size(None, false).is_ok())
}

/// The common part of sendfile: `pos` is where to read `input` (and is moved past what was
/// sent); the output is written at its own offset.
fn send(input: &OpenFile, output: &OpenFile, pos: &mut i64, count: u64) -> SysResult {
    let mut done = 0u64;
    let mut buf = vec![0u8; count.min(CHUNK as u64) as usize];
    while done < count {
        let want = (count - done).min(CHUNK as u64) as usize;
        let n = match input.pread(&mut buf[..want], (*pos as u64) + done) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done == 0 => return Err(fs_err(e)),
            Err(_) => break,
        };
        let (w, err) = write_all(output, &buf[..n]);
        done += w as u64;
        if let Some(e) = err {
            if done == 0 {
                return Err(fs_err(e));
            }
        }
        if w < n {
            break;
        }
    }
    *pos += done as i64;
    Ok(done)
}

/// do_sendfile: `ppos` is the caller's offset, or None for the input's file offset.
fn do_sendfile(
    t: &TaskState,
    out_fd: u64,
    in_fd: u64,
    ppos: Option<&mut i64>,
    count: u64,
) -> SysResult {
    let input = t.fds.get(in_fd)?;
    if path_only(&input) || !input.readable() {
        return Err(Errno::EBADF);
    }
    // The input is read at offsets, which streams don't have.
    let stream = input.may_block();
    let mut pos = match &ppos {
        Some(_) if stream => return Err(Errno::ESPIPE),
        Some(p) => **p,
        None => input.seek(0, libc::SEEK_CUR).unwrap_or(0) as i64,
    };
    verify_area(pos, count)?;
    let mut count = count.min(MAX_RW_COUNT);
    let output = t.fds.get(out_fd)?;
    if path_only(&output) || !output.writable() {
        return Err(Errno::EBADF);
    }
    // Nothing is read past the largest offset (verify_area made sure pos >= 0).
    let room = (MAX_OFFSET - pos) as u64;
    if count > room {
        if room == 0 {
            return Err(Errno::EOVERFLOW);
        }
        count = room;
    }
    // Pipes and sockets can't be read at an offset; directories have no bytes to send.
    let is_dir = input
        .inode()
        .is_some_and(|i| i.file_type() == FileType::Directory);
    if stream || is_dir {
        return Err(Errno::EINVAL);
    }
    // Everything but a pipe is written through the splice-to-file path, which refuses
    // O_APPEND.
    if !is_pipe(&output) && output.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    let n = send(&input, &output, &mut pos, count)?;
    if n > 0 {
        match ppos {
            Some(p) => *p = pos,
            None => {
                input.seek(pos, libc::SEEK_SET).map_err(fs_err)?;
            }
        }
    }
    Ok(n)
}

pub fn sendfile(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (out_fd, in_fd, offset, count) = (a[0], a[1], a[2], a[3]);
    if offset == 0 {
        return do_sendfile(t, out_fd, in_fd, None, count);
    }
    let mut pos = t.mm.read_u64(offset)? as i64;
    let r = do_sendfile(t, out_fd, in_fd, Some(&mut pos), count);
    // The offset is written back whatever happened, as Linux does.
    t.mm.copy_out(offset, &pos.to_le_bytes())?;
    r
}

/// A regular file's type check for copy_file_range: directories are EISDIR, anything else
/// that isn't a regular file EINVAL.
fn copy_type(file: &OpenFile) -> Result<(), Errno> {
    let ft = match file.inode() {
        Some(i) => i.file_type(),
        None => FileType::from_mode(file.stat().map_err(fs_err)?.mode).ok_or(Errno::EINVAL)?,
    };
    match ft {
        FileType::Directory => Err(Errno::EISDIR),
        FileType::Regular => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

pub fn copy_file_range(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd_in, off_in, fd_out, off_out, len, flags) = (a[0], a[1], a[2], a[3], a[4], a[5]);
    let input = t.fds.get(fd_in)?;
    let output = t.fds.get(fd_out)?;
    if path_only(&input) || path_only(&output) {
        return Err(Errno::EBADF);
    }
    // Linux reads f_pos without asking; a stream's is 0 (and fails the type check below).
    let pos_in = match off_in {
        0 => input.seek(0, libc::SEEK_CUR).unwrap_or(0) as i64,
        p => t.mm.read_u64(p)? as i64,
    };
    let pos_out = match off_out {
        0 => output.seek(0, libc::SEEK_CUR).unwrap_or(0) as i64,
        p => t.mm.read_u64(p)? as i64,
    };
    if flags as u32 != 0 {
        return Err(Errno::EINVAL);
    }
    // generic_file_rw_checks.
    let (ti, to) = (copy_type(&input), copy_type(&output));
    if ti == Err(Errno::EISDIR) || to == Err(Errno::EISDIR) {
        return Err(Errno::EISDIR);
    }
    ti?;
    to?;
    if !input.readable() || !output.writable() || output.flags() & libc::O_APPEND as u32 != 0 {
        return Err(Errno::EBADF);
    }
    // generic_copy_file_checks, in Linux's unsigned arithmetic.
    let (uin, uout) = (pos_in as u64, pos_out as u64);
    if uin.wrapping_add(len) < uin || uout.wrapping_add(len) < uout {
        return Err(Errno::EOVERFLOW);
    }
    let size_in = input.stat().map_err(fs_err)?.size;
    let mut count = if pos_in >= size_in {
        0
    } else {
        len.min((size_in as u64).wrapping_sub(uin))
    };
    // Nothing is written at or past the largest offset.
    if pos_out == MAX_OFFSET {
        return Err(Errno::EFBIG);
    }
    count = count.min((MAX_OFFSET as u64).wrapping_sub(uout));
    let same = match (FileKey::of(&input), FileKey::of(&output)) {
        (Some(a), Some(b)) => a.same(&b),
        _ => false,
    };
    if same && uout.wrapping_add(count) > uin && uout < uin.wrapping_add(count) {
        return Err(Errno::EINVAL);
    }
    verify_area(pos_in, count)?;
    verify_area(pos_out, count)?;
    if count == 0 {
        return Ok(0);
    }
    let count = count.min(MAX_RW_COUNT);
    let mut done = 0u64;
    let mut buf = vec![0u8; count.min(CHUNK as u64) as usize];
    let mut failure = None;
    while done < count {
        let want = (count - done).min(CHUNK as u64) as usize;
        let n = match input.pread(&mut buf[..want], uin + done) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let mut w = 0;
        while w < n {
            match output.pwrite(&buf[w..n], uout + done + w as u64) {
                Ok(0) => break,
                Ok(k) => w += k,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        done += w as u64;
        if w < n {
            break;
        }
    }
    if done == 0 {
        return match failure {
            Some(e) => Err(fs_err(e)),
            None => Ok(0),
        };
    }
    let (new_in, new_out) = (
        (pos_in + done as i64) as u64,
        (pos_out + done as i64) as u64,
    );
    let mut result = Ok(done);
    match off_in {
        0 => {
            input.seek(new_in as i64, libc::SEEK_SET).map_err(fs_err)?;
        }
        p => {
            if let Err(e) = t.mm.copy_out(p, &new_in.to_le_bytes()) {
                result = Err(e);
            }
        }
    }
    match off_out {
        0 => {
            output
                .seek(new_out as i64, libc::SEEK_SET)
                .map_err(fs_err)?;
        }
        p => {
            if let Err(e) = t.mm.copy_out(p, &new_out.to_le_bytes()) {
                result = Err(e);
            }
        }
    }
    result
}

// --- memfd_create and seals ----------------------------------------------------------------

/// The kernel's O_LARGEFILE, which F_GETFL shows.
const O_LARGEFILE: u32 = 0o100000;

const MFD_CLOEXEC: u32 = 0x1;
const MFD_ALLOW_SEALING: u32 = 0x2;
const MFD_HUGETLB: u32 = 0x4;
const MFD_NOEXEC_SEAL: u32 = 0x8;
const MFD_EXEC: u32 = 0x10;
const MFD_ALL_FLAGS: u32 =
    MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;
/// Huge page size bits, allowed with MFD_HUGETLB.
const MFD_HUGE_BITS: u32 = 0x3f << 26;
/// Longest name: NAME_MAX less the "memfd:" prefix.
const MFD_NAME_MAX_LEN: usize = 255 - 6;

pub const F_ADD_SEALS: i32 = 1033;
pub const F_GET_SEALS: i32 = 1034;
use fs::vfs::seals::{
    F_ALL_SEALS, F_SEAL_EXEC, F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK,
    F_SEAL_WRITE,
};

/// The device of the memfd filesystem (Linux's internal shm mount is an anonymous device
/// too; 0:1 is what it usually gets).
const MEMFD_DEV: u64 = fs::dev::makedev(0, 1);

/// The sentry's private tmpfs that memory files live in, and the mount their locations
/// name. It is in no mount namespace: nothing can reach it by path.
struct MemfdFs {
    fs: Arc<Tmpfs>,
    mount: Arc<Mount>,
}

fn memfd_fs() -> &'static MemfdFs {
    static FS: OnceLock<MemfdFs> = OnceLock::new();
    FS.get_or_init(|| {
        let fs = Tmpfs::with_options(MEMFD_DEV, TmpfsOptions::default());
        let mount = Mount::new(fs.root(), "tmpfs", "memfd", 0);
        MemfdFs { fs, mount }
    })
}

/// The memory object behind a MAP_SHARED|MAP_ANONYMOUS mapping: an unnamed `len`-byte file
/// on the memfd file system, as Linux backs such mappings with a shmem file
/// ("/dev/zero (deleted)"). Mapping it as a shared file makes every process that inherits the
/// mapping use the same pages, including pages first touched after fork.
pub fn shared_anonymous_object(t: &TaskState, len: u64) -> Result<Arc<dyn Inode>, Errno> {
    let owner = Owner {
        uid: t.creds.euid,
        gid: t.creds.egid,
    };
    let root: Arc<dyn Inode> = memfd_fs().fs.root_inode();
    let inode = root.create_tmpfile(0o600, owner, false).map_err(fs_err)?;
    inode
        .setattr(&fs::vfs::SetAttr {
            size: Some(len),
            ..Default::default()
        })
        .map_err(fs_err)?;
    Ok(inode)
}

pub fn memfd_create(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[1] as u32;
    let allowed = if flags & MFD_HUGETLB == 0 {
        MFD_ALL_FLAGS
    } else {
        MFD_ALL_FLAGS | MFD_HUGE_BITS
    };
    if flags & !allowed != 0 || (flags & MFD_EXEC != 0 && flags & MFD_NOEXEC_SEAL != 0) {
        return Err(Errno::EINVAL);
    }
    // Huge pages would need a hugetlbfs; the memory file has 4 KiB pages only.
    if flags & MFD_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    let name = match t.mm.copy_in_cstring(a[0], MFD_NAME_MAX_LEN + 1) {
        Ok(n) if n.len() <= MFD_NAME_MAX_LEN => n,
        Ok(_) | Err(Errno::ENAMETOOLONG) => return Err(Errno::EINVAL),
        Err(e) => return Err(e),
    };
    let limit = fd_limit(t);
    if t.fds.lowest_free(0) as u64 >= limit {
        return Err(Errno::EMFILE);
    }
    // With vm.memfd_noexec at its default, a memfd is executable (0777) unless
    // MFD_NOEXEC_SEAL asks otherwise; the umask doesn't apply.
    let noexec = flags & MFD_NOEXEC_SEAL != 0;
    let mode = if noexec { 0o666 } else { 0o777 };
    let owner = Owner {
        uid: t.creds.euid,
        gid: t.creds.egid,
    };
    let mfs = memfd_fs();
    let root: Arc<dyn Inode> = mfs.fs.root_inode();
    let inode = root.create_tmpfile(mode, owner, false).map_err(fs_err)?;
    let seals = if noexec {
        F_SEAL_EXEC
    } else if flags & MFD_ALLOW_SEALING != 0 {
        0
    } else {
        F_SEAL_SEAL
    };
    if let Some(tmp) = inode.as_any().downcast_ref::<TmpfsInode>() {
        tmp.set_seals(seals);
    }
    // A name of its own, outside every tree, so that /proc/self/fd shows
    // "/memfd:NAME (deleted)" as on Linux: a fresh parent, named and then unlinked at once.
    let mut dname = b"memfd:".to_vec();
    dname.extend_from_slice(&name);
    let parent = Dentry::new_root(root);
    let dentry = parent.insert_child(&dname, inode.clone());
    parent.remove_child(&dname);
    let location = Location {
        mount: mfs.mount.clone(),
        dentry,
    };
    // O_RDWR | O_LARGEFILE, as F_GETFL shows for a memfd (the libc crate's O_LARGEFILE is
    // 0 on x86-64; the kernel's flag is 0o100000).
    let status = libc::O_RDWR as u32 | O_LARGEFILE;
    let file = OpenFile::new(Some(location), inode, status);
    Ok(t.fds.alloc(0, file, flags & MFD_CLOEXEC != 0, limit)? as u64)
}

/// F_ADD_SEALS and F_GET_SEALS. Files of other tmpfs instances are shmem files on Linux
/// too, sealed with F_SEAL_SEAL from birth; files elsewhere have no seals (EINVAL). The
/// seals live in the inode; the VFS, tmpfs and the memory manager enforce them.
pub fn fcntl_seals(t: &TaskState, file: &OpenFile, cmd: i32, arg: u64) -> SysResult {
    if path_only(file) {
        return Err(Errno::EBADF);
    }
    let add = arg as u32;
    if cmd == F_ADD_SEALS {
        if !file.writable() {
            return Err(Errno::EPERM);
        }
        if add & !F_ALL_SEALS != 0 {
            return Err(Errno::EINVAL);
        }
    }
    let inode = file.inode().ok_or(Errno::EINVAL)?;
    let tmp = inode
        .as_any()
        .downcast_ref::<TmpfsInode>()
        .ok_or(Errno::EINVAL)?;
    // One sealer at a time: the check for writable mappings and the update go together.
    static SEALING: Mutex<()> = Mutex::new(());
    let _guard = SEALING.lock().unwrap_or_else(|e| e.into_inner());
    let seals = inode.seals();
    if cmd == F_GET_SEALS {
        return Ok(seals as u64);
    }
    if seals & F_SEAL_SEAL != 0 {
        return Err(Errno::EPERM);
    }
    // F_SEAL_WRITE can't be added while a shared mapping may write the file (Linux's
    // mapping_deny_writable: EBUSY).
    if add & F_SEAL_WRITE != 0 && seals & F_SEAL_WRITE == 0 && writably_mapped(t, inode) {
        return Err(Errno::EBUSY);
    }
    let mut add = add;
    // Sealing an executable file against exec makes it W^X: no more writes either.
    let executable = inode.stat().map(|s| s.mode & 0o111 != 0).unwrap_or(false);
    if add & F_SEAL_EXEC != 0 && executable {
        add |= F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;
    }
    tmp.set_seals(seals | add);
    Ok(0)
}

/// Whether some address space in the sandbox has a shared mapping of `inode` that may
/// write it (VM_SHARED with VM_MAYWRITE, what Linux's i_mmap_writable counts).
fn writably_mapped(t: &TaskState, inode: &Arc<dyn Inode>) -> bool {
    let target = Arc::as_ptr(inode) as *const ();
    t.kernel.procfs.processes().iter().any(|p| {
        p.image().mm.upgrade().is_some_and(|mm| {
            mm.lock().vmas().any(|v| {
                v.file.as_ref().is_some_and(|f| {
                    f.shared && f.may_write && Arc::as_ptr(&f.inode) as *const () == target
                })
            })
        })
    })
}
