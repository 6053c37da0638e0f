//! The bundle's `linux.sysctl`, applied as runc applies it: each key must name a setting
//! of a namespace the container has of its own, and is refused otherwise.
//!
//! Docker sets two on every container with a network of its own,
//! `net.ipv4.ip_unprivileged_port_start=0` (any user may bind a port below 1024) and
//! `net.ipv4.ping_group_range=0 2147483647` (any group may use ICMP datagram sockets), and
//! `docker run --sysctl` adds more. What each kind means here:
//! - `net.*`: the sandbox's sockets are host sockets of its network namespace (hostinet),
//!   so the setting is written to that namespace's /proc/sys/net, before the sentry leaves
//!   the host's /proc and gives up its capabilities; the sentry's own checks (a bind below
//!   the unprivileged start, ping_group_range) read the same files. Refused when the
//!   container shares the runtime's namespace, as runc refuses it.
//! - `kernel.domainname`: the sandbox's UTS name, the sentry's own (with a UTS namespace
//!   in `linux.namespaces`, as runc asks).
//! - `kernel.hostname`: refused; the OCI `hostname` field sets it (as runc says).
//! - the System V IPC limits (`kernel.shm*`, `kernel.msg*`, `kernel.sem`) and
//!   `fs.mqueue.*`: the sentry's IPC limits are fixed (`sentry::ipc`), so a value is
//!   refused, naming the key, rather than silently not applied.
//! - anything else is not namespaced: refused, naming the key.

use std::io::Write as _;

use crate::OciError;

/// IPC settings runc accepts with an IPC namespace of the container's own.
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Where one key of `linux.sysctl` goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A file of the network namespace's /proc/sys/net (the relative path under /proc/sys).
    Network(String),
    /// The sandbox's NIS domain name.
    DomainName,
}

/// Decides where `key` goes; `own_network` says whether the container's network namespace
/// is its own, `own_uts` whether the bundle gives it a UTS namespace.
fn target(key: &str, own_network: bool, own_uts: bool) -> Result<Target, String> {
    // sysctl(8) accepts both separators; a key is a path below /proc/sys, so each component
    // must be a plain name (nothing that could climb out of it).
    let parts: Vec<&str> = key.split(['.', '/']).collect();
    let plain = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !parts.iter().all(plain) {
        return Err(format!("sysctl {key:?}: not a sysctl name"));
    }
    let dotted = parts.join(".");
    match parts[0] {
        "net" if own_network => Ok(Target::Network(parts.join("/"))),
        "net" => Err(format!(
            "sysctl {dotted:?} not allowed in the host's network namespace"
        )),
        _ if dotted == "kernel.domainname" && own_uts => Ok(Target::DomainName),
        _ if dotted == "kernel.domainname" => Err(format!(
            "sysctl {dotted:?} needs a UTS namespace in linux.namespaces"
        )),
        _ if dotted == "kernel.hostname" => Err(format!(
            "sysctl {dotted:?} is not allowed as it conflicts with the OCI \"hostname\" field"
        )),
        _ if IPC_KEYS.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") => {
            Err(format!(
                "sysctl {dotted:?}: the sandbox's System V IPC and POSIX queue limits are \
                 fixed by its kernel and can't be set"
            ))
        }
        _ => Err(format!(
            "sysctl {dotted:?} is not in a separate kernel namespace"
        )),
    }
}

/// Applies every key of the bundle's `linux.sysctl` (see the module docs). Called in the
/// sandbox process once it is in the container's network namespace, while it still sees
/// the host's /proc and holds CAP_NET_ADMIN over that namespace.
pub fn apply(
    spec: &oci_spec::runtime::Spec,
    own_network: bool,
    procfs: &sentry::procfs::ProcFs,
) -> Result<(), OciError> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    let own_uts = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| {
            n.iter()
                .any(|ns| ns.typ() == oci_spec::runtime::LinuxNamespaceType::Uts)
        });
    // Every key is checked before any is written (as runc does), in key order, so that a
    // refused key leaves nothing half applied in a namespace joined by path.
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    let targets = keys
        .iter()
        .map(|key| target(key, own_network, own_uts))
        .collect::<Result<Vec<_>, _>>()
        .map_err(OciError::Invalid)?;
    for (key, target) in keys.into_iter().zip(targets) {
        let value = &sysctls[key];
        match target {
            Target::Network(path) => {
                let file = format!("/proc/sys/{path}");
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)
                    .and_then(|mut f| f.write_all(value.as_bytes()))
                    .map_err(|e| OciError::io(format!("sysctl {key:?}: {file}"), e))?;
            }
            Target::DomainName => procfs.set_domainname(value.as_bytes()),
        }
        tracing::debug!("sysctl {key} = {value:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_where_runc_sends_them_or_are_refused() {
        assert_eq!(
            target("net.ipv4.ip_unprivileged_port_start", true, true),
            Ok(Target::Network(
                "net/ipv4/ip_unprivileged_port_start".into()
            ))
        );
        assert_eq!(
            target("net/ipv4/ping_group_range", true, true),
            Ok(Target::Network("net/ipv4/ping_group_range".into()))
        );
        assert_eq!(
            target("net.ipv4.conf.eth0-x.forwarding", true, true),
            Ok(Target::Network("net/ipv4/conf/eth0-x/forwarding".into()))
        );
        assert_eq!(
            target("kernel.domainname", false, true),
            Ok(Target::DomainName)
        );
        assert!(target("kernel.domainname", true, false)
            .unwrap_err()
            .contains("UTS namespace"));
        let refused = |k: &str, own: bool| target(k, own, true).unwrap_err();
        assert!(refused("net.ipv4.ip_forward", false).contains("host's network namespace"));
        assert!(refused("kernel.hostname", true).contains("hostname"));
        assert!(refused("kernel.shmmax", true).contains("fixed"));
        assert!(refused("fs.mqueue.msg_max", true).contains("fixed"));
        assert!(refused("vm.swappiness", true).contains("not in a separate"));
        assert!(refused("kernel.core_pattern", true).contains("not in a separate"));
        // Nothing that could leave /proc/sys/net.
        for bad in [
            "net.ipv4/../../kernel/core_pattern",
            "net..ipv4",
            "net.ipv4.",
            "",
            "net.ip v4",
            "net.ipv4.\0x",
            "net/./ipv4",
        ] {
            assert!(refused(bad, true).contains("not a sysctl name"), "{bad:?}");
        }
    }
}
