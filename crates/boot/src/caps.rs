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
    let mut kept: CapsHashSet = KEPT.iter().map(|&(c, _)| c).collect();
    if network_admin {
        kept.insert(NETWORK_ADMIN);
    }
    keep_only(&kept)
}

/// Drops every capability from the calling thread: `runsc do`'s waiting parent needs none
/// (it signals and waits for its own child, of its own uid).
pub fn drop_all() -> Result<(), CapsError> {
    keep_only(&CapsHashSet::new())
}

/// Leaves the calling thread only the capabilities of `kept` that it has.
fn keep_only(kept: &CapsHashSet) -> Result<(), CapsError> {
    let err = |e: caps::errors::CapsError| CapsError(e.to_string());
    let permitted = caps::read(None, CapSet::Permitted).map_err(err)?;
    // A change of uid away from root empties the effective set (identity): narrowing the
    // bounding set needs CAP_SETPCAP there.
    caps::set(None, CapSet::Effective, &permitted).map_err(err)?;
    if permitted.contains(&Capability::CAP_SETPCAP) {
        for cap in caps::read(None, CapSet::Bounding).map_err(err)? {
            if !kept.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap).map_err(err)?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(err)?;
    caps::clear(None, CapSet::Inheritable).map_err(err)?;
    let keep: CapsHashSet = permitted.intersection(kept).copied().collect();
    // Effective first: it must stay within the permitted set at every step.
    caps::set(None, CapSet::Effective, &keep).map_err(err)?;
    caps::set(None, CapSet::Permitted, &keep).map_err(err)?;
    tracing::debug!("capabilities kept: {keep:?}");
    Ok(())
}

/// The number of the capability `name` as runc spells it ("CAP_CHOWN"), from the `caps`
/// crate's table; None for a name it doesn't know (runc knows exactly these spellings:
/// no lower case, no missing "CAP_").
pub fn number(name: &str) -> Option<u8> {
    name.parse::<Capability>().ok().map(|c| c.index())
}

/// The name of capability `n` ("CAP_CHOWN"), or its number for one the table doesn't know.
pub fn name(n: u8) -> String {
    caps::all()
        .into_iter()
        .find(|c| c.index() == n)
        .map(|c| c.to_string())
        .unwrap_or_else(|| format!("capability {n}"))
}

/// The names of the capabilities in `mask`, lowest first, comma-separated.
pub fn names(mask: u64) -> String {
    (0..64u8)
        .filter(|&n| mask & (1 << n) != 0)
        .map(name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        assert_eq!(number("CAP_CHOWN"), Some(0));
        assert_eq!(number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(number("CAP_NO_SUCH"), None);
        assert_eq!(number("chown"), None);
        for n in 0..=40 {
            assert_eq!(number(&name(n)), Some(n));
        }
        assert_eq!(names(0b11), "CAP_CHOWN, CAP_DAC_OVERRIDE");
    }
}
