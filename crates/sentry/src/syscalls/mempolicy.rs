//! set_mempolicy, get_mempolicy, mbind: NUMA policies on a one-node machine
//! (`crate::mm::policy` has the rules). Policies are recorded and reported, never applied:
//! the sandbox's memory has one node to come from.

use platform::{AccessType, UserRegs, PAGE_SIZE};

use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::mm::policy::{self, MemPolicy, NodeMask};
use crate::task::TaskState;

const MPOL_F_NODE: u64 = 1 << 0;
const MPOL_F_ADDR: u64 = 1 << 1;
const MPOL_F_MEMS_ALLOWED: u64 = 1 << 2;

const MPOL_MF_STRICT: u64 = 1 << 0;
const MPOL_MF_MOVE: u64 = 1 << 1;
const MPOL_MF_MOVE_ALL: u64 = 1 << 2;

/// The mode argument's flags and the caller's nodemask, as Linux reads them (the mode is
/// checked before the nodemask is read).
fn policy_from_args(
    t: &TaskState,
    mode: u64,
    mask: u64,
    maxnode: u64,
) -> Result<Option<MemPolicy>, Errno> {
    let (mode, flags) = MemPolicy::sanitize(mode)?;
    let nodes = policy::read_nodemask(mask, maxnode, |addr, buf| t.mm.copy_in(addr, buf))?;
    MemPolicy::new(mode, flags, nodes)
}

pub fn set_mempolicy(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    t.mempolicy = policy_from_args(t, a[0], a[1], a[2])?;
    Ok(0)
}

pub fn get_mempolicy(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (mode_out, mask_out, maxnode, addr, flags) = (a[0], a[1], a[2], a[3], a[4]);
    if mask_out != 0 && maxnode < policy::NR_NODE_IDS {
        return Err(Errno::EINVAL);
    }
    if flags & !(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED) != 0 {
        return Err(Errno::EINVAL);
    }
    let (mode, nodes) = if flags & MPOL_F_MEMS_ALLOWED != 0 {
        if flags & (MPOL_F_NODE | MPOL_F_ADDR) != 0 {
            return Err(Errno::EINVAL);
        }
        (0, NodeMask::ONLINE)
    } else {
        let own = flags & MPOL_F_ADDR == 0;
        let pol = if own {
            if addr != 0 {
                return Err(Errno::EINVAL);
            }
            t.mempolicy
        } else {
            let mm = t.mm.lock();
            mm.vma_at(addr).ok_or(Errno::EFAULT)?.flags.policy
        };
        let mode = if flags & MPOL_F_NODE == 0 {
            MemPolicy::reported_mode(pol.as_ref())
        } else if !own {
            // Linux's lookup_node: the page is faulted in, and its node is the answer.
            let page = addr & !(PAGE_SIZE - 1);
            let present = t.mm.lock().resident_in(page, page + PAGE_SIZE) > 0;
            if !present {
                let access = AccessType {
                    write: false,
                    exec: false,
                    present: false,
                };
                t.mm.handle_fault(page, access).map_err(|_| Errno::EFAULT)?;
            }
            0
        } else if pol.is_some_and(|p| {
            p.mode == policy::MPOL_INTERLEAVE || p.mode == policy::MPOL_WEIGHTED_INTERLEAVE
        }) {
            // The next node an interleaving thread allocates from: the only one.
            0
        } else {
            return Err(Errno::EINVAL);
        };
        (mode, MemPolicy::reported_nodes(pol.as_ref()))
    };
    if mode_out != 0 {
        t.mm.copy_out(mode_out, &mode.to_le_bytes())?;
    }
    if mask_out != 0 {
        t.mm.copy_out(mask_out, &policy::nodemask_out(&nodes, maxnode)?)?;
    }
    Ok(0)
}

pub fn mbind(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (start, len, mode, mask, maxnode, flags) = (a[0], a[1], a[2], a[3], a[4], a[5]);
    let (mode, mode_flags) = MemPolicy::sanitize(mode)?;
    let nodes = policy::read_nodemask(mask, maxnode, |addr, buf| t.mm.copy_in(addr, buf))?;
    // The flags argument is a C unsigned int.
    let flags = flags as u32 as u64;
    if flags & !(MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MPOL_MF_MOVE_ALL != 0 && !capable(&t.creds, Cap::SysNice) {
        return Err(Errno::EPERM);
    }
    if start % PAGE_SIZE != 0 {
        return Err(Errno::EINVAL);
    }
    // PAGE_ALIGN as Linux computes it: a length within a page of 2^64 wraps to 0.
    let len = len.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let end = start.wrapping_add(len);
    if end < start {
        return Err(Errno::EINVAL);
    }
    if end == start {
        return Ok(0);
    }
    let new = MemPolicy::new(mode, mode_flags, nodes)?;
    let mut mm = t.mm.lock();
    // Every page is on the only node, so MPOL_MF_STRICT and the moves have nothing to
    // report or do; a hole anywhere in the range is EFAULT and changes nothing.
    if end > mm.limit() || !mm.is_fully_mapped(start, end) {
        return Err(Errno::EFAULT);
    }
    mm.set_vm_flags(start, end, |f| f.policy = new);
    Ok(0)
}
