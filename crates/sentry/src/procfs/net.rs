//! /proc/net and /proc/sys/net: the sandbox's network namespace is the sentry's (hostinet),
//! so these describe it by passing the host's files of that namespace through, read when
//! opened. Only the files that describe sockets, interfaces and routes are offered.
//! /proc/net/unix is the sandbox's own: its AF_UNIX sockets are the sentry's, not the host's.

use std::sync::Arc;

use fs::vfs::Inode;

use super::nodes::{DynDir, GenFile};

/// The files of /proc/net.
const NET_FILES: &[&str] = &[
    "tcp",
    "tcp6",
    "udp",
    "udp6",
    "dev",
    "if_inet6",
    "route",
    "ipv6_route",
    "snmp",
    "snmp6",
    "netstat",
    "sockstat",
    "sockstat6",
    "arp",
    "igmp",
];

/// The files of /proc/sys/net: (directory, names).
const SYSCTLS: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "somaxconn",
            "rmem_default",
            "rmem_max",
            "wmem_default",
            "wmem_max",
            "netdev_max_backlog",
            "optmem_max",
        ],
    ),
    (
        "ipv4",
        &[
            "ip_local_port_range",
            "ip_forward",
            "ping_group_range",
            "ip_unprivileged_port_start",
            "tcp_fin_timeout",
            "tcp_keepalive_time",
            "tcp_keepalive_intvl",
            "tcp_keepalive_probes",
            "tcp_syncookies",
            "tcp_rmem",
            "tcp_wmem",
            "tcp_congestion_control",
            "tcp_available_congestion_control",
        ],
    ),
];

/// A read-only file whose content is the host's file `host` at open.
fn passthrough(path: String, host: String) -> Arc<dyn Inode> {
    GenFile::build(
        &path,
        Box::new(move || std::fs::read(&host).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))),
    )
}

/// /proc/net.
pub(super) fn net_dir() -> Arc<dyn Inode> {
    DynDir::build(
        "/net",
        0o555,
        Box::new(|| {
            NET_FILES
                .iter()
                .filter(|n| std::path::Path::new(&format!("/proc/net/{n}")).exists())
                .map(|n| {
                    (
                        n.as_bytes().to_vec(),
                        passthrough(format!("/net/{n}"), format!("/proc/net/{n}")),
                    )
                })
                .chain(std::iter::once((
                    b"unix".to_vec(),
                    GenFile::build("/net/unix", Box::new(|| Ok(fs::unix::proc_net_unix()))),
                )))
                .collect()
        }),
    )
}

/// /proc/sys/net.
pub(super) fn sys_net_dir() -> Arc<dyn Inode> {
    DynDir::build(
        "/sys/net",
        0o555,
        Box::new(|| {
            SYSCTLS
                .iter()
                .map(|(dir, names)| {
                    let d = DynDir::build(
                        &format!("/sys/net/{dir}"),
                        0o555,
                        Box::new(move || {
                            names
                                .iter()
                                .filter(|n| {
                                    std::path::Path::new(&format!("/proc/sys/net/{dir}/{n}"))
                                        .exists()
                                })
                                .map(|n| {
                                    (
                                        n.as_bytes().to_vec(),
                                        passthrough(
                                            format!("/sys/net/{dir}/{n}"),
                                            format!("/proc/sys/net/{dir}/{n}"),
                                        ),
                                    )
                                })
                                .collect()
                        }),
                    );
                    (dir.as_bytes().to_vec(), d)
                })
                .collect()
        }),
    )
}
