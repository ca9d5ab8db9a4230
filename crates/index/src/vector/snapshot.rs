//! On-disk snapshots of the vector part, switched atomically.
//!
//! Layout under the vector directory:
//! `CURRENT` (one line: the live snapshot's name) and `snap-<seq>/` holding
//! `ann.usearch` (the graph), `meta.bin` (see `meta.rs`) and `vectors.f32`
//! (every vector, little-endian, in meta order). A snapshot is written to
//! `snap-<seq>.tmp/`, every file fsynced, the directory renamed, and only then
//! `CURRENT` replaced by write-fsync-rename; a crash at any moment leaves the
//! previous `CURRENT` and its complete snapshot. Older snapshots are removed
//! only after the switch.
//! Owns: file names, the write/fsync/rename protocol, reading a snapshot back.
//! Must never: modify the snapshot `CURRENT` points to, or let `CURRENT` point
//! to a snapshot that is not fully on disk.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::IndexError;
use crate::vector::meta::{self, Header, Meta};
use crate::vector::store::VectorState;

const CURRENT: &str = "CURRENT";
const ANN_FILE: &str = "ann.usearch";
const META_FILE: &str = "meta.bin";
const VECTORS_FILE: &str = "vectors.f32";
const PREFIX: &str = "snap-";
const TMP_SUFFIX: &str = ".tmp";

/// Floats converted per write/read call when streaming the vectors file.
const CHUNK_FLOATS: usize = 1 << 16;

fn io(context: String) -> impl FnOnce(std::io::Error) -> IndexError {
    move |e| IndexError::io(context, e)
}

pub(crate) fn snapshot_name(seq: u64) -> String {
    format!("{PREFIX}{seq:020}")
}

pub(crate) fn seq_of(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?.parse().ok()
}

/// The name of the live snapshot, if any.
pub(crate) fn current(dir: &Path) -> Result<Option<String>, IndexError> {
    let path = dir.join(CURRENT);
    match fs::read_to_string(&path) {
        Ok(s) => {
            let name = s.trim().to_owned();
            if seq_of(&name).is_none() {
                return Err(IndexError::Corrupt(format!(
                    "{} names no snapshot",
                    path.display()
                )));
            }
            Ok(Some(name))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IndexError::io(format!("reading {}", path.display()), e)),
    }
}

fn path_str(path: &Path) -> Result<&str, IndexError> {
    path.to_str()
        .ok_or_else(|| IndexError::Vector(format!("path {} is not UTF-8", path.display())))
}

fn sync_file(path: &Path) -> Result<(), IndexError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(format!("syncing {}", path.display())))
}

fn sync_dir(path: &Path) -> Result<(), IndexError> {
    // Directory fsync makes renames durable; on platforms without it the
    // open fails and there is nothing more to do.
    match File::open(path) {
        Ok(f) => f
            .sync_all()
            .map_err(io(format!("syncing {}", path.display()))),
        Err(_) => Ok(()),
    }
}

/// Writes a complete snapshot named after `seq` and makes it the live one.
pub(crate) fn write(
    dir: &Path,
    seq: u64,
    ann: &usearch::Index,
    state: &VectorState,
    header: &Header,
) -> Result<(), IndexError> {
    fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let name = snapshot_name(seq);
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(format!("clearing {}", tmp.display())))?;
    }
    fs::create_dir_all(&tmp).map_err(io(format!("creating {}", tmp.display())))?;

    let ann_path = tmp.join(ANN_FILE);
    ann.save(path_str(&ann_path)?)
        .map_err(|e| IndexError::Vector(format!("saving graph: {e}")))?;
    sync_file(&ann_path)?;

    let meta_bytes = meta::encode(
        header,
        state.partitions().iter().map(|p| {
            (
                p.tenant.as_str(),
                p.scope.as_str(),
                p.ids
                    .iter()
                    .map(|&id| (id, state.key_of(id).unwrap_or_default())),
            )
        }),
    );
    write_file(&tmp.join(META_FILE), |w| w.write_all(&meta_bytes))?;
    write_file(&tmp.join(VECTORS_FILE), |w| {
        let mut buf = Vec::with_capacity(CHUNK_FLOATS * 4);
        for part in state.partitions() {
            for chunk in part.data.chunks(CHUNK_FLOATS) {
                buf.clear();
                for x in chunk {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                w.write_all(&buf)?;
            }
        }
        Ok(())
    })?;
    sync_dir(&tmp)?;

    let final_path = dir.join(&name);
    if final_path.exists() {
        fs::remove_dir_all(&final_path)
            .map_err(io(format!("clearing {}", final_path.display())))?;
    }
    fs::rename(&tmp, &final_path).map_err(io(format!("renaming {}", tmp.display())))?;
    sync_dir(dir)?;

    let current_tmp = dir.join(format!("{CURRENT}{TMP_SUFFIX}"));
    write_file(&current_tmp, |w| writeln!(w, "{name}"))?;
    fs::rename(&current_tmp, dir.join(CURRENT))
        .map_err(io(format!("renaming {}", current_tmp.display())))?;
    sync_dir(dir)?;
    Ok(())
}

fn write_file(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), IndexError> {
    let context = format!("writing {}", path.display());
    let file = File::create(path).map_err(io(context.clone()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    body(&mut w).map_err(io(context.clone()))?;
    let file = w
        .into_inner()
        .map_err(|e| IndexError::io(context.clone(), e.into_error()))?;
    file.sync_all().map_err(io(context))
}

/// A snapshot read back: its meta, its graph file and a reader of its vectors.
pub(crate) struct Loaded {
    pub(crate) meta: Meta,
    pub(crate) ann_path: PathBuf,
    vectors: BufReader<File>,
    vectors_len: u64,
}

pub(crate) fn open(dir: &Path, name: &str) -> Result<Loaded, IndexError> {
    let snap = dir.join(name);
    let meta_path = snap.join(META_FILE);
    let bytes = fs::read(&meta_path).map_err(io(format!("reading {}", meta_path.display())))?;
    let meta = meta::decode(&bytes)?;
    let vectors_path = snap.join(VECTORS_FILE);
    let file =
        File::open(&vectors_path).map_err(io(format!("opening {}", vectors_path.display())))?;
    let vectors_len = file
        .metadata()
        .map_err(io(format!("reading {}", vectors_path.display())))?
        .len();
    Ok(Loaded {
        meta,
        ann_path: snap.join(ANN_FILE),
        vectors: BufReader::with_capacity(1 << 20, file),
        vectors_len,
    })
}

impl Loaded {
    pub(crate) fn ann_path_str(&self) -> Result<&str, IndexError> {
        path_str(&self.ann_path)
    }

    /// Rebuilds the bookkeeping and exact store from meta + vectors file.
    pub(crate) fn read_state(&mut self) -> Result<VectorState, IndexError> {
        let dims = self.meta.dims;
        let total: usize = self.meta.partitions.iter().map(|p| p.entries.len()).sum();
        let expected = (total as u64) * (dims as u64) * 4;
        if expected != self.vectors_len {
            return Err(IndexError::Corrupt(format!(
                "vector snapshot holds {} bytes of vectors, meta expects {expected}",
                self.vectors_len
            )));
        }
        let mut state = VectorState::new(dims);
        state.watermark = self.meta.watermark;
        let mut vector = vec![0.0f32; dims];
        let mut raw = vec![0u8; dims * 4];
        for part in &self.meta.partitions {
            for (id, key) in &part.entries {
                self.vectors
                    .read_exact(&mut raw)
                    .map_err(io("reading vectors".to_owned()))?;
                for (x, b) in vector.iter_mut().zip(raw.chunks_exact(4)) {
                    *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
                if *id >= self.meta.next_id || state.id_of(key).is_some() {
                    return Err(IndexError::Corrupt(
                        "vector snapshot has duplicate or out-of-range ids".into(),
                    ));
                }
                state.insert(*id, key, &part.tenant, &part.scope, &vector);
            }
        }
        Ok(state)
    }
}

/// Removes every snapshot and temporary except `keep`.
pub(crate) fn cleanup(dir: &Path, keep: Option<&str>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale_snapshot = name.starts_with(PREFIX) && Some(name) != keep;
        let stale_tmp = name.ends_with(TMP_SUFFIX);
        if stale_snapshot || stale_tmp {
            let path = entry.path();
            let result = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            if let Err(e) = result {
                tracing::warn!(path = %path.display(), error = %e, "could not remove a stale vector snapshot");
            }
        }
    }
}

/// Forgets every snapshot: `CURRENT` goes first (one atomic unlink), so a
/// crash half-way leaves an empty vector part, never a half-deleted one.
pub(crate) fn clear(dir: &Path) -> Result<(), IndexError> {
    let current = dir.join(CURRENT);
    match fs::remove_file(&current) {
        Ok(()) => sync_dir(dir)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(IndexError::io(format!("removing {}", current.display()), e)),
    }
    cleanup(dir, None);
    Ok(())
}
