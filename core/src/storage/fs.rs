//! Objects as files, in s3db.js's FileSystemClient layout, written atomically.
//!
//! A record is two files, the body `<root>/<key>` and the sidecar `<root>/<key>.meta.json`,
//! so it cannot appear with one rename. A write goes through a journal instead:
//!
//! 1. Under the key's stripe lock, the new body and sidecar are written to
//!    `<root>/.s3db/<stripe>.body` and `.meta`.
//! 2. `<root>/.s3db/<stripe>.journal` (key, operation, nonce) is written: this is the commit.
//! 3. Body, then sidecar are renamed into place (a delete removes sidecar, then body), and the
//!    journal is removed.
//!
//! A reader waits for no lock. While a journal names its key, it reads the journal's view (staged
//! file if still there, else the target); otherwise it reads sidecar and body and accepts them
//! only if no journal for the key appeared meanwhile and the sidecar is still the same file.
//! A killed writer's journal is rolled forward by the next holder of the stripe lock (a later
//! write, a reader finding the lock free, or [`FileStore::recover`], run at open); staged files
//! without a journal are rolled back. Nothing in `.s3db/` has a `.meta.json` name, so
//! s3db.js's listing skips it, and an object exists only with its sidecar, as for s3db.js.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::memory::page_of;
use super::{
    check_condition, content_etag, etags_equal, ListPage, Metadata, Object, ObjectHead,
    ObjectStore, PutRequest, StoreError, StoreResult, Timeouts, WriteCondition,
};

const SIDECAR: &str = ".meta.json";
const STATE_DIR: &str = ".s3db";
/// Names earlier versions used at the root and next to records.
const LEGACY_LOCK: &str = ".s3db.lock";
const LEGACY_TEMP: &str = ".s3db-tmp-";
const STRIPES: usize = 256;
/// Marks sidecars whose etag is [`content_etag`] of body, metadata and content type.
const ETAG_SCHEME: &str = "s3db-content-md5";
const READ_ROUNDS: usize = 64;

static LOCAL_LOCKS: [Mutex<()>; STRIPES] = [const { Mutex::new(()) }; STRIPES];

/// Objects as files under a root directory, laid out as s3db.js's FileSystemClient does:
/// the body at `<root>/<key>` and a `<key>.meta.json` sidecar. Conditional writes hold across
/// processes through one of 256 lock files chosen by the key's hash, so writers of other keys
/// proceed in parallel and a stalled process holds up at most the keys of its stripe.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: Arc<PathBuf>,
    fsync: bool,
    lock_wait_ms: Arc<AtomicU64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sidecar {
    metadata: Metadata,
    content_type: Option<String>,
    etag: String,
    last_modified: String,
    size: u64,
    content_length: u64,
    compressed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    etag_scheme: Option<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum JournalOp {
    Put,
    Delete,
}

#[derive(Serialize, Deserialize, Debug)]
struct Journal {
    op: JournalOp,
    key: String,
    nonce: u64,
}

/// The files of one lock stripe, under `<root>/.s3db/`.
struct Stripe {
    index: usize,
    lock: PathBuf,
    journal: PathBuf,
    body: PathBuf,
    meta: PathBuf,
}

struct StripeGuard {
    _file: File,
    _local: MutexGuard<'static, ()>,
}

enum Pending {
    None,
    Mine(Journal, Vec<u8>),
    Unreadable,
}

enum Read2 {
    Found(ObjectHead, Option<Vec<u8>>),
    /// Body and sidecar disagree: a write in flight (read again) or files changed by
    /// another program (after a few rounds, the body is taken as it is).
    Mismatch(ObjectHead, Vec<u8>, StoreError),
    Absent,
    Retry,
}

/// Rounds a body that disagrees with its sidecar is read again before it is taken as it is.
const MISMATCH_ROUNDS: usize = 4;

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Fatal(format!("file store: {e}"))
}

fn read_opt(path: &Path) -> StoreResult<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(io_err(e)),
    }
}

fn remove_opt(path: &Path) -> StoreResult<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == IoKind::NotFound => Ok(()),
        Err(e) => Err(io_err(e)),
    }
}

fn write_file(path: &Path, data: &[u8], sync: bool) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(data)?;
    if sync {
        f.sync_all()?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> StoreResult<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)
}

/// Tells files apart: a rename puts a new file at the path.
#[cfg(unix)]
fn file_id(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(meta: &fs::Metadata) -> (u64, u64) {
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    (meta.len(), modified)
}

fn sidecar_of(path: &Path) -> PathBuf {
    let mut side = path.as_os_str().to_owned();
    side.push(SIDECAR);
    PathBuf::from(side)
}

/// FNV-1a: stable across processes and versions, unlike `DefaultHasher`.
fn stripe_index(key: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

fn parse_head(bytes: &[u8], path: &Path) -> StoreResult<(Sidecar, ObjectHead)> {
    let side: Sidecar = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Fatal(format!("corrupt sidecar {}: {e}", path.display())))?;
    let last_modified = chrono::DateTime::parse_from_rfc3339(&side.last_modified)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0);
    let head = ObjectHead {
        metadata: side.metadata.clone(),
        content_type: side.content_type.clone(),
        etag: format!("\"{}\"", side.etag.trim_matches('"')),
        size: side.size,
        last_modified,
    };
    Ok((side, head))
}

/// Checks a body against its sidecar: always the size; the etag when it is ours (digest of
/// body, metadata and content type) or s3db.js's (MD5 of the body). Other etags are opaque.
fn verify(side: &Sidecar, body: &[u8], path: &Path) -> StoreResult<()> {
    let fail = |why: String| Err(StoreError::Integrity(format!("{}: {why}", path.display())));
    if side.size != body.len() as u64 {
        return fail(format!(
            "sidecar says {} bytes, the body has {}",
            side.size,
            body.len()
        ));
    }
    if side.etag_scheme.as_deref() == Some(ETAG_SCHEME) {
        let want = content_etag(body, &side.metadata, side.content_type.as_deref());
        if !etags_equal(&want, &side.etag) {
            return fail(format!("etag {} does not match the content", side.etag));
        }
    }
    Ok(())
}

impl FileStore {
    pub fn open(root: &Path) -> crate::Result<FileStore> {
        let root = std::path::absolute(root)
            .map_err(|e| crate::Error::invalid(format!("file store path: {e}")))?;
        let storage = |e: std::io::Error| {
            crate::Error::new(
                crate::ErrorKind::Storage,
                format!("file store {}: {e}", root.display()),
            )
        };
        fs::create_dir_all(root.join(STATE_DIR)).map_err(storage)?;
        let store = FileStore {
            root: Arc::new(root.clone()),
            fsync: false,
            lock_wait_ms: Arc::new(AtomicU64::new(10_000)),
        };
        store
            .recover()
            .map_err(|e| crate::Error::new(crate::ErrorKind::Storage, e.to_string()))?;
        Ok(store)
    }

    /// Syncs every write to disk (files and directories) before it returns, so that it
    /// survives a power cut, not only a killed process.
    pub fn with_fsync(mut self, on: bool) -> Self {
        self.fsync = on;
        self
    }

    /// Rolls forward the writes of dead writers and removes their staged files. Stripes held
    /// by a live process are left to it. Runs at [`FileStore::open`].
    pub fn recover(&self) -> StoreResult<()> {
        let state = self.root.join(STATE_DIR);
        let entries = match fs::read_dir(&state) {
            Ok(e) => e,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(e)),
        };
        let mut dirty = BTreeSet::new();
        for entry in entries {
            let name = entry.map_err(io_err)?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some((stripe, ext)) = name.split_once('.') {
                if ext != "lock" {
                    if let Ok(i) = usize::from_str_radix(stripe, 16) {
                        dirty.insert(i);
                    }
                }
            }
        }
        for i in dirty.into_iter().filter(|i| *i < STRIPES) {
            let st = self.stripe_at(i);
            if let Some(_guard) = self.try_lock_stripe(&st)? {
                self.recover_stripe(&st, true)?;
            }
        }
        Ok(())
    }

    fn path_of(&self, key: &str) -> StoreResult<PathBuf> {
        let bad = key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|s| s == ".." || s == "." || s.is_empty())
            || key.ends_with(SIDECAR)
            || key.contains(LEGACY_TEMP)
            || key == LEGACY_LOCK
            || key == STATE_DIR
            || key.starts_with(&format!("{STATE_DIR}/"));
        if bad {
            return Err(StoreError::Fatal(format!(
                "file store cannot hold key {key:?}"
            )));
        }
        Ok(self.root.join(key))
    }

    fn stripe_at(&self, index: usize) -> Stripe {
        let dir = self.root.join(STATE_DIR);
        let name = |ext: &str| dir.join(format!("{index:02x}.{ext}"));
        Stripe {
            index,
            lock: name("lock"),
            journal: name("journal"),
            body: name("body"),
            meta: name("meta"),
        }
    }

    fn stripe(&self, key: &str) -> Stripe {
        self.stripe_at(stripe_index(key))
    }

    fn open_lock_file(&self, st: &Stripe) -> StoreResult<File> {
        let open = || {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&st.lock)
        };
        match open() {
            Err(e) if e.kind() == IoKind::NotFound => {
                fs::create_dir_all(self.root.join(STATE_DIR)).map_err(io_err)?;
                open().map_err(io_err)
            }
            other => other.map_err(io_err),
        }
    }

    /// Takes the stripe lock, then finishes whatever a dead holder left. Gives up once the
    /// lock wait (half the request timeout) has passed since the call.
    fn lock_stripe(&self, st: &Stripe) -> StoreResult<StripeGuard> {
        let wait = Duration::from_millis(self.lock_wait_ms.load(Ordering::Relaxed));
        let deadline = Instant::now() + wait;
        let local = LOCAL_LOCKS[st.index]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let file = self.open_lock_file(st)?;
        let mut pause = Duration::from_micros(100);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::Transient(format!(
                        "file store: lock stripe {:02x} was held elsewhere for {} ms",
                        st.index,
                        wait.as_millis()
                    )))
                }
                Err(TryLockError::Error(e)) => return Err(io_err(e)),
            }
        }
        self.recover_stripe(st, false)?;
        Ok(StripeGuard {
            _file: file,
            _local: local,
        })
    }

    /// The stripe lock if nobody holds it.
    fn try_lock_stripe(&self, st: &Stripe) -> StoreResult<Option<StripeGuard>> {
        let Ok(local) = LOCAL_LOCKS[st.index].try_lock() else {
            return Ok(None);
        };
        let file = self.open_lock_file(st)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StripeGuard {
                _file: file,
                _local: local,
            })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(io_err(e)),
        }
    }

    /// With the stripe lock held: rolls a committed journal forward, or discards an
    /// unfinished one (and, when `staged`, staged files with no journal).
    fn recover_stripe(&self, st: &Stripe, staged: bool) -> StoreResult<()> {
        match read_opt(&st.journal)? {
            None if !staged => Ok(()),
            None => {
                remove_opt(&st.body)?;
                remove_opt(&st.meta)
            }
            Some(bytes) => match serde_json::from_slice::<Journal>(&bytes) {
                Ok(j) => {
                    tracing::debug!(key = %j.key, op = ?j.op, "file store: rolling forward");
                    self.roll_forward(st, &j)
                }
                Err(_) => {
                    remove_opt(&st.journal)?;
                    remove_opt(&st.body)?;
                    remove_opt(&st.meta)
                }
            },
        }
    }

    /// Steps 3 of a committed write: moves the staged files into place (or removes the
    /// record), then drops the journal.
    fn roll_forward(&self, st: &Stripe, j: &Journal) -> StoreResult<()> {
        let path = self.path_of(&j.key)?;
        let side = sidecar_of(&path);
        match j.op {
            JournalOp::Put => {
                self.move_into(&st.body, &path)?;
                self.move_into(&st.meta, &side)?;
            }
            JournalOp::Delete => {
                remove_opt(&side)?;
                remove_opt(&path)?;
            }
        }
        if self.fsync {
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
        }
        remove_opt(&st.journal)?;
        if j.op == JournalOp::Delete {
            self.remove_empty_parents(&path);
        }
        Ok(())
    }

    /// Renames a staged file onto its target, creating the directory (again, if a delete of
    /// another key removed it meanwhile). A staged file already moved is skipped.
    fn move_into(&self, staged: &Path, target: &Path) -> StoreResult<()> {
        for _ in 0..16 {
            match fs::rename(staged, target) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == IoKind::NotFound => {
                    if fs::symlink_metadata(staged).is_err() {
                        return Ok(());
                    }
                    if let Some(dir) = target.parent() {
                        fs::create_dir_all(dir).map_err(io_err)?;
                    }
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        Err(StoreError::Transient(format!(
            "file store: directory of {} keeps disappearing",
            target.display()
        )))
    }

    fn remove_empty_parents(&self, path: &Path) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root.as_path() || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    fn commit(&self, st: &Stripe, key: &str, op: JournalOp) -> StoreResult<()> {
        let journal = self.write_journal(st, key, op)?;
        self.roll_forward(st, &journal)
    }

    /// Step 2, the commit point.
    fn write_journal(&self, st: &Stripe, key: &str, op: JournalOp) -> StoreResult<Journal> {
        let journal = Journal {
            op,
            key: key.to_string(),
            nonce: rand::random(),
        };
        let bytes = serde_json::to_vec(&journal).map_err(|e| StoreError::Fatal(e.to_string()))?;
        write_file(&st.journal, &bytes, self.fsync).map_err(io_err)?;
        if self.fsync {
            sync_dir(&self.root.join(STATE_DIR))?;
        }
        Ok(journal)
    }

    /// Writes a record with the stripe lock held.
    fn write_object(
        &self,
        st: &Stripe,
        key: &str,
        body: &[u8],
        metadata: Metadata,
        content_type: Option<String>,
    ) -> StoreResult<String> {
        let etag = self.stage(st, body, metadata, content_type)?;
        self.commit(st, key, JournalOp::Put)?;
        Ok(etag)
    }

    /// Step 1: the new body and sidecar, staged in the stripe's files.
    fn stage(
        &self,
        st: &Stripe,
        body: &[u8],
        metadata: Metadata,
        content_type: Option<String>,
    ) -> StoreResult<String> {
        let content_type = content_type.unwrap_or_else(|| "application/octet-stream".into());
        let etag = content_etag(body, &metadata, Some(&content_type));
        let side = Sidecar {
            metadata,
            content_type: Some(content_type),
            etag: etag.trim_matches('"').to_string(),
            last_modified: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            size: body.len() as u64,
            content_length: body.len() as u64,
            compressed: false,
            etag_scheme: Some(ETAG_SCHEME.into()),
        };
        let side_json =
            serde_json::to_vec_pretty(&side).map_err(|e| StoreError::Fatal(e.to_string()))?;
        let staged = write_file(&st.body, body, self.fsync)
            .and_then(|()| write_file(&st.meta, &side_json, self.fsync));
        if let Err(e) = staged {
            let _ = fs::remove_file(&st.body);
            let _ = fs::remove_file(&st.meta);
            return Err(io_err(e));
        }
        Ok(etag)
    }

    /// The current head of a record, read with its stripe lock held (nothing in flight).
    fn locked_head(&self, path: &Path) -> StoreResult<Option<ObjectHead>> {
        let side = sidecar_of(path);
        match read_opt(&side)? {
            Some(bytes) => Ok(Some(parse_head(&bytes, &side)?.1)),
            None => Ok(None),
        }
    }

    fn pending(&self, st: &Stripe, key: &str) -> StoreResult<Pending> {
        let Some(bytes) = read_opt(&st.journal)? else {
            return Ok(Pending::None);
        };
        match serde_json::from_slice::<Journal>(&bytes) {
            Ok(j) if j.key == key => Ok(Pending::Mine(j, bytes)),
            Ok(_) => Ok(Pending::None),
            Err(_) => Ok(Pending::Unreadable),
        }
    }

    /// A record as a committed journal defines it, if the journal is unchanged afterwards.
    fn journal_view(
        &self,
        st: &Stripe,
        j: &Journal,
        j_bytes: &[u8],
        path: &Path,
        with_body: bool,
    ) -> StoreResult<Read2> {
        let side_path = sidecar_of(path);
        let (side, body) = match j.op {
            JournalOp::Delete => (None, None),
            JournalOp::Put => {
                let side = match read_opt(&st.meta)? {
                    Some(b) => Some(b),
                    None => read_opt(&side_path)?,
                };
                let body = match with_body {
                    false => None,
                    true => match read_opt(&st.body)? {
                        Some(b) => Some(b),
                        None => read_opt(path)?,
                    },
                };
                (side, body)
            }
        };
        if read_opt(&st.journal)?.as_deref() != Some(j_bytes) {
            return Ok(Read2::Retry);
        }
        self.found(side, body, &side_path, with_body)
    }

    fn found(
        &self,
        side: Option<Vec<u8>>,
        body: Option<Vec<u8>>,
        side_path: &Path,
        with_body: bool,
    ) -> StoreResult<Read2> {
        let Some(side) = side else {
            return Ok(Read2::Absent);
        };
        if with_body && body.is_none() {
            return Ok(Read2::Absent);
        }
        let (sidecar, head) = parse_head(&side, side_path)?;
        if let Some(body) = body {
            if let Err(e) = verify(&sidecar, &body, side_path) {
                return Ok(Read2::Mismatch(head, body, e));
            }
            return Ok(Read2::Found(head, Some(body)));
        }
        Ok(Read2::Found(head, None))
    }

    /// Reads a record without a lock (see the module comment).
    fn read_object(
        &self,
        key: &str,
        with_body: bool,
    ) -> StoreResult<Option<(ObjectHead, Option<Vec<u8>>)>> {
        let path = self.path_of(key)?;
        let side_path = sidecar_of(&path);
        let st = self.stripe(key);
        let mut mismatches = 0;
        for round in 0..READ_ROUNDS {
            if round > 0 {
                std::thread::sleep(Duration::from_micros(200 * round as u64));
            }
            let res = match self.pending(&st, key)? {
                Pending::Mine(j, bytes) => {
                    if let Some(_guard) = self.try_lock_stripe(&st)? {
                        self.recover_stripe(&st, false)?;
                        continue;
                    }
                    self.journal_view(&st, &j, &bytes, &path, with_body)?
                }
                Pending::Unreadable => {
                    if let Some(_guard) = self.try_lock_stripe(&st)? {
                        self.recover_stripe(&st, false)?;
                    }
                    continue;
                }
                Pending::None => self.read_plain(&st, key, &path, &side_path, with_body)?,
            };
            match res {
                Read2::Found(mut head, None) => {
                    // The body's own size: a sidecar can be stale (see `Mismatch`).
                    if let Ok(m) = fs::metadata(&path) {
                        head.size = m.len();
                    }
                    return Ok(Some((head, None)));
                }
                Read2::Found(head, body) => return Ok(Some((head, body))),
                Read2::Mismatch(mut head, body, why) => {
                    mismatches += 1;
                    if mismatches >= MISMATCH_ROUNDS {
                        tracing::warn!(key, error = %why, "file store: body and sidecar disagree; reading the body as it is");
                        head.size = body.len() as u64;
                        return Ok(Some((head, Some(body))));
                    }
                }
                Read2::Absent => return Ok(None),
                Read2::Retry => {}
            }
        }
        Err(StoreError::Transient(format!(
            "file store: {key} kept changing while being read"
        )))
    }

    fn read_plain(
        &self,
        st: &Stripe,
        key: &str,
        path: &Path,
        side_path: &Path,
        with_body: bool,
    ) -> StoreResult<Read2> {
        // The sidecar stays open until the end, so that its file id cannot be reused.
        let (side, id, _open) = match File::open(side_path) {
            Ok(mut f) => {
                let id = file_id(&f.metadata().map_err(io_err)?);
                let mut buf = Vec::new();
                f.read_to_end(&mut buf).map_err(io_err)?;
                (Some(buf), Some(id), Some(f))
            }
            Err(e) if e.kind() == IoKind::NotFound => (None, None, None),
            Err(e) => return Err(io_err(e)),
        };
        let body = match (with_body, &side) {
            (true, Some(_)) => read_opt(path)?,
            _ => None,
        };
        if !matches!(self.pending(st, key)?, Pending::None) {
            return Ok(Read2::Retry);
        }
        let id_now = match fs::metadata(side_path) {
            Ok(m) => Some(file_id(&m)),
            Err(e) if e.kind() == IoKind::NotFound => None,
            Err(e) => return Err(io_err(e)),
        };
        if id_now != id {
            return Ok(Read2::Retry);
        }
        self.found(side, body, side_path, with_body)
    }

    fn collect_keys(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let base = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if base.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(base)
        };
        let state = self.root.join(STATE_DIR);
        let mut keys = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == IoKind::NotFound || e.kind() == IoKind::NotADirectory => {
                    continue
                }
                Err(e) => return Err(io_err(e)),
            };
            let mut files = BTreeSet::new();
            for entry in entries {
                let entry = entry.map_err(io_err)?;
                let path = entry.path();
                if entry.file_type().map_err(io_err)?.is_dir() {
                    if path != state {
                        stack.push(path);
                    }
                } else if let Some(name) = entry.file_name().to_str() {
                    files.insert(name.to_string());
                }
            }
            for name in &files {
                if name.ends_with(SIDECAR)
                    || name.contains(LEGACY_TEMP)
                    || !files.contains(&format!("{name}{SIDECAR}"))
                {
                    continue;
                }
                let Ok(rel) = dir
                    .join(name)
                    .strip_prefix(self.root.as_path())
                    .map(Path::to_path_buf)
                else {
                    continue;
                };
                if let Some(key) = rel.to_str() {
                    if key.starts_with(prefix) && key != LEGACY_LOCK {
                        keys.insert(key.to_string());
                    }
                }
            }
        }
        // Committed writes not yet moved into place.
        let journals = match fs::read_dir(&state) {
            Ok(e) => e,
            Err(e) if e.kind() == IoKind::NotFound => return Ok(keys.into_iter().collect()),
            Err(e) => return Err(io_err(e)),
        };
        for entry in journals {
            let path = entry.map_err(io_err)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("journal") {
                continue;
            }
            let Some(bytes) = read_opt(&path)? else {
                continue;
            };
            if let Ok(j) = serde_json::from_slice::<Journal>(&bytes) {
                if j.key.starts_with(prefix) {
                    match j.op {
                        JournalOp::Put => keys.insert(j.key),
                        JournalOp::Delete => keys.remove(&j.key),
                    };
                }
            }
        }
        Ok(keys.into_iter().collect())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&FileStore) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || op(&this))
            .await
            .map_err(|e| StoreError::Fatal(format!("file store task: {e}")))?
    }
}

#[async_trait]
impl ObjectStore for FileStore {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        let key = key.to_string();
        self.blocking(move |s| match s.read_object(&key, true)? {
            Some((head, body)) => Ok(Object {
                head,
                body: Bytes::from(body.unwrap_or_default()),
            }),
            None => Err(StoreError::NotFound),
        })
        .await
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        let key = key.to_string();
        self.blocking(move |s| match s.read_object(&key, false)? {
            Some((head, _)) => Ok(head),
            None => Err(StoreError::NotFound),
        })
        .await
    }

    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        self.blocking(move |s| {
            let st = s.stripe(&key);
            let _guard = s.lock_stripe(&st)?;
            let current = s.locked_head(&path)?;
            check_condition(&req.condition, current.as_ref().map(|h| h.etag.as_str()))?;
            s.write_object(&st, &key, &req.body, req.metadata, req.content_type)
        })
        .await
    }

    async fn copy(
        &self,
        src: &str,
        dst: &str,
        metadata: Metadata,
        content_type: Option<String>,
        condition: WriteCondition,
    ) -> StoreResult<String> {
        let dst_path = self.path_of(dst)?;
        let (src, dst) = (src.to_string(), dst.to_string());
        self.blocking(move |s| {
            let (_, body) = s.read_object(&src, true)?.ok_or(StoreError::NotFound)?;
            let st = s.stripe(&dst);
            let _guard = s.lock_stripe(&st)?;
            let current = s.locked_head(&dst_path)?;
            check_condition(&condition, current.as_ref().map(|h| h.etag.as_str()))?;
            s.write_object(&st, &dst, &body.unwrap_or_default(), metadata, content_type)
        })
        .await
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        let path = self.path_of(key)?;
        let key = key.to_string();
        let if_match = if_match.map(str::to_string);
        self.blocking(move |s| {
            let st = s.stripe(&key);
            let _guard = s.lock_stripe(&st)?;
            let current = s.locked_head(&path)?;
            if let Some(want) = if_match {
                check_condition(
                    &WriteCondition::IfMatch(want),
                    current.as_ref().map(|h| h.etag.as_str()),
                )?;
            }
            if current.is_none() && fs::symlink_metadata(&path).is_err() {
                return Ok(());
            }
            s.commit(&st, &key, JournalOp::Delete)
        })
        .await
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        let mut failed = Vec::new();
        for k in keys {
            if let Err(e) = self.delete(k, None).await {
                failed.push((k.clone(), e));
            }
        }
        Ok(failed)
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: usize,
    ) -> StoreResult<ListPage> {
        let prefix = prefix.to_string();
        let after = continuation.map(str::to_string);
        let max = max_keys.max(1);
        self.blocking(move |s| {
            let keys = s.collect_keys(&prefix)?;
            let start = match &after {
                Some(a) => keys.partition_point(|k| k.as_str() <= a.as_str()),
                None => 0,
            };
            let page: Vec<String> = keys.into_iter().skip(start).take(max + 1).collect();
            Ok(page_of(page, max))
        })
        .await
    }

    fn set_timeouts(&self, timeouts: &Timeouts) {
        let wait = (timeouts.request / 2).max(Duration::from_millis(100));
        self.lock_wait_ms
            .store(wait.as_millis() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn req(body: &str, gen: u32) -> PutRequest {
        let mut metadata = Metadata::new();
        metadata.insert("gen".into(), gen.to_string());
        PutRequest {
            body: Bytes::from(body.to_string()),
            metadata,
            content_type: Some("application/json".into()),
            condition: WriteCondition::None,
        }
    }

    async fn read(s: &FileStore, key: &str) -> Option<(String, String)> {
        match s.get(key).await {
            Ok(o) => Some((
                String::from_utf8(o.body.to_vec()).unwrap(),
                o.head.metadata["gen"].clone(),
            )),
            Err(StoreError::NotFound) => None,
            Err(e) => panic!("{key}: {e}"),
        }
    }

    /// A file lock on the key's stripe, held as another process would hold it.
    fn hold(s: &FileStore, key: &str) -> File {
        let f = s.open_lock_file(&s.stripe(key)).unwrap();
        f.lock().unwrap();
        f
    }

    /// Leaves a write of `key` as a writer killed after step `steps` would (1: staged,
    /// 2: journal written, 3: body moved).
    fn killed_put(s: &FileStore, key: &str, body: &str, gen: u32, steps: u32) {
        let st = s.stripe(key);
        let r = req(body, gen);
        s.stage(&st, &r.body, r.metadata, r.content_type).unwrap();
        if steps >= 2 {
            s.write_journal(&st, key, JournalOp::Put).unwrap();
        }
        if steps >= 3 {
            s.move_into(&st.body, &s.root.join(key)).unwrap();
        }
    }

    fn state_files(s: &FileStore) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(s.root.join(STATE_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        names.sort();
        names
    }

    async fn keys(s: &FileStore, prefix: &str) -> Vec<String> {
        s.list(prefix, None, 1000).await.unwrap().keys
    }

    #[tokio::test]
    async fn records_keep_the_s3db_js_layout() {
        let (dir, s) = store();
        let etag = s.put("a/b", req("{\"x\":1}", 1)).await.unwrap();
        assert_eq!(fs::read(dir.path().join("a/b")).unwrap(), b"{\"x\":1}");
        let side: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.path().join("a/b.meta.json")).unwrap()).unwrap();
        assert_eq!(side["metadata"]["gen"], "1");
        assert_eq!(side["contentType"], "application/json");
        assert_eq!(side["size"], 7);
        assert_eq!(format!("\"{}\"", side["etag"].as_str().unwrap()), etag);
        assert!(state_files(&s).is_empty());
        assert_eq!(keys(&s, "").await, ["a/b"]);
    }

    #[tokio::test]
    async fn a_committed_write_of_a_dead_writer_is_read_then_rolled_forward() {
        for steps in [2, 3] {
            let (_dir, s) = store();
            s.put("k", req("old", 1)).await.unwrap();
            killed_put(&s, "k", "new", 2, steps);
            {
                // The lock is held, as if the writer were only stalled: readers see the
                // journal's view and leave it in place.
                let _held = hold(&s, "k");
                assert_eq!(read(&s, "k").await, Some(("new".into(), "2".into())));
                assert_eq!(s.head("k").await.unwrap().metadata["gen"], "2");
                let left = state_files(&s);
                assert!(
                    left.iter().any(|n| n.ends_with(".journal")),
                    "{steps} {left:?}"
                );
            }
            // Lock free: the writer is dead; the reader finishes its write.
            assert_eq!(read(&s, "k").await, Some(("new".into(), "2".into())));
            assert!(state_files(&s).is_empty(), "{:?}", state_files(&s));
            assert_eq!(fs::read(s.root.join("k")).unwrap(), b"new");
        }
    }

    #[tokio::test]
    async fn a_committed_create_is_listed_before_it_is_moved_into_place() {
        let (_dir, s) = store();
        killed_put(&s, "r/new", "v", 1, 2);
        let _held = hold(&s, "r/new");
        assert_eq!(keys(&s, "r/").await, ["r/new"]);
        assert_eq!(read(&s, "r/new").await, Some(("v".into(), "1".into())));
    }

    #[tokio::test]
    async fn staged_files_without_a_journal_are_rolled_back() {
        let (_dir, s) = store();
        s.put("k", req("old", 1)).await.unwrap();
        killed_put(&s, "k", "new", 2, 1);
        assert_eq!(read(&s, "k").await, Some(("old".into(), "1".into())));
        assert_eq!(keys(&s, "").await, ["k"]);
        assert_eq!(state_files(&s).len(), 2);
        s.recover().unwrap();
        assert!(state_files(&s).is_empty());
        assert_eq!(read(&s, "k").await, Some(("old".into(), "1".into())));
    }

    #[tokio::test]
    async fn the_next_writer_of_the_stripe_finishes_a_dead_writers_commit() {
        let (_dir, s) = store();
        killed_put(&s, "k", "new", 2, 3);
        s.put("k", req("newer", 3)).await.unwrap();
        assert_eq!(read(&s, "k").await, Some(("newer".into(), "3".into())));
        assert!(state_files(&s).is_empty());
    }

    #[tokio::test]
    async fn an_unfinished_journal_means_no_commit() {
        let (_dir, s) = store();
        s.put("k", req("old", 1)).await.unwrap();
        killed_put(&s, "k", "new", 2, 1);
        fs::write(&s.stripe("k").journal, b"{\"op\":\"pu").unwrap();
        assert_eq!(read(&s, "k").await, Some(("old".into(), "1".into())));
        assert!(state_files(&s).is_empty());
    }

    #[tokio::test]
    async fn a_killed_delete_is_finished() {
        let (dir, s) = store();
        s.put("d/k", req("v", 1)).await.unwrap();
        let st = s.stripe("d/k");
        s.write_journal(&st, "d/k", JournalOp::Delete).unwrap();
        fs::remove_file(dir.path().join("d/k.meta.json")).unwrap();
        assert_eq!(keys(&s, "").await, Vec::<String>::new());
        assert_eq!(read(&s, "d/k").await, None);
        assert!(state_files(&s).is_empty());
        assert!(!dir.path().join("d").exists());
    }

    #[tokio::test]
    async fn a_stalled_lock_holder_blocks_only_its_own_stripe() {
        let (_dir, s) = store();
        s.set_timeouts(&Timeouts {
            request: Duration::from_millis(300),
            ..Timeouts::default()
        });
        s.put("a", req("1", 1)).await.unwrap();
        let other = (0..100)
            .map(|i| format!("b{i}"))
            .find(|k| stripe_index(k) != stripe_index("a"))
            .unwrap();
        let _held = hold(&s, "a");
        let started = Instant::now();
        s.put(&other, req("2", 2)).await.unwrap();
        assert_eq!(read(&s, "a").await, Some(("1".into(), "1".into())));
        assert!(started.elapsed() < Duration::from_millis(100));
        let err = s.put("a", req("3", 3)).await.unwrap_err();
        assert!(matches!(err, StoreError::Transient(_)), "{err:?}");
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn listing_shows_records_only() {
        let (dir, s) = store();
        s.put("r/a", req("1", 1)).await.unwrap();
        fs::write(dir.path().join("r/orphan"), b"body without sidecar").unwrap();
        fs::write(dir.path().join("r/.s3db-tmp-1-a"), b"old temp").unwrap();
        fs::write(dir.path().join(".s3db.lock"), b"").unwrap();
        killed_put(&s, "r/b", "staged", 1, 1);
        assert_eq!(keys(&s, "").await, ["r/a"]);
        assert_eq!(read(&s, "r/orphan").await, None);
        assert!(s.put(".s3db/x", req("1", 1)).await.is_err());
    }

    #[tokio::test]
    async fn synced_writes_work_the_same() {
        let (dir, s) = store();
        let s = s.with_fsync(true);
        let etag = s.put("a/b", req("v", 1)).await.unwrap();
        assert_eq!(s.head("a/b").await.unwrap().etag, etag);
        s.delete("a/b", Some(&etag)).await.unwrap();
        assert_eq!(read(&s, "a/b").await, None);
        assert!(!dir.path().join("a").exists());
        assert!(state_files(&s).is_empty());
    }

    #[tokio::test]
    async fn a_body_changed_behind_the_stores_back_is_read_as_it_is() {
        let (dir, s) = store();
        let etag = s.put("k", req("hello", 1)).await.unwrap();
        fs::write(dir.path().join("k"), b"hellO").unwrap();
        let obj = s.get("k").await.unwrap();
        assert_eq!(&obj.body[..], b"hellO");
        assert_eq!(
            obj.head.etag, etag,
            "the sidecar's version, so a write replaces it by CAS"
        );
        fs::write(dir.path().join("k"), b"hell").unwrap();
        let obj = s.get("k").await.unwrap();
        assert_eq!((&obj.body[..], obj.head.size), (&b"hell"[..], 4));
        assert_eq!(s.head("k").await.unwrap().size, 4);
        let fresh = s
            .put(
                "k",
                PutRequest {
                    condition: WriteCondition::IfMatch(etag),
                    ..req("again", 1)
                },
            )
            .await
            .unwrap();
        assert_eq!(s.get("k").await.unwrap().head.etag, fresh);
        // A sidecar from elsewhere with an opaque etag.
        let side = serde_json::json!({"metadata": {"gen": "7"}, "contentType": "text/plain",
            "etag": "e".repeat(32), "lastModified": "2024-01-15T12:00:00.000Z", "size": 4,
            "contentLength": 4, "compressed": false});
        fs::write(dir.path().join("k"), b"hell").unwrap();
        fs::write(dir.path().join("k.meta.json"), side.to_string()).unwrap();
        assert_eq!(read(&s, "k").await, Some(("hell".into(), "7".into())));
    }
}
