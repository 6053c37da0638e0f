//! Builds the merged index from a stack of layers, applying the OCI rules once so the
//! sandbox never has to walk layers.
//!
//! For each merged directory (breadth first from the root, children in name order) the
//! layers' instances of it are listed from the top down, and each name is decided by its
//! topmost occurrence:
//! - a whiteout hides the name below;
//! - a non-directory is the answer, hiding whatever lies below (a directory included);
//! - a directory merges with the directories of the same name below it, down to the first
//!   layer where the name is a whiteout or a non-directory (which ends the directory: OCI
//!   layers applied in order would have removed it) or an opaque directory (included, then
//!   nothing below).
//!
//! A merged directory's attributes (and xattrs, and so its inode number) come from the
//! topmost of its instances that a layer really has, not one that is there only because a
//! deeper path needed it (`IMPLIED`, made-up mode 0755 and owner 0); from the topmost
//! instance when all are implied. This is what applying the layers in order gives: a
//! tarball's `a/b` without `a/` leaves an existing `a` as it was.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::index::{DirRecord, EntryRecord, LayerRecord, NlinkRecord, Tables, DT_DIR};
use super::ContainerFsError;
use crate::imgfs::{FileType, Image, Ino};

/// A directory waiting for its entries: its instances (top first), its parent's index, and
/// the instance giving its attributes.
type Pending = (Vec<(u32, Ino)>, u32, (u32, Ino));

/// What the topmost occurrence of a name decided.
enum Slot {
    Hidden,
    File {
        layer: u32,
        ino: Ino,
        d_type: u8,
    },
    /// The directory's instances, top first; `closed` once nothing below may merge.
    /// `attr`: the topmost instance not implied, looked for below an opaque instance too
    /// (an opaque marker in an implied directory clears its contents, not its attributes)
    /// until a whiteout or a non-directory ends the name (`attr_done`).
    Dir {
        instances: Vec<(u32, Ino)>,
        closed: bool,
        attr: Option<(u32, Ino)>,
        attr_done: bool,
    },
}

fn d_type(t: FileType) -> u8 {
    crate::imgfs::vfs::vfs_type(t).dirent_type()
}

/// The merged tree of `layers` (bottom first) as index tables.
pub fn merge(layers: &[Image]) -> Result<Tables, ContainerFsError> {
    let mut t = Tables::default();
    for img in layers {
        let h = img.header();
        t.layers.push(LayerRecord {
            image_size: h.image_size,
            inode_count: h.inode_count,
            header_sha256: h.header_sha256,
        });
    }
    let top = layers.len() as u32 - 1;
    // The root: every layer's root from the top down, to the first opaque one; its
    // attributes from the topmost root that is not implied.
    let mut root = Vec::new();
    for l in (0..=top).rev() {
        let img = &layers[l as usize];
        root.push((l, img.root()));
        if img.is_opaque(img.root())? {
            break;
        }
    }
    let mut root_attr = root[0];
    for l in (0..=top).rev() {
        let img = &layers[l as usize];
        if !img.attrs(img.root())?.implied {
            root_attr = (l, img.root());
            break;
        }
    }
    // Directories waiting for their entries, in index order: (instances, parent, the
    // instance giving the attributes).
    let mut pending: Vec<Pending> = vec![(root, 0, root_attr)];
    // Non-directories named more than once or fewer times than their layer's count.
    let mut links: HashMap<(u32, Ino), u32> = HashMap::new();
    // Layers are verified before they are merged; this also ends a walk of a layer whose
    // directories form a cycle.
    let mut seen: HashSet<(u32, Ino)> = HashSet::new();
    let mut d = 0usize;
    while d < pending.len() {
        let (instances, parent, (top_layer, top_ino)) = std::mem::take(&mut pending[d]);
        for &(layer, dir) in &instances {
            if !seen.insert((layer, dir)) {
                return Err(ContainerFsError::Layer(layers[layer as usize].err(
                    crate::imgfs::Fault::Structure(format!("directory inode {dir} reached twice")),
                )));
            }
        }
        let mut slots: BTreeMap<Vec<u8>, Slot> = BTreeMap::new();
        for &(layer, dir) in &instances {
            let img = &layers[layer as usize];
            for e in img.read_dir(dir)? {
                let e = e?;
                // A directory instance: (whether opaque, whether implied).
                let dir_flags = match e.file_type {
                    Some(FileType::Directory) => {
                        let a = img.attrs(e.ino)?;
                        if a.file_type != FileType::Directory {
                            return Err(ContainerFsError::Layer(
                                img.err(crate::imgfs::Fault::NotDirectory(u64::from(e.ino))),
                            ));
                        }
                        Some((a.opaque, a.implied))
                    }
                    _ => None,
                };
                match slots.get_mut(e.name) {
                    None => {
                        let slot = match (e.file_type, dir_flags) {
                            (None, _) => Slot::Hidden,
                            (Some(_), Some((opaque, implied))) => {
                                let attr = (!implied).then_some((layer, e.ino));
                                Slot::Dir {
                                    instances: vec![(layer, e.ino)],
                                    closed: opaque,
                                    attr,
                                    attr_done: attr.is_some(),
                                }
                            }
                            (Some(ft), None) => Slot::File {
                                layer,
                                ino: e.ino,
                                d_type: d_type(ft),
                            },
                        };
                        slots.insert(e.name.to_vec(), slot);
                    }
                    Some(Slot::Dir {
                        instances,
                        closed,
                        attr,
                        attr_done,
                    }) => match dir_flags {
                        Some((opaque, implied)) => {
                            if !*closed {
                                instances.push((layer, e.ino));
                                *closed = opaque;
                            }
                            if !*attr_done && !implied {
                                *attr = Some((layer, e.ino));
                                *attr_done = true;
                            }
                        }
                        None => {
                            *closed = true;
                            *attr_done = true;
                        }
                    },
                    Some(_) => {}
                }
            }
        }
        let first_entry = t.entries.len() as u32;
        let mut subdirs = 0u32;
        for (name, slot) in slots {
            let (layer, target, dt) = match slot {
                Slot::Hidden => continue,
                Slot::File { layer, ino, d_type } => {
                    *links.entry((layer, ino)).or_insert(0) += 1;
                    (layer, ino, d_type)
                }
                Slot::Dir {
                    instances, attr, ..
                } => {
                    let index = u32::try_from(pending.len()).map_err(|_| too_big("directories"))?;
                    let attr = attr.unwrap_or(instances[0]);
                    pending.push((instances, d as u32, attr));
                    subdirs += 1;
                    (attr.0, index, DT_DIR)
                }
            };
            let name_offset =
                u32::try_from(t.strings.len()).map_err(|_| too_big("the string table"))?;
            t.strings.extend_from_slice(&name);
            t.entries.push(EntryRecord {
                name_offset,
                name_len: name.len() as u16,
                d_type: dt,
                layer,
                target,
            });
        }
        if t.entries.len() > u32::MAX as usize {
            return Err(too_big("entries"));
        }
        t.dirs.push(DirRecord {
            layer: top_layer,
            ino: top_ino,
            parent,
            first_entry,
            entry_count: t.entries.len() as u32 - first_entry,
            nlink: 2 + subdirs,
        });
        d += 1;
    }
    // Link counts: a layer's count includes names an upper layer hides.
    for ((layer, ino), named) in links {
        let stored = layers[layer as usize].attrs(ino)?.nlink;
        if stored != named {
            t.nlinks.push(NlinkRecord {
                layer,
                ino,
                nlink: named,
            });
        }
    }
    t.nlinks.sort();
    Ok(t)
}

fn too_big(what: &str) -> ContainerFsError {
    ContainerFsError::Usage(format!("the merged tree has too many {what} for an index"))
}
