//! What a sandbox may send to the host's rtnetlink (NETLINK_ROUTE).
//!
//! The host parses a netlink write as a run of messages, each a `struct nlmsghdr` (16
//! bytes: length, type, flags, sequence, port) and its payload, stopping at the first
//! header whose length is short or runs past the end (netlink_rcv_skb). This filter walks
//! the same run the same way and lets it through only when every message is allowed:
//! - always, requests the host answers without changing anything: the RTM_GET* family (a
//!   type of 16 or more whose low two bits are 2: GETLINK, GETADDR, GETROUTE, GETNEIGH,
//!   GETRULE, ...) and control messages (below 16, which rtnetlink ignores);
//! - when the sandbox may change its network ([`Rights::Change`]: its own namespace, and
//!   a caller with CAP_NET_ADMIN), changes to the interfaces, addresses, routes and
//!   neighbours of that namespace, each attribute from an allowlist of plain values. What
//!   could reach past the namespace or hand the host a descriptor is refused whatever the
//!   caller holds: moving a link to another namespace (IFLA_NET_NS_PID and _FD name a *host*
//!   process or a sentry descriptor), other namespace ids, creating typed links
//!   (IFLA_LINKINFO: a veth's peer may name a namespace), lightweight-tunnel encapsulation
//!   (RTA_ENCAP may carry a BPF program's descriptor).
//!
//! Anything else is EPERM, as for a sandbox without CAP_NET_ADMIN; a malformed attribute
//! in a change is EINVAL, as the host's strict parser says.

use crate::Errno;

const NLMSG_HDRLEN: usize = 16;
/// NLMSG_MIN_TYPE: types below it are netlink's own control messages.
const MIN_TYPE: u16 = 0x10;
/// An attribute's type without NLA_F_NESTED and NLA_F_NET_BYTEORDER.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// What the sender may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rights {
    /// Only read (the default: the host's namespace, or no CAP_NET_ADMIN).
    ReadOnly,
    /// Also change the sandbox's own namespace.
    Change,
}

/// A change message type: the size of its family header and the attributes it may carry.
struct Change {
    name: &'static str,
    header: usize,
    attributes: &'static [u16],
}

/// IFLA_ADDRESS, BROADCAST, IFNAME, MTU, TXQLEN, OPERSTATE, LINKMODE, GROUP: an existing
/// link's name, addresses, MTU, queue length, state and group (flags travel in the
/// ifinfomsg itself).
const LINK_ATTRS: &[u16] = &[1, 2, 3, 4, 13, 16, 17, 27];
/// IFA_ADDRESS, LOCAL, LABEL, BROADCAST, ANYCAST, CACHEINFO, FLAGS, RT_PRIORITY, PROTO
/// (not IFA_TARGET_NETNSID).
const ADDR_ATTRS: &[u16] = &[1, 2, 3, 4, 5, 6, 8, 9, 11];
/// RTA_DST, SRC, IIF, OIF, GATEWAY, PRIORITY, PREFSRC, METRICS (nested u32 values), TABLE,
/// PREF, EXPIRES (not RTA_ENCAP/ENCAP_TYPE, MULTIPATH, NH_ID).
const ROUTE_ATTRS: &[u16] = &[1, 2, 3, 4, 5, 6, 7, 8, 15, 20, 23];
/// NDA_DST, LLADDR.
const NEIGH_ATTRS: &[u16] = &[1, 2];

/// The change types offered, by message type.
fn change(ty: u16) -> Option<Change> {
    let (name, header, attributes) = match ty {
        16 => ("RTM_NEWLINK", 16, LINK_ATTRS),
        17 => ("RTM_DELLINK", 16, LINK_ATTRS),
        19 => ("RTM_SETLINK", 16, LINK_ATTRS),
        20 => ("RTM_NEWADDR", 8, ADDR_ATTRS),
        21 => ("RTM_DELADDR", 8, ADDR_ATTRS),
        24 => ("RTM_NEWROUTE", 12, ROUTE_ATTRS),
        25 => ("RTM_DELROUTE", 12, ROUTE_ATTRS),
        28 => ("RTM_NEWNEIGH", 12, NEIGH_ATTRS),
        29 => ("RTM_DELNEIGH", 12, NEIGH_ATTRS),
        _ => return None,
    };
    Some(Change {
        name,
        header,
        attributes,
    })
}

/// Whether rtnetlink message type `ty` only reads.
pub fn read_only_type(ty: u16) -> bool {
    ty < MIN_TYPE || ty & 3 == 2
}

/// EPERM unless every message the host would act on in `data` is allowed for `rights`.
pub fn check_request(data: &[u8], rights: Rights) -> Result<(), Errno> {
    match plan(data, rights) {
        Plan::Send => Ok(()),
        Plan::Answer(refused) => Err(refused[0].errno),
        Plan::Refuse(e) => Err(e),
    }
}

/// What to do with a write to a NETLINK_ROUTE socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Every message is allowed: the host gets the write.
    Send,
    /// Every message the host would act on is refused: the host gets nothing, and the
    /// sender reads these error messages (NLMSG_ERROR), one per refused request, as the
    /// host's netlink_ack would have sent them.
    Answer(Vec<Refused>),
    /// Allowed and refused requests in one write: the whole write fails with this errno
    /// (the host's replies to the allowed part could not be put in order with ours).
    Refuse(Errno),
}

/// A refused request: where it is in the write, and its error.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub offset: usize,
    pub len: usize,
    pub errno: Errno,
}

/// NLM_F_REQUEST and NLM_F_ACK.
const F_REQUEST: u16 = 1;
const F_ACK: u16 = 4;

/// Decides what happens to a write of `data` by a sender with `rights`.
pub fn plan(data: &[u8], rights: Rights) -> Plan {
    let (mut allowed, mut refused) = (0usize, Vec::new());
    let mut offset = 0;
    while data.len() - offset >= NLMSG_HDRLEN {
        let rest = &data[offset..];
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            // The host stops here too.
            break;
        }
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        let inert = flags & F_REQUEST == 0 && flags & F_ACK == 0;
        if read_only_type(ty) || inert {
            // Answered by the host, or ignored by it without a word.
            allowed += usize::from(!inert);
        } else if let Err(errno) = check_change(ty, &rest[NLMSG_HDRLEN..len], rights) {
            refused.push(Refused { offset, len, errno });
        } else {
            allowed += 1;
        }
        offset += len.div_ceil(4) * 4;
        if offset >= data.len() {
            break;
        }
    }
    match (allowed, refused.is_empty()) {
        (_, true) => Plan::Send,
        (0, false) => Plan::Answer(refused),
        (_, false) => Plan::Refuse(refused[0].errno),
    }
}

/// The NLMSG_ERROR message the host sends for `request` refused with `errno`, addressed
/// to port `port`: the error, then the request (only its header when `capped`, the
/// socket's NETLINK_CAP_ACK).
pub fn error_message(request: &[u8], errno: Errno, port: u32, capped: bool) -> Vec<u8> {
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_CAPPED: u16 = 0x100;
    let echoed = if capped {
        &request[..NLMSG_HDRLEN]
    } else {
        request
    };
    let len = NLMSG_HDRLEN + 4 + echoed.len();
    let mut m = Vec::with_capacity(len.div_ceil(4) * 4);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
    m.extend_from_slice(&(if capped { NLM_F_CAPPED } else { 0 }).to_ne_bytes());
    m.extend_from_slice(&request[8..12]); // the request's sequence number
    m.extend_from_slice(&port.to_ne_bytes());
    m.extend_from_slice(&(-errno).to_ne_bytes());
    m.extend_from_slice(echoed);
    m.resize(len.div_ceil(4) * 4, 0);
    m
}

/// A message that changes something: allowed only with [`Rights::Change`], for an offered
/// type whose attributes are all on its list.
fn check_change(ty: u16, payload: &[u8], rights: Rights) -> Result<(), Errno> {
    let refuse = |why: &str| {
        tracing::debug!("netlink: refused a request of type {ty}: {why}");
        Err(libc::EPERM)
    };
    if rights != Rights::Change {
        return refuse("read-only");
    }
    let Some(change) = change(ty) else {
        return refuse("not an offered change");
    };
    let mut attrs = payload.get(change.header..).ok_or(libc::EINVAL)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > attrs.len() {
            return Err(libc::EINVAL);
        }
        if !change.attributes.contains(&kind) {
            return refuse(&format!("{} attribute {kind} is not offered", change.name));
        }
        attrs = &attrs[len.div_ceil(4).saturating_mul(4).min(attrs.len())..];
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

    /// A change message: its family header (zeros), then (type, value) attributes.
    fn change_msg(ty: u16, header: usize, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![0u8; header];
        for (kind, value) in attrs {
            body.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
            body.extend_from_slice(&kind.to_ne_bytes());
            body.extend_from_slice(value);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut m = msg(ty, 0);
        m.extend_from_slice(&body);
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn gets_pass_changes_are_refused_read_only() {
        for ty in [18u16, 22, 26, 30, 34, 3] {
            assert_eq!(
                check_request(&msg(ty, 16), Rights::ReadOnly),
                Ok(()),
                "type {ty}"
            );
        }
        for ty in [16u16, 17, 19, 20, 21, 24, 25, 28] {
            assert_eq!(
                check_request(&msg(ty, 16), Rights::ReadOnly),
                Err(libc::EPERM),
                "type {ty}"
            );
        }
    }

    #[test]
    fn every_message_of_a_batch_is_checked() {
        let mut batch = msg(22, 3); // padded to 20 by the walk
        batch.resize(20, 0);
        batch.extend(msg(24, 12));
        assert_eq!(check_request(&batch, Rights::ReadOnly), Err(libc::EPERM));
        // A short header ends the run, as in the host: nothing after it is acted on.
        let mut cut = msg(18, 0);
        cut.extend_from_slice(&8u32.to_ne_bytes());
        cut.extend(msg(24, 0));
        assert_eq!(check_request(&cut, Rights::ReadOnly), Ok(()));
        assert_eq!(check_request(&[1, 2, 3], Rights::ReadOnly), Ok(()));
    }

    #[test]
    fn changes_of_the_own_namespace_pass_with_plain_attributes() {
        let up = change_msg(16, 16, &[(3, b"lo\0")]);
        assert_eq!(check_request(&up, Rights::Change), Ok(()));
        let addr = change_msg(20, 8, &[(2, &[10, 9, 8, 7]), (1, &[10, 9, 8, 7])]);
        assert_eq!(check_request(&addr, Rights::Change), Ok(()));
        let route = change_msg(24, 12, &[(1, &[10, 9, 9, 0]), (4, &1u32.to_ne_bytes())]);
        assert_eq!(check_request(&route, Rights::Change), Ok(()));
        assert_eq!(check_request(&up, Rights::ReadOnly), Err(libc::EPERM));
    }

    #[test]
    fn what_reaches_past_the_namespace_is_refused_whatever_the_rights() {
        // IFLA_NET_NS_PID, IFLA_NET_NS_FD, IFLA_LINKINFO (nested), IFLA_TARGET_NETNSID.
        for kind in [19u16, 28, 18 | 0x8000, 46] {
            let m = change_msg(16, 16, &[(3, b"lo\0"), (kind, &1u32.to_ne_bytes())]);
            assert_eq!(
                check_request(&m, Rights::Change),
                Err(libc::EPERM),
                "IFLA {kind}"
            );
        }
        // RTA_ENCAP_TYPE and RTA_ENCAP (a BPF program's descriptor), IFA_TARGET_NETNSID.
        let encap = change_msg(24, 12, &[(21, &6u16.to_ne_bytes()), (22, &[0; 8])]);
        assert_eq!(check_request(&encap, Rights::Change), Err(libc::EPERM));
        let netnsid = change_msg(20, 8, &[(10, &1u32.to_ne_bytes())]);
        assert_eq!(check_request(&netnsid, Rights::Change), Err(libc::EPERM));
        // Rules, qdiscs, and types nobody offers.
        for ty in [32u16, 36, 100] {
            assert_eq!(
                check_request(&msg(ty, 16), Rights::Change),
                Err(libc::EPERM)
            );
        }
    }

    #[test]
    fn refused_requests_are_answered_not_failed() {
        let up = change_msg(16, 16, &[(3, b"lo\0")]);
        let Plan::Answer(refused) = plan(&up, Rights::ReadOnly) else {
            panic!("a lone refused request is answered");
        };
        assert_eq!(
            refused,
            vec![Refused {
                offset: 0,
                len: up.len(),
                errno: libc::EPERM
            }]
        );
        let reply = error_message(&up, libc::EPERM, 77, false);
        assert_eq!(reply.len(), 16 + 4 + up.len());
        assert_eq!(u16::from_ne_bytes([reply[4], reply[5]]), 2, "NLMSG_ERROR");
        assert_eq!(&reply[12..16], &77u32.to_ne_bytes());
        assert_eq!(&reply[16..20], &(-libc::EPERM).to_ne_bytes());
        assert_eq!(&reply[20..], &up[..]);
        assert_eq!(error_message(&up, libc::EPERM, 77, true).len(), 36);
        // A get and a change in one write can't be answered in order: the write fails.
        let mut mixed = msg(18, 16);
        mixed.extend(&up);
        assert_eq!(plan(&mixed, Rights::ReadOnly), Plan::Refuse(libc::EPERM));
        assert_eq!(plan(&mixed, Rights::Change), Plan::Send);
    }

    #[test]
    fn malformed_changes_are_einval() {
        let mut m = change_msg(16, 16, &[(3, b"lo\0")]);
        m[NLMSG_HDRLEN + 16] = 200; // the attribute runs past the message
        assert_eq!(check_request(&m, Rights::Change), Err(libc::EINVAL));
        // A header shorter than the family's.
        assert_eq!(
            check_request(&msg(24, 4), Rights::Change),
            Err(libc::EINVAL)
        );
    }
}
