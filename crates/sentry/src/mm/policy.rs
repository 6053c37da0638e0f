//! NUMA memory policies (set_mempolicy, mbind), as a machine with one memory node answers.
//!
//! The sandbox's memory is one memfd on the host, so there is nothing to place: a policy is
//! recorded (per thread, and per VMA by mbind), validated and reported back exactly as Linux
//! does on a one-node machine (`mm/mempolicy.c`), which is what this host is and what
//! programs that probe NUMA (libnuma, JVMs, databases) then see. Node 0 is the only node; the
//! kernel's node count (MAX_NUMNODES, from CONFIG_NODES_SHIFT=10 on the hosts we run on) bounds
//! the nodemasks callers may pass.

use crate::errno::Errno;

pub const MPOL_DEFAULT: u16 = 0;
pub const MPOL_PREFERRED: u16 = 1;
pub const MPOL_BIND: u16 = 2;
pub const MPOL_INTERLEAVE: u16 = 3;
pub const MPOL_LOCAL: u16 = 4;
pub const MPOL_PREFERRED_MANY: u16 = 5;
pub const MPOL_WEIGHTED_INTERLEAVE: u16 = 6;
const MPOL_MAX: u16 = 7;

pub const MPOL_F_STATIC_NODES: u16 = 1 << 15;
pub const MPOL_F_RELATIVE_NODES: u16 = 1 << 14;
pub const MPOL_F_NUMA_BALANCING: u16 = 1 << 13;
const MODE_FLAGS: u16 = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING;

/// Linux's MAX_NUMNODES: nodemask bits at or past it must be zero.
pub const MAX_NUMNODES: usize = 1024;
/// Linux's nr_node_ids: the highest possible node, plus one.
pub const NR_NODE_IDS: u64 = 1;
const WORDS: usize = MAX_NUMNODES / 64;

/// A set of memory nodes, as wide as the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeMask(pub [u64; WORDS]);

impl NodeMask {
    /// The nodes that exist (and that a cpuset would allow): node 0.
    pub const ONLINE: NodeMask = {
        let mut m = [0; WORDS];
        m[0] = 1;
        NodeMask(m)
    };

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    fn and(&self, other: &NodeMask) -> NodeMask {
        let mut m = *self;
        for (a, b) in m.0.iter_mut().zip(other.0) {
            *a &= b;
        }
        m
    }

    /// Linux's mpol_relative_nodemask onto the online nodes: `self` folded modulo their
    /// count and mapped onto them. With one node, any node at all becomes node 0.
    fn relative_to_online(&self) -> NodeMask {
        if self.is_empty() {
            NodeMask::default()
        } else {
            NodeMask::ONLINE
        }
    }

    /// The bytes user space sees (little-endian words).
    pub fn to_bytes(self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

/// A policy other than the default (which is `None` wherever a policy is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemPolicy {
    /// MPOL_* (never MPOL_DEFAULT).
    pub mode: u16,
    /// MPOL_F_STATIC_NODES, MPOL_F_RELATIVE_NODES, MPOL_F_NUMA_BALANCING.
    pub flags: u16,
    /// The nodes the policy uses (empty for MPOL_LOCAL).
    pub nodes: NodeMask,
    /// The nodes as the caller gave them, reported back when STATIC or RELATIVE was given.
    pub user_nodes: NodeMask,
}

impl MemPolicy {
    /// Splits a call's `mode` argument (a C int) into the mode and its flags: Linux's
    /// sanitize_mpol_flags, checked before the nodemask is read.
    pub fn sanitize(mode_arg: u64) -> Result<(u16, u16), Errno> {
        let raw = mode_arg as u32;
        let flags = (raw & u32::from(MODE_FLAGS)) as u16;
        let mode = raw & !u32::from(MODE_FLAGS);
        if mode >= u32::from(MPOL_MAX) {
            return Err(Errno::EINVAL);
        }
        let mode = mode as u16;
        if flags & MPOL_F_STATIC_NODES != 0 && flags & MPOL_F_RELATIVE_NODES != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MPOL_F_NUMA_BALANCING != 0 && mode != MPOL_BIND && mode != MPOL_PREFERRED_MANY {
            return Err(Errno::EINVAL);
        }
        Ok((mode, flags))
    }

    /// Builds the policy for a sanitized `mode` and `flags` and the caller's `nodes`:
    /// Linux's mpol_new and mpol_set_nodemask. Ok(None) is the default policy.
    pub fn new(mode: u16, flags: u16, nodes: NodeMask) -> Result<Option<MemPolicy>, Errno> {
        let mut mode = mode;
        let static_or_relative = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES) != 0;
        if mode == MPOL_DEFAULT {
            return if nodes.is_empty() {
                Ok(None)
            } else {
                Err(Errno::EINVAL)
            };
        }
        if mode == MPOL_PREFERRED && nodes.is_empty() {
            if static_or_relative {
                return Err(Errno::EINVAL);
            }
            mode = MPOL_LOCAL;
        } else if mode == MPOL_LOCAL {
            if !nodes.is_empty() || static_or_relative {
                return Err(Errno::EINVAL);
            }
        } else if nodes.is_empty() {
            return Err(Errno::EINVAL);
        }
        let used = if mode == MPOL_LOCAL {
            NodeMask::default()
        } else {
            let allowed = if flags & MPOL_F_RELATIVE_NODES != 0 {
                nodes.relative_to_online()
            } else {
                nodes.and(&NodeMask::ONLINE)
            };
            if allowed.is_empty() {
                return Err(Errno::EINVAL);
            }
            allowed
        };
        Ok(Some(MemPolicy {
            mode,
            flags,
            nodes: used,
            user_nodes: if static_or_relative {
                nodes
            } else {
                NodeMask::default()
            },
        }))
    }

    /// What get_mempolicy reports as the mode: MPOL_* with the mode flags.
    pub fn reported_mode(policy: Option<&MemPolicy>) -> u32 {
        policy.map_or(u32::from(MPOL_DEFAULT), |p| u32::from(p.mode | p.flags))
    }

    /// What get_mempolicy reports as the nodemask.
    pub fn reported_nodes(policy: Option<&MemPolicy>) -> NodeMask {
        match policy {
            None => NodeMask::default(),
            Some(p) if p.flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES) != 0 => p.user_nodes,
            Some(p) => p.nodes,
        }
    }
}

/// Linux's get_nodes: reads a `maxnode`-bit nodemask. Bits past MAX_NUMNODES must be zero;
/// `read(offset, buf)` reads the caller's memory.
pub fn read_nodemask(
    addr: u64,
    maxnode: u64,
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), Errno>,
) -> Result<NodeMask, Errno> {
    let mut nodes = NodeMask::default();
    let bits = maxnode.wrapping_sub(1);
    if bits == 0 || addr == 0 {
        return Ok(nodes);
    }
    if bits > 4096 * 8 {
        return Err(Errno::EINVAL);
    }
    let bits = bits as usize;
    let words = bits.div_ceil(64);
    let mut buf = vec![0u8; words * 8];
    read(addr, &mut buf)?;
    let word = |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    for i in 0..words {
        let mut w = word(i);
        let first_bit = i * 64;
        if first_bit + 64 > bits {
            w &= (1u64 << (bits - first_bit)) - 1;
        }
        if i < WORDS {
            nodes.0[i] = w;
        } else if w != 0 {
            return Err(Errno::EINVAL);
        }
    }
    Ok(nodes)
}

/// Linux's copy_nodes_to_user: the bytes to write at a `maxnode`-bit user nodemask (the
/// real nodes, then zeros), or EINVAL for a mask longer than a page.
pub fn nodemask_out(nodes: &NodeMask, maxnode: u64) -> Result<Vec<u8>, Errno> {
    let copy = maxnode.saturating_sub(1).div_ceil(64) * 8;
    let real = NR_NODE_IDS.div_ceil(64) * 8;
    if copy > real && copy > 4096 {
        return Err(Errno::EINVAL);
    }
    let mut out = nodes.to_bytes();
    out.truncate(real.min(copy) as usize);
    out.resize(copy as usize, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(words: &[u64]) -> NodeMask {
        let mut m = NodeMask::default();
        m.0[..words.len()].copy_from_slice(words);
        m
    }

    #[test]
    fn modes_as_a_one_node_linux() {
        let n0 = mask(&[1]);
        let n1 = mask(&[2]);
        let new = |mode_arg: u64, nodes| {
            let (mode, flags) = MemPolicy::sanitize(mode_arg)?;
            MemPolicy::new(mode, flags, nodes)
        };
        assert_eq!(new(0, NodeMask::default()), Ok(None));
        assert_eq!(new(0, n0), Err(Errno::EINVAL));
        assert_eq!(new(2, n1), Err(Errno::EINVAL));
        let p = new(1, NodeMask::default()).unwrap().unwrap();
        assert_eq!(p.mode, MPOL_LOCAL);
        let rel = new(2 | u64::from(MPOL_F_RELATIVE_NODES), n1)
            .unwrap()
            .unwrap();
        assert_eq!((rel.nodes, MemPolicy::reported_nodes(Some(&rel))), (n0, n1));
        assert_eq!(
            new(3 | u64::from(MPOL_F_NUMA_BALANCING), n0),
            Err(Errno::EINVAL)
        );
        assert_eq!(new(7, n0), Err(Errno::EINVAL));
        assert_eq!(new(1 << 16 | 2, n0), Err(Errno::EINVAL));
        // The argument is a C int: bits past 32 are not the caller's.
        assert_eq!(new(1 << 32 | 2, n0).unwrap().unwrap().mode, MPOL_BIND);
    }

    #[test]
    fn nodemasks_in_and_out() {
        let mem = |words: Vec<u64>| {
            move |_: u64, buf: &mut [u8]| {
                for (i, c) in buf.chunks_mut(8).enumerate() {
                    c.copy_from_slice(&words.get(i).copied().unwrap_or(0).to_le_bytes());
                }
                Ok(())
            }
        };
        assert_eq!(read_nodemask(8, 1, mem(vec![1])), Ok(NodeMask::default()));
        assert_eq!(read_nodemask(8, 0, mem(vec![1])), Err(Errno::EINVAL));
        assert_eq!(read_nodemask(0, 0, mem(vec![1])), Ok(NodeMask::default()));
        assert_eq!(read_nodemask(8, 2, mem(vec![3])), Ok(mask(&[1])));
        let mut big = vec![0u64; 20];
        big[0] = 1;
        big[8] = 1;
        assert_eq!(
            read_nodemask(8, 1025, mem(big.clone())),
            Ok(mask(&[1, 0, 0, 0, 0, 0, 0, 0, 1]))
        );
        big[16] = 1;
        assert_eq!(read_nodemask(8, 1026, mem(big.clone())), Err(Errno::EINVAL));
        assert_eq!(
            read_nodemask(8, 1025, mem(big)),
            Ok(mask(&[1, 0, 0, 0, 0, 0, 0, 0, 1]))
        );
        assert_eq!(read_nodemask(8, 32770, mem(vec![])), Err(Errno::EINVAL));
        assert_eq!(nodemask_out(&mask(&[1]), 1), Ok(vec![]));
        assert_eq!(nodemask_out(&mask(&[1]), 130).unwrap().len(), 24);
        assert_eq!(nodemask_out(&mask(&[1]), 1 << 40), Err(Errno::EINVAL));
    }
}
