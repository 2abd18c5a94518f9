//! The `files/*` routes of `netcore serve --dir DIR` (app-layer handlers): listing, stat
//! with CRC-32C, resumable download (`files/get` from an offset) and resumable upload
//! (`files/put` appending to `NAME.netcore-part`, renamed to `NAME` once complete).
//!
//! (`netcore_runtime::transfer` offers a download-only variant with a prefix check; these
//! routes add uploads and a stat call, and stream in pieces the serial profile admits.)

use netcore::extract::BodyStream;
use netcore::{Headers, Json, RemoteError, Response, State, Urgency};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::proto::{self, bad_request, header_u64, internal, not_found};
use crate::util::{file_body, file_crc32c};

/// Suffix of partial uploads and downloads.
pub const PART_SUFFIX: &str = ".netcore-part";

/// Urgency of file transfers: below requests, so small calls pass a running transfer
/// (a reply travels at its request's urgency).
pub const BULK: Urgency = Urgency::new(6);

/// A served directory.
#[derive(Debug)]
pub struct FileStore {
    root: PathBuf,
}

type Store = State<Arc<FileStore>>;

impl FileStore {
    /// Serves `dir` (which must exist).
    pub async fn open(dir: &Path) -> anyhow::Result<FileStore> {
        let root = tokio::fs::canonicalize(dir)
            .await
            .map_err(|e| anyhow::anyhow!("--dir {}: {e}", dir.display()))?;
        if !root.is_dir() {
            anyhow::bail!("--dir {} is not a directory", dir.display());
        }
        Ok(FileStore { root })
    }

    /// Adds the `files/*` routes to `router`.
    pub fn routes(self: Arc<Self>, router: netcore::Router) -> netcore::Router {
        let files = netcore::Router::new()
            .route("list", list)
            .route("stat", stat)
            .route("get", get)
            .route("put", put)
            .state(self);
        router.nest("files", files)
    }

    /// Resolves a client-given name inside the root, refusing anything that could leave it.
    fn resolve(&self, name: &str) -> Result<PathBuf, RemoteError> {
        let p = Path::new(name);
        let ok = !name.is_empty()
            && p.components().all(|c| matches!(c, Component::Normal(_)))
            && !name.ends_with(PART_SUFFIX);
        if !ok {
            return Err(bad_request(format!(
                "invalid file name `{name}` (relative, no `..`)"
            )));
        }
        Ok(self.root.join(p))
    }
}

fn name_of(headers: &Headers) -> Result<String, RemoteError> {
    headers
        .get_str(proto::H_NAME)
        .map(str::to_string)
        .ok_or_else(|| bad_request("missing `name` header"))
}

async fn list(State(store): Store) -> Result<Json<serde_json::Value>, RemoteError> {
    let mut out = Vec::new();
    let mut rd = tokio::fs::read_dir(&store.root)
        .await
        .map_err(|e| internal(e.to_string()))?;
    while let Ok(Some(entry)) = rd.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        match entry.metadata().await {
            Ok(m) if m.is_file() && !name.ends_with(PART_SUFFIX) => {
                out.push(serde_json::json!({"name": name, "size": m.len()}))
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(serde_json::Value::Array(out)))
}

async fn stat(
    State(store): Store,
    headers: Headers,
) -> Result<Json<serde_json::Value>, RemoteError> {
    let name = name_of(&headers)?;
    let path = store.resolve(&name)?;
    let partial = tokio::fs::metadata(part_path(&path))
        .await
        .map_or(0, |m| m.len());
    Ok(Json(match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => {
            let (crc, size) = file_crc32c(&path, None)
                .await
                .map_err(|e| internal(format!("reading {name}: {e}")))?;
            serde_json::json!({"name": name, "size": size, "crc32c": crc, "partial": partial})
        }
        _ => serde_json::json!({"name": name, "size": null, "partial": partial}),
    }))
}

async fn get(State(store): Store, headers: Headers) -> Result<Response, RemoteError> {
    let name = name_of(&headers)?;
    let path = store.resolve(&name)?;
    let offset = header_u64(&headers, proto::H_OFFSET).unwrap_or(0);
    let size = match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => m.len(),
        _ => return Err(not_found(format!("no file `{name}`"))),
    };
    if offset > size {
        return Err(bad_request(format!(
            "offset {offset} is past the end of `{name}` ({size} bytes)"
        )));
    }
    let body = file_body(&path, offset)
        .await
        .map_err(|e| internal(format!("reading {name}: {e}")))?;
    Ok(Response::new(body)
        .with_header(proto::H_SIZE, size.to_string())
        .with_header(proto::H_OFFSET, offset.to_string()))
}

async fn put(
    State(store): Store,
    headers: Headers,
    mut body: BodyStream,
) -> Result<Json<serde_json::Value>, RemoteError> {
    let name = name_of(&headers)?;
    let path = store.resolve(&name)?;
    let offset = header_u64(&headers, proto::H_OFFSET).unwrap_or(0);
    let size = header_u64(&headers, proto::H_SIZE)
        .ok_or_else(|| bad_request("missing `size` header (the whole file's size)"))?;
    let part = part_path(&path);
    if let Some(parent) = part.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| internal(e.to_string()))?;
    }
    let have = tokio::fs::metadata(&part).await.map_or(0, |m| m.len());
    if offset > have {
        return Err(bad_request(format!(
            "offset {offset} but the partial upload of `{name}` has {have} bytes"
        )));
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .await
        .map_err(|e| internal(format!("open {name}: {e}")))?;
    file.set_len(offset)
        .await
        .map_err(|e| internal(e.to_string()))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| internal(e.to_string()))?;
    let mut written = offset;
    let outcome = loop {
        match body.chunk().await {
            Ok(Some(c)) => {
                if written + c.len() as u64 > size {
                    break Err(bad_request("body longer than the `size` header"));
                }
                if let Err(e) = file.write_all(&c).await {
                    break Err(internal(format!("write {name}: {e}")));
                }
                written += c.len() as u64;
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(RemoteError::from(e)),
        }
    };
    // Keep what arrived, even when the upload broke off: the client resumes from it.
    let _ = file.flush().await;
    let _ = file.sync_data().await;
    drop(file);
    outcome?;
    let complete = written == size;
    let mut v = serde_json::json!({"name": name, "received": written, "complete": complete});
    if complete {
        tokio::fs::rename(&part, &path)
            .await
            .map_err(|e| internal(format!("rename {name}: {e}")))?;
        let (crc, _) = file_crc32c(&path, None)
            .await
            .map_err(|e| internal(e.to_string()))?;
        v["crc32c"] = serde_json::json!(crc);
    }
    Ok(Json(v))
}

/// Where a partial upload or download of `path` is kept.
pub fn part_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).await.unwrap();
        assert!(store.resolve("a.bin").is_ok());
        assert!(store.resolve("sub/a.bin").is_ok());
        for bad in ["", "../x", "/etc/passwd", "a/../../x", "x.netcore-part"] {
            assert!(store.resolve(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            part_path(Path::new("/t/a")),
            PathBuf::from("/t/a.netcore-part")
        );
    }
}
