//! A reader between a layer's (decompressed) tar stream and the `tar` crate that bounds
//! what the crate holds in memory. The crate reads a GNU long name or long link member
//! (`L`, `K`) and a PAX extension member (`x`) whole into a `Vec`, as large as the member's
//! size field says: in a compressed layer a few kilobytes of zstd can make that 1 GiB or
//! more. This reader follows the archive's framing as the crate does (headers, PAX `size`
//! overrides, GNU sparse extension blocks) and fails the read of any such member over
//! [`MAX_EXTENSION`] with an error naming the member. Once it cannot follow the framing
//! (a bad checksum, a size field that does not parse, the end-of-archive block) it stops
//! looking: the crate itself refuses what comes next, or reads no further.

use std::io::{self, Read};

/// The largest GNU long name/link or PAX extension member accepted (real ones hold a
/// path or a few records: hundreds of bytes).
pub const MAX_EXTENSION: u64 = 1 << 20;

const BLOCK: u64 = 512;

enum State {
    /// Collecting a header block.
    Header { buf: Box<[u8; 512]>, filled: usize },
    /// Collecting a GNU sparse extension block; `then` bytes of data follow the last one.
    SparseExt {
        buf: Box<[u8; 512]>,
        filled: usize,
        then: u64,
    },
    /// Passing `left` bytes of member data (padded to the block); `capture` collects a PAX
    /// member's records.
    Data { left: u64, capture: Option<Vec<u8>> },
    /// No longer following the framing.
    Done,
}

pub struct TarGuard<R> {
    inner: R,
    state: State,
    /// The records of the last PAX member, for the next member's `size`.
    pax: Option<Vec<u8>>,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        TarGuard {
            inner,
            state: State::Header {
                buf: Box::new([0; 512]),
                filled: 0,
            },
            pax: None,
        }
    }

    /// Moves past the header `h` (complete): the next state.
    fn after_header(&mut self, h: &[u8; 512]) -> io::Result<State> {
        if h.iter().all(|&b| b == 0) {
            // The end of the archive for the crate (it does not skip zero blocks here).
            return Ok(State::Done);
        }
        let header = tar::Header::from_byte_slice(h);
        let sum: u32 = h[..148]
            .iter()
            .chain(&h[156..])
            .map(|&b| u32::from(b))
            .sum::<u32>()
            + 8 * 32;
        if header.cksum().ok() != Some(sum) {
            return Ok(State::Done);
        }
        let kind = header.entry_type();
        let is_extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let Ok(mut size) = header.entry_size() else {
            return Ok(State::Done);
        };
        if !is_extension {
            // A PAX `size` record overrides the header's size of the member it describes.
            if let Some(pax) = self.pax.take() {
                if let Some(s) = pax_size(&pax) {
                    size = s;
                }
            }
        }
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let held_whole = recognized
            && (kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions());
        if held_whole && size > MAX_EXTENSION {
            let what = if kind.is_pax_local_extensions() {
                "PAX extended header"
            } else if kind.is_gnu_longname() {
                "GNU long name"
            } else {
                "GNU long link name"
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what} member of {size} bytes: over the limit of {MAX_EXTENSION} bytes"),
            ));
        }
        if !held_whole {
            // The crate hands this member to its caller: a PAX member read before it no
            // longer applies to anything after it.
            self.pax = None;
        }
        let padded = size
            .checked_add(BLOCK - 1)
            .map(|s| s & !(BLOCK - 1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "member size overflows"))?;
        let capture = (recognized && kind.is_pax_local_extensions()).then(Vec::new);
        if kind.is_gnu_sparse() && header.as_gnu().is_some_and(|g| g.is_extended()) {
            return Ok(State::SparseExt {
                buf: Box::new([0; 512]),
                filled: 0,
                then: padded,
            });
        }
        Ok(data_state(padded, capture))
    }

    /// Follows the framing over `bytes`, which were just read.
    fn track(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Header { buf, filled } | State::SparseExt { buf, filled, .. } => {
                    let n = (512 - *filled).min(bytes.len());
                    buf[*filled..*filled + n].copy_from_slice(&bytes[..n]);
                    *filled += n;
                    bytes = &bytes[n..];
                    if *filled < 512 {
                        continue;
                    }
                    let state = std::mem::replace(&mut self.state, State::Done);
                    self.state = match state {
                        State::Header { buf, .. } => self.after_header(&buf)?,
                        State::SparseExt { buf, then, .. } => {
                            let mut ext = tar::GnuExtSparseHeader::new();
                            ext.as_mut_bytes().copy_from_slice(&buf[..]);
                            if ext.is_extended() {
                                State::SparseExt {
                                    buf,
                                    filled: 0,
                                    then,
                                }
                            } else {
                                data_state(then, None)
                            }
                        }
                        other => other,
                    };
                }
                State::Data { left, capture } => {
                    let n = (*left).min(bytes.len() as u64) as usize;
                    if let Some(c) = capture {
                        c.extend_from_slice(&bytes[..n]);
                    }
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        if let State::Data {
                            capture: Some(mut c),
                            ..
                        } = std::mem::replace(&mut self.state, State::Done)
                        {
                            // The padding is not part of the records.
                            while c.last() == Some(&0) {
                                c.pop();
                            }
                            self.pax = Some(c);
                        }
                        self.state = header_state();
                    }
                }
            }
        }
        Ok(())
    }
}

fn header_state() -> State {
    State::Header {
        buf: Box::new([0; 512]),
        filled: 0,
    }
}

fn data_state(padded: u64, capture: Option<Vec<u8>>) -> State {
    if padded == 0 {
        header_state()
    } else {
        State::Data {
            left: padded,
            capture,
        }
    }
}

/// The `size` record of PAX records, as the tar crate reads it.
fn pax_size(records: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(records) {
        let ext = ext.ok()?;
        if ext.key() != Ok("size") {
            continue;
        }
        return ext.value().ok()?.parse().ok();
    }
    None
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.track(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u8, size: u64, gnu: bool) -> Vec<u8> {
        let mut h = if gnu {
            tar::Header::new_gnu()
        } else {
            tar::Header::new_ustar()
        };
        h.set_path("x").unwrap();
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_size(size);
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    fn read_all(bytes: &[u8]) -> io::Result<usize> {
        let mut g = TarGuard::new(bytes);
        let mut out = Vec::new();
        g.read_to_end(&mut out)
    }

    #[test]
    fn extension_members_over_the_limit_are_refused() {
        for kind in [b'L', b'K', b'x'] {
            let mut t = header(kind, MAX_EXTENSION + 1, kind != b'x');
            t.resize(t.len() + 4096, 0);
            let e = read_all(&t).unwrap_err();
            assert!(e.to_string().contains("over the limit"), "{e}");
        }
        // At the limit, and a global PAX header (not held whole by the crate), pass.
        let mut t = header(b'x', MAX_EXTENSION, false);
        t.resize(t.len() + MAX_EXTENSION as usize + 1024, 0);
        read_all(&t).unwrap();
        let mut t = header(b'g', 10 * MAX_EXTENSION, false);
        t.resize(t.len() + 4096, 0);
        read_all(&t).unwrap();
    }

    #[test]
    fn a_real_archive_passes_through_unchanged() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "a/".repeat(80) + "f", &b"abc"[..])
            .unwrap();
        b.append_pax_extensions([("size", &b"5"[..])]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "g", &b""[..]).unwrap();
        let mut raw = b.into_inner().unwrap();
        // The PAX size (5) frames the next member's data, not its header size (0): put five
        // bytes there, padded, then an oversized long name that must still be found.
        let end = raw.len() - 1024;
        raw.truncate(end);
        raw.extend_from_slice(&[b'z'; 512]);
        let big = header(b'L', MAX_EXTENSION * 4, true);
        raw.extend_from_slice(&big);
        raw.resize(raw.len() + 2048, 0);
        let e = read_all(&raw).unwrap_err();
        assert!(e.to_string().contains("GNU long name"), "{e}");
    }
}
