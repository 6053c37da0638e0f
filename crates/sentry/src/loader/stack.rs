//! The initial process stack, laid out like Linux's `create_elf_tables()`
//! (System V x86-64 ABI, "Process Initialization").
//!
//! From `stack_top` downwards:
//!
//! ```text
//!   8 zero bytes                  end marker, as Linux leaves it
//!   execfn string                 AT_EXECFN
//!   environment strings           envp[0] lowest
//!   argument strings              argv[0] lowest
//!   padding to 16
//!   platform string               AT_PLATFORM
//!   16 random bytes               AT_RANDOM
//!   padding so that sp ends 16-byte aligned
//!   auxv (type, value) pairs      ending with AT_NULL
//!   envp pointers, NULL
//!   argv pointers, NULL
//!   argc                          <- sp
//! ```
//!
//! The builder is pure: it returns the bytes of `[sp, stack_top)`, which the
//! caller copies into guest memory.

use thiserror::Error;

/// Auxiliary vector entry types (`<elf.h>`).
pub const AT_NULL: u64 = 0;
pub const AT_PHDR: u64 = 3;
pub const AT_PHENT: u64 = 4;
pub const AT_PHNUM: u64 = 5;
pub const AT_PAGESZ: u64 = 6;
pub const AT_BASE: u64 = 7;
pub const AT_FLAGS: u64 = 8;
pub const AT_ENTRY: u64 = 9;
pub const AT_UID: u64 = 11;
pub const AT_EUID: u64 = 12;
pub const AT_GID: u64 = 13;
pub const AT_EGID: u64 = 14;
pub const AT_PLATFORM: u64 = 15;
pub const AT_HWCAP: u64 = 16;
pub const AT_CLKTCK: u64 = 17;
pub const AT_SECURE: u64 = 23;
pub const AT_RANDOM: u64 = 25;
pub const AT_HWCAP2: u64 = 26;
pub const AT_EXECFN: u64 = 31;
pub const AT_SYSINFO_EHDR: u64 = 33;
pub const AT_MINSIGSTKSZ: u64 = 51;

/// Longest single argument or environment string, NUL included (Linux's
/// `MAX_ARG_STRLEN`).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Limit on argument and environment strings plus their pointers: a quarter
/// of the default 8 MiB stack, as Linux computes it from `RLIMIT_STACK`.
pub const MAX_ARG_BYTES: usize = (8 << 20) / 4;

const WORD: u64 = 8;
const STACK_ALIGN: u64 = 16;
const RANDOM_LEN: u64 = 16;

/// What goes on the initial stack. Strings are raw bytes without NUL; one
/// trailing NUL is tolerated (as in `CString::into_bytes_with_nul`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackArgs {
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// Program path as given to execve (AT_EXECFN).
    pub execfn: Vec<u8>,
    /// AT_PLATFORM string, normally "x86_64"; omitted when empty.
    pub platform: Vec<u8>,
    /// AT_RANDOM bytes (libc seeds its stack protector and pointer guard
    /// from them).
    pub random: [u8; 16],
    /// Auxv entries computed by the caller (AT_PHDR, AT_PAGESZ, AT_ENTRY,
    /// ...). The builder appends AT_RANDOM, AT_EXECFN, AT_PLATFORM and
    /// AT_NULL, so those must not appear here.
    pub auxv: Vec<(u64, u64)>,
}

/// The built stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    /// Initial rsp, 16-byte aligned, pointing at argc.
    pub sp: u64,
    /// Contents of `[sp, stack_top)`.
    pub bytes: Vec<u8>,
    /// Argument strings area `[arg_start, arg_end)` (for /proc/PID/cmdline).
    pub arg_start: u64,
    pub arg_end: u64,
    /// Environment strings area `[env_start, env_end)` (/proc/PID/environ).
    pub env_start: u64,
    pub env_end: u64,
    /// The complete auxv as written, AT_NULL included (/proc/PID/auxv).
    pub auxv: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StackError {
    #[error("argument list too long ({size} bytes, limit {MAX_ARG_BYTES})")]
    TooBig { size: usize },
    #[error("{what} string too long ({len} bytes, limit {MAX_ARG_STRLEN})")]
    StringTooLong { what: &'static str, len: usize },
    #[error("{what} string contains a NUL byte")]
    InteriorNul { what: &'static str },
    #[error("auxv entry type {0} is added by the stack builder and must not be supplied")]
    ReservedAuxv(u64),
    #[error("initial stack does not fit below {stack_top:#x}")]
    NoRoom { stack_top: u64 },
}

impl StackError {
    /// The errno execve(2) would fail with.
    pub fn errno(&self) -> i32 {
        match self {
            StackError::TooBig { .. } | StackError::StringTooLong { .. } => libc::E2BIG,
            StackError::NoRoom { .. } => libc::ENOMEM,
            StackError::InteriorNul { .. } | StackError::ReservedAuxv(_) => libc::EINVAL,
        }
    }
}

/// Builds the initial stack that ends (exclusive) at `stack_top`.
pub fn build_initial_stack(stack_top: u64, args: &StackArgs) -> Result<InitialStack, StackError> {
    let mut argv = c_strings(&args.argv, "argument")?;
    // Like Linux >= 5.18: never start a program with argc == 0, which
    // programs don't expect (argv[0] would be NULL).
    if argv.is_empty() {
        argv.push(b"");
    }
    let envp = c_strings(&args.envp, "environment")?;
    let execfn = c_string(&args.execfn, "execfn")?;
    let platform = c_string(&args.platform, "platform")?;
    check_reserved_auxv(&args.auxv)?;
    check_total_size(&argv, &envp)?;

    // Reserve space top-down, exactly in the order of the layout above.
    let mut cur = Cursor {
        addr: stack_top,
        stack_top,
    };
    cur.alloc(WORD)?; // end marker
    let execfn_addr = cur.alloc_str(execfn)?;
    let env_addrs = cur.alloc_strs(&envp)?;
    let arg_addrs = cur.alloc_strs(&argv)?;
    cur.align_down(STACK_ALIGN);
    let platform_addr = match platform {
        [] => None,
        p => Some(cur.alloc_str(p)?),
    };
    let random_addr = cur.alloc(RANDOM_LEN)?;

    let mut auxv = args.auxv.clone();
    auxv.push((AT_RANDOM, random_addr));
    auxv.push((AT_EXECFN, execfn_addr));
    if let Some(addr) = platform_addr {
        auxv.push((AT_PLATFORM, addr));
    }
    auxv.push((AT_NULL, 0));

    // argc, argv + NULL, envp + NULL, auxv pairs. Rounding the start down
    // keeps argc at a 16-byte aligned address, as the ABI requires.
    let words = 1 + (argv.len() + 1) + (envp.len() + 1) + 2 * auxv.len();
    cur.alloc(words as u64 * WORD)?;
    cur.align_down(STACK_ALIGN);
    let sp = cur.addr;

    let mut image = Image::new(sp, stack_top);
    // The buffer starts zeroed: NUL terminators, the end marker and padding
    // need no writes.
    image.put(execfn_addr, execfn);
    for (addr, s) in env_addrs
        .iter()
        .zip(&envp)
        .chain(arg_addrs.iter().zip(&argv))
    {
        image.put(*addr, s);
    }
    if let Some(addr) = platform_addr {
        image.put(addr, platform);
    }
    image.put(random_addr, &args.random);

    let table = std::iter::once(argv.len() as u64)
        .chain(arg_addrs.iter().copied())
        .chain([0])
        .chain(env_addrs.iter().copied())
        .chain([0])
        .chain(auxv.iter().flat_map(|&(k, v)| [k, v]));
    let mut addr = sp;
    for word in table {
        image.put(addr, &word.to_le_bytes());
        addr += WORD;
    }

    // The string areas are contiguous: argv strings, envp strings, execfn.
    let env_end = execfn_addr;
    let env_start = env_addrs.first().copied().unwrap_or(env_end);
    let arg_end = env_start;
    let arg_start = arg_addrs.first().copied().unwrap_or(arg_end);
    Ok(InitialStack {
        sp,
        bytes: image.bytes,
        arg_start,
        arg_end,
        env_start,
        env_end,
        auxv,
    })
}

/// Validates strings and strips one trailing NUL.
fn c_strings<'a>(strs: &'a [Vec<u8>], what: &'static str) -> Result<Vec<&'a [u8]>, StackError> {
    strs.iter().map(|s| c_string(s, what)).collect()
}

fn c_string<'a>(s: &'a [u8], what: &'static str) -> Result<&'a [u8], StackError> {
    let s = s.strip_suffix(b"\0").unwrap_or(s);
    if s.contains(&0) {
        return Err(StackError::InteriorNul { what });
    }
    // +1: the limit counts the terminating NUL.
    if s.len() + 1 > MAX_ARG_STRLEN {
        return Err(StackError::StringTooLong {
            what,
            len: s.len() + 1,
        });
    }
    Ok(s)
}

fn check_reserved_auxv(auxv: &[(u64, u64)]) -> Result<(), StackError> {
    match auxv
        .iter()
        .find(|(k, _)| matches!(*k, AT_NULL | AT_RANDOM | AT_EXECFN | AT_PLATFORM))
    {
        Some(&(k, _)) => Err(StackError::ReservedAuxv(k)),
        None => Ok(()),
    }
}

/// Linux counts each string with its NUL plus one pointer per string.
fn check_total_size(argv: &[&[u8]], envp: &[&[u8]]) -> Result<(), StackError> {
    let size: usize = argv
        .iter()
        .chain(envp)
        .map(|s| s.len() + 1 + WORD as usize)
        .sum();
    if size > MAX_ARG_BYTES {
        return Err(StackError::TooBig { size });
    }
    Ok(())
}

/// Top-down allocator of stack addresses.
struct Cursor {
    addr: u64,
    stack_top: u64,
}

impl Cursor {
    fn alloc(&mut self, len: u64) -> Result<u64, StackError> {
        self.addr = self.addr.checked_sub(len).ok_or(StackError::NoRoom {
            stack_top: self.stack_top,
        })?;
        Ok(self.addr)
    }

    /// Space for `s` and its NUL terminator.
    fn alloc_str(&mut self, s: &[u8]) -> Result<u64, StackError> {
        self.alloc(s.len() as u64 + 1)
    }

    /// Space for consecutive strings, the first one lowest; returns their
    /// addresses in order.
    fn alloc_strs(&mut self, strs: &[&[u8]]) -> Result<Vec<u64>, StackError> {
        let mut addrs = strs
            .iter()
            .rev()
            .map(|s| self.alloc_str(s))
            .collect::<Result<Vec<_>, _>>()?;
        addrs.reverse();
        Ok(addrs)
    }

    fn align_down(&mut self, align: u64) {
        self.addr &= !(align - 1);
    }
}

/// The bytes of `[sp, stack_top)`.
struct Image {
    sp: u64,
    bytes: Vec<u8>,
}

impl Image {
    fn new(sp: u64, stack_top: u64) -> Self {
        // Bounded by the argument limits checked earlier, so it fits usize.
        Image {
            sp,
            bytes: vec![0; (stack_top - sp) as usize],
        }
    }

    /// Copies `data` to `addr`, which the layout placed inside the image.
    fn put(&mut self, addr: u64, data: &[u8]) {
        let off = (addr - self.sp) as usize;
        self.bytes[off..off + data.len()].copy_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOP: u64 = 0x7fff_ffff_f000;

    /// Reads the built stack back the way a libc's `_start` does.
    struct Parsed {
        argv: Vec<Vec<u8>>,
        envp: Vec<Vec<u8>>,
        auxv: Vec<(u64, u64)>,
    }

    struct View<'a> {
        stack: &'a InitialStack,
        top: u64,
    }

    impl View<'_> {
        fn slice(&self, addr: u64, len: u64) -> &[u8] {
            assert!(
                addr >= self.stack.sp && addr + len <= self.top,
                "{addr:#x} out of the stack"
            );
            let off = (addr - self.stack.sp) as usize;
            &self.stack.bytes[off..off + len as usize]
        }

        fn word(&self, addr: u64) -> u64 {
            assert_eq!(addr % 8, 0, "misaligned word at {addr:#x}");
            u64::from_le_bytes(self.slice(addr, 8).try_into().unwrap())
        }

        fn c_str(&self, addr: u64) -> Vec<u8> {
            let rest = self.slice(addr, self.top - addr);
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .expect("unterminated string");
            rest[..nul].to_vec()
        }

        fn strings(&self, mut addr: u64) -> (Vec<Vec<u8>>, u64) {
            let mut out = Vec::new();
            loop {
                let ptr = self.word(addr);
                addr += 8;
                if ptr == 0 {
                    return (out, addr);
                }
                out.push(self.c_str(ptr));
            }
        }

        fn parse(&self) -> Parsed {
            let sp = self.stack.sp;
            assert_eq!(sp % 16, 0, "rsp not 16-byte aligned");
            assert_eq!(self.stack.bytes.len() as u64, self.top - sp);
            let argc = self.word(sp);
            let (argv, next) = self.strings(sp + 8);
            assert_eq!(argv.len() as u64, argc);
            let (envp, mut next) = self.strings(next);
            let mut auxv = Vec::new();
            loop {
                let entry = (self.word(next), self.word(next + 8));
                next += 16;
                auxv.push(entry);
                if entry.0 == AT_NULL {
                    break;
                }
            }
            Parsed { argv, envp, auxv }
        }
    }

    fn strs(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn sample() -> StackArgs {
        StackArgs {
            argv: strs(&["prog", "-x", ""]),
            envp: strs(&["A=1", "PATH=/bin"]),
            execfn: b"/bin/prog".to_vec(),
            platform: b"x86_64".to_vec(),
            random: std::array::from_fn(|i| i as u8 + 1),
            auxv: vec![(AT_PAGESZ, 4096), (AT_ENTRY, 0x401000), (AT_UID, 0)],
        }
    }

    fn aux(auxv: &[(u64, u64)], key: u64) -> Option<u64> {
        auxv.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }

    #[test]
    fn layout_round_trips() {
        let args = sample();
        let stack = build_initial_stack(TOP, &args).unwrap();
        let view = View {
            stack: &stack,
            top: TOP,
        };
        let parsed = view.parse();
        assert_eq!(parsed.argv, args.argv);
        assert_eq!(parsed.envp, args.envp);
        assert_eq!(parsed.auxv, stack.auxv);

        // Caller entries first, in order, then the builder's.
        let keys: Vec<u64> = parsed.auxv.iter().map(|e| e.0).collect();
        assert_eq!(
            keys,
            [
                AT_PAGESZ,
                AT_ENTRY,
                AT_UID,
                AT_RANDOM,
                AT_EXECFN,
                AT_PLATFORM,
                AT_NULL
            ]
        );
        assert_eq!(aux(&parsed.auxv, AT_ENTRY), Some(0x401000));
        let random = aux(&parsed.auxv, AT_RANDOM).unwrap();
        assert_eq!(view.slice(random, 16), &args.random);
        assert_eq!(
            view.c_str(aux(&parsed.auxv, AT_EXECFN).unwrap()),
            b"/bin/prog"
        );
        assert_eq!(
            view.c_str(aux(&parsed.auxv, AT_PLATFORM).unwrap()),
            b"x86_64"
        );

        // Linux's end marker, then execfn right below it.
        assert_eq!(view.slice(TOP - 8, 8), &[0; 8]);
        assert_eq!(aux(&parsed.auxv, AT_EXECFN), Some(TOP - 8 - 10));

        // The string areas as /proc/PID/cmdline and environ show them.
        let cmdline = view.slice(stack.arg_start, stack.arg_end - stack.arg_start);
        assert_eq!(cmdline, b"prog\0-x\0\0");
        let environ = view.slice(stack.env_start, stack.env_end - stack.env_start);
        assert_eq!(environ, b"A=1\0PATH=/bin\0");
        // Random bytes sit below the strings, the tables below them.
        assert!(random + 16 <= stack.arg_start);
    }

    #[test]
    fn alignment_for_any_top_and_counts() {
        let mut args = sample();
        for top in [TOP, TOP - 1, TOP - 7, TOP - 8, TOP - 9, 0x1_0003] {
            for n in 0..4 {
                args.argv.push(b"a".repeat(n));
                args.auxv.push((AT_FLAGS, n as u64));
                let stack = build_initial_stack(top, &args).unwrap();
                let parsed = View { stack: &stack, top }.parse();
                assert_eq!(parsed.argv, args.argv);
            }
        }
    }

    #[test]
    fn empty_argv_gets_empty_argv0() {
        let args = StackArgs {
            argv: vec![],
            envp: vec![],
            ..sample()
        };
        let stack = build_initial_stack(TOP, &args).unwrap();
        let parsed = View {
            stack: &stack,
            top: TOP,
        }
        .parse();
        assert_eq!(parsed.argv, vec![Vec::<u8>::new()]);
        assert!(parsed.envp.is_empty());
        assert_eq!(stack.env_start, stack.env_end);
        assert_eq!(stack.arg_end, stack.env_start);
    }

    #[test]
    fn no_platform_no_at_platform() {
        let args = StackArgs {
            platform: vec![],
            ..sample()
        };
        let stack = build_initial_stack(TOP, &args).unwrap();
        let parsed = View {
            stack: &stack,
            top: TOP,
        }
        .parse();
        assert_eq!(aux(&parsed.auxv, AT_PLATFORM), None);
        assert!(aux(&parsed.auxv, AT_RANDOM).is_some());
    }

    #[test]
    fn nul_bytes() {
        // One trailing NUL is accepted and not doubled.
        let args = StackArgs {
            argv: vec![b"prog\0".to_vec()],
            ..sample()
        };
        let stack = build_initial_stack(TOP, &args).unwrap();
        assert_eq!(
            View {
                stack: &stack,
                top: TOP
            }
            .parse()
            .argv,
            strs(&["prog"])
        );

        let bad = [
            StackArgs {
                argv: vec![b"a\0b".to_vec()],
                ..sample()
            },
            StackArgs {
                envp: vec![b"A=1\0\0".to_vec()],
                ..sample()
            },
            StackArgs {
                execfn: b"\0/bin".to_vec(),
                ..sample()
            },
        ];
        for args in bad {
            let err = build_initial_stack(TOP, &args).unwrap_err();
            assert!(matches!(err, StackError::InteriorNul { .. }), "{err}");
            assert_eq!(err.errno(), libc::EINVAL);
        }
    }

    #[test]
    fn size_limits() {
        // A single string at the limit is fine; one byte more is not.
        let mut args = sample();
        args.envp = vec![vec![b'x'; MAX_ARG_STRLEN - 1]];
        build_initial_stack(TOP, &args).unwrap();
        args.envp = vec![vec![b'x'; MAX_ARG_STRLEN]];
        let err = build_initial_stack(TOP, &args).unwrap_err();
        assert_eq!(
            err,
            StackError::StringTooLong {
                what: "environment",
                len: MAX_ARG_STRLEN + 1
            }
        );
        assert_eq!(err.errno(), libc::E2BIG);

        // Many strings, each fine, together too many.
        args.envp = vec![vec![b'x'; 100_000]; MAX_ARG_BYTES / 100_000 + 1];
        let err = build_initial_stack(TOP, &args).unwrap_err();
        assert!(matches!(err, StackError::TooBig { .. }));
        assert_eq!(err.errno(), libc::E2BIG);
        assert!(err.to_string().starts_with("argument list too long"));

        // Pointers count too: many empty strings.
        args.envp = vec![vec![]; MAX_ARG_BYTES / 9 + 1];
        assert!(matches!(
            build_initial_stack(TOP, &args),
            Err(StackError::TooBig { .. })
        ));
    }

    #[test]
    fn reserved_auxv_and_no_room() {
        for key in [AT_NULL, AT_RANDOM, AT_EXECFN, AT_PLATFORM] {
            let mut args = sample();
            args.auxv.push((key, 1));
            assert_eq!(
                build_initial_stack(TOP, &args),
                Err(StackError::ReservedAuxv(key))
            );
        }
        for top in [0, 8, 0x40, 0x80] {
            let err = build_initial_stack(top, &sample()).unwrap_err();
            assert_eq!(err, StackError::NoRoom { stack_top: top });
        }
    }

    #[test]
    fn auxv_constants_match_libc() {
        let pairs = [
            (AT_NULL, libc::AT_NULL),
            (AT_PHDR, libc::AT_PHDR),
            (AT_PHENT, libc::AT_PHENT),
            (AT_PHNUM, libc::AT_PHNUM),
            (AT_PAGESZ, libc::AT_PAGESZ),
            (AT_BASE, libc::AT_BASE),
            (AT_FLAGS, libc::AT_FLAGS),
            (AT_ENTRY, libc::AT_ENTRY),
            (AT_UID, libc::AT_UID),
            (AT_EUID, libc::AT_EUID),
            (AT_GID, libc::AT_GID),
            (AT_EGID, libc::AT_EGID),
            (AT_PLATFORM, libc::AT_PLATFORM),
            (AT_HWCAP, libc::AT_HWCAP),
            (AT_CLKTCK, libc::AT_CLKTCK),
            (AT_SECURE, libc::AT_SECURE),
            (AT_RANDOM, libc::AT_RANDOM),
            (AT_HWCAP2, libc::AT_HWCAP2),
            (AT_EXECFN, libc::AT_EXECFN),
            (AT_SYSINFO_EHDR, libc::AT_SYSINFO_EHDR),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours, theirs);
        }
    }

    /// Random argument vectors always round-trip and stay aligned.
    #[test]
    fn randomized_round_trip() {
        let mut state = 0x1234_5678_9abc_def1_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for _ in 0..300 {
            let mut gen = |count: u64| -> Vec<Vec<u8>> {
                (0..next(count))
                    .map(|_| (0..next(40)).map(|_| 1 + next(255) as u8).collect())
                    .collect()
            };
            let args = StackArgs {
                argv: gen(12),
                envp: gen(12),
                execfn: gen(2).concat(),
                platform: gen(2).concat(),
                random: [next(256) as u8; 16],
                auxv: (0..next(20)).map(|i| (100 + i, i)).collect(),
            };
            let top = TOP - next(4096);
            let stack = build_initial_stack(top, &args).unwrap();
            let parsed = View { stack: &stack, top }.parse();
            let expected_argv = if args.argv.is_empty() {
                vec![vec![]]
            } else {
                args.argv.clone()
            };
            assert_eq!(parsed.argv, expected_argv);
            assert_eq!(parsed.envp, args.envp);
            assert_eq!(&parsed.auxv[..args.auxv.len()], &args.auxv[..]);
        }
    }
}
