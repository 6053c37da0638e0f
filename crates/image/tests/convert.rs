//! Conversion of OCI layouts and `docker save` archives into the store: formats and
//! compressions, reuse, reproducibility, bad input, list and rm.

use std::path::{Path, PathBuf};

use fs::containerfs::ContainerFs;
use image::testing::{self as common, Comp, Layer};
use image::{ImageError, Quiet, Store};
use serde_json::json;

fn base(c: Comp) -> Layer {
    common::layer(
        &[
            ("etc", None, 0o755),
            (
                "etc/passwd",
                Some(b"root:x:0:0:root:/root:/bin/sh\n"),
                0o644,
            ),
            ("etc/os-release", Some(b"ID=test\n"), 0o644),
            ("bin", None, 0o755),
            ("bin/tool", Some(&[0u8, 1, 2, 0, 3]), 0o755),
        ],
        c,
    )
}

fn middle(c: Comp) -> Layer {
    common::layer(
        &[
            ("etc", None, 0o755),
            ("etc/os-release", Some(b"ID=changed\n"), 0o644),
            ("etc/.wh.passwd", Some(b""), 0o644),
            ("srv", None, 0o755),
            ("srv/data", Some(b"data"), 0o644),
        ],
        c,
    )
}

fn top(c: Comp) -> Layer {
    common::layer(
        &[
            ("srv", None, 0o755),
            ("srv/.wh..wh..opq", Some(b""), 0o644),
            ("srv/new", Some(b"new"), 0o644),
        ],
        c,
    )
}

fn run_config() -> serde_json::Value {
    json!({
        "Entrypoint": ["/bin/tool", "--flag"],
        "Cmd": ["arg"],
        "Env": ["PATH=/bin", "A=1"],
        "WorkingDir": "/srv",
        "User": "1000:1000",
    })
}

fn convert(source: &str, store: &Path) -> Result<image::Converted, ImageError> {
    let src = image::source::open(source)?;
    let store = Store::open_for_writing(store)?;
    image::convert(src.as_ref(), &store, &[], &Quiet)
}

/// Reads `path` in the merged tree of a stored image.
fn read_merged(store: &Path, name: &str, path: &str) -> Option<Vec<u8>> {
    let s = Store::open(store).unwrap();
    let rec = s.find(name).unwrap();
    let (layers, index) = s.root_files(&rec).unwrap();
    let cfs = ContainerFs::open(&layers, &index).unwrap();
    let mut node = cfs.root();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        node = node.lookup(c.as_bytes()).ok()?;
    }
    let mut buf = vec![0u8; 4096];
    let n = node.read_at(0, &mut buf).unwrap();
    buf.truncate(n);
    Some(buf)
}

fn check_merged(store: &Path, name: &str) {
    assert_eq!(
        read_merged(store, name, "etc/os-release").unwrap(),
        b"ID=changed\n"
    );
    assert_eq!(read_merged(store, name, "etc/passwd"), None, "whited out");
    assert_eq!(
        read_merged(store, name, "srv/data"),
        None,
        "under an opaque directory"
    );
    assert_eq!(read_merged(store, name, "srv/new").unwrap(), b"new");
    assert_eq!(
        read_merged(store, name, "bin/tool").unwrap(),
        [0u8, 1, 2, 0, 3]
    );
}

#[test]
fn oci_layout_with_plain_gzip_and_zstd_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    let layers = [base(Comp::Plain), middle(Comp::Gzip), top(Comp::Zstd)];
    let manifest = common::oci_layout(&oci, "example:1.0", &layers, run_config());
    let store = tmp.path().join("store");
    let c = convert(&format!("oci:{}:example:1.0", oci.display()), &store).unwrap();
    assert_eq!(c.layers_written, 3);
    assert!(c.index_written && c.record_written);
    let rec = &c.image;
    assert_eq!(rec.names, ["example:1.0"]);
    assert_eq!(rec.manifest_digest.as_ref().unwrap().as_str(), manifest);
    assert_eq!(rec.run.entrypoint, ["/bin/tool", "--flag"]);
    assert_eq!(rec.run.cmd, ["arg"]);
    assert_eq!(rec.run.env, ["PATH=/bin", "A=1"]);
    assert_eq!(rec.run.working_dir, "/srv");
    assert_eq!(rec.run.user, "1000:1000");
    for (l, src) in rec.layers.iter().zip(&layers) {
        assert_eq!(l.digest.as_str(), common::sha(&src.blob));
        assert_eq!(l.diff_id.as_str(), common::sha(&src.tar));
        assert_eq!(l.media_type, src.media_type);
        assert_eq!(l.size, src.blob.len() as u64);
    }
    check_merged(&store, "example:1.0");
    // By digest too, and by a prefix of it.
    let s = Store::open(&store).unwrap();
    assert_eq!(s.find(rec.id.as_str()).unwrap().id, rec.id);
    assert_eq!(s.find(&rec.id.hex()[..8]).unwrap().id, rec.id);
}

#[test]
fn docker_archives_old_and_new() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    // The old layout stores layers uncompressed; the same layer twice is a symlink.
    let layers = [
        base(Comp::Plain),
        middle(Comp::Plain),
        top(Comp::Plain),
        base(Comp::Plain),
    ];
    let old = tmp.path().join("old.tar");
    common::docker_archive(&old, "old:latest", &layers, run_config(), false);
    let c = convert(&format!("docker-archive:{}", old.display()), &store).unwrap();
    assert_eq!(c.image.names, ["old:latest"]);
    assert_eq!(c.image.layers.len(), 4);
    // Repeated layer: converted once.
    assert_eq!(c.layers_written, 3);
    assert!(c.image.manifest_digest.is_none());
    assert_eq!(c.image.run.entrypoint, ["/bin/tool", "--flag"]);
    // `old` finds `old:latest`.
    assert_eq!(
        read_merged(&store, "old", "etc/passwd").unwrap(),
        b"root:x:0:0:root:/root:/bin/sh\n"
    );

    let layers = [base(Comp::Gzip), middle(Comp::Zstd), top(Comp::Plain)];
    let new = tmp.path().join("new.tar");
    common::docker_archive(&new, "new:2", &layers, run_config(), true);
    let c = convert(&format!("docker-archive:{}:new:2", new.display()), &store).unwrap();
    assert_eq!(c.image.names, ["new:2"]);
    assert!(
        c.image.manifest_digest.is_some(),
        "the OCI manifest inside is kept"
    );
    // top(Plain) is the same blob as in the old archive.
    assert_eq!(c.layers_written, 2);
    check_merged(&store, "new:2");
}

/// An OCI layout with images `a` and `b`, sharing their base layer.
fn two_images_sharing_a_base(dir: &Path) -> PathBuf {
    let oci = dir.join("oci");
    let a = [base(Comp::Gzip), middle(Comp::Gzip)];
    common::oci_layout(&oci, "a", &a, run_config());
    let b = [base(Comp::Gzip), top(Comp::Gzip)];
    common::oci_layout(&oci, "b", &b, json!({"Cmd": ["sh"]}));
    oci
}

#[test]
fn the_store_reuses_layers_and_a_second_conversion_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = two_images_sharing_a_base(tmp.path());
    let store = tmp.path().join("store");
    let a = convert(&format!("oci:{}:a", oci.display()), &store).unwrap();
    assert_eq!(a.layers_written, 2);
    let b = convert(&format!("oci:{}:b", oci.display()), &store).unwrap();
    assert_eq!(b.layers_written, 1, "the base layer is shared");
    assert_eq!(a.image.layers[0], b.image.layers[0]);

    let before = common::snapshot(&store);
    let again = convert(&format!("oci:{}:a", oci.display()), &store).unwrap();
    assert_eq!(again.layers_written, 0);
    assert!(!again.index_written && !again.record_written);
    assert_eq!(
        common::snapshot(&store),
        before,
        "nothing in the store changed"
    );
    // Only one index uses a given stack; 3 layers, 2 indexes, 2 images.
    let count = |d: &str| std::fs::read_dir(store.join(d)).unwrap().count();
    assert_eq!(
        (count("layers"), count("indexes"), count("images")),
        (6, 2, 2)
    );
    assert_eq!(count("tmp"), 0);
}

/// A stored layer is checked before it is reused: one whose bytes changed (a flipped data
/// byte, another layer's image put in its place), or, for a record older than the image
/// digest, one that fails ImgFS's verify, is converted again from its blob, and comes back
/// byte for byte.
#[test]
fn a_damaged_stored_layer_is_converted_again_when_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = two_images_sharing_a_base(tmp.path());
    let store = tmp.path().join("store");
    let a = convert(&format!("oci:{}:a", oci.display()), &store).unwrap();
    let s = Store::open(&store).unwrap();
    let base = s.layer_path(&a.image.layers[0].digest);
    let middle = s.layer_path(&a.image.layers[1].digest);
    drop(s);
    let good = std::fs::read(&base).unwrap();
    assert!(a.image.layers.iter().all(|l| l.image_sha256.is_some()));

    // A byte of file data (the first data page: past the header page).
    let mut bad = good.clone();
    bad[4096] ^= 0xff;
    std::fs::write(&base, &bad).unwrap();
    let again = convert(&format!("oci:{}:a", oci.display()), &store).unwrap();
    assert_eq!(
        again.layers_written, 1,
        "the damaged layer is converted again"
    );
    assert_eq!(std::fs::read(&base).unwrap(), good);
    assert_eq!(
        read_merged(&store, "a", "bin/tool").unwrap(),
        [0u8, 1, 2, 0, 3]
    );

    // Another layer's image under this layer's name (same size or not).
    std::fs::copy(&middle, &base).unwrap();
    let again = convert(&format!("oci:{}:a", oci.display()), &store).unwrap();
    assert_eq!(again.layers_written, 1);
    assert_eq!(std::fs::read(&base).unwrap(), good);

    // A record written before image_sha256 was kept: ImgFS's verify finds the damage.
    let json = base.with_extension("json");
    let mut rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    rec.as_object_mut().unwrap().remove("image_sha256");
    std::fs::write(&json, serde_json::to_vec(&rec).unwrap()).unwrap();
    std::fs::write(&base, &bad).unwrap();
    let again = convert(&format!("oci:{}:a", oci.display()), &store).unwrap();
    assert_eq!(again.layers_written, 1);
    assert_eq!(std::fs::read(&base).unwrap(), good);
    // An intact old record is reused as it is.
    std::fs::write(&json, serde_json::to_vec(&rec).unwrap()).unwrap();
    let again = convert(&format!("oci:{}:a", oci.display()), &store).unwrap();
    assert_eq!(again.layers_written, 0);
}

#[test]
fn conversion_is_reproducible_across_stores_and_file_systems() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    common::oci_layout(
        &oci,
        "r",
        &[base(Comp::Zstd), middle(Comp::Gzip), top(Comp::Plain)],
        run_config(),
    );
    let shm = Path::new("/dev/shm");
    let other = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let (s1, s2) = (tmp.path().join("store"), other.path().join("store"));
    convert(&format!("oci:{}:r", oci.display()), &s1).unwrap();
    convert(&format!("oci:{}:r", oci.display()), &s2).unwrap();
    let (a, b) = (common::snapshot(&s1), common::snapshot(&s2));
    let strip = |m: std::collections::BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)>| {
        m.into_iter().map(|(p, (b, _))| (p, b)).collect::<Vec<_>>()
    };
    let (a, b) = (strip(a), strip(b));
    assert_eq!(a.len(), 3 * 2 + 1 + 1);
    for ((pa, ba), (pb, bb)) in a.iter().zip(&b) {
        assert_eq!(pa, pb);
        assert!(ba == bb, "{} differs between the stores", pa.display());
    }
}

/// Converts `source` into a fresh store, expecting a failure whose message contains every
/// one of `needles`; checks that the store holds nothing afterwards.
fn expect_failure(source: &str, store: &Path, needles: &[&str]) -> ImageError {
    let before = if store.exists() {
        common::snapshot(store)
    } else {
        Default::default()
    };
    let e = convert(source, store).expect_err("conversion should fail");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "{msg:?} should name {n:?}");
    }
    if store.exists() {
        let after = common::snapshot(store);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "files left in the store after: {msg}"
        );
        assert!(after == before, "the store changed after: {msg}");
    }
    e
}

#[test]
fn bad_input_is_reported_by_name_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let layers = [base(Comp::Gzip), middle(Comp::Zstd), top(Comp::Plain)];
    let fresh = |name: &str| {
        let dir = tmp.path().join(name);
        common::oci_layout(&dir, "t", &layers, run_config());
        (dir.clone(), format!("oci:{}:t", dir.display()))
    };
    let d1 = common::sha(&layers[1].blob);
    let d2 = common::sha(&layers[2].blob);

    // A missing blob.
    let (dir, src) = fresh("missing");
    std::fs::remove_file(common::blob_path(&dir, &d1)).unwrap();
    let e = expect_failure(&src, &store, &["missing blob", &d1]);
    assert!(matches!(e, ImageError::MissingBlob { .. }));

    // A blob whose bytes changed (same size).
    let (dir, src) = fresh("mismatch");
    let p = common::blob_path(&dir, &d2);
    let mut bytes = std::fs::read(&p).unwrap();
    let last = bytes.len() - 700;
    bytes[last] ^= 0x55;
    std::fs::write(&p, bytes).unwrap();
    let e = expect_failure(&src, &store, &[&d2]);
    assert!(
        matches!(
            e,
            ImageError::DigestMismatch { .. } | ImageError::CorruptLayer { .. }
        ),
        "{e}"
    );

    // A truncated blob.
    let (dir, src) = fresh("truncated");
    let p = common::blob_path(&dir, &d1);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = expect_failure(&src, &store, &["size mismatch", &d1]);
    assert!(matches!(e, ImageError::SizeMismatch { .. }));

    // A corrupt layer whose descriptor matches it: the gzip stream is cut short.
    let cut = {
        let b = &layers[0].blob;
        b[..b.len() - 20].to_vec()
    };
    let corrupt = Layer {
        blob: cut.clone(),
        ..layers[0].clone()
    };
    let dir = tmp.path().join("corrupt");
    common::oci_layout(&dir, "t", &[corrupt, layers[1].clone()], run_config());
    let e = expect_failure(
        &format!("oci:{}:t", dir.display()),
        &store,
        &[&common::sha(&cut)],
    );
    assert!(matches!(e, ImageError::CorruptLayer { .. }), "{e}");

    // A layer whose content is not the config's diff_id.
    let liar = Layer {
        tar: layers[1].tar[..512].to_vec(),
        ..layers[2].clone()
    };
    let dir = tmp.path().join("diffid");
    common::oci_layout(&dir, "t", &[liar], run_config());
    let e = expect_failure(
        &format!("oci:{}:t", dir.display()),
        &store,
        &["diff_id", &d2],
    );
    assert!(matches!(e, ImageError::DiffIdMismatch { .. }));

    // An unsupported media type.
    let foreign = Layer {
        media_type: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip".into(),
        ..layers[0].clone()
    };
    let dir = tmp.path().join("foreign");
    common::oci_layout(&dir, "t", &[foreign], run_config());
    let e = expect_failure(
        &format!("oci:{}:t", dir.display()),
        &store,
        &[
            "unsupported media type",
            "foreign",
            &common::sha(&layers[0].blob),
        ],
    );
    assert!(matches!(e, ImageError::UnsupportedMediaType { .. }));

    // A tag the layout does not have; a source that is not one.
    expect_failure(
        &format!("oci:{}:nope", dir.display()),
        &store,
        &["nope", "tags: t"],
    );
    expect_failure("registry:x", &store, &["oci:DIR"]);
    expect_failure(
        &format!("oci:{}", tmp.path().join("none").display()),
        &store,
        &["oci-layout"],
    );

    // A docker archive with a missing layer file, and a truncated archive.
    let arch = tmp.path().join("a.tar");
    common::docker_archive(&arch, "x:1", &layers, run_config(), true);
    let bytes = std::fs::read(&arch).unwrap();
    std::fs::write(&arch, &bytes[..bytes.len() / 3]).unwrap();
    expect_failure(
        &format!("docker-archive:{}", arch.display()),
        &store,
        &["docker-archive:"],
    );

    // Whatever failed, the store holds no layer, index or image.
    if store.exists() {
        assert!(common::snapshot(&store).is_empty());
    }
}

#[test]
fn list_and_rm_keep_shared_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let oci = two_images_sharing_a_base(tmp.path());
    let store = tmp.path().join("store");
    let a = convert(&format!("oci:{}:a", oci.display()), &store)
        .unwrap()
        .image;
    let b = convert(&format!("oci:{}:b", oci.display()), &store)
        .unwrap()
        .image;
    {
        let s = Store::open(&store).unwrap();
        let list = s.images().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list
            .iter()
            .any(|i| i.names == ["a"] && i.layers.len() == 2 && i.size() > 0));
    }
    let s = Store::open_for_writing(&store).unwrap();
    let gone = s.remove("a").unwrap();
    assert_eq!(gone.id, a.id);
    assert!(
        s.layer(&a.layers[0].digest).is_some(),
        "b still uses the base layer"
    );
    assert!(s.layer(&a.layers[1].digest).is_none());
    assert!(!s.index_path(&a.chain).exists());
    assert!(matches!(s.find("a"), Err(ImageError::NotInStore(_))));
    s.remove(&b.id.hex()[..12]).unwrap();
    assert!(common::snapshot(&store).is_empty(), "everything removed");
    assert!(matches!(s.remove("b"), Err(ImageError::NotInStore(_))));
}

#[test]
fn concurrent_conversions_into_one_store_take_turns() {
    // Each conversion holds the store's lock: four at once, of two images sharing a layer,
    // all succeed and leave a consistent store (each layer once, nothing in tmp/).
    let tmp = tempfile::tempdir().unwrap();
    let oci = two_images_sharing_a_base(tmp.path());
    let store = tmp.path().join("store");
    std::thread::scope(|s| {
        for i in 0..4 {
            let (oci, store) = (&oci, &store);
            s.spawn(move || {
                let tag = if i % 2 == 0 { "a" } else { "b" };
                convert(&format!("oci:{}:{tag}", oci.display()), store).unwrap();
            });
        }
    });
    let count = |d: &str| std::fs::read_dir(store.join(d)).unwrap().count();
    assert_eq!(
        (
            count("layers"),
            count("indexes"),
            count("images"),
            count("tmp")
        ),
        (6, 2, 2, 0)
    );
}
