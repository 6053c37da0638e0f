//! Parsing and validation of an untrusted static x86-64 ELF executable.
//!
//! Only the ELF header and the program headers are read: that is all the
//! kernel looks at to load a program. The file is hostile input, so every
//! offset and size is bounds-checked with checked arithmetic before use, and
//! the resulting [`ElfImage`] only describes layouts that are safe to map
//! (inside the user address range, non-overlapping, backed by the file).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use goblin::elf::header::{
    EI_CLASS, EI_DATA, EI_VERSION, ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB, ELFMAG,
    EM_X86_64, ET_CORE, ET_DYN, ET_EXEC, ET_REL, EV_CURRENT, SELFMAG,
};
use goblin::elf::program_header::{PF_R, PF_W, PF_X, PT_GNU_STACK, PT_INTERP, PT_LOAD, PT_PHDR};
use thiserror::Error;

use super::{page_down, page_up, PAGE_SIZE};

/// Default exclusive upper bound of user mappings.
pub const USER_ADDR_LIMIT: u64 = 0x7f80_0000_0000;

/// Lowest address a segment may be mapped at (Linux's default
/// `vm.mmap_min_addr`): keeps the NULL page unmapped.
pub const MIN_USER_ADDR: u64 = 0x1_0000;

/// Base for static-pie images before randomization: 2/3 of the 47-bit user
/// space, like Linux's `ELF_ET_DYN_BASE` on x86-64.
pub const ELF_ET_DYN_BASE: u64 = page_down(0x7fff_ffff_f000 / 3 * 2);

/// Number of distinct page offsets added to [`ELF_ET_DYN_BASE`] (28 bits of
/// randomness, Linux's default `mmap_rnd_bits`).
const DYN_RANDOM_PAGES: u64 = 1 << 28;

/// Larger `p_align` values are ignored when choosing the static-pie bias, so
/// a hostile alignment cannot drag the image down towards address 0.
const MAX_BIAS_ALIGN: u64 = 1 << 30;

/// Largest program file [`read_program`] accepts.
pub const MAX_PROGRAM_SIZE: u64 = 1 << 30;

/// More program headers than any sane linker emits; also rejects
/// `PN_XNUM` (0xffff), which would need the section headers.
const MAX_PHNUM: u16 = 512;

const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;

/// Longest PT_INTERP path quoted in an error message.
const MAX_INTERP_SHOWN: usize = 256;

/// Why a program could not be loaded. Display is one line: "PATH: reason".
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{}: no such file or directory", .path.display())]
    NotFound { path: PathBuf },
    #[error("{}: permission denied", .path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{}: is a directory", .path.display())]
    IsADirectory { path: PathBuf },
    /// Any other I/O error. The error is part of the message rather than a
    /// `#[source]`, so error-chain printers don't show it twice.
    #[error("{}: {}", .path.display(), .error)]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: file too large ({} bytes, limit {})", .path.display(), .size, .limit)]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{}: not an ELF file", .path.display())]
    NotElf { path: PathBuf },
    /// A well-formed file this loader does not run (32-bit, other
    /// architecture, dynamic program, ...).
    #[error("{}: {}", .path.display(), .reason)]
    Unsupported { path: PathBuf, reason: String },
    /// An ELF file with inconsistent or unsafe headers.
    #[error("{}: {}", .path.display(), .reason)]
    Malformed { path: PathBuf, reason: String },
    /// A `#!` script whose interpreter can't be run (the error names the interpreter).
    #[error("{}: bad interpreter: {}", .path.display(), .error)]
    BadInterpreter {
        path: PathBuf,
        error: Box<LoadError>,
    },
}

impl LoadError {
    /// Classifies an I/O error on `path` the way execve(2) reports it.
    pub fn io(path: &Path, err: io::Error) -> Self {
        let path = path.to_path_buf();
        match err.kind() {
            io::ErrorKind::NotFound => LoadError::NotFound { path },
            io::ErrorKind::PermissionDenied => LoadError::PermissionDenied { path },
            io::ErrorKind::IsADirectory => LoadError::IsADirectory { path },
            _ => LoadError::Io { path, error: err },
        }
    }

    /// The program path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            LoadError::NotFound { path }
            | LoadError::PermissionDenied { path }
            | LoadError::IsADirectory { path }
            | LoadError::Io { path, .. }
            | LoadError::TooLarge { path, .. }
            | LoadError::NotElf { path }
            | LoadError::Unsupported { path, .. }
            | LoadError::Malformed { path, .. }
            | LoadError::BadInterpreter { path, .. } => path,
        }
    }

    /// Exit status a shell reports for this failure: 127 when the command
    /// does not exist, 126 when it exists but cannot be executed.
    pub fn exit_status(&self) -> i32 {
        match self {
            LoadError::NotFound { .. } => 127,
            LoadError::BadInterpreter { error, .. } => error.exit_status(),
            _ => 126,
        }
    }

    /// The errno execve(2) would fail with.
    pub fn errno(&self) -> i32 {
        match self {
            LoadError::NotFound { .. } => libc::ENOENT,
            // execve reports EACCES for directories, not EISDIR.
            LoadError::PermissionDenied { .. } | LoadError::IsADirectory { .. } => libc::EACCES,
            LoadError::Io { error, .. } => error.raw_os_error().unwrap_or(libc::EIO),
            LoadError::TooLarge { .. } => libc::ENOMEM,
            LoadError::NotElf { .. }
            | LoadError::Unsupported { .. }
            | LoadError::Malformed { .. } => libc::ENOEXEC,
            LoadError::BadInterpreter { error, .. } => error.errno(),
        }
    }
}

/// How the image is placed in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// ET_EXEC: loaded at its link-time addresses.
    Exec,
    /// ET_DYN without PT_INTERP: position independent, loaded at
    /// [`ElfImage::load_bias`].
    StaticPie,
}

/// Memory protection of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    fn from_flags(flags: u32) -> Self {
        Prot {
            read: flags & PF_R != 0,
            write: flags & PF_W != 0,
            exec: flags & PF_X != 0,
        }
    }
}

/// A validated PT_LOAD segment, with unrelocated addresses.
///
/// To load it (as Linux does): map file bytes `[file_offset, file_offset +
/// filesz)` at `vaddr + bias`, zero the rest of the page containing
/// `vaddr + filesz`, and back the remainder up to `vaddr + memsz` with
/// zero-filled anonymous memory. Two consecutive segments may share one page
/// (the first ends where the second starts); that page gets both contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub file_offset: u64,
    pub filesz: u64,
    pub prot: Prot,
}

impl Segment {
    /// End of the segment in memory (exclusive). Never overflows for a
    /// segment produced by [`parse`].
    pub fn end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }

    fn contains(&self, addr: u64) -> bool {
        self.vaddr <= addr && addr < self.end()
    }
}

/// A validated static executable. Addresses are unrelocated: add
/// [`ElfImage::load_bias`] to each of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfImage {
    pub kind: ElfKind,
    /// Non-empty PT_LOAD segments, sorted by address, non-overlapping.
    pub segments: Vec<Segment>,
    pub entry: u64,
    /// Address of the program headers in memory (for AT_PHDR), if mapped.
    pub phdr_vaddr: Option<u64>,
    pub phent: u16,
    pub phnum: u16,
    /// Whether PT_GNU_STACK asks for an executable stack (default: no, as
    /// Linux on x86-64).
    pub stack_exec: bool,
    /// Page-rounded span of all segments: `[min_vaddr, max_vaddr)`.
    pub min_vaddr: u64,
    pub max_vaddr: u64,
    /// Largest PT_LOAD alignment, at least the page size.
    pub align: u64,
    /// Exclusive user address limit the image was validated against.
    pub addr_limit: u64,
    /// The program interpreter (PT_INTERP), for dynamically linked programs.
    pub interp: Option<Vec<u8>>,
}

impl ElfImage {
    /// The offset to add to every address of the image.
    ///
    /// 0 for [`ElfKind::Exec`]. For a static-pie image, the lowest segment
    /// goes to [`ELF_ET_DYN_BASE`] plus a random number of pages taken from
    /// `random` (any random value; it is reduced here), aligned to the
    /// largest segment alignment and kept below `addr_limit`.
    pub fn load_bias(&self, random: u64) -> u64 {
        if self.kind == ElfKind::Exec {
            return 0;
        }
        let span = self.max_vaddr.saturating_sub(self.min_vaddr);
        // parse() checked that ELF_ET_DYN_BASE + span fits below the limit;
        // randomize only within the room left above that.
        let room_pages = self
            .addr_limit
            .saturating_sub(ELF_ET_DYN_BASE)
            .saturating_sub(span)
            / PAGE_SIZE;
        let choices = room_pages.saturating_add(1).min(DYN_RANDOM_PAGES);
        let target = ELF_ET_DYN_BASE + (random % choices) * PAGE_SIZE;
        let align = if self.align.is_power_of_two() {
            self.align.clamp(PAGE_SIZE, MAX_BIAS_ALIGN)
        } else {
            PAGE_SIZE
        };
        // Rounding down keeps the image below the limit. An image linked
        // above the target (never seen in practice) stays where it is; parse()
        // checked that its own addresses are valid too.
        target.saturating_sub(self.min_vaddr) & !(align - 1)
    }
}

/// Parses and validates `bytes`, the whole contents of the program at
/// `path`, against the default [`USER_ADDR_LIMIT`].
pub fn parse(path: &Path, bytes: &[u8]) -> Result<ElfImage, LoadError> {
    parse_with_limit(path, bytes, USER_ADDR_LIMIT)
}

/// Like [`parse`], with an explicit exclusive user address limit.
pub fn parse_with_limit(path: &Path, bytes: &[u8], max_addr: u64) -> Result<ElfImage, LoadError> {
    match build_image(bytes, bytes.len(), max_addr) {
        Ok(image) => Ok(image),
        Err(Bad::NeedMore) => Err(Bad::Malformed("truncated".into()).at(path)),
        Err(bad) => Err(bad.at(path)),
    }
}

/// Like [`parse`], from the first bytes of a `file_len`-byte file (the headers an ELF
/// parse reads are near the start; the segments' bytes are read, or mapped, when they are
/// loaded). Ok(None) when `head` doesn't hold everything the parse reads: parse the whole
/// file then.
pub fn parse_head(path: &Path, head: &[u8], file_len: u64) -> Result<Option<ElfImage>, LoadError> {
    let Ok(file_len) = usize::try_from(file_len) else {
        return Ok(None);
    };
    if head.len() > file_len {
        return Err(Bad::Malformed("longer than its length".into()).at(path));
    }
    match build_image(head, file_len, USER_ADDR_LIMIT) {
        Ok(image) => Ok(Some(image)),
        Err(Bad::NeedMore) => Ok(None),
        Err(bad) => Err(bad.at(path)),
    }
}

/// Reads the program at `path` for [`parse`], refusing what execve(2)
/// refuses: directories, non-regular files, files without any execute bit.
pub fn read_program(path: &Path) -> Result<Vec<u8>, LoadError> {
    read_program_limited(path, MAX_PROGRAM_SIZE)
}

fn read_program_limited(path: &Path, limit: u64) -> Result<Vec<u8>, LoadError> {
    let io_err = |e| LoadError::io(path, e);
    // Check before opening: opening a FIFO or a device can block or have
    // side effects.
    check_executable(path, &std::fs::metadata(path).map_err(io_err)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err)?;
    // Check again what was actually opened: the path may have changed.
    let meta = file.metadata().map_err(io_err)?;
    check_executable(path, &meta)?;
    if meta.len() > limit {
        return Err(too_large(path, meta.len(), limit));
    }
    read_limited(path, file, meta.len(), limit)
}

fn check_executable(path: &Path, meta: &Metadata) -> Result<(), LoadError> {
    let path = path.to_path_buf();
    if meta.is_dir() {
        return Err(LoadError::IsADirectory { path });
    }
    // execve: EACCES for non-regular files and files with no execute bit
    // (even for root).
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(LoadError::PermissionDenied { path });
    }
    Ok(())
}

fn read_limited(path: &Path, file: File, size_hint: u64, limit: u64) -> Result<Vec<u8>, LoadError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
    // Read one byte past the limit to notice a file that grew meanwhile.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| LoadError::io(path, e))?;
    let len = bytes.len() as u64;
    if len > limit {
        return Err(too_large(path, len, limit));
    }
    Ok(bytes)
}

fn too_large(path: &Path, size: u64, limit: u64) -> LoadError {
    LoadError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    }
}

/// A parse failure before the path is attached.
#[derive(Debug)]
enum Bad {
    NotElf,
    Unsupported(String),
    Malformed(String),
    /// The parse needs file bytes past those it was given ([`parse_head`]).
    NeedMore,
}

impl Bad {
    fn at(self, path: &Path) -> LoadError {
        let path = path.to_path_buf();
        match self {
            Bad::NotElf => LoadError::NotElf { path },
            Bad::Unsupported(reason) => LoadError::Unsupported { path, reason },
            Bad::Malformed(reason) => LoadError::Malformed { path, reason },
            Bad::NeedMore => LoadError::Malformed {
                path,
                reason: "truncated".into(),
            },
        }
    }
}

fn malformed(reason: impl Into<String>) -> Bad {
    Bad::Malformed(reason.into())
}

/// Parses the headers in `bytes`, the first bytes of a `file_len`-byte file (all of it, or
/// a head: `Bad::NeedMore` when a header lies past it).
fn build_image(bytes: &[u8], file_len: usize, max_addr: u64) -> Result<ElfImage, Bad> {
    if bytes.len() < file_len && bytes.len() < EHDR_SIZE {
        return Err(Bad::NeedMore);
    }
    let ehdr = Ehdr::parse(bytes)?;
    let phdrs = read_phdrs(bytes, file_len, &ehdr)?;
    let interp = match phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        Some(p) => Some(interp_path(bytes, file_len, p)?),
        None => None,
    };
    let kind = if ehdr.e_type == ET_DYN {
        ElfKind::StaticPie
    } else {
        ElfKind::Exec
    };

    let mut segments = Vec::new();
    let mut align = PAGE_SIZE;
    for phdr in phdrs.iter().filter(|p| p.p_type == PT_LOAD) {
        let segment = check_load(file_len, phdr)?;
        // Linux maps nothing for an empty segment; neither do we.
        if segment.memsz > 0 {
            align = align.max(phdr.align);
            segments.push(segment);
        }
    }
    let (min_vaddr, max_vaddr) = check_layout(&segments)?;
    check_address_range(kind, min_vaddr, max_vaddr, max_addr)?;
    if !segments
        .iter()
        .any(|s| s.prot.exec && s.contains(ehdr.entry))
    {
        return Err(malformed(format!(
            "entry point {:#x} is not inside an executable segment",
            ehdr.entry
        )));
    }

    Ok(ElfImage {
        kind,
        segments,
        entry: ehdr.entry,
        phdr_vaddr: phdr_vaddr(&phdrs, ehdr.phoff),
        phent: ehdr.phentsize,
        phnum: ehdr.phnum,
        stack_exec: phdrs
            .iter()
            .rfind(|p| p.p_type == PT_GNU_STACK)
            .is_some_and(|p| p.flags & PF_X != 0),
        min_vaddr,
        max_vaddr,
        align,
        addr_limit: max_addr,
        interp,
    })
}

/// The interpreter path of a PT_INTERP header: inside the file, NUL-terminated, no NUL
/// inside, not empty, shorter than PATH_MAX.
fn interp_path(bytes: &[u8], file_len: usize, interp: &Phdr) -> Result<Vec<u8>, Bad> {
    let shown = || interp_name(bytes, interp);
    let range = interp
        .file_range(file_len)
        .ok_or_else(|| malformed(format!("PT_INTERP {} outside the file", shown())))?;
    let raw = bytes.get(range).ok_or(Bad::NeedMore)?;
    let path = match raw.iter().position(|&b| b == 0) {
        Some(end) if end + 1 == raw.len() => &raw[..end],
        _ => {
            return Err(malformed(format!(
                "PT_INTERP {} is not a NUL-terminated path",
                shown()
            )))
        }
    };
    if path.is_empty() || path.len() >= 4096 {
        return Err(malformed("PT_INTERP path is empty or too long".to_string()));
    }
    Ok(path.to_vec())
}

/// Reads `N` little-endian bytes at `off` of a record whose length the
/// caller has already checked; out-of-range reads yield zeros, not a panic.
fn le<const N: usize>(record: &[u8], off: usize) -> [u8; N] {
    off.checked_add(N)
        .and_then(|end| record.get(off..end))
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

/// The ELF header fields the loader needs.
struct Ehdr {
    e_type: u16,
    entry: u64,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
}

impl Ehdr {
    fn parse(bytes: &[u8]) -> Result<Ehdr, Bad> {
        if bytes.get(..SELFMAG) != Some(&ELFMAG[..]) {
            return Err(Bad::NotElf);
        }
        check_ident(bytes)?;
        let Some(h) = bytes.get(..EHDR_SIZE) else {
            return Err(malformed(format!(
                "truncated: ELF header needs {EHDR_SIZE} bytes, file is {} bytes",
                bytes.len()
            )));
        };
        let machine = u16::from_le_bytes(le(h, 18));
        if machine != EM_X86_64 {
            return Err(Bad::Unsupported(format!(
                "wrong architecture (machine {machine}, expected x86-64)"
            )));
        }
        let e_type = u16::from_le_bytes(le(h, 16));
        check_type(e_type)?;
        Ok(Ehdr {
            e_type,
            entry: u64::from_le_bytes(le(h, 24)),
            phoff: u64::from_le_bytes(le(h, 32)),
            phentsize: u16::from_le_bytes(le(h, 54)),
            phnum: u16::from_le_bytes(le(h, 56)),
        })
    }
}

/// Checks class, byte order and version in `e_ident`.
fn check_ident(bytes: &[u8]) -> Result<(), Bad> {
    let ident = |i: usize| bytes.get(i).copied();
    match ident(EI_CLASS) {
        Some(ELFCLASS64) => {}
        Some(ELFCLASS32) => return Err(Bad::Unsupported("32-bit ELF is not supported".into())),
        Some(c) => return Err(malformed(format!("invalid ELF class {c}"))),
        None => return Err(malformed("truncated ELF header")),
    }
    match ident(EI_DATA) {
        Some(ELFDATA2LSB) => {}
        Some(ELFDATA2MSB) => {
            return Err(Bad::Unsupported("big-endian ELF is not supported".into()))
        }
        Some(d) => return Err(malformed(format!("invalid ELF data encoding {d}"))),
        None => return Err(malformed("truncated ELF header")),
    }
    match ident(EI_VERSION) {
        Some(EV_CURRENT) => Ok(()),
        Some(v) => Err(Bad::Unsupported(format!("unsupported ELF version {v}"))),
        None => Err(malformed("truncated ELF header")),
    }
}

fn check_type(e_type: u16) -> Result<(), Bad> {
    let what = match e_type {
        ET_EXEC | ET_DYN => return Ok(()),
        ET_REL => "a relocatable object (ET_REL)".to_string(),
        ET_CORE => "a core dump (ET_CORE)".to_string(),
        other => format!("of unknown ELF type {other}"),
    };
    Err(Bad::Unsupported(format!(
        "not an executable: file is {what}"
    )))
}

/// A raw program header.
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

impl Phdr {
    fn decode(record: &[u8]) -> Phdr {
        Phdr {
            p_type: u32::from_le_bytes(le(record, 0)),
            flags: u32::from_le_bytes(le(record, 4)),
            offset: u64::from_le_bytes(le(record, 8)),
            vaddr: u64::from_le_bytes(le(record, 16)),
            filesz: u64::from_le_bytes(le(record, 32)),
            memsz: u64::from_le_bytes(le(record, 40)),
            align: u64::from_le_bytes(le(record, 48)),
        }
    }

    /// The file bytes `[offset, offset + filesz)`, if inside the file.
    fn file_range(&self, file_len: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.offset).ok()?;
        let end = start.checked_add(usize::try_from(self.filesz).ok()?)?;
        (end <= file_len).then_some(start..end)
    }
}

fn read_phdrs(bytes: &[u8], file_len: usize, ehdr: &Ehdr) -> Result<Vec<Phdr>, Bad> {
    if usize::from(ehdr.phentsize) != PHDR_SIZE {
        return Err(malformed(format!(
            "bad program header size {} (expected {PHDR_SIZE})",
            ehdr.phentsize
        )));
    }
    if ehdr.phnum == 0 {
        return Err(malformed("no program headers"));
    }
    if ehdr.phnum > MAX_PHNUM {
        return Err(malformed(format!(
            "absurd number of program headers ({})",
            ehdr.phnum
        )));
    }
    // At most 512 * 56 bytes: the multiplication cannot overflow.
    let table_len = u64::from(ehdr.phnum) * PHDR_SIZE as u64;
    let Some(end) = ehdr.phoff.checked_add(table_len) else {
        return Err(malformed(format!(
            "program header offset {:#x} overflows",
            ehdr.phoff
        )));
    };
    let range = usize::try_from(ehdr.phoff)
        .ok()
        .zip(usize::try_from(end).ok())
        .filter(|&(_, end)| end <= file_len);
    if range.is_some_and(|(_, end)| end > bytes.len()) {
        return Err(Bad::NeedMore);
    }
    let table = range.and_then(|(start, end)| bytes.get(start..end));
    let Some(table) = table else {
        return Err(malformed(format!(
            "truncated: program headers end at {end}, file is {file_len} bytes"
        )));
    };
    Ok(table.chunks_exact(PHDR_SIZE).map(Phdr::decode).collect())
}

/// The interpreter path of a PT_INTERP header, sanitized for a message.
fn interp_name(bytes: &[u8], interp: &Phdr) -> String {
    let Some(raw) = interp.file_range(bytes.len()).and_then(|r| bytes.get(r)) else {
        return "<outside the file>".into();
    };
    let raw = raw.split(|&b| b == 0).next().unwrap_or_default();
    let raw = &raw[..raw.len().min(MAX_INTERP_SHOWN)];
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Validates one PT_LOAD header on its own.
fn check_load(file_len: usize, p: &Phdr) -> Result<Segment, Bad> {
    let at = p.vaddr;
    if p.filesz > p.memsz {
        return Err(malformed(format!(
            "PT_LOAD segment at {at:#x}: file size {:#x} exceeds memory size {:#x}",
            p.filesz, p.memsz
        )));
    }
    if p.file_range(file_len).is_none() {
        return Err(malformed(format!(
            "truncated: PT_LOAD segment at {at:#x} needs file bytes {:#x}+{:#x}, file is {file_len} bytes",
            p.offset, p.filesz
        )));
    }
    if p.align > 1 && !p.align.is_power_of_two() {
        return Err(malformed(format!(
            "PT_LOAD segment at {at:#x}: alignment {:#x} is not a power of two",
            p.align
        )));
    }
    // The file is mapped page by page, so the address and the file offset
    // must agree within the page.
    if p.vaddr % PAGE_SIZE != p.offset % PAGE_SIZE {
        return Err(malformed(format!(
            "PT_LOAD segment at {at:#x}: address and file offset {:#x} differ modulo the page size",
            p.offset
        )));
    }
    if p.vaddr.checked_add(p.memsz).and_then(page_up).is_none() {
        return Err(malformed(format!(
            "PT_LOAD segment at {at:#x} with size {:#x} overflows the address space",
            p.memsz
        )));
    }
    Ok(Segment {
        vaddr: p.vaddr,
        memsz: p.memsz,
        file_offset: p.offset,
        filesz: p.filesz,
        prot: Prot::from_flags(p.flags),
    })
}

/// Checks that segments are sorted and disjoint; returns the page-rounded
/// span `(min_vaddr, max_vaddr)`.
fn check_layout(segments: &[Segment]) -> Result<(u64, u64), Bad> {
    let (Some(first), Some(last)) = (segments.first(), segments.last()) else {
        return Err(malformed("no loadable (PT_LOAD) segments"));
    };
    for pair in segments.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.vaddr < a.vaddr {
            return Err(malformed("PT_LOAD segments are not sorted by address"));
        }
        // Byte ranges, not pages: a segment may start in the page where the
        // previous one ends, which linkers do all the time.
        if a.end() > b.vaddr {
            return Err(malformed("overlapping PT_LOAD segments"));
        }
    }
    // Sorted and disjoint, so the last segment ends highest. check_load
    // made sure rounding up cannot overflow.
    let max = page_up(last.end()).unwrap_or(u64::MAX);
    Ok((page_down(first.vaddr), max))
}

/// Checks that the image fits in `[MIN_USER_ADDR, max_addr)` where it will
/// be loaded.
fn check_address_range(kind: ElfKind, min: u64, max: u64, max_addr: u64) -> Result<(), Bad> {
    if max > max_addr {
        return Err(malformed(format!(
            "segments end at {max:#x}, above the user address limit {max_addr:#x}"
        )));
    }
    match kind {
        ElfKind::Exec if min < MIN_USER_ADDR => Err(malformed(format!(
            "segment at {min:#x} is below the lowest mappable address {MIN_USER_ADDR:#x}"
        ))),
        // Relocated to ELF_ET_DYN_BASE or above; the whole span must fit.
        ElfKind::StaticPie
            if ELF_ET_DYN_BASE
                .checked_add(max.saturating_sub(min))
                .is_none_or(|end| end > max_addr) =>
        {
            Err(malformed(format!(
                "image spans {:#x} bytes, too large to place at {ELF_ET_DYN_BASE:#x} below {max_addr:#x}",
                max.saturating_sub(min)
            )))
        }
        _ => Ok(()),
    }
}

/// Where the program headers are in memory: PT_PHDR if present, else (as
/// Linux) the PT_LOAD whose file bytes contain `e_phoff`.
fn phdr_vaddr(phdrs: &[Phdr], phoff: u64) -> Option<u64> {
    if let Some(p) = phdrs.iter().find(|p| p.p_type == PT_PHDR) {
        return Some(p.vaddr);
    }
    phdrs
        .iter()
        .filter(|p| p.p_type == PT_LOAD)
        .find(|p| p.offset <= phoff && phoff - p.offset < p.filesz)
        .and_then(|p| p.vaddr.checked_add(phoff - p.offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const PATH: &str = "/x/y";
    const RX: u32 = PF_R | PF_X;
    const RW: u32 = PF_R | PF_W;

    /// A program header for the test builder.
    #[derive(Clone, Copy)]
    struct Ph {
        p_type: u32,
        flags: u32,
        offset: u64,
        vaddr: u64,
        filesz: u64,
        memsz: u64,
        align: u64,
    }

    fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
        Ph {
            p_type: PT_LOAD,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
            align: 0x1000,
        }
    }

    fn other(p_type: u32, flags: u32) -> Ph {
        Ph {
            p_type,
            flags,
            offset: 0,
            vaddr: 0,
            filesz: 0,
            memsz: 0,
            align: 0,
        }
    }

    /// Builds ELF64 images in memory; every field can be made wrong.
    #[derive(Clone)]
    struct TestElf {
        magic: [u8; 4],
        class: u8,
        data: u8,
        version: u8,
        e_type: u16,
        machine: u16,
        entry: u64,
        phoff: u64,
        phentsize: u16,
        /// Overrides the real number of headers in `e_phnum`.
        phnum: Option<u16>,
        phdrs: Vec<Ph>,
        file_len: usize,
    }

    impl TestElf {
        /// A typical static ET_EXEC: read-only headers, text, data + bss.
        fn exec() -> Self {
            TestElf {
                magic: *ELFMAG,
                class: ELFCLASS64,
                data: ELFDATA2LSB,
                version: EV_CURRENT,
                e_type: ET_EXEC,
                machine: EM_X86_64,
                entry: 0x401010,
                phoff: 64,
                phentsize: 56,
                phnum: None,
                phdrs: vec![
                    load(PF_R, 0, 0x400000, 0x200, 0x200),
                    load(RX, 0x1000, 0x401000, 0x100, 0x100),
                    load(RW, 0x2000, 0x402000, 0x50, 0x1000),
                    other(PT_GNU_STACK, RW),
                ],
                file_len: 0x2050,
            }
        }

        /// The same layout linked at 0 as a static-pie.
        fn pie() -> Self {
            let mut elf = Self::exec();
            elf.e_type = ET_DYN;
            elf.entry = 0x1010;
            for p in elf.phdrs.iter_mut().filter(|p| p.p_type == PT_LOAD) {
                p.vaddr -= 0x400000;
            }
            elf
        }

        fn bytes(&self) -> Vec<u8> {
            let mut b = vec![0u8; self.file_len];
            let mut put = |off: u64, data: &[u8]| {
                // Fields that fall outside the (possibly truncated) file
                // are simply not written.
                for (i, &byte) in data.iter().enumerate() {
                    let at = (off as usize).saturating_add(i);
                    if let Some(slot) = b.get_mut(at) {
                        *slot = byte;
                    }
                }
            };
            put(0, &self.magic);
            put(4, &[self.class, self.data, self.version]);
            put(16, &self.e_type.to_le_bytes());
            put(18, &self.machine.to_le_bytes());
            put(20, &1u32.to_le_bytes());
            put(24, &self.entry.to_le_bytes());
            put(32, &self.phoff.to_le_bytes());
            put(52, &64u16.to_le_bytes());
            put(54, &self.phentsize.to_le_bytes());
            let phnum = self.phnum.unwrap_or(self.phdrs.len() as u16);
            put(56, &phnum.to_le_bytes());
            for (i, p) in self.phdrs.iter().enumerate() {
                let at = self.phoff.wrapping_add(i as u64 * 56);
                put(at, &p.p_type.to_le_bytes());
                let fields = [p.offset, p.vaddr, p.vaddr, p.filesz, p.memsz, p.align];
                put(at.wrapping_add(4), &p.flags.to_le_bytes());
                for (j, field) in fields.iter().enumerate() {
                    put(at.wrapping_add(8 + 8 * j as u64), &field.to_le_bytes());
                }
            }
            b
        }

        fn parse(&self) -> Result<ElfImage, LoadError> {
            parse(Path::new(PATH), &self.bytes())
        }

        fn err(&self) -> String {
            match self.parse() {
                Ok(img) => panic!("expected an error, parsed {img:?}"),
                Err(e) => {
                    assert_eq!(e.exit_status(), 126);
                    assert_eq!(e.errno(), libc::ENOEXEC);
                    e.to_string()
                }
            }
        }

        fn with(mut self, f: impl FnOnce(&mut Self)) -> Self {
            f(&mut self);
            self
        }
    }

    fn assert_err(elf: TestElf, expected: &str) {
        let msg = elf.err();
        assert!(
            msg.starts_with(&format!("{PATH}: ")) && msg.contains(expected),
            "error {msg:?} does not contain {expected:?}"
        );
        assert!(!msg.contains('\n'));
    }

    /// A head of the file is enough when it holds the headers (the segments may lie past
    /// it); not enough (Ok(None): read it all) when the program headers or the
    /// interpreter's name lie past it; what the whole file would refuse, a head refuses too.
    #[test]
    fn parse_head_needs_only_the_headers() {
        let path = Path::new(PATH);
        let exec = TestElf::exec().bytes();
        let image = parse_head(path, &exec[..0x200], exec.len() as u64)
            .unwrap()
            .expect("the headers are in the first 0x200 bytes");
        assert_eq!(image.segments, parse(path, &exec).unwrap().segments);
        assert!(parse_head(path, &exec[..100], exec.len() as u64)
            .unwrap()
            .is_none());
        assert!(parse_head(path, &exec[..10], exec.len() as u64)
            .unwrap()
            .is_none());
        // A segment past the file's end is refused whatever the head holds.
        let err = parse_head(path, &exec[..0x200], 0x2000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated: PT_LOAD"), "{err}");
        // Not an ELF file: refused from its first bytes.
        let err = parse_head(path, &[b'#'; 128], 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an ELF"), "{err}");
        let err = parse_head(path, &exec, exec.len() as u64 - 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("longer"), "{err}");
    }

    #[test]
    fn parses_static_exec() {
        let img = TestElf::exec().parse().unwrap();
        assert_eq!(img.kind, ElfKind::Exec);
        assert_eq!(img.entry, 0x401010);
        assert_eq!(img.segments.len(), 3);
        assert_eq!(
            img.segments[1],
            Segment {
                vaddr: 0x401000,
                memsz: 0x100,
                file_offset: 0x1000,
                filesz: 0x100,
                prot: Prot {
                    read: true,
                    write: false,
                    exec: true
                },
            }
        );
        assert!(img.segments[2].prot.write && !img.segments[2].prot.exec);
        // No PT_PHDR: found through the PT_LOAD that maps file offset 64.
        assert_eq!(img.phdr_vaddr, Some(0x400040));
        assert_eq!((img.phent, img.phnum), (56, 4));
        assert!(!img.stack_exec);
        assert_eq!((img.min_vaddr, img.max_vaddr), (0x400000, 0x403000));
        assert_eq!(img.align, 0x1000);
        assert_eq!(img.load_bias(0), 0);
        assert_eq!(img.load_bias(u64::MAX), 0);
    }

    #[test]
    fn pt_phdr_and_gnu_stack() {
        let img = TestElf::exec()
            .with(|e| {
                e.phdrs.insert(0, other(PT_PHDR, PF_R));
                e.phdrs[0].vaddr = 0x400abc;
                e.phdrs[4].flags = RW | PF_X;
            })
            .parse()
            .unwrap();
        assert_eq!(img.phdr_vaddr, Some(0x400abc));
        assert!(img.stack_exec);
        // Without PT_GNU_STACK the stack is not executable.
        let img = TestElf::exec()
            .with(|e| {
                e.phdrs.pop();
            })
            .parse()
            .unwrap();
        assert!(!img.stack_exec);
    }

    #[test]
    fn phdrs_outside_any_segment() {
        let img = TestElf::exec()
            .with(|e| {
                e.phoff = 0x1f00;
                e.file_len = 0x2100;
                e.phdrs[2].filesz = 0x100;
            })
            .parse()
            .unwrap();
        assert_eq!(img.phdr_vaddr, None);
    }

    #[test]
    fn segments_may_share_a_page() {
        // Text ends at 0x401234 and data starts right there, in the same
        // page: common in real binaries.
        let img = TestElf::exec()
            .with(|e| {
                e.phdrs[1].filesz = 0x234;
                e.phdrs[1].memsz = 0x234;
                e.phdrs[2] = load(RW, 0x1234, 0x401234, 0x10, 0x2000);
            })
            .parse()
            .unwrap();
        assert_eq!(img.segments.len(), 3);
        assert_eq!(img.max_vaddr, 0x404000);
    }

    #[test]
    fn empty_segments_are_dropped() {
        let img = TestElf::exec()
            .with(|e| e.phdrs.insert(3, load(RW, 0, 0x10_0000, 0, 0)))
            .parse()
            .unwrap();
        assert_eq!(img.segments.len(), 3);
    }

    #[test]
    fn static_pie_bias() {
        let img = TestElf::pie().parse().unwrap();
        assert_eq!(img.kind, ElfKind::StaticPie);
        assert_eq!((img.min_vaddr, img.max_vaddr), (0, 0x3000));
        assert_eq!(img.phdr_vaddr, Some(0x40));
        assert_eq!(img.load_bias(0), ELF_ET_DYN_BASE);
        assert_eq!(ELF_ET_DYN_BASE, 0x5555_5555_4000);
        let mut rng = Rng(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            let bias = img.load_bias(rng.next());
            assert_eq!(bias % PAGE_SIZE, 0);
            assert!(bias >= ELF_ET_DYN_BASE);
            assert!(bias < ELF_ET_DYN_BASE + (DYN_RANDOM_PAGES << 12));
            seen.insert(bias);
        }
        assert!(seen.len() > 90, "bias is not random");
    }

    #[test]
    fn static_pie_bias_respects_alignment_and_limit() {
        let elf = TestElf::pie().with(|e| e.phdrs[1].align = 0x20_0000);
        let img = elf.parse().unwrap();
        assert_eq!(img.align, 0x20_0000);
        let mut rng = Rng(3);
        for _ in 0..100 {
            assert_eq!(img.load_bias(rng.next()) % 0x20_0000, 0);
        }

        // Room for only 4 positions below the limit.
        let limit = ELF_ET_DYN_BASE + 0x3000 + 3 * PAGE_SIZE;
        let img = parse_with_limit(Path::new(PATH), &TestElf::pie().bytes(), limit).unwrap();
        for r in 0..64 {
            let bias = img.load_bias(r);
            assert!(bias + img.max_vaddr <= limit);
            assert_eq!(bias, ELF_ET_DYN_BASE + (r % 4) * PAGE_SIZE);
        }
        // One page less than needed at the base: rejected.
        let err = parse_with_limit(Path::new(PATH), &TestElf::pie().bytes(), limit - 0x6000);
        assert!(err.unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn not_elf() {
        for bytes in [
            &b""[..],
            b"\x7fEL",
            b"#!/bin/sh\necho hi\n",
            b"\x7fELG\x02\x01\x01",
        ] {
            let err = parse(Path::new(PATH), bytes).unwrap_err();
            assert_eq!(err.to_string(), "/x/y: not an ELF file");
            assert!(matches!(err, LoadError::NotElf { .. }));
        }
    }

    #[test]
    fn truncated_header() {
        let bytes = TestElf::exec().bytes();
        for len in [4, 5, 6, 7, 20, 63] {
            let msg = parse(Path::new(PATH), &bytes[..len])
                .unwrap_err()
                .to_string();
            assert!(msg.contains("truncated"), "{len}: {msg}");
        }
    }

    #[test]
    fn unsupported_headers() {
        assert_eq!(
            TestElf::exec().with(|e| e.class = ELFCLASS32).err(),
            "/x/y: 32-bit ELF is not supported"
        );
        assert_err(TestElf::exec().with(|e| e.class = 7), "invalid ELF class 7");
        assert_eq!(
            TestElf::exec().with(|e| e.data = ELFDATA2MSB).err(),
            "/x/y: big-endian ELF is not supported"
        );
        assert_err(TestElf::exec().with(|e| e.data = 0), "data encoding");
        assert_err(TestElf::exec().with(|e| e.version = 2), "ELF version 2");
        assert_eq!(
            TestElf::exec().with(|e| e.machine = 183).err(),
            "/x/y: wrong architecture (machine 183, expected x86-64)"
        );
        assert_err(TestElf::exec().with(|e| e.e_type = ET_REL), "ET_REL");
        assert_err(TestElf::exec().with(|e| e.e_type = ET_CORE), "ET_CORE");
        assert_err(
            TestElf::exec().with(|e| e.e_type = 0xfe00),
            "unknown ELF type",
        );
    }

    #[test]
    fn dynamic_programs_name_their_interpreter() {
        let interp = b"/lib64/ld-linux-x86-64.so.2\0";
        let elf = TestElf::pie().with(|e| {
            let mut p = other(PT_INTERP, PF_R);
            p.offset = 0x300;
            p.filesz = interp.len() as u64;
            e.phdrs.insert(0, p);
        });
        let mut bytes = elf.bytes();
        bytes[0x300..0x300 + interp.len()].copy_from_slice(interp);
        let img = parse(Path::new(PATH), &bytes).unwrap();
        assert_eq!(
            img.interp.as_deref(),
            Some(&b"/lib64/ld-linux-x86-64.so.2"[..])
        );
        // A PT_INTERP pointing outside the file is refused and reported sanely.
        assert_err(
            elf.with(|e| e.phdrs[0].offset = u64::MAX),
            "PT_INTERP <outside the file> outside the file",
        );
        // So is one without its terminating NUL.
        let mut unterminated = bytes.clone();
        unterminated[0x300 + interp.len() - 1] = b'x';
        let err = parse(Path::new(PATH), &unterminated).unwrap_err();
        assert!(
            err.to_string().contains("not a NUL-terminated path"),
            "{err}"
        );
    }

    #[test]
    fn bad_program_header_table() {
        assert_err(
            TestElf::exec().with(|e| e.phoff = 0x2000),
            "truncated: program headers end at 8416, file is 8272 bytes",
        );
        assert_err(
            TestElf::exec().with(|e| {
                e.phoff = u64::MAX - 8;
                e.phnum = Some(e.phdrs.len() as u16);
                e.phdrs.clear();
            }),
            "program header offset 0xfffffffffffffff7 overflows",
        );
        assert_err(
            TestElf::exec().with(|e| e.phentsize = 32),
            "bad program header size 32",
        );
        assert_err(
            TestElf::exec().with(|e| e.phnum = Some(0)),
            "no program headers",
        );
        assert_eq!(
            TestElf::exec().with(|e| e.phnum = Some(65535)).err(),
            "/x/y: absurd number of program headers (65535)"
        );
        assert_err(TestElf::exec().with(|e| e.phnum = Some(513)), "absurd");
        // 512 is allowed, but the table must then fit in the file.
        assert_err(
            TestElf::exec().with(|e| e.phnum = Some(512)),
            "truncated: program headers end at 28736",
        );
    }

    #[test]
    fn bad_segments() {
        assert_err(
            TestElf::exec().with(|e| e.phdrs[2].filesz = 0x2000),
            "file size 0x2000 exceeds memory size 0x1000",
        );
        assert_err(
            TestElf::exec().with(|e| e.phdrs[2].filesz = 0x51),
            "truncated: PT_LOAD segment at 0x402000",
        );
        assert_err(
            TestElf::exec().with(|e| {
                e.phdrs[2].offset = u64::MAX - 0xfff;
                e.phdrs[2].filesz = 0x1000;
            }),
            "truncated: PT_LOAD",
        );
        assert_err(
            TestElf::exec().with(|e| e.phdrs[1].align = 0x3000),
            "not a power of two",
        );
        assert_err(
            TestElf::exec().with(|e| e.phdrs[1].offset = 0x1008),
            "differ modulo the page size",
        );
        assert_err(
            TestElf::exec().with(|e| {
                e.phdrs[2].vaddr = u64::MAX - 0xfff;
                e.phdrs[2].memsz = 0x2000;
            }),
            "overflows the address space",
        );
        // Ends exactly at u64::MAX + 1 rounded: the page round-up overflows.
        assert_err(
            TestElf::exec().with(|e| {
                e.phdrs[2].vaddr = u64::MAX - 0xfff;
                e.phdrs[2].memsz = 0xfff;
            }),
            "overflows the address space",
        );
    }

    #[test]
    fn bad_layout() {
        assert_eq!(
            TestElf::exec().with(|e| e.phdrs[2].vaddr = 0x401000).err(),
            "/x/y: overlapping PT_LOAD segments"
        );
        // One byte of overlap inside a shared page.
        assert_err(
            TestElf::exec().with(|e| e.phdrs[1].memsz = 0x1001),
            "overlapping",
        );
        assert_err(
            TestElf::exec().with(|e| e.phdrs.swap(1, 2)),
            "not sorted by address",
        );
        assert_err(
            TestElf::exec().with(|e| e.phdrs.retain(|p| p.p_type != PT_LOAD)),
            "no loadable (PT_LOAD) segments",
        );
        assert_err(
            TestElf::exec().with(|e| {
                for p in e.phdrs.iter_mut() {
                    p.memsz = 0;
                    p.filesz = 0;
                }
            }),
            "no loadable",
        );
    }

    #[test]
    fn bad_addresses() {
        assert_err(
            TestElf::exec().with(|e| {
                e.phdrs[2].vaddr = USER_ADDR_LIMIT - 0x1000;
                e.phdrs[2].memsz = 0x1001;
            }),
            "above the user address limit",
        );
        assert_err(
            TestElf::exec().with(|e| {
                e.phdrs[2].vaddr = USER_ADDR_LIMIT;
                e.phdrs[2].memsz = 0;
                e.phdrs[2].filesz = 0;
                e.phdrs.push(load(RW, 0, USER_ADDR_LIMIT, 0, 1));
            }),
            "above the user address limit",
        );
        // Ends exactly at the limit: fine.
        let elf = TestElf::exec().with(|e| e.phdrs[2].vaddr = USER_ADDR_LIMIT - 0x1000);
        assert_eq!(elf.parse().unwrap().max_vaddr, USER_ADDR_LIMIT);

        let low = TestElf::exec().with(|e| {
            e.phdrs[0].vaddr = 0;
            e.phdrs.remove(0);
            e.phdrs.insert(0, load(PF_R, 0, 0, 0x200, 0x200));
        });
        assert_err(low.clone(), "below the lowest mappable address");
        // The same layout is fine for a static-pie: it gets relocated.
        low.with(|e| e.e_type = ET_DYN).parse().unwrap();
    }

    #[test]
    fn bad_entry() {
        // In a readable but non-executable segment.
        assert_err(
            TestElf::exec().with(|e| e.entry = 0x400010),
            "entry point 0x400010 is not inside an executable segment",
        );
        // Just past the end of text.
        assert_err(TestElf::exec().with(|e| e.entry = 0x401100), "entry point");
        assert_err(TestElf::exec().with(|e| e.entry = 0), "entry point");
        assert_err(TestElf::pie().with(|e| e.entry = 0x401010), "entry point");
    }

    #[test]
    fn error_display_and_status() {
        let p = Path::new("/bin/x");
        let nf = LoadError::io(p, io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(nf.to_string(), "/bin/x: no such file or directory");
        assert_eq!((nf.exit_status(), nf.errno()), (127, libc::ENOENT));
        let pd = LoadError::io(p, io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(pd.to_string(), "/bin/x: permission denied");
        assert_eq!((pd.exit_status(), pd.errno()), (126, libc::EACCES));
        let eio = LoadError::io(p, io::Error::from_raw_os_error(libc::EIO));
        assert!(matches!(eio, LoadError::Io { .. }));
        assert!(eio.to_string().starts_with("/bin/x: "));
        assert_eq!((eio.exit_status(), eio.errno()), (126, libc::EIO));
        assert_eq!(eio.path(), p);
    }

    /// A scratch directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("sentry-loader-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn read_program_checks() {
        let dir = TempDir::new("read");
        let missing = dir.0.join("missing");
        let err = read_program(&missing).unwrap_err();
        assert!(matches!(err, LoadError::NotFound { .. }));
        assert_eq!(err.exit_status(), 127);

        let err = read_program(&dir.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: is a directory", dir.0.display())
        );
        assert_eq!((err.exit_status(), err.errno()), (126, libc::EACCES));

        // No execute bit: refused even for root, like execve.
        let plain = dir.file("plain", b"data", 0o644);
        let err = read_program(&plain).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: permission denied", plain.display())
        );
        assert_eq!(err.exit_status(), 126);

        let exe = dir.file("exe", b"0123456789", 0o700);
        assert_eq!(read_program(&exe).unwrap(), b"0123456789");
        assert_eq!(read_program_limited(&exe, 10).unwrap().len(), 10);
        let err = read_program_limited(&exe, 9).unwrap_err();
        assert!(matches!(
            err,
            LoadError::TooLarge {
                size: 10,
                limit: 9,
                ..
            }
        ));

        // A FIFO must be refused without blocking on open.
        let fifo = dir.0.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
        assert!(matches!(
            read_program(&fifo).unwrap_err(),
            LoadError::PermissionDenied { .. }
        ));
    }

    /// Compiles a trivial C program with `flag`; None (with a message) when
    /// no working gcc/static libc is available.
    fn compile(dir: &TempDir, flag: &str) -> Option<PathBuf> {
        let src = dir.file("main.c", b"int main(void) { return 0; }\n", 0o644);
        let out = dir.0.join(format!("prog{flag}"));
        let status = Command::new("gcc")
            .arg(flag)
            .arg("-O2")
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .status();
        match status {
            Ok(s) if s.success() => Some(out),
            other => {
                println!("skipping: `gcc {flag}` unavailable ({other:?})");
                None
            }
        }
    }

    /// Cross-checks our view of a real binary against goblin's full parser.
    fn check_real(path: &Path, kind: ElfKind) -> ElfImage {
        let bytes = read_program(path).unwrap();
        let img = parse(path, &bytes).unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        assert_eq!(img.kind, kind);
        assert_eq!(img.entry, elf.entry);
        assert_eq!(usize::from(img.phnum), elf.program_headers.len());
        let loads: Vec<_> = elf
            .program_headers
            .iter()
            .filter(|p| p.p_type == PT_LOAD && p.p_memsz > 0)
            .collect();
        assert_eq!(img.segments.len(), loads.len());
        for (seg, p) in img.segments.iter().zip(&loads) {
            assert_eq!(
                (seg.vaddr, seg.memsz, seg.file_offset, seg.filesz),
                (p.p_vaddr, p.p_memsz, p.p_offset, p.p_filesz)
            );
        }
        assert!(img.segments.iter().any(|s| s.prot.exec));
        assert!(!img.stack_exec);
        // glibc's static startup finds PT_TLS through AT_PHDR.
        let phdr = img.phdr_vaddr.expect("program headers should be mapped");
        assert!(img.segments.iter().any(|s| s.contains(phdr)));
        img
    }

    #[test]
    fn real_static_binaries() {
        let dir = TempDir::new("gcc");
        if let Some(exe) = compile(&dir, "-static") {
            let img = check_real(&exe, ElfKind::Exec);
            assert!(img.min_vaddr >= MIN_USER_ADDR);
            assert_eq!(img.load_bias(12345), 0);
        }
        if let Some(exe) = compile(&dir, "-static-pie") {
            let img = check_real(&exe, ElfKind::StaticPie);
            assert_eq!(img.min_vaddr, 0);
            let bias = img.load_bias(12345);
            assert_eq!(bias, ELF_ET_DYN_BASE + 12345 * PAGE_SIZE);
        }
        if let Some(exe) = compile(&dir, "-no-pie") {
            let img = parse(&exe, &std::fs::read(&exe).unwrap()).unwrap();
            assert!(
                img.interp.is_some(),
                "a dynamic executable names its interpreter"
            );
        }
    }

    /// xorshift64*: deterministic, dependency-free.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Everything parse() promises about an image it accepts.
    fn check_invariants(img: &ElfImage, file_len: usize, limit: u64, rng: &mut Rng) {
        assert!(!img.segments.is_empty());
        for s in &img.segments {
            assert!(s.filesz <= s.memsz && s.memsz > 0);
            assert!(s.file_offset.checked_add(s.filesz).unwrap() <= file_len as u64);
            assert_eq!(s.vaddr % PAGE_SIZE, s.file_offset % PAGE_SIZE);
            assert!(
                img.min_vaddr <= s.vaddr && s.vaddr.checked_add(s.memsz).unwrap() <= img.max_vaddr
            );
        }
        for w in img.segments.windows(2) {
            assert!(w[0].end() <= w[1].vaddr);
        }
        assert!(img.max_vaddr <= limit);
        assert!(img
            .segments
            .iter()
            .any(|s| s.prot.exec && s.contains(img.entry)));
        for _ in 0..4 {
            let bias = img.load_bias(rng.next());
            assert_eq!(bias % PAGE_SIZE, 0);
            assert!(img.min_vaddr + bias >= MIN_USER_ADDR);
            assert!(img.max_vaddr.checked_add(bias).unwrap() <= limit);
        }
    }

    /// Replaces a random aligned field of the headers with a random or
    /// boundary value, or flips a byte, or truncates the file.
    fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
        const INTERESTING: [u64; 8] = [
            0,
            1,
            0xfff,
            0x1000,
            0x40_0000,
            1 << 47,
            u64::MAX - 0xfff,
            u64::MAX,
        ];
        let headers = bytes.len().min(64 + 8 * 56);
        match rng.below(8) {
            0 => {
                let len = rng.below(bytes.len() + 1);
                bytes.truncate(len);
            }
            1..=3 => {
                let at = rng.below(headers.max(1));
                if let Some(b) = bytes.get_mut(at) {
                    *b = rng.next() as u8;
                }
            }
            _ => {
                let at = rng.below(headers / 8 + 1) * 8;
                let value = match rng.below(3) {
                    0 => rng.next(),
                    1 => rng.next() % 0x10000,
                    _ => INTERESTING[rng.below(INTERESTING.len())],
                };
                for (i, v) in value.to_le_bytes().iter().enumerate() {
                    if let Some(b) = bytes.get_mut(at + i) {
                        *b = *v;
                    }
                }
            }
        }
    }

    #[test]
    fn mutated_images_never_panic() {
        let seeds = [
            TestElf::exec().bytes(),
            TestElf::pie().bytes(),
            TestElf::exec()
                .with(|e| e.phdrs.insert(0, other(PT_PHDR, PF_R)))
                .bytes(),
        ];
        let mut rng = Rng(0x5eed);
        let (mut ok, mut failed) = (0, 0);
        for i in 0..6000 {
            let mut bytes = seeds[i % seeds.len()].clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut bytes, &mut rng);
            }
            let limit = if rng.below(4) == 0 {
                0x60_0000_0000
            } else {
                USER_ADDR_LIMIT
            };
            match parse_with_limit(Path::new(PATH), &bytes, limit) {
                Ok(img) => {
                    check_invariants(&img, bytes.len(), limit, &mut rng);
                    ok += 1;
                }
                Err(e) => {
                    assert!(!e.to_string().contains('\n'));
                    failed += 1;
                }
            }
        }
        // Both paths must actually be exercised.
        assert!(ok > 500 && failed > 500, "ok {ok}, failed {failed}");
    }
}
