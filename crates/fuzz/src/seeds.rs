//! Seed inputs: valid (or nearly valid) inputs of each target, made by the project's own
//! builders, for the stable runner to mutate and for `cargo fuzz` to start from
//! (`cargo test -p fuzz --release -- --ignored write_corpus` writes them out).

use std::path::Path;
use std::sync::OnceLock;

use image::testing::{self, Comp};
use serde_json::json;

use crate::targets::OciDoc;

fn member(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link: &str,
) {
    fs::imgfs::fuzzing::tar_member(b, path, kind, mode, data, link).expect("append a tar member");
}

/// A small layer with directories, files of several sizes, a symlink, a hard link, a
/// device, an xattr, a long name, a whiteout and an opaque directory.
pub fn layer_tar() -> Vec<u8> {
    use tar::EntryType as T;
    let mut b = tar::Builder::new(Vec::new());
    member(&mut b, "etc/", T::Directory, 0o755, b"", "");
    member(&mut b, "etc/hostname", T::Regular, 0o644, b"sandbox\n", "");
    member(&mut b, "etc/big", T::Regular, 0o600, &[0x5a; 5000], "");
    member(&mut b, "bin/busybox", T::Regular, 0o4755, &[0x7f; 300], "");
    member(&mut b, "bin/sh", T::Symlink, 0o777, b"", "busybox");
    member(&mut b, "bin/ash", T::Link, 0o755, b"", "bin/busybox");
    member(&mut b, "var/.wh..wh..opq", T::Regular, 0o644, b"", "");
    member(&mut b, ".wh.old", T::Regular, 0o644, b"", "");
    // A name over 100 bytes: a GNU long-name member.
    let long = format!("usr/{}/x", "d".repeat(120));
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(T::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_650_000_000);
    h.set_size(4);
    b.append_data(&mut h, &long, &b"long"[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("dev/null").unwrap();
    h.set_entry_type(T::Char);
    h.set_mode(0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_650_000_000);
    h.set_size(0);
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    b.append_pax_extensions([
        ("SCHILY.xattr.security.capability", &[1u8, 0, 0, 2][..]),
        ("mtime", b"1650000000.5"),
    ])
    .unwrap();
    member(&mut b, "bin/ping", T::Regular, 0o755, b"ping", "");
    b.into_inner().unwrap()
}

/// The layer tar, plain, gzip and zstd.
pub fn layer_tars() -> Vec<Vec<u8>> {
    let tar = layer_tar();
    let mut out = vec![tar.clone()];
    for c in [Comp::Gzip, Comp::Zstd] {
        out.push(testing::compress(&tar, c).0);
    }
    out
}

/// An ImgFS image built by the project's builder from [`layer_tar`], and a second one
/// of an empty layer.
pub fn imgfs_images() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut out = Vec::new();
    let empty = tar::Builder::new(Vec::new()).into_inner().unwrap();
    for (i, tar) in [layer_tar(), empty].into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.img"));
        fs::imgfs::build_from_tar(
            &tar[..],
            "seed",
            &path,
            &fs::imgfs::BuildOptions::default(),
            None,
        )
        .expect("build a seed image");
        out.push(std::fs::read(&path).expect("read the seed image"));
    }
    out
}

fn layers() -> Vec<testing::Layer> {
    let t = testing::layer_tar(&[
        ("etc/", None, 0o755),
        ("etc/hostname", Some(b"fuzz\n"), 0o644),
    ]);
    vec![
        testing::layer_of_tar(t.clone(), Comp::Plain),
        testing::layer_of_tar(testing::layer_tar(&[("x", Some(b"1"), 0o644)]), Comp::Gzip),
    ]
}

/// `docker save` archives of a two-layer image, in the old layout (ID.json,
/// ID/layer.tar) and in Docker 25's (an OCI layout inside).
pub fn docker_archives() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut out = Vec::new();
    let mut ls = layers();
    ls[1] = testing::layer_of_tar(ls[1].tar.clone(), Comp::Plain);
    for oci_style in [false, true] {
        let p = dir.path().join("a.tar");
        testing::docker_archive(
            &p,
            "fuzz:latest",
            &ls,
            json!({"Cmd": ["/bin/sh"]}),
            oci_style,
        );
        out.push(std::fs::read(&p).expect("read the archive"));
    }
    out
}

/// The valid documents of the OCI layout [`write_oci_layout`] writes.
pub struct OciDocs {
    pub layers: Vec<testing::Layer>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub index: Vec<u8>,
    pub nested_index: Vec<u8>,
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": testing::sha(bytes), "size": bytes.len()})
}

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

fn manifest_for(config: &[u8], layers: &[testing::Layer]) -> Vec<u8> {
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| descriptor(&l.media_type, &l.blob))
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": layer_descs,
    }))
    .unwrap()
}

fn index_for(media_type: &str, doc: &[u8]) -> Vec<u8> {
    let mut d = descriptor(media_type, doc);
    d["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [d]})).unwrap()
}

pub fn oci_docs() -> &'static OciDocs {
    static DOCS: OnceLock<OciDocs> = OnceLock::new();
    DOCS.get_or_init(|| {
        let layers = layers();
        let config = testing::config_json(
            &layers,
            json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "WorkingDir": "/", "User": "0:0"}),
        );
        let manifest = manifest_for(&config, &layers);
        let index = index_for(MANIFEST_TYPE, &manifest);
        let mut amd64 = descriptor(MANIFEST_TYPE, &manifest);
        amd64["platform"] = json!({"architecture": "amd64", "os": "linux"});
        let mut arm64 = descriptor(MANIFEST_TYPE, &manifest);
        arm64["platform"] = json!({"architecture": "arm64", "os": "linux", "variant": "v8"});
        let nested_index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": INDEX_TYPE,
            "manifests": [arm64, amd64],
        }))
        .unwrap();
        OciDocs {
            layers,
            config,
            manifest,
            index,
            nested_index,
        }
    })
}

fn write_blob(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let d = testing::sha(bytes);
    let p = dir.join("blobs/sha256").join(&d[7..]);
    std::fs::write(&p, bytes).expect("write a blob");
    p
}

/// Writes the OCI layout at `dir` whose document `which` is `doc` and whose other
/// documents are valid and point to it (with its digest and size). The valid blobs are
/// written once; the blobs of `doc` and what points to it are returned, for the caller
/// to remove before the next input ([`remove_oci_input`]).
pub fn write_oci_layout(dir: &Path, which: OciDoc, doc: &[u8]) -> Vec<std::path::PathBuf> {
    let docs = oci_docs();
    if !dir.join("oci-layout").is_file() {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create blobs/sha256");
        for l in &docs.layers {
            write_blob(dir, &l.blob);
        }
        write_blob(dir, &docs.config);
        write_blob(dir, &docs.manifest);
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
    }
    let fixed: Vec<Vec<u8>> = docs
        .layers
        .iter()
        .map(|l| l.blob.clone())
        .chain([docs.config.clone(), docs.manifest.clone()])
        .collect();
    let mut written = Vec::new();
    let mut blob = |bytes: &[u8]| {
        // A valid blob stays; anything else is removed after this input.
        let p = write_blob(dir, bytes);
        if !fixed.iter().any(|f| f == bytes) {
            written.push(p);
        }
    };
    let index = match which {
        OciDoc::Index => doc.to_vec(),
        OciDoc::Manifest => {
            blob(doc);
            index_for(MANIFEST_TYPE, doc)
        }
        OciDoc::Config => {
            blob(doc);
            let m = manifest_for(doc, &docs.layers);
            blob(&m);
            index_for(MANIFEST_TYPE, &m)
        }
        OciDoc::NestedIndex => {
            blob(doc);
            index_for(INDEX_TYPE, doc)
        }
    };
    std::fs::write(dir.join("index.json"), index).expect("write index.json");
    written
}

/// Removes what [`write_oci_layout`] wrote for one input.
pub fn remove_oci_input(written: &[std::path::PathBuf]) {
    for p in written {
        let _ = std::fs::remove_file(p);
    }
}

/// One input of [`crate::oci_layout`] per document, each valid.
pub fn oci_inputs() -> Vec<Vec<u8>> {
    let d = oci_docs();
    [
        (OciDoc::Index, &d.index),
        (OciDoc::Manifest, &d.manifest),
        (OciDoc::Config, &d.config),
        (OciDoc::NestedIndex, &d.nested_index),
    ]
    .into_iter()
    .map(|(w, doc)| {
        let mut v = vec![w as u8];
        v.extend_from_slice(doc);
        v
    })
    .collect()
}

/// Inputs of [`crate::resolve`]: control byte, start byte, symlink targets, path.
pub fn resolve_inputs() -> Vec<Vec<u8>> {
    let cases: &[(u8, u8, &[u8])] = &[
        (0x01, 0, b"a/b/f"),
        (0x01, 1, b"../../a/./b//f"),
        (0x01, 0, b"l_abs/f"),
        (0x01, 1, b"l_loop"),
        (0x03, 1, b"../f"),
        (0x05, 3, b"l_up/l_abs/../.."),
        (0x01, 2, b"esc/a/b"),
        (0x11, 2, b"../a"),
        (0x81, 0, b"/../../l_abs"),
        (0x21, 0, b"a/locked/x"),
        (0x41, 0, b"a/b/newname/"),
        (0x09, 0, b"l_dangling"),
        (0x01, 0, b"/s0\0s1/x\0/a/b/s0/../f"),
        (0x01, 1, b"\x03a\0s0/\x01"),
        (0x01, 0, b"\x01/../\x02"),
        (0x85, 3, b"../../mnt/abs\0s0"),
    ];
    cases
        .iter()
        .map(|(c, s, p)| {
            let mut v = vec![*c, *s];
            v.extend_from_slice(p);
            v
        })
        .collect()
}

/// Hand-made ELF seeds that need no compiler: a minimal ET_EXEC, a static-pie-shaped
/// ET_DYN, and one with PT_INTERP and PT_GNU_STACK. Real programs are added by the tests.
pub fn elf_inputs() -> Vec<Vec<u8>> {
    fn ehdr(e_type: u16, entry: u64, phnum: u16) -> Vec<u8> {
        let mut b = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        b.resize(16, 0);
        b.extend(e_type.to_le_bytes());
        b.extend(62u16.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(entry.to_le_bytes());
        b.extend(64u64.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(64u16.to_le_bytes());
        b.extend(56u16.to_le_bytes());
        b.extend(phnum.to_le_bytes());
        b.extend(64u16.to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b
    }
    #[allow(clippy::too_many_arguments)]
    fn phdr(
        t: u32,
        flags: u32,
        off: u64,
        vaddr: u64,
        filesz: u64,
        memsz: u64,
        align: u64,
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(t.to_le_bytes());
        b.extend(flags.to_le_bytes());
        for v in [off, vaddr, vaddr, filesz, memsz, align] {
            b.extend(v.to_le_bytes());
        }
        b
    }
    let code = [0xbf, 0, 0, 0, 0, 0xb8, 231, 0, 0, 0, 0x0f, 0x05];
    let mut out = Vec::new();
    // ET_EXEC, one R+X segment.
    let len = 64 + 56 + code.len() as u64;
    let mut f = ehdr(2, 0x40_0000 + 120, 1);
    f.extend(phdr(1, 5, 0, 0x40_0000, len, len, 0x1000));
    f.extend(code);
    out.push(f);
    // ET_DYN: PT_PHDR, R+X text, RW data with bss, PT_GNU_STACK.
    let mut f = ehdr(3, 64 + 56 * 4, 4);
    let text_len = 64 + 56 * 4 + code.len() as u64;
    f.extend(phdr(6, 4, 64, 64, 56 * 4, 56 * 4, 8));
    f.extend(phdr(1, 5, 0, 0, text_len, text_len, 0x20_0000));
    f.extend(phdr(1, 6, 0x1000, 0x1000, 16, 0x3000, 0x1000));
    f.extend(phdr(0x6474_e551, 6, 0, 0, 0, 0, 16));
    f.extend(code);
    f.resize(0x1010, 0xaa);
    out.push(f);
    // ET_EXEC with PT_INTERP.
    let interp = b"/lib64/ld-linux-x86-64.so.2\0";
    let code_at = 64 + 56 * 2 + interp.len() as u64;
    let len = code_at + code.len() as u64;
    let mut f = ehdr(2, 0x40_0000 + code_at, 2);
    f.extend(phdr(
        3,
        4,
        64 + 112,
        0,
        interp.len() as u64,
        interp.len() as u64,
        1,
    ));
    f.extend(phdr(1, 5, 0, 0x40_0000, len, len, 0x1000));
    f.extend(interp);
    f.extend(code);
    out.push(f);
    out
}

/// The seeds of the target `name` (real ELF programs are not in here: they need a
/// compiler, which the tests have).
pub fn for_target(name: &str) -> Vec<Vec<u8>> {
    match name {
        "imgfs" => imgfs_images(),
        "elf" => elf_inputs(),
        "layer_tar" => layer_tars(),
        "docker_archive" => docker_archives(),
        "oci_layout" => oci_inputs(),
        "resolve" => resolve_inputs(),
        _ => Vec::new(),
    }
}
