//! The capabilities the sentry keeps once it runs a sandbox.
//!
//! `runsc do` run as root would otherwise hold every capability while it serves untrusted
//! code. The sentry needs only what its host calls on the guest's behalf need: file access
//! as the file system's owner would grant it (hostfs volumes: it checks the guest's own
//! rights itself first) and binding low ports for hostinet. Everything else goes, from the
//! effective, permitted, inheritable and bounding sets; the ambient set is cleared.
//! Capabilities are per thread, so this runs before the sentry starts any thread; threads
//! started later inherit the reduced sets.

use caps::{CapSet, Capability, CapsHashSet};

/// What the running sentry keeps, and why.
pub const KEPT: &[(Capability, &str)] = &[
    (
        Capability::CAP_CHOWN,
        "chown on hostfs volumes for the guest",
    ),
    (
        Capability::CAP_DAC_OVERRIDE,
        "hostfs files whatever their mode (the sentry checks the guest's rights)",
    ),
    (
        Capability::CAP_DAC_READ_SEARCH,
        "hostfs directories whatever their mode",
    ),
    (
        Capability::CAP_FOWNER,
        "chmod, utimens on hostfs files the guest may change",
    ),
    (
        Capability::CAP_FSETID,
        "writes keep set-id bits as Linux decides for the guest",
    ),
    (
        Capability::CAP_NET_BIND_SERVICE,
        "hostinet: a guest's bind to a port below 1024",
    ),
];

/// Kept besides [`KEPT`] when the sandbox may change its own network namespace (its
/// caller holds it, and the namespace is not the host's): the host acts on the sandbox's
/// rtnetlink and SIOCSIF* requests only with it. The requests are filtered first
/// (fs::hostinet::netlink), so that nothing reaches past the namespace.
pub const NETWORK_ADMIN: Capability = Capability::CAP_NET_ADMIN;

#[derive(Debug, thiserror::Error)]
#[error("dropping the sentry's capabilities: {0}")]
pub struct CapsError(String);

/// Drops every capability not in [`KEPT`] (nor [`NETWORK_ADMIN`] when `network_admin`)
/// from the calling thread (and so from the threads it starts later).
pub fn drop_unneeded(network_admin: bool) -> Result<(), CapsError> {
    let err = |e: caps::errors::CapsError| CapsError(e.to_string());
    let mut kept: CapsHashSet = KEPT.iter().map(|&(c, _)| c).collect();
    if network_admin {
        kept.insert(NETWORK_ADMIN);
    }
    let permitted = caps::read(None, CapSet::Permitted).map_err(err)?;
    if permitted.contains(&Capability::CAP_SETPCAP) {
        for cap in caps::read(None, CapSet::Bounding).map_err(err)? {
            if !kept.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(err)?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(err)?;
    caps::clear(None, CapSet::Inheritable).map_err(err)?;
    let keep: CapsHashSet = permitted.intersection(&kept).copied().collect();
    // Effective first: it must stay within the permitted set at every step.
    caps::set(None, CapSet::Effective, &keep).map_err(err)?;
    caps::set(None, CapSet::Permitted, &keep).map_err(err)?;
    tracing::debug!("capabilities kept: {keep:?}");
    Ok(())
}
