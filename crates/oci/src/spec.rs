//! config.json (read with `oci-spec`) turned into what `boot` builds a sandbox from.

use std::path::{Path, PathBuf};

use boot::bundle::{Bundle, BundleMount, BundleProcess, CapabilitySets, MountKind};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Process, Spec};

use crate::OciError;

/// Loads `BUNDLE/config.json`. Unknown fields are ignored; a field of the wrong shape is
/// refused with a message naming it (`process.user.uid: invalid type: ...`). Unknown
/// capability names are left out with a warning ([`parse_json`]).
pub fn load(bundle: &Path) -> Result<Spec, OciError> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| OciError::io(format!("{}", path.display()), e))?;
    parse_json(&bytes, &path, &["process", "capabilities"])
}

/// Reads an OCI `process` (`runsc exec --process FILE`), as [`load`] reads config.json.
pub fn parse_process_json(bytes: &[u8], path: &Path) -> Result<Process, OciError> {
    parse_json(bytes, path, &["capabilities"])
}

/// Parses `bytes` as a `T`, leaving out the capability names the sets at `caps_at` hold
/// that runc doesn't know. runc (since 1.0, so the 1.1 Debian ships and Docker drives
/// here) warns "ignoring unknown or unavailable capabilities: [...]" and runs the
/// container without them; an older runc refused the container. We do as today's runc:
/// a Docker or Kubernetes that knows a newer kernel's capability still runs its containers.
/// oci-spec alone would refuse the whole file without naming the field.
fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    caps_at: &[&str],
) -> Result<T, OciError> {
    let invalid = |e: serde_json::Error| OciError::Invalid(format!("{}: {e}", path.display()));
    // serde's own message says what was wrong, not where: the field's path goes first.
    let invalid_at = |e: serde_path_to_error::Error<serde_json::Error>| {
        let field = e.path().to_string();
        if field == "." {
            invalid(e.into_inner())
        } else {
            OciError::Invalid(format!("{}: {field}: {}", path.display(), e.into_inner()))
        }
    };
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
    let mut unknown = Vec::new();
    let mut sets = Some(&mut value);
    for key in caps_at {
        sets = sets.and_then(|v| v.get_mut(*key));
    }
    if let Some(serde_json::Value::Object(sets)) = sets {
        for (set, names) in sets.iter_mut() {
            if let serde_json::Value::Array(names) = names {
                names.retain(|n| match n.as_str() {
                    Some(name) if boot::caps::number(name).is_none() => {
                        unknown.push(format!("{}.{set}: {name}", caps_at.join(".")));
                        false
                    }
                    // Not a string: oci-spec refuses it, naming the field.
                    _ => true,
                });
            }
        }
    }
    if unknown.is_empty() {
        // From the bytes: serde's messages then give the line and column.
        let mut de = serde_json::Deserializer::from_slice(bytes);
        return serde_path_to_error::deserialize(&mut de).map_err(invalid_at);
    }
    tracing::warn!(
        "{}: ignoring unknown or unavailable capabilities: [{}]",
        path.display(),
        unknown.join(", ")
    );
    serde_path_to_error::deserialize(value).map_err(invalid_at)
}

/// A set of `process.capabilities` as a mask. Every name in it is one [`parse_json`] kept
/// (oci-spec spells them "CAP_CHOWN" when written back, as the `caps` table does).
fn cap_mask(set: &Option<oci_spec::runtime::Capabilities>) -> u64 {
    set.iter()
        .flatten()
        .filter_map(|c| {
            let name = serde_json::to_value(c).ok()?;
            let n = boot::caps::number(name.as_str()?);
            if n.is_none() {
                tracing::warn!("ignoring unknown capability {name}");
            }
            n
        })
        .fold(0, |m, n| m | 1 << n)
}

/// `process.capabilities` as masks (None: the process has none).
pub fn capabilities(p: &Process) -> Option<CapabilitySets> {
    let c = p.capabilities().as_ref()?;
    Some(CapabilitySets {
        bounding: cap_mask(c.bounding()),
        effective: cap_mask(c.effective()),
        inheritable: cap_mask(c.inheritable()),
        permitted: cap_mask(c.permitted()),
        ambient: cap_mask(c.ambient()),
    })
}

fn parse_mode(opts: &[String]) -> Option<u32> {
    opts.iter()
        .find_map(|o| o.strip_prefix("mode="))
        .and_then(|m| u32::from_str_radix(m, 8).ok())
}

/// The file system part of the bundle.
pub fn bundle(spec: &Spec, bundle_dir: &Path) -> Result<Bundle, OciError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| OciError::Invalid("config.json: root: missing".into()))?;
    let root_path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle_dir.join(root.path())
    };
    let mut mounts = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().to_string_lossy().into_owned();
        let opts: Vec<String> = m.options().clone().unwrap_or_default();
        let read_only = opts.iter().any(|o| o == "ro");
        let typ = m.typ().clone().unwrap_or_default();
        let bind = typ == "bind" || opts.iter().any(|o| o == "bind" || o == "rbind");
        let kind = if bind {
            let src = m.source().clone().ok_or_else(|| {
                OciError::Invalid(format!(
                    "config.json: mounts: {dest}: bind mount without a source"
                ))
            })?;
            let src = if src.is_absolute() {
                src
            } else {
                bundle_dir.join(src)
            };
            MountKind::Bind(src)
        } else {
            match typ.as_str() {
                "tmpfs" => MountKind::Tmpfs {
                    mode: parse_mode(&opts).unwrap_or(0o1777),
                },
                "proc" => MountKind::Proc,
                "sysfs" => MountKind::Sysfs,
                "devpts" => MountKind::Devpts,
                "mqueue" => MountKind::Mqueue,
                "cgroup" | "cgroup2" => MountKind::Cgroup,
                other => {
                    return Err(OciError::Invalid(format!(
                        "config.json: mounts: {dest}: unsupported mount type {other:?}"
                    )))
                }
            }
        };
        mounts.push(BundleMount {
            destination: dest,
            kind,
            read_only,
        });
    }
    let masked_paths = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    let readonly_paths = spec
        .linux()
        .as_ref()
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default();
    Ok(Bundle {
        root: root_path,
        root_read_only: root.readonly().unwrap_or(false),
        root_image: root_image(spec)?,
        mounts,
        masked_paths,
        readonly_paths,
    })
}

/// Selects a converted image as the root instead of `root.path` (`runsc image convert`).
pub const IMAGE_ANNOTATION: &str = "dev.runsc.image";
/// The image store of [`IMAGE_ANNOTATION`] (default: `image::default_store()`).
pub const STORE_ANNOTATION: &str = "dev.runsc.image-store";

/// The layers and merged index of the image the annotations name, if they name one.
fn root_image(spec: &Spec) -> Result<Option<(Vec<PathBuf>, PathBuf)>, OciError> {
    let Some(ann) = spec.annotations().as_ref() else {
        return Ok(None);
    };
    let Some(name) = ann.get(IMAGE_ANNOTATION) else {
        return Ok(None);
    };
    let store = ann
        .get(STORE_ANNOTATION)
        .map(PathBuf::from)
        .unwrap_or_else(image::default_store);
    let bad = |e: image::ImageError| {
        OciError::Invalid(format!(
            "config.json: annotations: {IMAGE_ANNOTATION}={name}: {e}"
        ))
    };
    let st = image::Store::open(&store).map_err(bad)?;
    let rec = st.find(name).map_err(bad)?;
    st.root_files(&rec).map(Some).map_err(bad)
}

/// `process.rlimits` as (resource number, soft, hard).
pub fn rlimits(p: &Process) -> Vec<(u32, u64, u64)> {
    use oci_spec::runtime::PosixRlimitType as T;
    p.rlimits()
        .iter()
        .flatten()
        .map(|r| {
            let resource = match r.typ() {
                T::RlimitCpu => libc::RLIMIT_CPU,
                T::RlimitFsize => libc::RLIMIT_FSIZE,
                T::RlimitData => libc::RLIMIT_DATA,
                T::RlimitStack => libc::RLIMIT_STACK,
                T::RlimitCore => libc::RLIMIT_CORE,
                T::RlimitRss => libc::RLIMIT_RSS,
                T::RlimitNproc => libc::RLIMIT_NPROC,
                T::RlimitNofile => libc::RLIMIT_NOFILE,
                T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
                T::RlimitAs => libc::RLIMIT_AS,
                T::RlimitLocks => libc::RLIMIT_LOCKS,
                T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
                T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
                T::RlimitNice => libc::RLIMIT_NICE,
                T::RlimitRtprio => libc::RLIMIT_RTPRIO,
                T::RlimitRttime => libc::RLIMIT_RTTIME,
            };
            // (glibc's resource type is u32, musl's c_int.)
            #[allow(clippy::unnecessary_cast)]
            let resource = resource as u32;
            (resource, r.soft(), r.hard())
        })
        .collect()
}

/// The bundle's process (without its stdio).
pub fn process(p: &Process) -> BundleProcess {
    let user = p.user();
    BundleProcess {
        path: None,
        args: p.args().clone().unwrap_or_default(),
        env: p.env().clone().unwrap_or_default(),
        cwd: p.cwd().to_string_lossy().into_owned(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        capabilities: capabilities(p),
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        rlimits: rlimits(p),
        stdio: [None, None, None],
    }
}

/// The IPC and UTS namespaces the bundle names by path (`linux.namespaces[].path`), which
/// the sandbox process joins. A path for any other type but network (joined apart,
/// [`network_namespace`]) can't be honoured by a sandbox, and is refused naming the field:
/// the container's processes, mounts, users and cgroups are the sentry's, not the host's.
pub fn joined_namespaces(spec: &Spec) -> Result<Vec<(LinuxNamespaceType, PathBuf)>, OciError> {
    let Some(list) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, n) in list.iter().enumerate() {
        let Some(path) = n.path() else { continue };
        let name = match n.typ() {
            LinuxNamespaceType::Network => continue,
            LinuxNamespaceType::Ipc | LinuxNamespaceType::Uts => {
                out.push((n.typ(), path.clone()));
                continue;
            }
            LinuxNamespaceType::Pid => "pid",
            LinuxNamespaceType::Mount => "mount",
            LinuxNamespaceType::User => "user",
            LinuxNamespaceType::Cgroup => "cgroup",
            LinuxNamespaceType::Time => "time",
        };
        return Err(OciError::Invalid(format!(
            "config.json: linux.namespaces[{i}].path: joining a {name} namespace by path is \
             not supported"
        )));
    }
    Ok(out)
}

/// The network namespace the sandbox joins: Some(path) to join, Some(None) for a new one,
/// None to stay in the caller's (the bundle asks for none).
pub fn network_namespace(spec: &Spec) -> Option<Option<PathBuf>> {
    namespace(spec, LinuxNamespaceType::Network).map(|n| n.path().clone())
}

/// The bundle's `linux.namespaces` entry of type `typ`, if it has one.
pub fn namespace(spec: &Spec, typ: LinuxNamespaceType) -> Option<&LinuxNamespace> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == typ)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Spec, String> {
        parse_json(
            json.as_bytes(),
            Path::new("config.json"),
            &["process", "capabilities"],
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn an_invalid_field_is_named() {
        let base = r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "#;
        let err = parse(&format!(
            r#"{base} "process": {{"cwd": "/", "user": {{"uid": "zero", "gid": 0}}}}}}"#
        ))
        .unwrap_err();
        assert!(
            err.contains("config.json: process.user.uid: invalid type"),
            "{err}"
        );
        let err = parse(&format!(
            r#"{base} "mounts": [{{"destination": "/p", "options": "ro"}}]}}"#
        ))
        .unwrap_err();
        assert!(err.contains("mounts[0].options: invalid type"), "{err}");
        // An unknown field is ignored.
        assert!(parse(&format!(r#"{base} "noSuchField": 1}}"#)).is_ok());
    }

    #[test]
    fn namespaces_by_path_ipc_and_uts_only() {
        let with = |list: &str| {
            parse(&format!(
                r#"{{"ociVersion": "1.0.2", "linux": {{"namespaces": {list}}}}}"#
            ))
            .unwrap()
        };
        let spec = with(
            r#"[{"type": "pid"}, {"type": "ipc", "path": "/i"}, {"type": "uts", "path": "/u"},
                {"type": "network", "path": "/n"}]"#,
        );
        assert_eq!(
            joined_namespaces(&spec).unwrap(),
            vec![
                (LinuxNamespaceType::Ipc, PathBuf::from("/i")),
                (LinuxNamespaceType::Uts, PathBuf::from("/u"))
            ]
        );
        for (typ, name) in [
            ("pid", "pid"),
            ("mount", "mount"),
            ("user", "user"),
            ("cgroup", "cgroup"),
        ] {
            let spec = with(&format!(
                r#"[{{"type": "ipc"}}, {{"type": "uts"}}, {{"type": "{typ}", "path": "/x"}}]"#
            ));
            let err = joined_namespaces(&spec).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "linux.namespaces[2].path: joining a {name} namespace by path is not supported"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn unknown_capabilities_are_left_out() {
        let spec = parse(
            r#"{"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0},
               "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NO_SUCH", "chown"],
                                "ambient": ["CAP_KILL"]}}}"#,
        )
        .unwrap();
        let caps = capabilities(spec.process().as_ref().unwrap()).unwrap();
        assert_eq!(
            caps,
            CapabilitySets {
                bounding: 1,
                ambient: 1 << 5,
                ..Default::default()
            }
        );
        let err = parse(
            r#"{"ociVersion": "1.0.2", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0},
               "capabilities": {"bounding": ["CAP_NO_SUCH", 5]}}}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("process.capabilities.bounding[0]: invalid type"),
            "{err}"
        );
    }
}
