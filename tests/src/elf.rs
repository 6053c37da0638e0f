//! Hand-made ELF files: tiny valid static executables, and broken variants
//! that the loader must refuse.

pub const ET_REL: u16 = 1;
pub const ET_EXEC: u16 = 2;
pub const EM_386: u16 = 3;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
pub const PT_LOAD: u32 = 1;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

pub const EHDR64_SIZE: usize = 64;
pub const PHDR64_SIZE: usize = 56;
pub const BASE: u64 = 0x40_0000;

/// An ELF64 program header.
#[derive(Clone, Copy, Debug)]
pub struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

impl Phdr {
    pub fn load(offset: u64, vaddr: u64, filesz: u64, memsz: u64, flags: u32) -> Phdr {
        Phdr {
            p_type: PT_LOAD,
            p_flags: flags,
            p_offset: offset,
            p_vaddr: vaddr,
            p_filesz: filesz,
            p_memsz: memsz,
            p_align: 0x1000,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(PHDR64_SIZE);
        b.extend_from_slice(&self.p_type.to_le_bytes());
        b.extend_from_slice(&self.p_flags.to_le_bytes());
        b.extend_from_slice(&self.p_offset.to_le_bytes());
        b.extend_from_slice(&self.p_vaddr.to_le_bytes());
        b.extend_from_slice(&self.p_vaddr.to_le_bytes()); // p_paddr
        b.extend_from_slice(&self.p_filesz.to_le_bytes());
        b.extend_from_slice(&self.p_memsz.to_le_bytes());
        b.extend_from_slice(&self.p_align.to_le_bytes());
        b
    }
}

/// An ELF64 file header's fields that the crafted files vary.
#[derive(Clone, Copy, Debug)]
pub struct Ehdr {
    pub class: u8,
    pub e_type: u16,
    pub e_machine: u16,
    pub e_entry: u64,
    pub e_phoff: u64,
    pub e_phentsize: u16,
    pub e_phnum: u16,
}

impl Ehdr {
    pub fn exec(entry: u64, phnum: u16) -> Ehdr {
        Ehdr {
            class: 2,
            e_type: ET_EXEC,
            e_machine: EM_X86_64,
            e_entry: entry,
            e_phoff: EHDR64_SIZE as u64,
            e_phentsize: PHDR64_SIZE as u16,
            e_phnum: phnum,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![
            0x7f, b'E', b'L', b'F', self.class, 1, /* LE */
            1, /* EV_CURRENT */
            0, /* SYSV */
        ];
        b.resize(16, 0);
        b.extend_from_slice(&self.e_type.to_le_bytes());
        b.extend_from_slice(&self.e_machine.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes()); // e_version
        b.extend_from_slice(&self.e_entry.to_le_bytes());
        b.extend_from_slice(&self.e_phoff.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        b.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        b.extend_from_slice(&(EHDR64_SIZE as u16).to_le_bytes());
        b.extend_from_slice(&self.e_phentsize.to_le_bytes());
        b.extend_from_slice(&self.e_phnum.to_le_bytes());
        b.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        b.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        b.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(b.len(), EHDR64_SIZE);
        b
    }
}

/// `exit_group(code)`: mov edi, code; mov eax, 231; syscall
pub fn exit_code(code: u8) -> Vec<u8> {
    vec![0xbf, code, 0, 0, 0, 0xb8, 231, 0, 0, 0, 0x0f, 0x05]
}

/// Header, program headers right after it, then `code`; returns the file.
/// Each phdr's filesz/memsz of u64::MAX is replaced by the file's length.
pub fn assemble(eh: Ehdr, phdrs: &[Phdr], code: &[u8]) -> Vec<u8> {
    let mut f = eh.bytes();
    let total = (EHDR64_SIZE + PHDR64_SIZE * phdrs.len() + code.len()) as u64;
    for p in phdrs {
        let mut p = *p;
        if p.p_filesz == u64::MAX {
            p.p_filesz = total;
        }
        if p.p_memsz == u64::MAX {
            p.p_memsz = total;
        }
        f.extend(p.bytes());
    }
    f.extend_from_slice(code);
    f
}

/// Offset of the code in a file with `nphdr` program headers.
pub fn code_offset(nphdr: usize) -> u64 {
    (EHDR64_SIZE + PHDR64_SIZE * nphdr) as u64
}

/// A valid static x86-64 executable, one R+X PT_LOAD, that exits with `code`.
pub fn minimal(code: u8) -> Vec<u8> {
    let eh = Ehdr::exec(BASE + code_offset(1), 1);
    assemble(
        eh,
        &[Phdr::load(0, BASE, u64::MAX, u64::MAX, PF_R | PF_X)],
        &exit_code(code),
    )
}

/// A valid executable with a data segment whose memsz > filesz: checks that
/// the file data is loaded, that the rest of the data segment's last file
/// page is zeroed although the file has garbage there, and that the bss
/// pages are zero and writable. Exits with 7 when all is right.
pub fn bss_check() -> Vec<u8> {
    const DATA: u64 = 0x60_0000;
    let mut code = Vec::new();
    code.extend([0x48, 0x8b, 0x04, 0x25]); // mov rax, [DATA]
    code.extend((DATA as u32).to_le_bytes());
    code.extend([0x0f, 0xb6, 0x0c, 0x25]); // movzx ecx, byte [DATA+8] (past filesz: must be 0)
    code.extend((DATA as u32 + 8).to_le_bytes());
    code.extend([0x01, 0xc8]); // add eax, ecx
    code.extend([0x0f, 0xb6, 0x0c, 0x25]); // movzx ecx, byte [DATA+0x2000] (bss page)
    code.extend((DATA as u32 + 0x2000).to_le_bytes());
    code.extend([0x01, 0xc8]); // add eax, ecx
    code.extend([0xc6, 0x04, 0x25]); // mov byte [DATA+0x2000], 1
    code.extend((DATA as u32 + 0x2000).to_le_bytes());
    code.push(1);
    code.extend([0x89, 0xc7]); // mov edi, eax
    code.extend([0xb8, 231, 0, 0, 0, 0x0f, 0x05]); // exit_group
    let eh = Ehdr::exec(BASE + code_offset(2), 2);
    let text = Phdr::load(
        0,
        BASE,
        code_offset(2) + code.len() as u64,
        code_offset(2) + code.len() as u64,
        PF_R | PF_X,
    );
    let data = Phdr::load(0x1000, DATA, 8, 0x3000, PF_R | PF_W);
    let mut f = assemble(eh, &[text, data], &code);
    f.resize(0x1000, 0);
    f.extend(7u64.to_le_bytes()); // the 8 bytes of file data
    f.extend([0xff; 24]); // garbage after p_filesz, in the same page
    f
}

/// A valid-looking i386 (ELFCLASS32, EM_386) static executable that exits 42.
pub fn elf32_i386() -> Vec<u8> {
    let base: u32 = 0x0804_8000;
    let code = [0xbb, 42, 0, 0, 0, 0xb8, 1, 0, 0, 0, 0xcd, 0x80]; // mov ebx,42; mov eax,1; int 0x80
    let total = (52 + 32 + code.len()) as u32;
    let mut b = vec![0x7f, b'E', b'L', b'F', 1 /* ELFCLASS32 */, 1, 1, 0];
    b.resize(16, 0);
    b.extend(ET_EXEC.to_le_bytes());
    b.extend(EM_386.to_le_bytes());
    b.extend(1u32.to_le_bytes()); // e_version
    b.extend((base + 52 + 32).to_le_bytes()); // e_entry
    b.extend(52u32.to_le_bytes()); // e_phoff
    b.extend(0u32.to_le_bytes()); // e_shoff
    b.extend(0u32.to_le_bytes()); // e_flags
    b.extend(52u16.to_le_bytes()); // e_ehsize
    b.extend(32u16.to_le_bytes()); // e_phentsize
    b.extend(1u16.to_le_bytes()); // e_phnum
    b.extend(40u16.to_le_bytes()); // e_shentsize
    b.extend(0u16.to_le_bytes()); // e_shnum
    b.extend(0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(b.len(), 52);
    for v in [PT_LOAD, 0, base, base, total, total, PF_R | PF_X, 0x1000] {
        b.extend(v.to_le_bytes());
    }
    b.extend(code);
    b
}

/// The minimal executable with e_machine = EM_AARCH64.
pub fn wrong_machine() -> Vec<u8> {
    let mut eh = Ehdr::exec(BASE + code_offset(1), 1);
    eh.e_machine = EM_AARCH64;
    assemble(
        eh,
        &[Phdr::load(0, BASE, u64::MAX, u64::MAX, PF_R | PF_X)],
        &exit_code(0),
    )
}

/// The minimal executable with e_type = ET_REL (an object file).
pub fn relocatable() -> Vec<u8> {
    let mut eh = Ehdr::exec(BASE + code_offset(1), 1);
    eh.e_type = ET_REL;
    assemble(
        eh,
        &[Phdr::load(0, BASE, u64::MAX, u64::MAX, PF_R | PF_X)],
        &exit_code(0),
    )
}

/// e_phoff points far past the end of the file.
pub fn phdrs_past_end() -> Vec<u8> {
    let mut eh = Ehdr::exec(BASE + code_offset(1), 1);
    eh.e_phoff = 0x10_0000;
    assemble(
        eh,
        &[Phdr::load(0, BASE, u64::MAX, u64::MAX, PF_R | PF_X)],
        &exit_code(0),
    )
}

/// e_phnum = 65535 (the program header table cannot fit in the file, and
/// no sane executable has that many).
pub fn absurd_phnum() -> Vec<u8> {
    let mut eh = Ehdr::exec(BASE + code_offset(1), 1);
    eh.e_phnum = 65535;
    assemble(
        eh,
        &[Phdr::load(0, BASE, u64::MAX, u64::MAX, PF_R | PF_X)],
        &exit_code(0),
    )
}

/// e_phentsize = 32, not sizeof(Elf64_Phdr).
pub fn bad_phentsize() -> Vec<u8> {
    let mut eh = Ehdr::exec(BASE + code_offset(1), 1);
    eh.e_phentsize = 32;
    assemble(
        eh,
        &[Phdr::load(0, BASE, u64::MAX, u64::MAX, PF_R | PF_X)],
        &exit_code(0),
    )
}

/// Two PT_LOADs whose memory ranges overlap by a page.
pub fn overlapping_loads() -> Vec<u8> {
    let eh = Ehdr::exec(BASE + code_offset(2), 2);
    let a = Phdr::load(0, BASE, u64::MAX, 0x2000, PF_R | PF_X);
    let b = Phdr::load(0, BASE + 0x1000, u64::MAX, 0x2000, PF_R | PF_W);
    assemble(eh, &[a, b], &exit_code(0))
}

/// A PT_LOAD with p_filesz > p_memsz.
pub fn filesz_over_memsz() -> Vec<u8> {
    let eh = Ehdr::exec(BASE + code_offset(1), 1);
    assemble(
        eh,
        &[Phdr::load(0, BASE, u64::MAX, 64, PF_R | PF_X)],
        &exit_code(0),
    )
}
