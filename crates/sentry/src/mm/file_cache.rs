//! Pages of files that private mappings read, kept across mappings and processes.
//!
//! A file that lends its pages (ImgFS) is mapped without a copy. Any other file (hostfs
//! above all: `runsc do`'s root, an OCI bundle's rootfs, volumes) had each page a private
//! mapping touched read from the host and copied into a fresh memory-file page, again in
//! every process: every dynamic program copied the pages of ld.so, libc and its own text it
//! ran, and the host had to back each new page (a host fault, a zeroing) and later take it
//! back (a hole punched, a TLB shootdown on every CPU running the sandbox). This cache keeps
//! the page read for (file, page index, file version), as Linux's page cache does: the next
//! mapping of it, in any process, maps the same memory-file page, copy-on-write (the cache
//! holds a reference of its own, so a mapping never writes a cached page in place). A page
//! the host already backs also lets KVM's shadow MMU prefetch its neighbours.
//!
//! Coherence. A cached page is the file's content at the version it was read: the file's
//! size, modification and change times. A mapping that faults finds the page only if the
//! file still has that version (one stat per fault, which the fault needs anyway for the end
//! of the file), so a file changed by a writer outside the sandbox, or replaced, is read
//! again. The sandbox's own writes (write(2) and its kin, a shared mapping written back)
//! drop the pages they touch at once, so they need no time to pass. A change made outside
//! the sandbox within one tick of the host's file-time clock, keeping the size, can go
//! unseen until the file changes again; Linux's own private mappings of a file changed
//! underneath them are unspecified by POSIX.
//!
//! Memory. Cached pages count as the sandbox's memory. The cache holds at most
//! [`MAX_CACHE_FRACTION`] of the memory limit (and [`MAX_CACHE_BYTES`]), dropping the least
//! recently used files first, and gives everything back when an allocation fails.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use fs::vfs::Inode;
use platform::{Gpa, MemoryFile, PAGE_SIZE};

/// The most the cache holds, whatever the memory limit.
const MAX_CACHE_BYTES: u64 = 64 << 20;
/// The most the cache holds, as a fraction (1/N) of the sandbox's memory limit.
const MAX_CACHE_FRACTION: u64 = 16;

/// What a file's content is known by: a cached page is valid only while the file has the
/// version it was read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    pub fn of(st: &fs::Stat) -> Self {
        Version {
            size: st.size,
            mtime: st.mtime,
            ctime: st.ctime,
        }
    }
}

/// The cached pages of one file.
struct CachedFile {
    /// Kept alive so that its identity (the address of the inode) can't be reused by
    /// another file while its pages are here.
    _inode: Arc<dyn Inode>,
    mem: Arc<MemoryFile>,
    version: Version,
    /// File page index -> memory-file page (one reference held by the cache).
    pages: HashMap<u64, Gpa>,
    /// When it was last used (the cache's clock): the least recent goes first.
    used: u64,
}

#[derive(Default)]
struct Cache {
    /// Keyed by the inode's identity and the memory file (a process may hold several
    /// sandboxes' in tests), in that order: a write looks up its file's entries as a range.
    files: BTreeMap<Key, CachedFile>,
    pages: u64,
    clock: u64,
}

type Key = (usize, usize);

impl Cache {
    /// Drops a file's entry and gives its pages back.
    fn remove(&mut self, key: &Key) {
        if let Some(file) = self.files.remove(key) {
            self.pages -= file.pages.len() as u64;
            let pages: Vec<Gpa> = file.pages.into_values().collect();
            file.mem.free_pages(&pages);
        }
    }

    /// The keys of `file`'s entries (one per memory file).
    fn keys_of(&self, file: usize) -> Vec<Key> {
        self.files
            .range((file, 0)..=(file, usize::MAX))
            .map(|(&k, _)| k)
            .collect()
    }

    /// The clock's next tick.
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

fn cache() -> MutexGuard<'static, Cache> {
    static CACHE: std::sync::OnceLock<Mutex<Cache>> = std::sync::OnceLock::new();
    CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn key(mem: &Arc<MemoryFile>, inode: &Arc<dyn Inode>) -> Key {
    (fs::vfs::file_identity(inode), Arc::as_ptr(mem) as usize)
}

/// The page cached for page `index` of `inode` at `version`, with a reference taken for
/// the caller (who frees it as any page it maps), or None.
pub fn lookup(
    mem: &Arc<MemoryFile>,
    inode: &Arc<dyn Inode>,
    version: Version,
    index: u64,
) -> Option<Gpa> {
    let mut c = cache();
    let key = key(mem, inode);
    let now = c.tick();
    let file = c.files.get_mut(&key)?;
    if file.version != version {
        // The file changed since its pages were read: they are out of date.
        c.remove(&key);
        return None;
    }
    file.used = now;
    let gpa = *file.pages.get(&index)?;
    mem.share_page(gpa);
    Some(gpa)
}

/// Keeps `gpa`, just filled with page `index` of `inode` at `version`, for later mappings
/// (taking a reference of the cache's own).
pub fn insert(
    mem: &Arc<MemoryFile>,
    inode: &Arc<dyn Inode>,
    version: Version,
    index: u64,
    gpa: Gpa,
) {
    let limit = (mem.limit() / MAX_CACHE_FRACTION).min(MAX_CACHE_BYTES) / PAGE_SIZE;
    if limit == 0 {
        return;
    }
    let mut c = cache();
    let key = key(mem, inode);
    let now = c.tick();
    if c.files.get(&key).is_some_and(|f| f.version != version) {
        // Read at another version than the one cached (the file changed in between): the
        // older pages go.
        c.remove(&key);
    }
    let file = c.files.entry(key).or_insert_with(|| CachedFile {
        _inode: inode.clone(),
        mem: mem.clone(),
        version,
        pages: HashMap::new(),
        used: now,
    });
    file.used = now;
    if file.pages.contains_key(&index) {
        return;
    }
    mem.share_page(gpa);
    file.pages.insert(index, gpa);
    c.pages += 1;
    if c.pages > limit {
        shrink(&mut c, limit - limit / 4);
    }
}

/// Drops least recently used files until at most `target` pages are cached.
fn shrink(c: &mut Cache, target: u64) {
    while c.pages > target {
        let Some(key) = c.files.iter().min_by_key(|(_, f)| f.used).map(|(&k, _)| k) else {
            break;
        };
        c.remove(&key);
    }
}

/// Drops the cached pages of `[offset, offset+len)` of the file known by `file`
/// (`fs::vfs::file_identity`), whose content the sandbox just changed. Every write(2) of
/// the sandbox comes here: a lookup of the file's entries, nothing more when it has none.
pub fn invalidate(file: usize, offset: u64, len: u64) {
    if len == 0 {
        return;
    }
    let mut c = cache();
    let first = offset / PAGE_SIZE;
    let last = offset.saturating_add(len - 1) / PAGE_SIZE;
    let mut dropped = 0;
    for (_, f) in c.files.range_mut((file, 0)..=(file, usize::MAX)) {
        let mut gone = Vec::new();
        f.pages.retain(|i, &mut gpa| {
            let keep = !(first..=last).contains(i);
            if !keep {
                gone.push(gpa);
            }
            keep
        });
        dropped += gone.len() as u64;
        f.mem.free_pages(&gone);
    }
    c.pages -= dropped;
}

/// Drops every cached page of the file known by `file` (`fs::vfs::file_identity`): its
/// content changed other than through a write (a truncation, fallocate).
pub fn forget(file: usize) {
    let mut c = cache();
    for key in c.keys_of(file) {
        c.remove(&key);
    }
}

/// Gives back every page cached from `mem` (an allocation from it failed). True if any
/// page was dropped.
pub fn drop_all(mem: &Arc<MemoryFile>) -> bool {
    let mut c = cache();
    let id = Arc::as_ptr(mem) as usize;
    let keys: Vec<Key> = c.files.keys().copied().filter(|&(_, m)| m == id).collect();
    let before = c.pages;
    for key in keys {
        c.remove(&key);
    }
    c.pages < before
}

#[cfg(test)]
mod tests {
    use super::*;
    use fs::vfs::{NewNode, Owner};

    /// The cache is one per process: the tests take turns.
    fn serial() -> MutexGuard<'static, ()> {
        static TURN: Mutex<()> = Mutex::new(());
        TURN.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file() -> Arc<dyn Inode> {
        let tmp = fs::tmpfs::Tmpfs::new(7);
        let owner = Owner { uid: 0, gid: 0 };
        tmp.root()
            .create(b"f", NewNode::Regular, 0o644, owner)
            .unwrap()
    }

    fn version(size: i64) -> Version {
        Version {
            size,
            mtime: (1, 0),
            ctime: (1, 0),
        }
    }

    /// A page is found for its file, index and version only; the cache holds a reference
    /// of its own (a mapper's free doesn't free the page); a write of the range, a new
    /// version, and a failed allocation each give pages back.
    #[test]
    fn cached_pages_are_found_at_their_version_and_given_back() {
        let _turn = serial();
        let mem = Arc::new(MemoryFile::new(64 * PAGE_SIZE).unwrap());
        let (f, g) = (file(), file());
        let page = mem.alloc_page().unwrap();
        insert(&mem, &f, version(10), 3, page);
        assert_eq!(mem.owners(page), 2);
        mem.free_pages(&[page]);
        assert_eq!(mem.owners(page), 1, "the cache keeps the page");
        assert_eq!(lookup(&mem, &f, version(10), 3), Some(page));
        mem.free_pages(&[page]);
        assert_eq!(lookup(&mem, &f, version(10), 4), None);
        assert_eq!(lookup(&mem, &g, version(10), 3), None);
        // A write elsewhere in the file keeps it; one over it drops it.
        invalidate(fs::vfs::file_identity(&f), 0, PAGE_SIZE);
        assert_eq!(lookup(&mem, &f, version(10), 3), Some(page));
        mem.free_pages(&[page]);
        invalidate(fs::vfs::file_identity(&f), 3 * PAGE_SIZE + 7, 1);
        assert_eq!(lookup(&mem, &f, version(10), 3), None);
        assert_eq!(mem.used_bytes(), 0, "the page went back");
        // Another version of the file: the older pages go.
        let page = mem.alloc_page().unwrap();
        insert(&mem, &f, version(10), 0, page);
        mem.free_pages(&[page]);
        assert_eq!(lookup(&mem, &f, version(11), 0), None);
        assert_eq!(mem.used_bytes(), 0);
        // Out of memory: everything cached from that memory file goes.
        let page = mem.alloc_page().unwrap();
        insert(&mem, &g, version(1), 0, page);
        mem.free_pages(&[page]);
        assert!(drop_all(&mem));
        assert!(!drop_all(&mem));
        assert_eq!(mem.used_bytes(), 0);
    }

    /// The cache stays under its share of the memory limit, dropping the least recently
    /// used file first.
    #[test]
    fn the_cache_keeps_to_its_share_of_the_limit() {
        let _turn = serial();
        let limit_pages = 64 * MAX_CACHE_FRACTION;
        let mem = Arc::new(MemoryFile::new(limit_pages * PAGE_SIZE).unwrap());
        let (old, new) = (file(), file());
        for i in 0..32 {
            let p = mem.alloc_page().unwrap();
            insert(&mem, &old, version(1), i, p);
            mem.free_pages(&[p]);
        }
        for i in 0..40 {
            let p = mem.alloc_page().unwrap();
            insert(&mem, &new, version(1), i, p);
            mem.free_pages(&[p]);
        }
        // 72 pages asked for, 64 allowed: the older file went as a whole.
        assert!(mem.used_bytes() <= 64 * PAGE_SIZE);
        assert_eq!(lookup(&mem, &old, version(1), 0), None);
        let p = lookup(&mem, &new, version(1), 39).expect("the recent file stays");
        mem.free_pages(&[p]);
        drop_all(&mem);
    }
}
