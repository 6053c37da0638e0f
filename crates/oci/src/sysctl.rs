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
//! - the IPC limits: System V's (`kernel.shmmax`, `shmall`, `shmmni`, `msgmax`, `msgmnb`,
//!   `msgmni`, `sem`), `kernel.shm_rmid_forced` and the POSIX message queues'
//!   (`fs.mqueue.queues_max`, `msg_max`, `msgsize_max`, `msg_default`, `msgsize_default`),
//!   with an IPC namespace in `linux.namespaces` (as runc asks): the sandbox's IPC
//!   namespace is the sentry's own, and these are its tunables (`sentry::ipc::tunables`),
//!   set once the sandbox's kernel exists ([`IpcSysctls::apply`]); a value Linux would
//!   refuse is refused here, before anything is written.
//! - anything else is not namespaced: refused, naming the key.

use std::io::Write as _;

use crate::OciError;

/// The namespaces the bundle gives the container, as the keys' rules ask.
#[derive(Debug, Clone, Copy, Default)]
pub struct Own {
    /// A network namespace other than the runtime's.
    pub network: bool,
    /// `uts` in `linux.namespaces`.
    pub uts: bool,
    /// `ipc` in `linux.namespaces`.
    pub ipc: bool,
}

impl Own {
    /// `network` as the caller knows it; `uts` and `ipc` from the bundle's namespaces.
    pub fn of(spec: &oci_spec::runtime::Spec, network: bool) -> Own {
        use oci_spec::runtime::LinuxNamespaceType as T;
        Own {
            network,
            uts: crate::spec::namespace(spec, T::Uts).is_some(),
            ipc: crate::spec::namespace(spec, T::Ipc).is_some(),
        }
    }
}

/// Where one key of `linux.sysctl` goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A file of the network namespace's /proc/sys/net (the relative path under /proc/sys).
    Network(String),
    /// The sandbox's NIS domain name.
    DomainName,
    /// A tunable of the sandbox's IPC namespace (its file's name in /proc/sys/kernel or
    /// /proc/sys/fs/mqueue).
    Ipc(&'static str),
}

/// Decides where `key` (set to `value`) goes, given the container's namespaces.
fn target(key: &str, value: &str, own: Own) -> Result<Target, String> {
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
    let in_dir = |dir: &str, names: &'static [&'static str]| {
        dotted
            .strip_prefix(dir)
            .and_then(|n| names.iter().find(|&&t| t == n))
    };
    let ipc = in_dir("kernel.", sentry::ipc::tunables::NAMES)
        .or_else(|| in_dir("fs.mqueue.", sentry::ipc::tunables::MQUEUE_NAMES));
    match parts[0] {
        "net" if own.network => Ok(Target::Network(parts.join("/"))),
        "net" => Err(format!(
            "sysctl {dotted:?} not allowed in the host's network namespace"
        )),
        _ if dotted == "kernel.domainname" && own.uts => Ok(Target::DomainName),
        _ if dotted == "kernel.domainname" => Err(format!(
            "sysctl {dotted:?} needs a UTS namespace in linux.namespaces"
        )),
        _ if dotted == "kernel.hostname" => Err(format!(
            "sysctl {dotted:?} is not allowed as it conflicts with the OCI \"hostname\" field"
        )),
        _ if (ipc.is_some() || dotted.starts_with("fs.mqueue.")) && !own.ipc => Err(format!(
            "sysctl {dotted:?} needs an IPC namespace in linux.namespaces"
        )),
        _ if ipc.is_some() => {
            let name = ipc.copied().unwrap_or_default();
            // Checked now against a scratch set, so that a bad value fails before any key
            // is applied.
            sentry::ipc::tunables::Tunables::default()
                .set(name, value.as_bytes())
                .map_err(|_| format!("sysctl {dotted:?}: invalid value {value:?}"))?;
            Ok(Target::Ipc(name))
        }
        _ => Err(format!(
            "sysctl {dotted:?} is not in a separate kernel namespace"
        )),
    }
}

/// The IPC keys of `linux.sysctl`, checked, for the sandbox's IPC namespace once its kernel
/// exists: the tunable's name, the key, the value.
#[derive(Debug, Default)]
pub struct IpcSysctls(Vec<(&'static str, String, String)>);

impl IpcSysctls {
    /// Sets them in the sandbox's first IPC namespace, as a write of their files would.
    pub fn apply(&self, ipc: &sentry::ipc::IpcNs) -> Result<(), OciError> {
        for (name, key, value) in &self.0 {
            ipc.set_sysctl(name, value.as_bytes()).map_err(|_| {
                OciError::Invalid(format!("sysctl {key:?}: invalid value {value:?}"))
            })?;
            tracing::debug!("sysctl {key} = {value:?}");
        }
        Ok(())
    }
}

/// Applies every key of the bundle's `linux.sysctl` (see the module docs) but the IPC ones,
/// which it returns for [`IpcSysctls::apply`]. Called in the sandbox process once it is in
/// the container's network namespace, while it still sees the host's /proc and holds
/// CAP_NET_ADMIN over that namespace.
pub fn apply(
    spec: &oci_spec::runtime::Spec,
    own: Own,
    procfs: &sentry::procfs::ProcFs,
) -> Result<IpcSysctls, OciError> {
    let mut ipc = IpcSysctls::default();
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(ipc);
    };
    // Every key is checked before any is written (as runc does), in key order, so that a
    // refused key leaves nothing half applied in a namespace joined by path.
    let mut keys: Vec<&String> = sysctls.keys().collect();
    keys.sort();
    let targets = keys
        .iter()
        .map(|key| target(key, &sysctls[*key], own))
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
            Target::Ipc(name) => {
                ipc.0.push((name, key.clone(), value.clone()));
                continue;
            }
        }
        tracing::debug!("sysctl {key} = {value:?}");
    }
    Ok(ipc)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Own = Own {
        network: true,
        uts: true,
        ipc: true,
    };

    #[test]
    fn keys_go_where_runc_sends_them_or_are_refused() {
        let to = |k: &str, v: &str| target(k, v, ALL);
        assert_eq!(
            to("net.ipv4.ip_unprivileged_port_start", "0"),
            Ok(Target::Network(
                "net/ipv4/ip_unprivileged_port_start".into()
            ))
        );
        assert_eq!(
            to("net/ipv4/ping_group_range", "0 1"),
            Ok(Target::Network("net/ipv4/ping_group_range".into()))
        );
        assert_eq!(
            to("net.ipv4.conf.eth0-x.forwarding", "1"),
            Ok(Target::Network("net/ipv4/conf/eth0-x/forwarding".into()))
        );
        assert_eq!(to("kernel.domainname", "x"), Ok(Target::DomainName));
        assert_eq!(to("kernel.shmmax", "1048576"), Ok(Target::Ipc("shmmax")));
        assert_eq!(to("kernel/sem", "250 32000 32 128"), Ok(Target::Ipc("sem")));
        assert_eq!(
            to("kernel.shm_rmid_forced", "0"),
            Ok(Target::Ipc("shm_rmid_forced"))
        );
        assert_eq!(
            to("kernel.shm_rmid_forced", "1"),
            Ok(Target::Ipc("shm_rmid_forced"))
        );
        assert_eq!(to("fs.mqueue.msg_max", "100"), Ok(Target::Ipc("msg_max")));
        assert_eq!(
            to("fs/mqueue/queues_max", "-1"),
            Ok(Target::Ipc("queues_max"))
        );
        assert_eq!(
            to("fs.mqueue.msgsize_default", "128"),
            Ok(Target::Ipc("msgsize_default"))
        );
        let refused = |k: &str, v: &str, own: Own| target(k, v, own).unwrap_err();
        let without = |f: fn(&mut Own)| {
            let mut own = ALL;
            f(&mut own);
            own
        };
        assert!(
            refused("net.ipv4.ip_forward", "1", without(|o| o.network = false))
                .contains("host's network namespace")
        );
        assert!(
            refused("kernel.domainname", "x", without(|o| o.uts = false)).contains("UTS namespace")
        );
        assert!(refused("kernel.msgmax", "1", without(|o| o.ipc = false)).contains("IPC namespace"));
        assert!(refused("kernel.hostname", "x", ALL).contains("hostname"));
        assert!(refused("kernel.msgmax", "-1", ALL).contains("invalid value"));
        assert!(refused("kernel.sem", "1 2 3 40000", ALL).contains("invalid value"));
        assert_eq!(to("kernel.sem", "1 2 3 4 5"), Ok(Target::Ipc("sem")));
        // Linux's ranges, checked before anything is written.
        assert!(refused("kernel.shm_rmid_forced", "2", ALL).contains("invalid value"));
        assert!(refused("fs.mqueue.msg_max", "0", ALL).contains("invalid value"));
        assert!(refused("fs.mqueue.msg_max", "65537", ALL).contains("invalid value"));
        assert!(refused("fs.mqueue.msgsize_max", "127", ALL).contains("invalid value"));
        assert!(refused("fs.mqueue.msg_default", "x", ALL).contains("invalid value"));
        assert!(refused("fs.mqueue.nosuch", "1", ALL).contains("not in a separate"));
        assert!(
            refused("kernel.shm_rmid_forced", "0", without(|o| o.ipc = false))
                .contains("IPC namespace")
        );
        assert!(
            refused("fs.mqueue.msg_max", "10", without(|o| o.ipc = false))
                .contains("IPC namespace")
        );
        assert!(refused("vm.swappiness", "10", ALL).contains("not in a separate"));
        assert!(refused("kernel.core_pattern", "x", ALL).contains("not in a separate"));
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
            assert!(
                refused(bad, "1", ALL).contains("not a sysctl name"),
                "{bad:?}"
            );
        }
    }
}
