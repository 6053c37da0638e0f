//! Writing test images: layer tarballs, OCI layouts and `docker save` archives, made with
//! the tar crate (no network, no Docker daemon). Used by this crate's tests and the
//! end-to-end tests of `runsc do --image`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

pub fn sha(bytes: &[u8]) -> String {
    let d = sha2::Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A member of a layer: path, then Some(contents) for a file, None for a directory, and the
/// permission bits. Members are owned by root.
pub type Member<'a> = (&'a str, Option<&'a [u8]>, u32);

/// A layer tarball of `members` (files, directories; `.wh.` names are whiteouts).
pub fn layer_tar(members: &[Member<'_>]) -> Vec<u8> {
    let owned: Vec<(&str, Option<&[u8]>, u32, u32)> =
        members.iter().map(|&(p, d, m)| (p, d, m, 0)).collect();
    layer_tar_owned(&owned)
}

/// A layer tarball whose members also have an owner (uid = gid = the fourth field).
pub fn layer_tar_owned(members: &[(&str, Option<&[u8]>, u32, u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode, owner) in members {
        let mut h = tar::Header::new_ustar();
        h.set_mode(*mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(u64::from(*owner));
        h.set_gid(u64::from(*owner));
        match data {
            Some(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, path, *d).unwrap();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

#[derive(Clone, Copy, Debug)]
pub enum Comp {
    Plain,
    Gzip,
    Zstd,
}

pub fn compress(tar: &[u8], c: Comp) -> (Vec<u8>, &'static str) {
    match c {
        Comp::Plain => (tar.to_vec(), "application/vnd.oci.image.layer.v1.tar"),
        Comp::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(tar).unwrap();
            (
                gz.finish().unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        }
        Comp::Zstd => (
            zstd::encode_all(tar, 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

/// A layer as a test image has it: the blob, its media type, and the uncompressed tar.
#[derive(Clone)]
pub struct Layer {
    pub blob: Vec<u8>,
    pub media_type: String,
    pub tar: Vec<u8>,
}

pub fn layer(members: &[Member<'_>], c: Comp) -> Layer {
    layer_of_tar(layer_tar(members), c)
}

/// A layer of a tarball made elsewhere.
pub fn layer_of_tar(tar: Vec<u8>, c: Comp) -> Layer {
    let (blob, media_type) = compress(&tar, c);
    Layer {
        blob,
        media_type: media_type.into(),
        tar,
    }
}

pub fn config_json(layers: &[Layer], config: serde_json::Value) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(&l.tar)).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = sha(bytes);
    let p = dir.join("blobs/sha256").join(&d[7..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
    d
}

/// Writes (or adds to) an OCI layout at `dir`: the image tagged `tag`. Returns the
/// manifest's digest.
pub fn oci_layout(dir: &Path, tag: &str, layers: &[Layer], config: serde_json::Value) -> String {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let cfg = config_json(layers, config);
    let cfg_digest = write_blob(dir, &cfg);
    let layer_descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "mediaType": l.media_type,
                "digest": write_blob(dir, &l.blob),
                "size": l.blob.len(),
            })
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cfg_digest,
            "size": cfg.len(),
        },
        "layers": layer_descs,
    }))
    .unwrap();
    let m_digest = write_blob(dir, &manifest);
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"schemaVersion": 2, "manifests": []}));
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    std::fs::write(index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    m_digest
}

/// The path of a blob in an OCI layout.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(&digest[7..])
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).unwrap();
}

/// A `docker save` archive. `oci_style`: Docker 25+ (blobs/sha256 paths, an index.json);
/// otherwise the older layout (ID.json, ID/layer.tar, uncompressed), where a repeated layer
/// is a symlink to the first copy.
pub fn docker_archive(
    out: &Path,
    tag: &str,
    layers: &[Layer],
    config: serde_json::Value,
    oci_style: bool,
) {
    let cfg = config_json(layers, config);
    let cfg_hex = sha(&cfg)[7..].to_string();
    let mut b = tar::Builder::new(Vec::new());
    let mut layer_paths = Vec::new();
    if oci_style {
        append(&mut b, &format!("blobs/sha256/{cfg_hex}"), &cfg);
        let mut descs = Vec::new();
        for l in layers {
            let d = sha(&l.blob);
            let p = format!("blobs/sha256/{}", &d[7..]);
            append(&mut b, &p, &l.blob);
            layer_paths.push(p);
            descs.push(
                serde_json::json!({"mediaType": l.media_type, "digest": d, "size": l.blob.len()}),
            );
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cfg_hex}"), "size": cfg.len()},
            "layers": descs,
        }))
        .unwrap();
        let md = sha(&manifest);
        append(&mut b, &format!("blobs/sha256/{}", &md[7..]), &manifest);
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len()}],
        }))
        .unwrap();
        append(&mut b, "index.json", &index);
        append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    } else {
        append(&mut b, &format!("{cfg_hex}.json"), &cfg);
        let mut seen: Vec<(Vec<u8>, String)> = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let id = format!("{:064x}", i + 1);
            let p = format!("{id}/layer.tar");
            if let Some((_, first)) = seen.iter().find(|(t, _)| *t == l.tar) {
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                b.append_link(&mut h, &p, format!("../{first}")).unwrap();
            } else {
                append(&mut b, &p, &l.tar);
                seen.push((l.tar.clone(), p.clone()));
            }
            layer_paths.push(p);
        }
    }
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": if oci_style { format!("blobs/sha256/{cfg_hex}") } else { format!("{cfg_hex}.json") },
        "RepoTags": [tag],
        "Layers": layer_paths,
    }]))
    .unwrap();
    append(&mut b, "manifest.json", &manifest);
    std::fs::write(out, b.into_inner().unwrap()).unwrap();
}

/// Every file under `dir` with its contents: to check that nothing changed or was left.
pub fn snapshot(
    dir: &Path,
) -> std::collections::BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "lock" {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    (std::fs::read(&p).unwrap(), md.modified().unwrap()),
                );
            }
        }
    }
    out
}
