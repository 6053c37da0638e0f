//! What a container's process gets besides its root file system, as Docker gives it: the
//! user (`uid[:gid]` or names looked up in the image's /etc/passwd and /etc/group), the
//! environment (the image's, with PATH, HOSTNAME and HOME filled in), the working directory
//! (created if missing), /etc/hostname, /etc/hosts and /etc/resolv.conf (written in the
//! memory layer, the image's own hidden), /tmp, and a minimal read-only /sys.

use std::sync::Arc;

use fs::vfs::{
    Creds as FsCreds, FileType, Location, MountNamespace, NewNode, Owner, ResolveFlags, Resolver,
    SetAttr,
};
use sentry::Creds;

use crate::BootError;

/// Docker's PATH for an image whose config has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Device number of the container's /sys.
const SYS_DEV: u64 = fs::dev::makedev(0, 43);

/// How to run the process of a container image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerProcess {
    /// `KEY=VALUE` entries from the image config.
    pub env: Vec<String>,
    /// The working directory ("" for /).
    pub working_dir: String,
    /// `user`, `uid`, `user:group`, `uid:gid`... ("" for root).
    pub user: String,
    /// The container's host name (`runsc do --image`: the container ID's first 12 hex
    /// digits); the sandbox's UTS name is set to it too.
    pub hostname: String,
}

/// What [`prepare`] settled: where and as whom the process starts, and its environment.
pub struct Prepared {
    pub cwd: Vec<u8>,
    pub creds: Creds,
    pub envp: Vec<Vec<u8>>,
    /// The PATH programs are looked up along.
    pub path: Vec<u8>,
}

fn fail(what: impl std::fmt::Display) -> BootError {
    BootError::Io(
        "preparing the container",
        std::io::Error::other(what.to_string()),
    )
}

fn errno_text(e: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(e)
}

/// Reads a small file of the sandbox's tree (None if it is missing or not a regular file).
fn read_file(resolver: &Resolver<'_>, path: &[u8]) -> Option<Vec<u8>> {
    let loc = resolver
        .resolve(resolver.root, path, ResolveFlags::follow())
        .ok()?;
    let inode = loc.inode();
    if inode.file_type() != FileType::Regular {
        return None;
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while out.len() < 16 << 20 {
        let n = inode.read_at(out.len() as u64, &mut buf).ok()?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Some(out)
}

/// Lines of a passwd or group file, split at ':'.
fn records(file: &Option<Vec<u8>>) -> Vec<Vec<String>> {
    let Some(bytes) = file else { return Vec::new() };
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| l.split(':').map(String::from).collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect()
}

/// The user's credentials and home, as `docker run --user` resolves them.
fn resolve_user(
    user: &str,
    passwd: &Option<Vec<u8>>,
    group: &Option<Vec<u8>>,
) -> Result<(Creds, Option<String>), BootError> {
    let passwd = records(passwd);
    let groups = records(group);
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    // A number is a uid even if no entry has it; a name must have an entry.
    let entry = passwd.iter().find(|f| match u.parse::<u32>() {
        Ok(n) => f[2].parse::<u32>() == Ok(n),
        Err(_) => f[0] == u,
    });
    let uid = match (u.parse::<u32>(), entry) {
        (Ok(n), _) => n,
        (Err(_), Some(e)) => e[2]
            .parse()
            .map_err(|_| fail(format_args!("user {u}: bad uid {:?} in /etc/passwd", e[2])))?,
        (Err(_), None) => {
            return Err(fail(format_args!(
                "unable to find user {u}: no matching entries in /etc/passwd"
            )))
        }
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    fail(format_args!(
                        "unable to find group {g}: no matching entries in /etc/group"
                    ))
                })?,
        },
        None => entry
            .and_then(|e| e.get(3))
            .and_then(|g| g.parse().ok())
            .unwrap_or(0),
    };
    // Supplementary groups: those listing the user by name (only with no explicit group).
    let mut supplementary = vec![gid];
    if let (Some(e), None) = (entry, g) {
        for f in &groups {
            if f.get(3).is_some_and(|m| m.split(',').any(|m| m == e[0])) {
                if let Ok(n) = f[2].parse() {
                    if !supplementary.contains(&n) {
                        supplementary.push(n);
                    }
                }
            }
        }
    }
    let home = entry
        .and_then(|e| e.get(5))
        .filter(|h| !h.is_empty())
        .cloned();
    Ok((Creds::login(uid, gid, supplementary), home))
}

/// Writes `contents` at `/etc/NAME` in the memory layer, replacing what the image has there
/// (a file, or a symlink that must not be followed).
fn write_etc(etc: &Location, name: &[u8], contents: &[u8]) -> Result<(), BootError> {
    let shown = format!("/etc/{}", String::from_utf8_lossy(name));
    replace_file(etc, name, contents, &shown, "is a directory in the image")
}

/// Makes `dir/name` a fresh root-owned 0644 file holding `contents`, replacing a file or
/// symlink there (never followed). A directory there is refused with `shown: on_directory`.
pub(crate) fn replace_file(
    dir: &Location,
    name: &[u8],
    contents: &[u8],
    shown: &str,
    on_directory: &str,
) -> Result<(), BootError> {
    let failed = |e| fail(format_args!("{shown}: {}", errno_text(e)));
    let inode = dir.inode();
    match inode.lookup(name) {
        Ok(old) if old.file_type() == FileType::Directory => {
            return Err(fail(format_args!("{shown}: {on_directory}")))
        }
        Ok(_) => {
            inode.unlink(name, false).map_err(failed)?;
            dir.dentry.remove_child(name);
        }
        Err(_) => {}
    }
    let owner = Owner { uid: 0, gid: 0 };
    let file = inode
        .create(name, NewNode::Regular, 0o644, owner)
        .map_err(failed)?;
    file.setattr(&SetAttr {
        size: Some(0),
        ..SetAttr::default()
    })
    .map_err(failed)?;
    let mut done = 0;
    while done < contents.len() {
        done += file
            .write_at(done as u64, &contents[done..])
            .map_err(failed)?;
    }
    dir.dentry.insert_child(name, file);
    Ok(())
}

/// /etc/hosts as Docker writes it for a container without a network (the sandbox has none).
fn hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff00::1\tip6-allnodes\nff00::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
    )
}

/// The host's resolv.conf without loopback name servers (unreachable from a container), or
/// Docker's public fallback if none is left.
fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr = words.next().unwrap_or("");
            if addr.starts_with("127.") || addr == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// A minimal /sys: read-only, with the cgroup mount point programs look for.
pub(crate) fn minimal_sys() -> Result<Arc<dyn fs::vfs::Inode>, BootError> {
    let sys = fs::tmpfs::Tmpfs::with_options(
        SYS_DEV,
        fs::tmpfs::TmpfsOptions {
            root_mode: 0o555,
            root_owner: Owner { uid: 0, gid: 0 },
            ..Default::default()
        },
    )
    .root();
    let owner = Owner { uid: 0, gid: 0 };
    for dir in [&b"fs"[..], b"kernel", b"devices", b"class", b"bus"] {
        sys.create(dir, NewNode::Directory, 0o755, owner)
            .map_err(|e| fail(format_args!("/sys: {}", errno_text(e))))?;
    }
    if let Ok(fsdir) = sys.lookup(b"fs") {
        fsdir
            .create(b"cgroup", NewNode::Directory, 0o755, owner)
            .map_err(|e| fail(format_args!("/sys/fs/cgroup: {}", errno_text(e))))?;
    }
    Ok(sys)
}

/// Prepares the container's namespace (`ns`, its root already a ContainerFS) for `proc`.
pub fn prepare(ns: &Arc<MountNamespace>, proc: &ContainerProcess) -> Result<Prepared, BootError> {
    let root = ns.root();
    let fs_creds = FsCreds::default();
    let resolver = Resolver {
        ns,
        root: &root,
        creds: &fs_creds,
    };
    let passwd = read_file(&resolver, b"/etc/passwd");
    let group = read_file(&resolver, b"/etc/group");
    let (creds, home) = resolve_user(&proc.user, &passwd, &group)?;

    let etc = crate::mounts::mount_point(&resolver, b"/etc").map_err(fail)?;
    write_etc(&etc, b"hostname", format!("{}\n", proc.hostname).as_bytes())?;
    write_etc(&etc, b"hosts", hosts(&proc.hostname).as_bytes())?;
    write_etc(&etc, b"resolv.conf", resolv_conf().as_bytes())?;

    // /tmp is the image's (Docker mounts nothing there); made, world-writable, if missing.
    if resolver
        .resolve(&root, b"/tmp", ResolveFlags::follow())
        .is_err()
    {
        let tmp = crate::mounts::mount_point(&resolver, b"/tmp").map_err(fail)?;
        tmp.inode()
            .setattr(&SetAttr {
                mode: Some(0o1777),
                ..SetAttr::default()
            })
            .map_err(|e| fail(format_args!("/tmp: {}", errno_text(e))))?;
    }
    let sys = minimal_sys()?;
    let at = crate::mounts::mount_point(&resolver, b"/sys").map_err(fail)?;
    ns.mount(&at, sys, "sysfs", "sysfs", true)
        .map_err(|e| fail(format_args!("/sys: {}", errno_text(e))))?;

    // The working directory, created (owned by the user, as Docker does) if missing.
    let cwd = if proc.working_dir.is_empty() {
        b"/".to_vec()
    } else if !proc.working_dir.starts_with('/') {
        return Err(fail(format_args!(
            "the working directory {:?} is not an absolute path",
            proc.working_dir
        )));
    } else {
        let wd = proc.working_dir.as_bytes();
        if resolver.resolve(&root, wd, ResolveFlags::follow()).is_err() {
            let made = crate::mounts::mount_point(&resolver, wd).map_err(fail)?;
            let _ = made.inode().setattr(&SetAttr {
                uid: Some(creds.uid),
                gid: Some(creds.gid),
                ..SetAttr::default()
            });
        }
        wd.to_vec()
    };

    let mut env: Vec<String> = Vec::new();
    let has = |env: &[String], key: &str| env.iter().any(|e| e.split('=').next() == Some(key));
    if !has(&proc.env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("HOSTNAME={}", proc.hostname));
    env.extend(
        proc.env
            .iter()
            .filter(|e| !e.starts_with("HOSTNAME="))
            .cloned(),
    );
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", home.unwrap_or_else(|| "/".into())));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .as_bytes()
        .to_vec();
    Ok(Prepared {
        cwd,
        creds,
        envp: env.into_iter().map(String::into_bytes).collect(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\nappg:x:1001:\nextra:x:2000:app,other\nstaff:x:50:\n";

    fn user(spec: &str) -> Result<(Creds, Option<String>), BootError> {
        resolve_user(spec, &Some(PASSWD.to_vec()), &Some(GROUP.to_vec()))
    }

    #[test]
    fn users_resolve_as_docker_resolves_them() {
        let (c, home) = user("").unwrap();
        assert_eq!((c.uid, c.gid, home.as_deref()), (0, 0, Some("/root")));
        let (c, home) = user("app").unwrap();
        assert_eq!(
            (c.uid, c.gid, home.as_deref()),
            (1000, 1001, Some("/home/app"))
        );
        assert_eq!(c.groups, [1001, 2000]);
        let (c, _) = user("1000").unwrap();
        assert_eq!((c.uid, c.gid), (1000, 1001));
        let (c, home) = user("4242:4343").unwrap();
        assert_eq!(
            (c.uid, c.gid, c.groups.as_slice(), home),
            (4242, 4343, &[4343][..], None)
        );
        let (c, _) = user("app:staff").unwrap();
        assert_eq!((c.uid, c.gid, c.groups.as_slice()), (1000, 50, &[50][..]));
        assert!(user("nobody")
            .unwrap_err()
            .to_string()
            .contains("unable to find user nobody"));
        assert!(user("app:nogroup")
            .unwrap_err()
            .to_string()
            .contains("nogroup"));
    }

    #[test]
    fn resolv_conf_has_a_name_server() {
        assert!(resolv_conf().contains("nameserver "));
    }
}
