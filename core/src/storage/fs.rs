use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind as IoKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::memory::page_of;
use super::{
    check_condition, content_etag, ListPage, Metadata, Object, ObjectHead, ObjectStore, PutRequest,
    StoreError, StoreResult, WriteCondition,
};

const SIDECAR: &str = ".meta.json";
const LOCK_FILE: &str = ".s3db.lock";
const TEMP_MARK: &str = ".s3db-tmp-";

/// Objects as files under a root directory, laid out as s3db.js's FileSystemClient does:
/// the body at `<root>/<key>` and a `<key>.meta.json` sidecar. Conditional writes hold
/// across processes: every operation takes an advisory lock on `<root>/.s3db.lock`
/// (shared to read, exclusive to write) and files are replaced by atomic rename.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: Arc<PathBuf>,
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
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Fatal(format!("file store: {e}"))
}

impl FileStore {
    pub fn open(root: &Path) -> crate::Result<FileStore> {
        let root = std::path::absolute(root)
            .map_err(|e| crate::Error::invalid(format!("file store path: {e}")))?;
        fs::create_dir_all(&root).map_err(|e| {
            crate::Error::new(
                crate::ErrorKind::Storage,
                format!("file store {}: {e}", root.display()),
            )
        })?;
        Ok(FileStore {
            root: Arc::new(root),
        })
    }

    fn path_of(&self, key: &str) -> StoreResult<PathBuf> {
        let bad = key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|s| s == ".." || s == "." || s.is_empty())
            || key.ends_with(SIDECAR)
            || key.contains(TEMP_MARK)
            || key == LOCK_FILE;
        if bad {
            return Err(StoreError::Fatal(format!(
                "file store cannot hold key {key:?}"
            )));
        }
        Ok(self.root.join(key))
    }

    fn lock(&self, exclusive: bool) -> StoreResult<File> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(LOCK_FILE))
            .map_err(io_err)?;
        if exclusive {
            f.lock().map_err(io_err)?;
        } else {
            f.lock_shared().map_err(io_err)?;
        }
        Ok(f)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        exclusive: bool,
        op: impl FnOnce(&FileStore) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = this.lock(exclusive)?;
            op(&this)
        })
        .await
        .map_err(|e| StoreError::Fatal(format!("file store task: {e}")))?
    }

    fn read_head(&self, path: &Path) -> StoreResult<Option<ObjectHead>> {
        let mut side = path.as_os_str().to_owned();
        side.push(SIDECAR);
        let text = match fs::read(&side) {
            Ok(t) => t,
            Err(e) if e.kind() == IoKind::NotFound => {
                return if path.is_file() {
                    let body = fs::read(path).map_err(io_err)?;
                    Ok(Some(ObjectHead {
                        etag: content_etag(&body, &Metadata::new(), None),
                        size: body.len() as u64,
                        metadata: Metadata::new(),
                        content_type: Some("application/octet-stream".into()),
                        last_modified: 0,
                    }))
                } else {
                    Ok(None)
                };
            }
            Err(e) => return Err(io_err(e)),
        };
        let side: Sidecar = serde_json::from_slice(&text)
            .map_err(|e| StoreError::Fatal(format!("corrupt sidecar {}: {e}", path.display())))?;
        let last_modified = chrono::DateTime::parse_from_rfc3339(&side.last_modified)
            .map(|t| t.timestamp_millis())
            .unwrap_or(0);
        Ok(Some(ObjectHead {
            metadata: side.metadata,
            content_type: side.content_type,
            etag: format!("\"{}\"", side.etag.trim_matches('"')),
            size: side.size,
            last_modified,
        }))
    }

    fn write_object(
        &self,
        path: &Path,
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
        };
        let side_json =
            serde_json::to_vec_pretty(&side).map_err(|e| StoreError::Fatal(e.to_string()))?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        atomic_write(path, body)?;
        let mut side_path = path.as_os_str().to_owned();
        side_path.push(SIDECAR);
        atomic_write(Path::new(&side_path), &side_json)?;
        Ok(etag)
    }

    fn remove(&self, path: &Path) -> StoreResult<()> {
        let mut side = path.as_os_str().to_owned();
        side.push(SIDECAR);
        for p in [path.as_os_str(), side.as_os_str()] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == IoKind::NotFound => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        // Empty parent directories go too, up to the root.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.root.as_path() || fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
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
        let mut keys = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == IoKind::NotFound || e.kind() == IoKind::NotADirectory => {
                    continue
                }
                Err(e) => return Err(io_err(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err)?;
                let path = entry.path();
                let ft = entry.file_type().map_err(io_err)?;
                if ft.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Ok(rel) = path.strip_prefix(self.root.as_path()) else {
                    continue;
                };
                let Some(key) = rel.to_str() else { continue };
                if key.ends_with(SIDECAR) || key.contains(TEMP_MARK) || key == LOCK_FILE {
                    continue;
                }
                if key.starts_with(prefix) {
                    keys.push(key.to_string());
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}

fn atomic_write(path: &Path, data: &[u8]) -> StoreResult<()> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| StoreError::Fatal("bad path".into()))?;
    let tmp = path.with_file_name(format!("{TEMP_MARK}{}-{name}", rand::random::<u64>()));
    let mut f = File::create(&tmp).map_err(io_err)?;
    f.write_all(data).map_err(io_err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err)
}

#[async_trait]
impl ObjectStore for FileStore {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        let path = self.path_of(key)?;
        self.blocking(false, move |s| {
            let head = s.read_head(&path)?.ok_or(StoreError::NotFound)?;
            let body = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == IoKind::NotFound => return Err(StoreError::NotFound),
                Err(e) => return Err(io_err(e)),
            };
            Ok(Object {
                head,
                body: Bytes::from(body),
            })
        })
        .await
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        let path = self.path_of(key)?;
        self.blocking(false, move |s| {
            s.read_head(&path)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        let path = self.path_of(key)?;
        self.blocking(true, move |s| {
            let current = s.read_head(&path)?;
            check_condition(&req.condition, current.as_ref().map(|h| h.etag.as_str()))?;
            s.write_object(&path, &req.body, req.metadata, req.content_type)
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
        let (src, dst) = (self.path_of(src)?, self.path_of(dst)?);
        self.blocking(true, move |s| {
            s.read_head(&src)?.ok_or(StoreError::NotFound)?;
            let body = fs::read(&src).map_err(io_err)?;
            let current = s.read_head(&dst)?;
            check_condition(&condition, current.as_ref().map(|h| h.etag.as_str()))?;
            s.write_object(&dst, &body, metadata, content_type)
        })
        .await
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        let path = self.path_of(key)?;
        let if_match = if_match.map(str::to_string);
        self.blocking(true, move |s| {
            if let Some(want) = if_match {
                let current = s.read_head(&path)?;
                check_condition(
                    &WriteCondition::IfMatch(want),
                    current.as_ref().map(|h| h.etag.as_str()),
                )?;
            }
            s.remove(&path)
        })
        .await
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        let mut paths = Vec::with_capacity(keys.len());
        let mut failed = Vec::new();
        for k in keys {
            match self.path_of(k) {
                Ok(p) => paths.push((k.clone(), p)),
                Err(e) => failed.push((k.clone(), e)),
            }
        }
        let more = self
            .blocking(true, move |s| {
                let mut failed = Vec::new();
                for (k, p) in paths {
                    if let Err(e) = s.remove(&p) {
                        failed.push((k, e));
                    }
                }
                Ok(failed)
            })
            .await?;
        failed.extend(more);
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
        self.blocking(false, move |s| {
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
}
