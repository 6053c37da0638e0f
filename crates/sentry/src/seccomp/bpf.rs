//! Classic BPF for seccomp filters: Linux's checks at install time (bpf_check_classic,
//! check_load_and_stores and seccomp_check_filter) and an interpreter.
//!
//! Written here rather than taken from a crate: the crates on crates.io either compile
//! rules into BPF for the host kernel (seccompiler, seccomp-tiny) or run eBPF (rbpf);
//! none checks a classic program the way Linux does (the exact opcode set seccomp allows,
//! forward jumps in range, memory cells written before read on every path, aligned
//! in-range loads of seccomp_data), which is what makes the sandbox refuse the same
//! programs with EINVAL. The interpreter is 100 lines and never reads out of bounds.

use thiserror::Error;

/// One `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub const SIZE: usize = 8;

    pub fn from_bytes(b: &[u8; 8]) -> Insn {
        Insn {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// Linux's BPF_MAXINSNS.
pub const MAX_INSNS: usize = 4096;
/// Scratch memory cells (BPF_MEMWORDS).
const MEM_WORDS: u32 = 16;
/// sizeof(struct seccomp_data).
pub const DATA_LEN: u32 = 64;

// Instruction classes, sizes, modes, operations and sources (linux/bpf_common.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const XOR: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const K: u16 = 0x00;
const X: u16 = 0x08;
const RET_A: u16 = 0x10;
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

/// Why a program was refused (the application sees EINVAL for each).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckError {
    #[error("{0} instructions (1 to 4096 allowed)")]
    Length(usize),
    #[error("instruction {0}: opcode {1:#x} not allowed in a seccomp filter")]
    Opcode(usize, u16),
    #[error("instruction {0}: constant division by zero")]
    DivByZero(usize),
    #[error("instruction {0}: shift by {1}")]
    Shift(usize, u32),
    #[error("instruction {0}: memory cell {1} out of range")]
    Cell(usize, u32),
    #[error("instruction {0}: jump out of the program")]
    Jump(usize),
    #[error("instruction {0}: load of seccomp_data offset {1} (must be aligned and below 64)")]
    Load(usize, u32),
    #[error("the last instruction is not a return")]
    NoReturn,
    #[error("instruction {0}: memory cell {1} read before it is written")]
    Uninit(usize, u32),
}

/// The conditional jumps seccomp allows.
fn is_cond_jump(code: u16) -> bool {
    matches!(
        code,
        c if c == JMP | JEQ | K
            || c == JMP | JEQ | X
            || c == JMP | JGE | K
            || c == JMP | JGE | X
            || c == JMP | JGT | K
            || c == JMP | JGT | X
            || c == JMP | JSET | K
            || c == JMP | JSET | X
    )
}

/// The opcodes seccomp_check_filter accepts (after bpf_check_classic's wider set: MOD,
/// H/B loads, IND loads and MSH are classic BPF but not seccomp).
fn allowed(code: u16) -> bool {
    const ALU_OPS: [u16; 9] = [ADD, SUB, MUL, DIV, AND, OR, XOR, LSH, RSH];
    if code & 0x07 == ALU && code != ALU | NEG {
        return ALU_OPS
            .iter()
            .any(|&op| code == ALU | op | K || code == ALU | op | X);
    }
    matches!(code, c if c == ALU | NEG
        || c == LD | W | ABS
        || c == LD | W | LEN
        || c == LDX | W | LEN
        || c == LD | IMM
        || c == LDX | IMM
        || c == LD | MEM
        || c == LDX | MEM
        || c == ST
        || c == STX
        || c == MISC | TAX
        || c == MISC | TXA
        || c == RET | K
        || c == RET | RET_A
        || c == JMP | JA)
        || is_cond_jump(code)
}

/// A checked program, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
}

impl Program {
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// How many instructions Linux's conversion to eBPF (bpf_convert_filter) makes of this
    /// program: what seccomp counts against MAX_INSNS_PER_PATH. Three for the prologue;
    /// a constant return 2; a division by X 4 (the zero check); a conditional jump 1, plus
    /// 1 when its constant is negative as an int (moved to a register first), plus 1 when
    /// neither branch falls through (except the forms with an inverse: JEQ, JGT, JGE).
    pub fn converted_len(&self) -> usize {
        let mut n = 3;
        for insn in &self.insns {
            let code = insn.code;
            n += if code == RET | K {
                2
            } else if code == ALU | DIV | X {
                4
            } else if is_cond_jump(code) {
                let mut c = 1;
                if code & X == 0 && (insn.k as i32) < 0 {
                    c += 1;
                }
                if insn.jf != 0 && (insn.jt != 0 || code & 0xf0 == JSET) {
                    c += 1;
                }
                c
            } else {
                1
            };
        }
        n
    }
}

/// Checks `insns` as Linux does when a filter is installed, and rewrites the length loads
/// into constants (seccomp_data's size), as seccomp_check_filter does.
pub fn check(insns: &[Insn]) -> Result<Program, CheckError> {
    let len = insns.len();
    if len == 0 || len > MAX_INSNS {
        return Err(CheckError::Length(len));
    }
    let mut out = Vec::with_capacity(len);
    for (pc, &insn) in insns.iter().enumerate() {
        let mut insn = insn;
        if !allowed(insn.code) {
            return Err(CheckError::Opcode(pc, insn.code));
        }
        let code = insn.code;
        let k = insn.k;
        if code == ALU | DIV | K && k == 0 {
            return Err(CheckError::DivByZero(pc));
        }
        if (code == ALU | LSH | K || code == ALU | RSH | K) && k >= 32 {
            return Err(CheckError::Shift(pc, k));
        }
        if (code == LD | MEM || code == LDX | MEM || code == ST || code == STX) && k >= MEM_WORDS {
            return Err(CheckError::Cell(pc, k));
        }
        if code == JMP | JA && k as u64 >= (len - pc - 1) as u64 {
            return Err(CheckError::Jump(pc));
        }
        if is_cond_jump(code)
            && (pc + insn.jt as usize + 1 >= len || pc + insn.jf as usize + 1 >= len)
        {
            return Err(CheckError::Jump(pc));
        }
        if code == LD | W | ABS && (k >= DATA_LEN || k & 3 != 0) {
            return Err(CheckError::Load(pc, k));
        }
        if code == LD | W | LEN {
            insn = Insn {
                code: LD | IMM,
                k: DATA_LEN,
                ..insn
            };
        } else if code == LDX | W | LEN {
            insn = Insn {
                code: LDX | IMM,
                k: DATA_LEN,
                ..insn
            };
        }
        out.push(insn);
    }
    let last = insns[len - 1].code;
    if last != RET | K && last != RET | RET_A {
        return Err(CheckError::NoReturn);
    }
    check_loads_and_stores(&out)?;
    Ok(Program { insns: out })
}

/// Linux's check_load_and_stores: a memory cell may be read only where every path to the
/// read has written it.
fn check_loads_and_stores(insns: &[Insn]) -> Result<(), CheckError> {
    let mut masks = vec![u16::MAX; insns.len()];
    let mut valid: u16 = 0;
    for (pc, insn) in insns.iter().enumerate() {
        valid &= masks[pc];
        let code = insn.code;
        // Cells are below 16 and targets inside the program: checked by `check` first.
        let cell = 1u16 << (insn.k & 15);
        if code == ST || code == STX {
            valid |= cell;
        } else if code == LD | MEM || code == LDX | MEM {
            if valid & cell == 0 {
                return Err(CheckError::Uninit(pc, insn.k));
            }
        } else if code == JMP | JA {
            if let Some(m) = masks.get_mut(pc + 1 + insn.k as usize) {
                *m &= valid;
            }
            valid = u16::MAX;
        } else if is_cond_jump(code) {
            for off in [insn.jt, insn.jf] {
                if let Some(m) = masks.get_mut(pc + 1 + off as usize) {
                    *m &= valid;
                }
            }
            valid = u16::MAX;
        }
    }
    Ok(())
}

/// Runs a checked program over `data` (struct seccomp_data as 16 little-endian words) and
/// returns its verdict. Jumps only go forward, so it ends within `len` steps. A division
/// by a zero X returns 0, as Linux's conversion of classic programs does.
pub fn run(prog: &Program, data: &[u32; 16]) -> u32 {
    let insns = &prog.insns;
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEM_WORDS as usize];
    let mut pc = 0usize;
    while let Some(insn) = insns.get(pc) {
        pc += 1;
        let k = insn.k;
        let code = insn.code;
        match code & 0x07 {
            LD => {
                a = match code {
                    c if c == LD | W | ABS => data.get(k as usize / 4).copied().unwrap_or(0),
                    c if c == LD | MEM => mem.get(k as usize).copied().unwrap_or(0),
                    _ => k,
                }
            }
            LDX => {
                x = if code == LDX | MEM {
                    mem.get(k as usize).copied().unwrap_or(0)
                } else {
                    k
                }
            }
            ST => {
                if let Some(m) = mem.get_mut(k as usize) {
                    *m = a;
                }
            }
            STX => {
                if let Some(m) = mem.get_mut(k as usize) {
                    *m = x;
                }
            }
            ALU => {
                let src = if code & X != 0 { x } else { k };
                a = match code & 0xf0 {
                    ADD => a.wrapping_add(src),
                    SUB => a.wrapping_sub(src),
                    MUL => a.wrapping_mul(src),
                    DIV => match a.checked_div(src) {
                        Some(v) => v,
                        None => return 0,
                    },
                    OR => a | src,
                    AND => a & src,
                    XOR => a ^ src,
                    LSH => a.wrapping_shl(src),
                    RSH => a.wrapping_shr(src),
                    NEG => a.wrapping_neg(),
                    _ => return 0,
                }
            }
            JMP => {
                if code == JMP | JA {
                    pc += k as usize;
                    continue;
                }
                let src = if code & X != 0 { x } else { k };
                let taken = match code & 0xf0 {
                    JEQ => a == src,
                    JGT => a > src,
                    JGE => a >= src,
                    JSET => a & src != 0,
                    _ => return 0,
                };
                pc += if taken { insn.jt } else { insn.jf } as usize;
            }
            RET => return if code & RET_A != 0 { a } else { k },
            MISC => {
                if code == MISC | TAX {
                    x = a;
                } else {
                    a = x;
                }
            }
            _ => return 0,
        }
    }
    // Unreachable for a checked program (its last instruction returns).
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    const ALLOW: u32 = 0x7fff_0000;

    #[test]
    fn a_typical_filter() {
        // if (nr == 39) return ERRNO(1); return ALLOW;
        let p = check(&[
            i(LD | W | ABS, 0, 0, 0),
            i(JMP | JEQ | K, 0, 1, 39),
            i(RET | K, 0, 0, 0x0005_0001),
            i(RET | K, 0, 0, ALLOW),
        ])
        .expect("valid");
        let mut data = [0u32; 16];
        data[0] = 39;
        assert_eq!(run(&p, &data), 0x0005_0001);
        data[0] = 40;
        assert_eq!(run(&p, &data), ALLOW);
    }

    #[test]
    fn refusals() {
        let ret = i(RET | K, 0, 0, ALLOW);
        assert_eq!(check(&[]), Err(CheckError::Length(0)));
        assert_eq!(check(&vec![ret; 4097]), Err(CheckError::Length(4097)));
        assert!(check(&vec![ret; 4096]).is_ok());
        assert!(matches!(
            check(&[i(LD | W | ABS, 0, 0, 2), ret]),
            Err(CheckError::Load(..))
        ));
        assert!(matches!(
            check(&[i(LD | W | ABS, 0, 0, 64), ret]),
            Err(CheckError::Load(..))
        ));
        assert!(check(&[i(LD | W | ABS, 0, 0, 60), ret]).is_ok());
        // Half-word loads and MOD are classic BPF, not seccomp.
        assert!(matches!(
            check(&[i(0x28, 0, 0, 0), ret]),
            Err(CheckError::Opcode(..))
        ));
        assert!(matches!(
            check(&[i(ALU | 0x90 | K, 0, 0, 3), ret]),
            Err(CheckError::Opcode(..))
        ));
        assert!(matches!(
            check(&[i(ALU | DIV | K, 0, 0, 0), ret]),
            Err(CheckError::DivByZero(0))
        ));
        assert!(matches!(
            check(&[i(ALU | LSH | K, 0, 0, 32), ret]),
            Err(CheckError::Shift(..))
        ));
        assert!(matches!(
            check(&[i(JMP | JA, 0, 0, 1), ret]),
            Err(CheckError::Jump(0))
        ));
        assert!(matches!(
            check(&[i(JMP | JEQ | K, 1, 0, 0), ret]),
            Err(CheckError::Jump(0))
        ));
        assert_eq!(check(&[i(LD | IMM, 0, 0, 0)]), Err(CheckError::NoReturn));
        assert!(matches!(
            check(&[i(LD | MEM, 0, 0, 3), ret]),
            Err(CheckError::Uninit(0, 3))
        ));
        // A cell written on only one path.
        assert!(matches!(
            check(&[
                i(JMP | JEQ | K, 0, 1, 0),
                i(ST, 0, 0, 2),
                i(LD | MEM, 0, 0, 2),
                ret
            ]),
            Err(CheckError::Uninit(2, 2))
        ));
        assert!(check(&[
            i(ST, 0, 0, 2),
            i(LD | MEM, 0, 0, 2),
            i(RET | RET_A, 0, 0, 0)
        ])
        .is_ok());
    }

    #[test]
    fn converted_lengths() {
        let ret = i(RET | K, 0, 0, ALLOW);
        // As Linux counts them: 4096 constant returns make 8195 eBPF instructions.
        assert_eq!(
            check(&vec![ret; 4096]).expect("valid").converted_len(),
            8195
        );
        let p = check(&[
            i(LD | W | ABS, 0, 0, 4),
            i(JMP | JEQ | K, 1, 0, 0xc000_003e),
            i(JMP | JSET | K, 0, 1, 1),
            i(JMP | JGT | X, 1, 1, 0),
            ret,
            i(RET | RET_A, 0, 0, 0),
        ])
        .expect("valid");
        assert_eq!(p.converted_len(), 3 + 1 + 2 + 2 + 2 + 2 + 1);
    }

    #[test]
    fn arithmetic_and_length() {
        let p = check(&[
            i(LD | W | LEN, 0, 0, 0),
            i(ALU | MUL | K, 0, 0, 3),
            i(MISC | TAX, 0, 0, 0),
            i(LD | IMM, 0, 0, 7),
            i(ALU | DIV | X, 0, 0, 0),
            i(RET | RET_A, 0, 0, 0),
        ])
        .expect("valid");
        assert_eq!(run(&p, &[0; 16]), 0, "7 / 192");
        let p = check(&[
            i(LDX | IMM, 0, 0, 0),
            i(LD | IMM, 0, 0, 7),
            i(ALU | DIV | X, 0, 0, 0),
            i(RET | K, 0, 0, ALLOW),
        ])
        .expect("valid");
        assert_eq!(run(&p, &[0; 16]), 0, "division by a zero X returns 0");
    }

    /// Random programs never panic the checker or the interpreter (a small xorshift
    /// generator keeps this deterministic and dependency-free), and every accepted program
    /// returns within its length.
    #[test]
    fn random_programs_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Opcodes drawn mostly from valid ones so that some programs pass.
        let valid: Vec<u16> = (0..=0xffu16).filter(|&c| allowed(c)).collect();
        let mut accepted = 0;
        for round in 0..20_000 {
            let len = (next() % 24) as usize + usize::from(round % 97 == 0) * 4090;
            let mut prog: Vec<Insn> = (0..len)
                .map(|_| {
                    let r = next();
                    let code = if r & 7 == 0 {
                        (r >> 8) as u16
                    } else {
                        valid[(r >> 8) as usize % valid.len()]
                    };
                    let k = match (r >> 24) & 3 {
                        0 => (r >> 32) as u32,
                        1 => ((r >> 32) % 64) as u32,
                        _ => ((r >> 32) % 20) as u32,
                    };
                    i(code, (r >> 40) as u8 % 8, (r >> 48) as u8 % 8, k)
                })
                .collect();
            if round % 2 == 0 {
                if let Some(last) = prog.last_mut() {
                    last.code = RET | K;
                }
            }
            if let Ok(p) = check(&prog) {
                accepted += 1;
                let mut data = [0u32; 16];
                for d in data.iter_mut() {
                    *d = next() as u32;
                }
                run(&p, &data);
            }
        }
        assert!(accepted > 100, "only {accepted} random programs were valid");
    }
}
