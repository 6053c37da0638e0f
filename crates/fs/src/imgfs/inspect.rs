//! `inspect`: the header and the tree, like `ls -lR`. Walks with an explicit stack, bounded
//! depth and a visited set, so a damaged image ends in an error, not a loop.

use std::io::Write;

use super::error::{hex, Fault, ImageError};
use super::format::{FileType, MAX_DEPTH};
use super::reader::{Attrs, Image, Ino, Timespec};

/// An error of `inspect`: the image is damaged, or the output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("writing the listing: {0}")]
    Output(#[from] std::io::Error),
}

/// The `ls -l` mode string of `mode`, e.g. `-rwsr-xr-x`.
pub fn mode_string(file_type: FileType, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(file_type.ls_char());
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special =
        |x: u32, special: u32, lower: char, upper: char| match (mode & x != 0, mode & special != 0)
        {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

/// `YYYY-MM-DD HH:MM:SS.nnnnnnnnn` in UTC.
pub fn format_time(t: Timespec) -> String {
    let days = t.sec.div_euclid(86400);
    let secs = t.sec.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:09}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        t.nsec
    )
}

/// Linux's `major` and `minor` of a `dev_t`.
pub fn dev_major_minor(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (major, minor)
}

fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Prints the header of `image` to `out`.
pub fn print_header(image: &Image, out: &mut dyn Write) -> std::io::Result<()> {
    let h = image.header();
    writeln!(out, "image {}", image.path().display())?;
    writeln!(
        out,
        "  version {}, page size {}, byte order little-endian, features compat {:#x} incompat {:#x}",
        h.version, h.page_size, h.features_compat, h.features_incompat
    )?;
    writeln!(
        out,
        "  image size {:#x} ({} bytes)",
        h.image_size, h.image_size
    )?;
    writeln!(
        out,
        "  data      {:#x}+{:#x}, {} extents",
        h.data_offset, h.data_size, h.extent_count
    )?;
    writeln!(
        out,
        "  metadata  {:#x}+{:#x}: inodes {:#x} x{}, entries {:#x} x{}, xattrs {:#x} x{}, extents {:#x} x{}, strings {:#x}+{:#x}",
        h.metadata_offset,
        h.metadata_size,
        h.inode_table_offset,
        h.inode_count,
        h.entry_table_offset,
        h.entry_count,
        h.xattr_table_offset,
        h.xattr_count,
        h.extent_table_offset,
        h.extent_count,
        h.string_table_offset,
        h.string_table_size
    )?;
    writeln!(out, "  metadata sha256 {}", hex(&h.metadata_sha256))?;
    writeln!(out, "  header sha256   {}", hex(&h.header_sha256))?;
    Ok(())
}

fn line(image: &Image, a: &Attrs, name: &[u8]) -> Result<String, ImageError> {
    let size = match a.file_type {
        FileType::CharDevice | FileType::BlockDevice => {
            let (ma, mi) = dev_major_minor(a.rdev);
            format!("{ma}, {mi}")
        }
        _ => a.size.to_string(),
    };
    let mut s = format!(
        "{:>8} {} {:>3} {:>5} {:>5} {:>10} {} {}",
        a.ino,
        mode_string(a.file_type, a.mode),
        a.nlink,
        a.uid,
        a.gid,
        size,
        format_time(a.mtime),
        show(name)
    );
    if a.file_type == FileType::Symlink {
        s.push_str(" -> ");
        s.push_str(&show(image.readlink(a.ino)?));
    }
    if a.opaque {
        s.push_str(" [opaque]");
    }
    if a.implied {
        s.push_str(" [implied]");
    }
    let mut names = Vec::new();
    for x in image.xattrs(a.ino)? {
        names.push(show(x?.0));
    }
    if !names.is_empty() {
        s.push_str(&format!(" [xattrs: {}]", names.join(", ")));
    }
    Ok(s)
}

/// Prints the header and the tree of `image` to `out`, like `ls -lR`: each directory's
/// path, then one line per entry (inode, mode, links, uid, gid, size or `major, minor`,
/// mtime, name, `-> target`, and `[whiteout]`, `[opaque]`, `[xattrs: ...]` markers).
pub fn inspect(image: &Image, out: &mut dyn Write) -> Result<(), InspectError> {
    print_header(image, out)?;
    let count = usize::try_from(image.inode_count())
        .map_err(|_| image.err(Fault::Header("too many inodes".into())))?;
    let mut visited = vec![false; count + 1];
    let mut stack: Vec<(Ino, Vec<u8>, usize)> = vec![(image.root(), b"/".to_vec(), 0)];
    while let Some((dir, path, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(image
                .err(Fault::Structure(format!(
                    "{}: deeper than {MAX_DEPTH} directories",
                    show(&path)
                )))
                .into());
        }
        match visited.get_mut(dir as usize) {
            Some(v) if !*v => *v = true,
            _ => {
                return Err(image
                    .err(Fault::Structure(format!(
                        "{}: directory inode {dir} reached a second time (a cycle)",
                        show(&path)
                    )))
                    .into())
            }
        }
        writeln!(out, "\n{}:", show(&path))?;
        let a = image.attrs(dir)?;
        writeln!(out, "{}", line(image, &a, b".")?)?;
        let mut subdirs = Vec::new();
        for e in image.read_dir(dir)? {
            let e = e?;
            if e.whiteout {
                writeln!(
                    out,
                    "{:>8} {:10} {:>3} {:>5} {:>5} {:>10} {:29} {} [whiteout]",
                    "-",
                    "c---------",
                    "-",
                    "-",
                    "-",
                    "0, 0",
                    "-",
                    show(e.name)
                )?;
                continue;
            }
            let a = image.attrs(e.ino)?;
            writeln!(out, "{}", line(image, &a, e.name)?)?;
            if a.file_type == FileType::Directory {
                let mut p = path.clone();
                if p != b"/" {
                    p.push(b'/');
                }
                p.extend_from_slice(e.name);
                subdirs.push((e.ino, p, depth + 1));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(mode_string(FileType::Regular, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileType::Regular, 0o6644), "-rwSr-Sr--");
        assert_eq!(mode_string(FileType::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileType::Directory, 0o1770), "drwxrwx--T");
        assert_eq!(mode_string(FileType::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(FileType::CharDevice, 0), "c---------");
    }

    #[test]
    fn times() {
        let t = |sec, nsec| format_time(Timespec { sec, nsec });
        assert_eq!(t(0, 0), "1970-01-01 00:00:00.000000000");
        assert_eq!(t(-1, 999_999_999), "1969-12-31 23:59:59.999999999");
        assert_eq!(t(951_782_400, 5), "2000-02-29 00:00:00.000000005");
        assert_eq!(t(4_102_444_800, 0), "2100-01-01 00:00:00.000000000");
    }

    #[test]
    fn devices() {
        assert_eq!(dev_major_minor(libc::makedev(1, 3)), (1, 3));
        assert_eq!(dev_major_minor(libc::makedev(259, 70000)), (259, 70000));
    }
}
