//! The targets. Each takes any bytes; it returns whether the input was accepted (parsed
//! into something usable) or refused with an error, and panics only when a property is
//! broken.

use std::cell::RefCell;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs::imgfs::{self, fuzzing, BuildOptions, Image};
use fs::vfs::{Creds, Inode, Location, MountNamespace, NewNode, Owner, ResolveFlags, Resolver};
use image::source::{docker::DockerArchive, oci::OciLayout, Source};
use sentry::loader;

/// What a target made of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Parsed (and everything done with the result went without a panic).
    Accepted,
    /// Refused with an error.
    Rejected,
}

use Outcome::{Accepted, Rejected};

/// The longest a layer read is followed after a source opened (the blob's bytes are
/// not what these targets are about).
const MAX_LAYER_READ: u64 = 1 << 20;

thread_local! {
    /// A scratch directory per thread, for the targets that need files.
    static SCRATCH: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

fn scratch() -> PathBuf {
    SCRATCH.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                tempfile::Builder::new()
                    .prefix("runsc-fuzz.")
                    .tempdir()
                    .expect("create a scratch directory for the fuzz targets")
            })
            .path()
            .to_path_buf()
    })
}

/// An error must say something, and name the input where the type promises it.
fn check_error(target: &str, msg: &str, names: Option<&str>) {
    assert!(!msg.trim().is_empty(), "{target}: an error with no message");
    if let Some(n) = names {
        assert!(
            msg.contains(n),
            "{target}: the error does not name the input {n:?}: {msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// ImgFS

const IMG_LABEL: &str = "fuzz.img";

/// An ImgFS image: opened from memory as is, and again with its checksums resealed so
/// that damage reaches the structural checks; every reader and VFS entry point is called
/// on every inode ([`fuzzing::exercise`], [`fuzzing::exercise_vfs`]).
pub fn imgfs(data: &[u8]) -> Outcome {
    let mut outcome = Rejected;
    let mut sealed = data.to_vec();
    fuzzing::reseal(&mut sealed);
    for bytes in [data, &sealed[..]] {
        match Image::from_bytes(IMG_LABEL, bytes.to_vec()) {
            Ok(img) => {
                outcome = Accepted;
                if let Err(e) = imgfs::verify(&img, &mut |_| {}) {
                    check_error("imgfs verify", &e.to_string(), Some(IMG_LABEL));
                }
                fuzzing::exercise(&img);
            }
            Err(e) => check_error("imgfs open", &e.to_string(), Some(IMG_LABEL)),
        }
        fuzzing::exercise_vfs(bytes);
    }
    outcome
}

// ---------------------------------------------------------------------------------------
// ELF

/// A program file through the ELF loader's validation, with the default user address
/// limit and a small one; an image it accepts must fit where it will be mapped, for any
/// load bias. The tail of the input also becomes the arguments of an initial stack.
pub fn elf(data: &[u8]) -> Outcome {
    let path = Path::new("/fuzz/prog");
    let mut outcome = Rejected;
    for limit in [loader::USER_ADDR_LIMIT, 1 << 32] {
        match loader::parse_with_limit(path, data, limit) {
            Ok(img) => {
                outcome = Accepted;
                check_elf(&img, data.len() as u64, limit);
            }
            Err(e) => {
                check_error("elf", &e.to_string(), Some("/fuzz/prog"));
                let _ = (e.errno(), e.exit_status());
            }
        }
    }
    // From a head of the file, as exec parses it: the same answer as from the whole file,
    // or "read it all".
    let whole = loader::parse(path, data).map(|img| img.segments);
    for head in [64, 200, 4096, data.len() / 2] {
        let head = head.min(data.len());
        match loader::parse_head(path, &data[..head], data.len() as u64) {
            Ok(Some(img)) => assert!(
                whole.as_ref().is_ok_and(|w| *w == img.segments),
                "elf: a head of {head} bytes parsed otherwise than the whole file"
            ),
            Ok(None) => {}
            Err(e) => assert!(
                whole.is_err(),
                "elf: a head of {head} bytes refused ({e}) what the whole file gives"
            ),
        }
    }
    stack_from(data);
    outcome
}

fn check_elf(img: &loader::ElfImage, file_len: u64, limit: u64) {
    assert!(!img.segments.is_empty(), "elf: accepted without segments");
    let mut prev_end = 0;
    for s in &img.segments {
        assert!(s.filesz <= s.memsz, "elf: filesz > memsz: {s:?}");
        let file_end = s.file_offset.checked_add(s.filesz);
        assert!(
            file_end.is_some_and(|e| e <= file_len),
            "elf: segment outside the file: {s:?}"
        );
        assert!(s.vaddr >= prev_end, "elf: segments overlap or unsorted");
        prev_end = s
            .vaddr
            .checked_add(s.memsz)
            .expect("elf: segment end overflows");
    }
    assert!(img.min_vaddr <= img.max_vaddr && img.max_vaddr <= limit);
    assert!(
        img.segments
            .iter()
            .any(|s| s.prot.exec && s.vaddr <= img.entry && img.entry < s.end()),
        "elf: entry outside an executable segment"
    );
    for random in [0, 1, 0x1234_5678, u64::MAX] {
        let bias = img.load_bias(random);
        assert_eq!(bias % loader::PAGE_SIZE, 0, "elf: unaligned bias");
        let end = img.max_vaddr.checked_add(bias);
        assert!(
            end.is_some_and(|e| e <= limit),
            "elf: bias {bias:#x} puts the image above the limit {limit:#x}"
        );
        if img.kind == loader::ElfKind::Exec {
            assert_eq!(bias, 0);
        } else {
            assert!(img.min_vaddr + bias >= loader::MIN_USER_ADDR);
        }
    }
}

/// The initial stack from strings taken from the input (split at NULs, some with NULs
/// inside, which must be refused).
fn stack_from(data: &[u8]) {
    let mid = data.len() / 2;
    let strings: Vec<Vec<u8>> = data[mid..]
        .split(|&b| b == 0xff)
        .take(64)
        .map(|s| s.to_vec())
        .collect();
    let (argv, envp) = strings.split_at(strings.len() / 2);
    let args = loader::StackArgs {
        argv: argv.to_vec(),
        envp: envp.to_vec(),
        execfn: b"/fuzz/prog".to_vec(),
        platform: b"x86_64".to_vec(),
        random: [7; 16],
        auxv: vec![(6, 4096)],
    };
    let top = 0x7fff_ffff_f000;
    if let Ok(st) = loader::build_initial_stack(top, &args) {
        assert_eq!(st.sp % 16, 0, "stack: misaligned sp");
        assert_eq!(st.sp + st.bytes.len() as u64, top, "stack: size mismatch");
        assert!(st.arg_start <= st.arg_end && st.arg_end <= top);
    }
}

// ---------------------------------------------------------------------------------------
// Layer tarballs

/// A layer tarball (plain, gzip or zstd, found from the content) built into an ImgFS
/// image, as `runsc image convert` does for each layer. What the builder accepts, it must
/// write as an image that opens, verifies, and reads back without error.
pub fn layer_tar(data: &[u8]) -> Outcome {
    let out = scratch().join("layer.img");
    match imgfs::build_from_tar(data, "layer.tar", &out, &BuildOptions::default(), None) {
        Ok(_) => {
            let img = Image::open(&out)
                .unwrap_or_else(|e| panic!("layer_tar: the built image does not open: {e}"));
            if let Err(e) = imgfs::verify(&img, &mut |_| {}) {
                panic!("layer_tar: the built image does not verify: {e}");
            }
            fuzzing::exercise(&img);
            let _ = std::fs::remove_file(&out);
            Accepted
        }
        Err(e) => {
            check_error("layer_tar", &e.to_string(), None);
            let _ = std::fs::remove_file(&out);
            Rejected
        }
    }
}

// ---------------------------------------------------------------------------------------
// docker save archives

const DOCKER_NAME: &str = "docker-archive:fuzz.tar";

/// A `docker save` tarball opened as a source; each layer of an image it accepts is read
/// (at most 1 MiB).
pub fn docker_archive(data: &[u8]) -> Outcome {
    let path = scratch().join("archive.tar");
    std::fs::write(&path, data).expect("write the archive");
    let outcome = match DockerArchive::open(DOCKER_NAME, &path, None) {
        Ok(src) => {
            read_layers(&src);
            Accepted
        }
        Err(e) => {
            check_error("docker_archive", &e.to_string(), None);
            Rejected
        }
    };
    let _ = std::fs::remove_file(&path);
    outcome
}

fn read_layers(src: &dyn Source) {
    let img = src.image();
    assert!(!img.layers.is_empty(), "a source image without layers");
    for layer in &img.layers {
        if let Ok(r) = src.open_layer(layer) {
            let mut n = 0u64;
            let mut buf = [0u8; 8192];
            let mut r = r.take(MAX_LAYER_READ);
            while let Ok(k) = r.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
            assert!(n <= layer.size, "read more than the layer's size");
        }
    }
}

// ---------------------------------------------------------------------------------------
// OCI layouts

/// Which document of an OCI layout an [`oci_layout`] input replaces (its first byte,
/// modulo 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciDoc {
    /// `index.json` itself.
    Index = 0,
    /// The image manifest (a blob; index.json points to it with its digest and size).
    Manifest = 1,
    /// The image config (a blob; the manifest points to it).
    Config = 2,
    /// A nested image index (a blob; index.json points to it as an image index). The
    /// valid manifest is in the layout too: `seeds::oci_manifest_digest()` names it.
    NestedIndex = 3,
}

impl OciDoc {
    pub fn of(byte: u8) -> OciDoc {
        match byte % 4 {
            0 => OciDoc::Index,
            1 => OciDoc::Manifest,
            2 => OciDoc::Config,
            _ => OciDoc::NestedIndex,
        }
    }
}

const OCI_NAME: &str = "oci:fuzz";

/// An OCI image layout whose index.json, manifest, nested index or config (chosen by the
/// first byte, [`OciDoc`]) is the rest of the input; the other documents are valid and
/// point to it with its real digest and size, so that the input reaches the parsers
/// rather than the digest checks.
pub fn oci_layout(data: &[u8]) -> Outcome {
    let Some((&sel, doc)) = data.split_first() else {
        return Rejected;
    };
    let dir = scratch().join("oci");
    let written = crate::seeds::write_oci_layout(&dir, OciDoc::of(sel), doc);
    let outcome = match OciLayout::open(OCI_NAME, &dir, None) {
        Ok(src) => {
            read_layers(&src);
            Accepted
        }
        Err(e) => {
            check_error("oci_layout", &e.to_string(), None);
            Rejected
        }
    };
    crate::seeds::remove_oci_input(&written);
    outcome
}

// ---------------------------------------------------------------------------------------
// Path resolution

const ROOT_OWNER: Owner = Owner { uid: 0, gid: 0 };

fn mk(dir: &Arc<dyn Inode>, name: &[u8], node: NewNode, mode: u32) -> Arc<dyn Inode> {
    dir.create(name, node, mode, ROOT_OWNER)
        .unwrap_or_else(|e| panic!("resolve: building the tree: {e}"))
}

/// The tree the resolver target walks:
///
/// ```text
/// /a/b/f            /a/locked/x (0700)     /a/l_up -> ../..     /a/b/l_loop -> l_loop
/// /l_abs -> /a/b    /l_dangling -> /nope/x /NNN...(255)/        /a/b/sK -> (from the input)
/// /mnt (a second tmpfs): /mnt/m/g, /mnt/esc -> ../../.., /mnt/abs -> /
/// /sK -> (from the input)
/// ```
struct Tree {
    ns: MountNamespace,
    a: Location,
    b: Location,
    mnt: Location,
}

fn child(ns: &MountNamespace, at: &Location, name: &[u8]) -> Location {
    let loc = Location {
        dentry: at.dentry.child(name).expect("resolve: a tree node"),
        mount: at.mount.clone(),
    };
    ns.mounted_at(&loc).unwrap_or(loc)
}

fn tree(links: &[&[u8]]) -> Tree {
    let t1 = fs::tmpfs::Tmpfs::new(1);
    let root = t1.root();
    let a = mk(&root, b"a", NewNode::Directory, 0o755);
    let b = mk(&a, b"b", NewNode::Directory, 0o755);
    mk(&b, b"f", NewNode::Regular, 0o644);
    let locked = mk(&a, b"locked", NewNode::Directory, 0o700);
    mk(&locked, b"x", NewNode::Regular, 0o644);
    mk(&a, b"l_up", NewNode::Symlink(b"../..".to_vec()), 0o777);
    mk(&b, b"l_loop", NewNode::Symlink(b"l_loop".to_vec()), 0o777);
    mk(&root, b"l_abs", NewNode::Symlink(b"/a/b".to_vec()), 0o777);
    mk(
        &root,
        b"l_dangling",
        NewNode::Symlink(b"/nope/x".to_vec()),
        0o777,
    );
    mk(&root, &[b'N'; 255], NewNode::Directory, 0o755);
    mk(&root, b"mnt", NewNode::Directory, 0o755);
    for (i, target) in links.iter().enumerate() {
        // Refused targets (empty, too long) are simply not there.
        let name = format!("s{i}");
        let _ = root.create(
            name.as_bytes(),
            NewNode::Symlink(target.to_vec()),
            0o777,
            ROOT_OWNER,
        );
        let _ = b.create(
            name.as_bytes(),
            NewNode::Symlink(target.to_vec()),
            0o777,
            ROOT_OWNER,
        );
    }
    let ns = MountNamespace::new(root, "tmpfs", "root", false);
    let t2 = fs::tmpfs::Tmpfs::new(2);
    let r2 = t2.root();
    let m = mk(&r2, b"m", NewNode::Directory, 0o755);
    mk(&m, b"g", NewNode::Regular, 0o644);
    mk(&r2, b"esc", NewNode::Symlink(b"../../..".to_vec()), 0o777);
    mk(&r2, b"abs", NewNode::Symlink(b"/".to_vec()), 0o777);
    let nsroot = ns.root();
    let mnt_dir = child(&ns, &nsroot, b"mnt");
    let mnt = ns
        .mount(&mnt_dir, r2, "tmpfs", "second", false)
        .expect("resolve: mount the second tmpfs");
    let a = child(&ns, &nsroot, b"a");
    let b = child(&ns, &a, b"b");
    Tree { ns, a, b, mnt }
}

/// Whether `loc` is `top` or below it (across mounts).
fn inside(loc: &Location, top: &Location) -> bool {
    let mut cur = loc.clone();
    for _ in 0..10_000 {
        if cur.same(top) {
            return true;
        }
        if cur.is_mount_root() {
            match cur.mount.parent() {
                Some((m, d)) => {
                    cur = Location {
                        mount: m,
                        dentry: d,
                    };
                    continue;
                }
                None => return false,
            }
        }
        match cur.dentry.parent() {
            Some(p) => {
                cur = Location {
                    mount: cur.mount.clone(),
                    dentry: p,
                }
            }
            None => return false,
        }
    }
    panic!("resolve: the tree above a location is endless");
}

/// Errnos path resolution may give.
const RESOLVE_ERRNOS: &[i32] = &[
    libc::ENOENT,
    libc::ENOTDIR,
    libc::ELOOP,
    libc::ENAMETOOLONG,
    libc::EXDEV,
    libc::EACCES,
];

/// Expands the shorthand bytes of a fuzzed path: 0x01 is a 255-byte name (the longest
/// allowed), 0x02 a 256-byte one, 0x03 "../" 40 times.
fn expand(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &c in path {
        match c {
            1 => out.extend_from_slice(&[b'N'; 255]),
            2 => out.extend_from_slice(&[b'N'; 256]),
            3 => {
                for _ in 0..40 {
                    out.extend_from_slice(b"../");
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Path resolution. Input: a control byte (bit 0 follow, 1 RESOLVE_BENEATH, 2
/// RESOLVE_IN_ROOT, 3 RESOLVE_NO_SYMLINKS, 4 RESOLVE_NO_XDEV, 5 unprivileged
/// credentials, 6 resolve the parent only, 7 chroot to /a), a start byte (/, /a/b,
/// /mnt, /a), then NUL-separated symlink targets (at most 4, made as /sK and /a/b/sK)
/// and last the path.
pub fn resolve(data: &[u8]) -> Outcome {
    let (ctl, start_sel, rest) = match data {
        [c, s, rest @ ..] => (*c, *s, rest),
        _ => return Rejected,
    };
    let mut parts: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    let path = expand(parts.pop().unwrap_or_default());
    parts.truncate(4);
    let links: Vec<Vec<u8>> = parts.iter().map(|p| expand(p)).collect();
    let link_refs: Vec<&[u8]> = links.iter().map(|l| &l[..]).collect();
    let t = tree(&link_refs);
    let nsroot = t.ns.root();
    let root = if ctl & 0x80 != 0 {
        t.a.clone()
    } else {
        nsroot.clone()
    };
    let start = match start_sel % 4 {
        0 => root.clone(),
        1 => t.b.clone(),
        2 if ctl & 0x80 == 0 => t.mnt.clone(),
        _ => t.a.clone(),
    };
    let creds = if ctl & 0x20 != 0 {
        Creds {
            uid: 1000,
            gid: 1000,
            groups: vec![],
            caps: 0,
            userns: None,
        }
    } else {
        Creds::default()
    };
    let flags = ResolveFlags {
        follow: ctl & 1 != 0,
        beneath: ctl & 2 != 0,
        in_root: ctl & 4 != 0,
        no_symlinks: ctl & 8 != 0,
        no_magiclinks: false,
        no_xdev: ctl & 0x10 != 0,
    };
    let r = Resolver {
        ns: &t.ns,
        root: &root,
        creds: &creds,
    };
    let found = if ctl & 0x40 != 0 {
        r.resolve_parent(&start, &path, flags).map(|p| {
            assert!(p.name.len() <= 255, "resolve_parent: name over NAME_MAX");
            assert!(
                p.dir.inode().file_type() == fs::vfs::FileType::Directory,
                "resolve_parent: the parent is not a directory"
            );
            p.dir
        })
    } else {
        r.resolve(&start, &path, flags)
    };
    match found {
        Ok(loc) => {
            assert!(
                inside(&loc, &root),
                "resolve: {:?} from {:?} left the task's root",
                String::from_utf8_lossy(&path),
                t.ns.path(&start, &nsroot)
            );
            if flags.beneath || flags.in_root {
                assert!(
                    inside(&loc, &start),
                    "resolve: {:?} with {flags:?} left its starting directory",
                    String::from_utf8_lossy(&path)
                );
            }
            if flags.no_xdev {
                // An absolute path starts at the root (Linux allows that jump); then no
                // mount may be crossed.
                let top = if flags.in_root { &start } else { &root };
                let from = if path.first() == Some(&b'/') {
                    top
                } else {
                    &start
                };
                assert!(
                    Arc::ptr_eq(&loc.mount, &from.mount),
                    "resolve: {:?} with RESOLVE_NO_XDEV crossed a mount",
                    String::from_utf8_lossy(&path)
                );
            }
            Accepted
        }
        Err(e) => {
            assert!(
                RESOLVE_ERRNOS.contains(&e),
                "resolve: unexpected errno {e} for {:?}",
                String::from_utf8_lossy(&path)
            );
            Rejected
        }
    }
}
