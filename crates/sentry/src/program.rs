//! Finding and reading executables in the sandbox's file system: for execve, for ELF
//! interpreters, and for the sandbox's first process (so that `runsc do -- /mnt/prog` runs a
//! program from an image mounted at /mnt, as a container's runtime resolves it in the
//! container's root).

use std::sync::Arc;

use fs::vfs::{perm, Creds as FsCreds, FileType, Inode, Location, MountNamespace};
use fs::vfs::{ResolveFlags, Resolver};

use crate::errno::Errno;
use crate::loader::LoadError;

/// An executable file, resolved and read.
pub struct Program {
    /// The path as the caller named it (AT_EXECFN, the script argument of `#!`).
    pub path: Vec<u8>,
    /// The absolute path of the file in the sandbox, symlinks resolved (/proc/PID/exe):
    /// glibc's static startup asserts that it starts with '/'.
    pub exe: Vec<u8>,
    pub bytes: Vec<u8>,
    /// The file, so that the loader can map its segments (without a copy where the file
    /// lends its pages).
    pub inode: Arc<dyn Inode>,
}

/// Reads the executable at `loc` (named `named`) if `creds` may execute it, as execve checks:
/// a symlink left unfollowed is ELOOP, anything but a regular file EACCES, a file larger than
/// `limit` ENOMEM.
pub fn read_at(
    ns: &MountNamespace,
    root: &Location,
    loc: &Location,
    named: &[u8],
    creds: &FsCreds,
    limit: u64,
) -> Result<Program, Errno> {
    let inode = loc.inode().clone();
    match inode.file_type() {
        FileType::Regular => {}
        FileType::Symlink => return Err(Errno::ELOOP),
        _ => return Err(Errno::EACCES),
    }
    let st = inode.stat().map_err(Errno)?;
    perm::check(&st, creds, perm::MAY_EXEC).map_err(Errno)?;
    if st.size.max(0) as u64 > limit {
        return Err(Errno::ENOMEM);
    }
    let mut bytes = vec![0u8; st.size.max(0) as usize];
    let mut done = 0;
    while done < bytes.len() {
        match inode
            .read_at(done as u64, &mut bytes[done..])
            .map_err(Errno)?
        {
            0 => break,
            n => done += n,
        }
    }
    bytes.truncate(done);
    let exe = ns.path(loc, root);
    Ok(Program {
        path: if named.is_empty() {
            exe.clone()
        } else {
            named.to_vec()
        },
        exe,
        bytes,
        inode,
    })
}

/// Finds the sandbox's first program as a shell would: `name` as a path if it has a slash
/// (relative to `cwd`, or the root if that doesn't resolve), else the first regular file of
/// that name along `search_path` (colon separated). Errors name the program as the user
/// wrote it.
pub fn find(
    ns: &Arc<MountNamespace>,
    cwd: &[u8],
    creds: &FsCreds,
    name: &[u8],
    search_path: &[u8],
    limit: u64,
) -> Result<Program, LoadError> {
    let shown = std::path::PathBuf::from(String::from_utf8_lossy(name).into_owned());
    let root = ns.root();
    let resolver = Resolver {
        ns,
        root: &root,
        creds,
    };
    let cwd = &resolver
        .resolve(&root, cwd, ResolveFlags::follow())
        .unwrap_or_else(|_| root.clone());
    let read = |loc: &Location, named: &[u8]| {
        read_at(ns, &root, loc, named, creds, limit).map_err(|e| {
            if e == Errno::ENOMEM {
                LoadError::TooLarge {
                    path: shown.clone(),
                    size: loc.inode().stat().map(|s| s.size as u64).unwrap_or(0),
                    limit,
                }
            } else {
                LoadError::io(&shown, std::io::Error::from_raw_os_error(e.0))
            }
        })
    };
    if name.is_empty() {
        return Err(LoadError::NotFound { path: shown });
    }
    if name.contains(&b'/') {
        let loc = resolver
            .resolve(cwd, name, ResolveFlags::follow())
            .map_err(|e| LoadError::io(&shown, std::io::Error::from_raw_os_error(e)))?;
        return read(&loc, name);
    }
    for dir in search_path.split(|&b| b == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let mut candidate = dir.to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(name);
        let Ok(loc) = resolver.resolve(cwd, &candidate, ResolveFlags::follow()) else {
            continue;
        };
        if loc.inode().file_type() == FileType::Regular {
            return read(&loc, &candidate);
        }
    }
    Err(LoadError::NotFound { path: shown })
}

/// Linux's limit on the `#!` line read.
const BINPRM_BUF_SIZE: usize = 256;
/// Nested interpreters (`#!` pointing at a `#!` script) Linux allows.
pub const MAX_INTERP_DEPTH: usize = 4;

/// Splits a `#!` line into the interpreter and its optional single argument.
pub fn parse_shebang(bytes: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let line = bytes.get(2..)?;
    let line = &line[..line.len().min(BINPRM_BUF_SIZE - 2)];
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    let line = &line[..end];
    let trimmed: &[u8] = {
        let start = line.iter().position(|&b| b != b' ' && b != b'\t')?;
        let stop = line.iter().rposition(|&b| b != b' ' && b != b'\t')? + 1;
        &line[start..stop]
    };
    match trimmed.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => {
            let arg = &trimmed[i..];
            let arg_start = arg
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .unwrap_or(0);
            Some((trimmed[..i].to_vec(), Some(arg[arg_start..].to_vec())))
        }
        None => Some((trimmed.to_vec(), None)),
    }
}
