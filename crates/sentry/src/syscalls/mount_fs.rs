//! The filesystems mount(2) makes inside the sandbox, and their options: tmpfs (a new one
//! each time), proc (a new superblock each mount, as Linux's since 5.8), sysfs, devpts and
//! mqueue (the sandbox's own instances; Linux has one mqueue per IPC namespace and one sysfs
//! per network namespace, which is what mounting one again on its own root, EBUSY, compares).

use std::sync::Arc;

use fs::tmpfs::{Tmpfs, TmpfsOptions};
use fs::vfs::Mount;

use crate::errno::Errno;
use crate::task::TaskState;

/// Superblock options every filesystem takes in mount's data (Linux's vfs_parse_sb_flag).
const SB_WORDS: &[&str] = &[
    "ro",
    "rw",
    "sync",
    "async",
    "dirsync",
    "lazytime",
    "nolazytime",
    "mand",
    "nomand",
    "silent",
    "loud",
    "posixacl",
    "noposixacl",
];

/// The comma-separated `key[=value]` words of mount's data.
fn words(data: &[u8]) -> Result<Vec<(String, Option<String>)>, Errno> {
    let text = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    Ok(text
        .split(',')
        .filter(|w| !w.is_empty())
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w.to_string(), None),
        })
        .collect())
}

/// Linux's memparse: a number (decimal, 0x hex or 0 octal) with an optional k/m/g/t/p/e.
fn memparse(v: &str) -> Option<u64> {
    let (digits, mult) = match v.chars().last()? {
        'k' | 'K' => (&v[..v.len() - 1], 1u64 << 10),
        'm' | 'M' => (&v[..v.len() - 1], 1 << 20),
        'g' | 'G' => (&v[..v.len() - 1], 1 << 30),
        't' | 'T' => (&v[..v.len() - 1], 1 << 40),
        'p' | 'P' => (&v[..v.len() - 1], 1 << 50),
        'e' | 'E' => (&v[..v.len() - 1], 1 << 60),
        _ => (v, 1),
    };
    let n = if let Some(h) = digits.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    n.checked_mul(mult)
}

/// A tmpfs' options (shmem_parse_one): size (bytes, or % of memory), nr_inodes, mode,
/// uid, gid; huge, mpol, inode32/64 and noswap are taken and change nothing here. Anything
/// else is EINVAL. Returns the options and what mountinfo shows of them.
pub fn tmpfs_options(data: &[u8]) -> Result<(TmpfsOptions, String), Errno> {
    let mut o = TmpfsOptions::default();
    let mut shown = Vec::new();
    let total = TmpfsOptions::default().size_bytes.saturating_mul(2);
    for (k, v) in words(data)? {
        let v_ref = v.as_deref();
        match (k.as_str(), v_ref) {
            ("size", Some(v)) => {
                let bytes = match v.strip_suffix('%') {
                    Some(p) => {
                        let p: u64 = p.parse().map_err(|_| Errno::EINVAL)?;
                        total / 100 * p
                    }
                    None => memparse(v).ok_or(Errno::EINVAL)?,
                };
                // Whole pages; 0 is no limit.
                o.size_bytes = if bytes == 0 {
                    u64::MAX
                } else {
                    bytes.div_ceil(4096).saturating_mul(4096)
                };
                if bytes != 0 {
                    shown.push(format!("size={}k", o.size_bytes / 1024));
                }
            }
            ("nr_blocks", Some(v)) => {
                o.size_bytes = memparse(v)
                    .ok_or(Errno::EINVAL)?
                    .checked_mul(4096)
                    .ok_or(Errno::EINVAL)?;
                shown.push(format!("size={}k", o.size_bytes / 1024));
            }
            ("nr_inodes", Some(v)) => {
                o.max_inodes = memparse(v).ok_or(Errno::EINVAL)?;
                if o.max_inodes == 0 {
                    o.max_inodes = u64::MAX;
                }
                shown.push(format!("nr_inodes={}", memparse(v).unwrap_or(0)));
            }
            ("mode", Some(v)) => {
                o.root_mode = u32::from_str_radix(v, 8).map_err(|_| Errno::EINVAL)? & 0o7777;
                shown.push(format!("mode={:03o}", o.root_mode));
            }
            ("uid", Some(v)) => {
                o.root_owner.uid = v.parse().map_err(|_| Errno::EINVAL)?;
                shown.push(format!("uid={}", o.root_owner.uid));
            }
            ("gid", Some(v)) => {
                o.root_owner.gid = v.parse().map_err(|_| Errno::EINVAL)?;
                shown.push(format!("gid={}", o.root_owner.gid));
            }
            ("huge", Some("never" | "always" | "within_size" | "advise" | "deny" | "force")) => {}
            ("mpol", Some(_)) | ("inode32" | "inode64" | "noswap", None) => {}
            (w, None) if SB_WORDS.contains(&w) => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    // Linux shows a mode only when it isn't the default 1777.
    shown.retain(|s| s != "mode=1777");
    Ok((o, shown.join(",")))
}

/// proc's options (proc_parse_param): hidepid, gid, subset. Recorded, not applied.
fn proc_options(data: &[u8]) -> Result<String, Errno> {
    let mut shown = Vec::new();
    for (k, v) in words(data)? {
        match (k.as_str(), v.as_deref()) {
            (
                "hidepid",
                Some("0" | "1" | "2" | "4" | "off" | "noaccess" | "invisible" | "ptraceable"),
            )
            | ("gid", Some(_))
            | ("subset", Some("pid")) => shown.push(format!("{k}={}", v.unwrap_or_default())),
            (w, None) if SB_WORDS.contains(&w) => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    Ok(shown.join(","))
}

/// The superblock a mount shows, for the "same filesystem on the same mount point" rule:
/// mounts made before the sandbox started are its first namespaces'.
pub fn sb_key_of(m: &Mount) -> u64 {
    if m.sb_key != 0 {
        return m.sb_key;
    }
    use crate::namespaces as ns;
    match m.fs_type.as_str() {
        "mqueue" => ns::INIT_IPC,
        "sysfs" => ns::INIT_NET,
        _ => 0,
    }
}

/// A new mount of the filesystem `fstype` (not yet attached): ENODEV for a type the sandbox
/// doesn't have, EINVAL for options the type refuses.
pub fn new_mount(
    t: &TaskState,
    fstype: &[u8],
    source: &str,
    data: &[u8],
    flags: u32,
) -> Result<Arc<Mount>, Errno> {
    let n = t.process.namespaces();
    match fstype {
        b"tmpfs" => {
            let (opts, shown) = tmpfs_options(data)?;
            let fs = Tmpfs::with_options(fs::imgfs::vfs::next_anon_dev(), opts);
            Ok(Mount::with_options(
                fs.root(),
                "tmpfs",
                source,
                &shown,
                flags,
                0,
            ))
        }
        b"proc" => {
            let shown = proc_options(data)?;
            let root = if n.pid.is_initial() {
                t.kernel.procfs.root()
            } else {
                t.kernel.procfs.root_in(Some(n.pid.clone()))
            };
            // A new superblock each time, as Linux's since 5.8 (subset=pid).
            Ok(Mount::with_options(root, "proc", source, &shown, flags, 0))
        }
        b"mqueue" => {
            words(data)?;
            // The mounter's IPC namespace's queues, as Linux's mqueue_get_tree binds them.
            let root = t.kernel.procfs.mqueue_root_of(n.ipc.ns.clone());
            Ok(Mount::with_options(
                root, "mqueue", source, "", flags, n.ipc.ino,
            ))
        }
        b"sysfs" | b"devpts" => {
            words(data)?;
            let kind = if fstype == b"sysfs" {
                "sysfs"
            } else {
                "devpts"
            };
            // The sandbox's own instance, as its first mount namespace has it.
            let existing = t.fs.ns().find_fs(kind).ok_or(Errno::ENODEV)?;
            let root = existing.root.inode().clone();
            let key = if kind == "sysfs" { n.net } else { 0 };
            let opts = existing.options.clone();
            Ok(Mount::with_options(root, kind, source, &opts, flags, key))
        }
        _ => Err(Errno::ENODEV),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fs::vfs::Owner;

    #[test]
    fn tmpfs_options_parse_and_refuse() {
        let (o, shown) = tmpfs_options(b"size=1m,mode=755,uid=5").unwrap();
        assert_eq!(o.size_bytes, 1 << 20);
        assert_eq!(o.root_mode, 0o755);
        assert_eq!(o.root_owner, Owner { uid: 5, gid: 0 });
        assert_eq!(shown, "size=1024k,mode=755,uid=5");
        assert_eq!(tmpfs_options(b"size=lots").unwrap_err(), Errno::EINVAL);
        assert_eq!(tmpfs_options(b"bogus").unwrap_err(), Errno::EINVAL);
        assert_eq!(tmpfs_options(b"\xff").unwrap_err(), Errno::EINVAL);
        assert!(tmpfs_options(b"rw,,nr_inodes=10k").is_ok());
    }

    #[test]
    fn memparse_suffixes() {
        assert_eq!(memparse("4k"), Some(4096));
        assert_eq!(memparse("0x10"), Some(16));
        assert_eq!(memparse("010"), Some(8));
        assert_eq!(memparse("99999999999e"), None);
        assert_eq!(memparse(""), None);
    }
}
