//! Deterministic mutations of seed inputs, for the stable runner: bit flips, byte and
//! length-field overwrites with boundary values, truncations, deletions, insertions,
//! duplications, splices from other seeds, dictionary tokens, and for JSON documents
//! changes to the parsed tree (a value replaced by another type, a boundary number, a
//! long string, deep nesting). The same seed always gives the same sequence.

use serde_json::Value;

/// Boundary values written over length and offset fields.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    16,
    0x7f,
    0x80,
    0xff,
    0x100,
    0xfff,
    0x1000,
    0x1001,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
];

/// Tokens inserted or written over the input (tar octal fields, JSON pieces, paths).
const DICT: &[&[u8]] = &[
    b"77777777777\0",
    b"00000000000\0",
    b"\x80\0\0\0\0\0\0\x10\0\0\0\0",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    b"ustar\0",
    b"ustar  \0",
    b"././@LongLink",
    b"../",
    b"/..",
    b"//",
    b".wh.",
    b".wh..wh..opq",
    b"SCHILY.xattr.",
    b"30 mtime=1650000000.5\n",
    b"99999999999999999999 path=x\n",
    b"\x7fELF",
    b"null",
    b"[]",
    b"{}",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"",
    b"\"sha512:00\"",
    b"\"\\u0000\"",
    b"\"mediaType\"",
    b"\"size\"",
    b"\"digest\"",
    b"\"application/vnd.oci.image.index.v1+json\"",
    b"\"application/vnd.oci.image.manifest.v1+json\"",
    b"\"application/vnd.docker.distribution.manifest.list.v2+json\"",
];

/// The input a mutation may produce at most (bigger inputs are cut).
pub const MAX_LEN: usize = 4 << 20;

pub struct Mutator {
    rng: fastrand::Rng,
}

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng
    }

    /// An offset into `len` bytes: half the time in the first 4 KiB (where headers are).
    fn offset(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        if self.rng.bool() {
            self.rng.usize(..len.min(4096))
        } else {
            self.rng.usize(..len)
        }
    }

    /// Applies one to four byte-level mutations to `data`; `others` are other seeds to
    /// splice from.
    pub fn mutate(&mut self, data: &mut Vec<u8>, others: &[Vec<u8>]) {
        let n = 1 + self.rng.usize(..4);
        for _ in 0..n {
            self.one(data, others);
        }
        data.truncate(MAX_LEN);
    }

    fn one(&mut self, data: &mut Vec<u8>, others: &[Vec<u8>]) {
        let len = data.len();
        match self.rng.u8(..12) {
            // A bit flip.
            0 | 1 if len > 0 => {
                let at = self.offset(len);
                data[at] ^= 1 << self.rng.u8(..8);
            }
            // A byte set to a boundary or random value.
            2 if len > 0 => {
                let at = self.offset(len);
                data[at] = match self.rng.u8(..4) {
                    0 => 0,
                    1 => 0xff,
                    2 => 0x7f,
                    _ => self.rng.u8(..),
                };
            }
            // A length field: 2, 4 or 8 bytes, little or big endian, a boundary value,
            // the input's length, or off by one from what is there.
            3 | 4 if len > 0 => {
                let width = [2usize, 4, 8][self.rng.usize(..3)];
                let at = self.offset(len);
                let end = (at + width).min(len);
                let mut v = match self.rng.u8(..4) {
                    0 => len as u64,
                    1 => {
                        let mut cur = [0u8; 8];
                        cur[..end - at].copy_from_slice(&data[at..end]);
                        u64::from_le_bytes(cur).wrapping_add(if self.rng.bool() {
                            1
                        } else {
                            u64::MAX
                        })
                    }
                    _ => INTERESTING[self.rng.usize(..INTERESTING.len())],
                };
                if width < 8 && self.rng.bool() {
                    v &= (1u64 << (width * 8)) - 1;
                }
                let bytes = if self.rng.bool() {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let src = if bytes[0] == 0 && width < 8 && self.rng.bool() {
                    &bytes[8 - width..]
                } else {
                    &bytes[..width]
                };
                data[at..end].copy_from_slice(&src[..end - at]);
            }
            // A truncation.
            5 if len > 0 => {
                let at = self.rng.usize(..len);
                data.truncate(at);
            }
            // A deletion of a range.
            6 if len > 1 => {
                let at = self.offset(len);
                let n = self.rng.usize(1..=(len - at).min(512));
                data.drain(at..at + n);
            }
            // An insertion of random or repeated bytes.
            7 => {
                let at = self.offset(len + 1).min(len);
                let n = self.rng.usize(1..=64);
                let fill: Vec<u8> = if self.rng.bool() {
                    vec![self.rng.u8(..); n]
                } else {
                    (0..n).map(|_| self.rng.u8(..)).collect()
                };
                data.splice(at..at, fill);
            }
            // A range duplicated in place.
            8 if len > 0 => {
                let at = self.offset(len);
                let n = self.rng.usize(1..=(len - at).min(1024));
                let chunk = data[at..at + n].to_vec();
                let to = self.rng.usize(..=len);
                data.splice(to..to, chunk);
            }
            // A splice: a piece of another seed written over or into this one.
            9 if !others.is_empty() => {
                let other = &others[self.rng.usize(..others.len())];
                if other.is_empty() {
                    return;
                }
                let from = self.offset(other.len());
                let n = self.rng.usize(1..=(other.len() - from).min(2048));
                let chunk = &other[from..from + n];
                let at = self.rng.usize(..=len);
                if self.rng.bool() {
                    let end = (at + n).min(len);
                    data.splice(at..end, chunk.iter().copied());
                } else {
                    data.splice(at..at, chunk.iter().copied());
                }
            }
            // A dictionary token, over or into the input.
            _ => {
                let tok = DICT[self.rng.usize(..DICT.len())];
                let at = self.offset(len + 1).min(len);
                if self.rng.bool() {
                    let end = (at + tok.len()).min(len);
                    data.splice(at..end, tok.iter().copied());
                } else {
                    data.splice(at..at, tok.iter().copied());
                }
            }
        }
    }

    /// Mutates the JSON document `doc` as a tree (if it parses) and serializes it again;
    /// otherwise, or one time in four, mutates its bytes.
    pub fn mutate_json(&mut self, doc: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        let parsed: Option<Value> = serde_json::from_slice(doc).ok();
        match parsed {
            Some(mut v) if self.rng.u8(..4) != 0 => {
                for _ in 0..1 + self.rng.usize(..3) {
                    let count = count_nodes(&v);
                    let pick = self.rng.usize(..count.max(1));
                    let replacement = self.value(&v, pick);
                    replace_node(&mut v, pick, &mut Some(replacement));
                }
                serde_json::to_vec(&v).expect("serialize a JSON value")
            }
            _ => {
                let mut d = doc.to_vec();
                self.mutate(&mut d, others);
                d
            }
        }
    }

    /// A value to put in place of node `pick` of `v`.
    fn value(&mut self, v: &Value, pick: usize) -> Value {
        match self.rng.u8(..12) {
            0 => Value::Null,
            1 => Value::Bool(self.rng.bool()),
            2 => json_number(
                INTERESTING[self.rng.usize(..INTERESTING.len())],
                self.rng.bool(),
            ),
            3 => serde_json::json!(-1),
            4 => serde_json::json!(1.5e300),
            5 => Value::String(String::new()),
            6 => Value::String("x".repeat(self.rng.usize(1..100_000))),
            7 => Value::Array(vec![]),
            8 => serde_json::json!({}),
            9 => {
                // Deep nesting.
                let mut x = Value::Null;
                for _ in 0..self.rng.usize(1..200) {
                    x = Value::Array(vec![x]);
                }
                x
            }
            10 => {
                // Another node of the same document (a type confusion that still looks right).
                let count = count_nodes(v);
                let other = self.rng.usize(..count.max(1));
                nth_node(v, other).cloned().unwrap_or(Value::Null)
            }
            _ => {
                // The same node, duplicated inside an array, or a string changed a little.
                match nth_node(v, pick) {
                    Some(Value::String(s)) => {
                        let mut b = s.clone().into_bytes();
                        self.mutate(&mut b, &[]);
                        Value::String(String::from_utf8_lossy(&b).into_owned())
                    }
                    Some(Value::Array(a)) => {
                        let mut a = a.clone();
                        if let Some(first) = a.first().cloned() {
                            for _ in 0..self.rng.usize(1..5) {
                                a.push(first.clone());
                            }
                        } else {
                            a.push(Value::Null);
                        }
                        Value::Array(a)
                    }
                    Some(Value::Object(o)) => {
                        let mut o = o.clone();
                        let keys: Vec<String> = o.keys().cloned().collect();
                        if !keys.is_empty() {
                            o.remove(&keys[self.rng.usize(..keys.len())]);
                        }
                        Value::Object(o)
                    }
                    Some(other) => other.clone(),
                    None => Value::Null,
                }
            }
        }
    }
}

fn json_number(v: u64, negative: bool) -> Value {
    if negative && v <= i64::MAX as u64 {
        serde_json::json!(-(v as i64))
    } else {
        serde_json::json!(v)
    }
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

/// Node `n` of `v` in pre-order.
fn nth_node(v: &Value, n: usize) -> Option<&Value> {
    fn walk<'a>(v: &'a Value, n: &mut usize) -> Option<&'a Value> {
        if *n == 0 {
            return Some(v);
        }
        *n -= 1;
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(o) => Box::new(o.values()),
            _ => return None,
        };
        for c in children {
            if let Some(found) = walk(c, n) {
                return Some(found);
            }
        }
        None
    }
    let mut n = n;
    walk(v, &mut n)
}

/// Replaces node `n` of `v` (pre-order) with `with`.
fn replace_node(v: &mut Value, n: usize, with: &mut Option<Value>) {
    fn walk(v: &mut Value, n: &mut usize, with: &mut Option<Value>) -> bool {
        if *n == 0 {
            if let Some(w) = with.take() {
                *v = w;
            }
            return true;
        }
        *n -= 1;
        match v {
            Value::Array(a) => a.iter_mut().any(|c| walk(c, n, with)),
            Value::Object(o) => o.values_mut().any(|c| walk(c, n, with)),
            _ => false,
        }
    }
    let mut n = n;
    walk(v, &mut n, with);
}

/// Recomputes the checksum of every 512-byte block of `data` that looks like a tar
/// header (a `ustar` magic), so that a mutated header reaches the parser's field checks.
pub fn fix_tar_checksums(data: &mut [u8]) {
    for block in data.chunks_exact_mut(512) {
        if &block[257..262] != b"ustar" {
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(s.as_bytes());
    }
}

fn hex_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if !from.is_empty() && hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// A member of a tar: path, type, link target, content.
type TarMember = (Vec<u8>, tar::EntryType, Vec<u8>, Vec<u8>);

/// A tar archive as its members, or None if it does not read.
fn members(tar_bytes: &[u8]) -> Option<Vec<TarMember>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let mut a = tar::Archive::new(tar_bytes);
    for e in a.entries().ok()? {
        let mut e = e.ok()?;
        let path = e.path_bytes().into_owned();
        let kind = e.header().entry_type();
        let link = e
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).ok()?;
        out.push((path, kind, link, data));
    }
    Some(out)
}

impl Mutator {
    /// A structure-aware mutation of a tar of JSON and blob members (a `docker save`
    /// archive): one member's content is mutated (as JSON if it is JSON) and, where its
    /// name holds its digest, renamed to the new digest everywhere it is named, so that
    /// the change reaches the parsers instead of a digest check. None if `seed` is not a
    /// readable tar.
    pub fn mutate_tar_members(&mut self, seed: &[u8], others: &[Vec<u8>]) -> Option<Vec<u8>> {
        let mut ms = members(seed)?;
        if ms.is_empty() {
            return None;
        }
        let i = self.rng.usize(..ms.len());
        let old = ms[i].3.clone();
        let new = if serde_json::from_slice::<Value>(&old).is_ok() {
            self.mutate_json(&old, others)
        } else {
            let mut d = old.clone();
            self.mutate(&mut d, others);
            d
        };
        let (old_hex, new_hex) = (hex_of(&old), hex_of(&new));
        ms[i].3 = new;
        for m in ms.iter_mut() {
            m.0 = replace_all(&m.0, old_hex.as_bytes(), new_hex.as_bytes());
            if m.1 == tar::EntryType::Regular {
                m.3 = replace_all(&m.3, old_hex.as_bytes(), new_hex.as_bytes());
            }
        }
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, link, data) in ms {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            let path = String::from_utf8_lossy(&path).into_owned();
            if kind.is_symlink() || kind.is_hard_link() {
                let link = String::from_utf8_lossy(&link).into_owned();
                b.append_link(&mut h, &path, &link).ok()?;
            } else {
                b.append_data(&mut h, &path, &data[..]).ok()?;
            }
        }
        b.into_inner().ok()
    }

    /// A mutant of `seed` for `target`, with what helps the mutation reach that parser:
    /// tar checksums fixed, layers recompressed, JSON documents mutated as trees.
    pub fn mutant(&mut self, target: &str, seed: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
        match target {
            "oci_layout" if !seed.is_empty() => {
                let mut out = vec![if self.rng.u8(..8) == 0 {
                    self.rng.u8(..)
                } else {
                    seed[0]
                }];
                out.extend(self.mutate_json(&seed[1..], others));
                out
            }
            "docker_archive" if self.rng.bool() => match self.mutate_tar_members(seed, others) {
                Some(m) => m,
                None => {
                    let mut d = seed.to_vec();
                    self.mutate(&mut d, others);
                    d
                }
            },
            "layer_tar" | "docker_archive" => {
                let mut d = seed.to_vec();
                self.mutate(&mut d, others);
                if self.rng.u8(..4) != 0 {
                    fix_tar_checksums(&mut d);
                }
                if target == "layer_tar" && d.get(257..262) == Some(b"ustar") {
                    match self.rng.u8(..6) {
                        0 => {
                            use std::io::Write as _;
                            let mut gz = flate2::write::GzEncoder::new(
                                Vec::new(),
                                flate2::Compression::fast(),
                            );
                            gz.write_all(&d).expect("gzip in memory");
                            d = gz.finish().expect("gzip in memory");
                        }
                        1 => d = zstd::encode_all(&d[..], 1).expect("zstd in memory"),
                        _ => {}
                    }
                }
                d
            }
            _ => {
                let mut d = seed.to_vec();
                self.mutate(&mut d, others);
                d
            }
        }
    }
}
