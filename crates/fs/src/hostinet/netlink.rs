//! Keeping NETLINK_ROUTE read-only: what a sandbox may send to the host's rtnetlink.
//!
//! The host parses a netlink write as a run of messages, each a `struct nlmsghdr` (16
//! bytes: length, type, flags, sequence, port) and its payload, stopping at the first
//! header whose length is short or runs past the end (netlink_rcv_skb). This filter walks
//! the same run the same way and lets it through only when every message is a request the
//! host answers without changing anything: the RTM_GET* family (a type of 16 or more whose
//! low two bits are 2: GETLINK, GETADDR, GETROUTE, GETNEIGH, GETRULE, ...) or a control
//! message (below 16, which rtnetlink ignores). Anything else (RTM_NEW*, RTM_DEL*,
//! RTM_SET*) is EPERM, as for a sandbox without CAP_NET_ADMIN.

use crate::Errno;

const NLMSG_HDRLEN: usize = 16;
/// NLMSG_MIN_TYPE: types below it are netlink's own control messages.
const MIN_TYPE: u16 = 0x10;

/// Whether rtnetlink message type `ty` only reads.
pub fn read_only_type(ty: u16) -> bool {
    ty < MIN_TYPE || ty & 3 == 2
}

/// EPERM unless every message the host would act on in `data` only reads.
pub fn check_request(data: &[u8]) -> Result<(), Errno> {
    let mut rest = data;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            // The host stops here too.
            return Ok(());
        }
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        if !read_only_type(ty) {
            tracing::debug!("netlink: refused a request of type {ty} (read-only)");
            return Err(libc::EPERM);
        }
        let step = len.div_ceil(4) * 4;
        rest = &rest[step.min(rest.len())..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, payload: usize) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + payload) as u32;
        let mut m = len.to_ne_bytes().to_vec();
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0x301u16.to_ne_bytes());
        m.extend_from_slice(&[0; 8]);
        m.resize(len as usize, 0);
        m
    }

    #[test]
    fn gets_pass_changes_are_refused() {
        for ty in [18u16, 22, 26, 30, 34, 3] {
            assert_eq!(check_request(&msg(ty, 16)), Ok(()), "type {ty}");
        }
        for ty in [16u16, 17, 19, 20, 21, 24, 25, 28] {
            assert_eq!(check_request(&msg(ty, 16)), Err(libc::EPERM), "type {ty}");
        }
    }

    #[test]
    fn every_message_of_a_batch_is_checked() {
        let mut batch = msg(22, 3); // padded to 20 by the walk
        batch.resize(20, 0);
        batch.extend(msg(24, 8));
        assert_eq!(check_request(&batch), Err(libc::EPERM));
        // A short header ends the run, as in the host: nothing after it is acted on.
        let mut cut = msg(18, 0);
        cut.extend_from_slice(&8u32.to_ne_bytes());
        cut.extend(msg(24, 0));
        assert_eq!(check_request(&cut), Ok(()));
        assert_eq!(check_request(&[1, 2, 3]), Ok(()));
    }
}
