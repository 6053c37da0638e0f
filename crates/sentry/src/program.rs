//! Finding and reading executables in the sandbox's file system: for execve, for ELF
//! interpreters, and for the sandbox's first process (so that `runsc do -- /mnt/prog` runs a
//! program from an image mounted at /mnt, as a container's runtime resolves it in the
//! container's root).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs::vfs::{perm, Creds as FsCreds, FileType, Inode, Location, MountNamespace};
use fs::vfs::{ResolveFlags, Resolver};

use crate::errno::Errno;
use crate::loader::LoadError;

/// An executable file, resolved and read.
pub struct Program {
    /// The path as the caller named it (the script argument of `#!`).
    pub path: Vec<u8>,
    /// The path the caller first named, before any `#!` interpreter took its place:
    /// AT_EXECFN, and where the process's name comes from.
    pub execfn: Vec<u8>,
    /// The absolute path of the file in the sandbox, symlinks resolved (/proc/PID/exe):
    /// glibc's static startup asserts that it starts with '/'.
    pub exe: Vec<u8>,
    /// Where the file is (what /proc/PID/exe leads to).
    pub location: Location,
    /// The file's first bytes ([`HEAD_BYTES`] at most; all of it once [`Program::image`]
    /// needed more): what `#!` and the ELF headers are read from.
    pub bytes: Vec<u8>,
    /// The file's length when it was opened.
    pub size: u64,
    /// The file, so that the loader can map its segments (without a copy where the file
    /// lends its pages).
    pub inode: Arc<dyn Inode>,
}

/// How much of a program is read when it is opened. The ELF and program headers and the
/// interpreter's name sit at the start of any usual program; the segments are mapped from
/// the file (or the file cache) or read when they are loaded. Reading the whole file cost
/// an exec 0.1 ms for a 760 KiB program and ~1.5 ms for python's 6.8 MB.
pub const HEAD_BYTES: u64 = 64 << 10;

impl Program {
    /// The program's ELF image: parsed from the bytes read, or from the whole file, read
    /// now, when a header lies past them.
    pub fn image(&mut self, shown: &Path) -> Result<crate::loader::ElfImage, LoadError> {
        if (self.bytes.len() as u64) < self.size {
            if let Some(image) = crate::loader::parse_head(shown, &self.bytes, self.size)? {
                return Ok(image);
            }
            self.bytes = read_bytes(&*self.inode, 0, self.size)
                .map_err(|e| LoadError::io(shown, std::io::Error::from_raw_os_error(e.0)))?;
        }
        crate::loader::parse(shown, &self.bytes)
    }

    /// The file's bytes `[offset, offset+len)`: from those read already, or read now. EIO
    /// if the file is shorter than that now (it changed since it was opened).
    pub fn bytes_at(&self, offset: u64, len: u64) -> Result<std::borrow::Cow<'_, [u8]>, Errno> {
        let end = offset.checked_add(len).ok_or(Errno::EIO)?;
        if let Some(b) = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(o, e)| self.bytes.get(o..e))
        {
            return Ok(std::borrow::Cow::Borrowed(b));
        }
        let read = read_bytes(&*self.inode, offset, len)?;
        if (read.len() as u64) < len {
            return Err(Errno::EIO);
        }
        Ok(std::borrow::Cow::Owned(read))
    }
}

/// Up to `len` bytes of `inode` from `offset` (fewer at its end).
fn read_bytes(inode: &dyn Inode, offset: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let mut bytes = vec![0u8; usize::try_from(len).map_err(|_| Errno::ENOMEM)?];
    let mut done = 0;
    while done < bytes.len() {
        match inode
            .read_at(offset + done as u64, &mut bytes[done..])
            .map_err(Errno)?
        {
            0 => break,
            n => done += n,
        }
    }
    bytes.truncate(done);
    Ok(bytes)
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
    // A noexec mount runs nothing (Linux's path_noexec).
    if loc.mount.noexec() {
        return Err(Errno::EACCES);
    }
    let st = inode.stat().map_err(Errno)?;
    perm::check(&*inode, &st, creds, perm::MAY_EXEC).map_err(Errno)?;
    let size = st.size.max(0) as u64;
    if size > limit {
        return Err(Errno::ENOMEM);
    }
    let bytes = read_bytes(&*inode, 0, size.min(HEAD_BYTES))?;
    let exe = ns.path(loc, root);
    let path = if named.is_empty() {
        exe.clone()
    } else {
        named.to_vec()
    };
    Ok(Program {
        execfn: path.clone(),
        path,
        exe,
        location: loc.clone(),
        bytes,
        size,
        inode,
    })
}

/// Looking up the first program (and its interpreters) in the sandbox's file system, from
/// a working directory (or the root if that doesn't resolve).
struct Lookup<'a> {
    ns: &'a Arc<MountNamespace>,
    root: Location,
    cwd: Location,
    creds: &'a FsCreds,
    limit: u64,
}

impl<'a> Lookup<'a> {
    fn new(ns: &'a Arc<MountNamespace>, cwd: &[u8], creds: &'a FsCreds, limit: u64) -> Self {
        let root = ns.root();
        let cwd = Resolver {
            ns,
            root: &root,
            creds,
        }
        .resolve(&root, cwd, ResolveFlags::follow())
        .unwrap_or_else(|_| root.clone());
        Lookup {
            ns,
            root,
            cwd,
            creds,
            limit,
        }
    }

    fn resolve(&self, path: &[u8]) -> Result<Location, i32> {
        let resolver = Resolver {
            ns: self.ns,
            root: &self.root,
            creds: self.creds,
        };
        resolver.resolve(&self.cwd, path, ResolveFlags::follow())
    }

    /// Reads the program at `loc` (named `named`); errors name `shown`.
    fn read(&self, loc: &Location, named: &[u8], shown: &Path) -> Result<Program, LoadError> {
        read_at(self.ns, &self.root, loc, named, self.creds, self.limit).map_err(|e| {
            if e == Errno::ENOMEM {
                LoadError::TooLarge {
                    path: shown.to_path_buf(),
                    size: loc.inode().stat().map(|s| s.size as u64).unwrap_or(0),
                    limit: self.limit,
                }
            } else {
                LoadError::io(shown, std::io::Error::from_raw_os_error(e.0))
            }
        })
    }

    /// The program at `path`, without a search.
    fn open(&self, path: &[u8]) -> Result<Program, LoadError> {
        let shown = shown(path);
        let loc = self
            .resolve(path)
            .map_err(|e| LoadError::io(&shown, std::io::Error::from_raw_os_error(e)))?;
        self.read(&loc, path, &shown)
    }
}

/// A path for messages.
fn shown(path: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(path).into_owned())
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
    let lookup = Lookup::new(ns, cwd, creds, limit);
    if name.is_empty() {
        return Err(LoadError::NotFound { path: shown(name) });
    }
    if name.contains(&b'/') {
        return lookup.open(name);
    }
    for dir in search_path.split(|&b| b == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let mut candidate = dir.to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(name);
        let Ok(loc) = lookup.resolve(&candidate) else {
            continue;
        };
        if loc.inode().file_type() == FileType::Regular {
            return lookup.read(&loc, &candidate, &shown(name));
        }
    }
    Err(LoadError::NotFound { path: shown(name) })
}

/// Reads the executable at `path` (relative to `cwd`, or the root if that doesn't resolve),
/// as execve opens a program or a `#!` interpreter: no search along a PATH. Errors name
/// `path`.
pub fn open(
    ns: &Arc<MountNamespace>,
    cwd: &[u8],
    creds: &FsCreds,
    path: &[u8],
    limit: u64,
) -> Result<Program, LoadError> {
    Lookup::new(ns, cwd, creds, limit).open(path)
}

/// Linux's limit on the `#!` line.
const BINPRM_BUF_SIZE: usize = 256;
/// Nested interpreters (`#!` pointing at a `#!` script) Linux allows.
const MAX_INTERP_DEPTH: usize = 4;

/// Why a `#!` script can't run.
#[derive(Debug)]
pub enum ScriptError<E> {
    /// The `#!` line names no interpreter (execve: ENOEXEC).
    NoInterpreter,
    /// More nested interpreters than Linux follows (execve: ELOOP).
    TooDeep,
    /// The interpreter named by the script at `script` can't be opened.
    Interpreter { script: Vec<u8>, error: E },
}

impl ScriptError<LoadError> {
    /// The error `runsc do` reports for `program` (as the user named it).
    pub fn into_load_error(self, program: &[u8]) -> LoadError {
        match self {
            ScriptError::NoInterpreter => LoadError::Malformed {
                path: shown(program),
                reason: "its #! line names no interpreter".into(),
            },
            ScriptError::TooDeep => LoadError::Unsupported {
                path: shown(program),
                reason: format!("more than {MAX_INTERP_DEPTH} nested #! interpreters"),
            },
            ScriptError::Interpreter { script, error } => LoadError::BadInterpreter {
                path: shown(&script),
                error: Box::new(error),
            },
        }
    }
}

/// Follows `#!` lines as Linux's binfmt_script: while `program` is a script, its
/// interpreter (opened with `open`, relative to the working directory, never along PATH)
/// takes its place, and argv becomes the interpreter, its optional argument, the script's
/// path, then the original arguments after argv[0]. Returns the program to load and argv.
pub fn follow_scripts<E>(
    mut program: Program,
    mut argv: Vec<Vec<u8>>,
    mut open: impl FnMut(&[u8]) -> Result<Program, E>,
) -> Result<(Program, Vec<Vec<u8>>), ScriptError<E>> {
    let execfn = program.execfn.clone();
    for depth in 0.. {
        if !program.bytes.starts_with(b"#!") {
            break;
        }
        if depth >= MAX_INTERP_DEPTH {
            return Err(ScriptError::TooDeep);
        }
        let (interp, arg) = parse_shebang(&program.bytes).ok_or(ScriptError::NoInterpreter)?;
        let mut new_argv = vec![interp.clone()];
        new_argv.extend(arg);
        new_argv.push(program.path.clone());
        new_argv.extend(argv.into_iter().skip(1));
        argv = new_argv;
        program = open(&interp).map_err(|error| ScriptError::Interpreter {
            script: program.path.clone(),
            error,
        })?;
    }
    program.execfn = execfn;
    Ok((program, argv))
}

/// Splits a `#!` line into the interpreter and its optional single argument.
fn parse_shebang(bytes: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
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

#[cfg(test)]
mod tests {
    use super::parse_shebang;

    #[test]
    fn shebang_lines() {
        assert_eq!(
            parse_shebang(b"#!/bin/sh\necho"),
            Some((b"/bin/sh".to_vec(), None))
        );
        assert_eq!(
            parse_shebang(b"#! /usr/bin/env  python3 -u \n"),
            Some((b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec())))
        );
        assert_eq!(parse_shebang(b"#!   \n"), None);
    }
}
