//! The `files/*` routes of `netcore serve --dir DIR`: listing, stat with CRC-32C,
//! resumable download (`files/get` from an offset) and resumable upload (`files/put`
//! appending to `NAME.netcore-part`, renamed to `NAME` once complete).
//!
//! Written on `Pipe` directly; `netcore_runtime::transfer` (resumable fetch/serve) was not
//! on main yet.

use netcore_core::metadata::Headers;
use netcore_core::Urgency;
use netcore_runtime::{IncomingMessage, Pipe};
use std::path::{Component, Path, PathBuf};
use tokio::io::AsyncWriteExt;

use crate::proto::{self, header_u64, HandlerError};
use crate::util::{file_body, file_crc32c};

/// Suffix of partial uploads.
pub const PART_SUFFIX: &str = ".netcore-part";

/// Urgency of file bodies: below requests, so small calls pass a running transfer.
pub const BULK: Urgency = Urgency::new(6);

/// A served directory.
#[derive(Debug)]
pub struct FileStore {
    root: PathBuf,
}

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

    /// Resolves a client-given name inside the root, refusing anything that could leave it.
    fn resolve(&self, name: &str) -> Result<PathBuf, HandlerError> {
        let p = Path::new(name);
        let ok = !name.is_empty()
            && p.components().all(|c| matches!(c, Component::Normal(_)))
            && !name.ends_with(PART_SUFFIX);
        if !ok {
            return Err(HandlerError::bad_request(format!(
                "invalid file name `{name}` (relative, no `..`)"
            )));
        }
        Ok(self.root.join(p))
    }

    fn name_of(msg: &IncomingMessage) -> Result<String, HandlerError> {
        msg.headers()
            .get_str(proto::H_NAME)
            .map(str::to_string)
            .ok_or_else(|| HandlerError::bad_request("missing `name` header"))
    }

    /// Handles one `files/*` request.
    pub async fn handle(&self, pipe: &Pipe, msg: IncomingMessage) -> Result<(), HandlerError> {
        match msg.route() {
            proto::FILES_LIST => self.list(pipe, msg).await,
            proto::FILES_STAT => self.stat(pipe, msg).await,
            proto::FILES_GET => self.get(pipe, msg).await,
            proto::FILES_PUT => self.put(pipe, msg).await,
            other => Err(HandlerError::not_found(format!("no route `{other}`"))),
        }
    }

    async fn list(&self, pipe: &Pipe, msg: IncomingMessage) -> Result<(), HandlerError> {
        let mut out = Vec::new();
        let mut rd = tokio::fs::read_dir(&self.root)
            .await
            .map_err(|e| HandlerError::internal(e.to_string()))?;
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
        pipe.reply(msg.id, serde_json::Value::Array(out).to_string())
            .await?;
        Ok(())
    }

    async fn stat(&self, pipe: &Pipe, msg: IncomingMessage) -> Result<(), HandlerError> {
        let name = Self::name_of(&msg)?;
        let path = self.resolve(&name)?;
        let part = part_path(&path);
        let partial = tokio::fs::metadata(&part).await.map_or(0, |m| m.len());
        let v = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => {
                let (crc, size) = file_crc32c(&path, None)
                    .await
                    .map_err(|e| HandlerError::internal(format!("reading {name}: {e}")))?;
                serde_json::json!({"name": name, "size": size, "crc32c": crc, "partial": partial})
            }
            _ => serde_json::json!({"name": name, "size": null, "partial": partial}),
        };
        pipe.reply(msg.id, v.to_string()).await?;
        Ok(())
    }

    async fn get(&self, pipe: &Pipe, msg: IncomingMessage) -> Result<(), HandlerError> {
        let name = Self::name_of(&msg)?;
        let path = self.resolve(&name)?;
        let offset = header_u64(&msg.headers(), proto::H_OFFSET).unwrap_or(0);
        let size = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m.len(),
            _ => return Err(HandlerError::not_found(format!("no file `{name}`"))),
        };
        if offset > size {
            return Err(HandlerError::bad_request(format!(
                "offset {offset} is past the end of `{name}` ({size} bytes)"
            )));
        }
        let body = file_body(&path, offset)
            .await
            .map_err(|e| HandlerError::internal(format!("reading {name}: {e}")))?;
        let mut h = Headers::new();
        h.insert(proto::H_SIZE, size.to_string());
        h.insert(proto::H_OFFSET, offset.to_string());
        let mut head = netcore_core::MessageHead::reply(msg.id).with_urgency(BULK);
        head.metadata = h.encode();
        pipe.send_head(head, body, None).await?;
        Ok(())
    }

    async fn put(&self, pipe: &Pipe, msg: IncomingMessage) -> Result<(), HandlerError> {
        let name = Self::name_of(&msg)?;
        let path = self.resolve(&name)?;
        let headers = msg.headers();
        let offset = header_u64(&headers, proto::H_OFFSET).unwrap_or(0);
        let Some(size) = header_u64(&headers, proto::H_SIZE) else {
            return Err(HandlerError::bad_request(
                "missing `size` header (the whole file's size)",
            ));
        };
        let part = part_path(&path);
        if let Some(parent) = part.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| HandlerError::internal(e.to_string()))?;
        }
        let have = tokio::fs::metadata(&part).await.map_or(0, |m| m.len());
        if offset > have {
            return Err(HandlerError::bad_request(format!(
                "offset {offset} but the partial upload of `{name}` has {have} bytes"
            )));
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&part)
            .await
            .map_err(|e| HandlerError::internal(format!("open {name}: {e}")))?;
        file.set_len(offset)
            .await
            .map_err(|e| HandlerError::internal(e.to_string()))?;
        use tokio::io::AsyncSeekExt;
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| HandlerError::internal(e.to_string()))?;
        let id = msg.id;
        let mut body = msg.body;
        let mut written = offset;
        let outcome = loop {
            match body.chunk().await {
                Ok(Some(c)) => {
                    if written + c.len() as u64 > size {
                        break Err(HandlerError::bad_request(
                            "body longer than the `size` header",
                        ));
                    }
                    if let Err(e) = file.write_all(&c).await {
                        break Err(HandlerError::internal(format!("write {name}: {e}")));
                    }
                    written += c.len() as u64;
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(HandlerError::from(e)),
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
                .map_err(|e| HandlerError::internal(format!("rename {name}: {e}")))?;
            let (crc, _) = file_crc32c(&path, None)
                .await
                .map_err(|e| HandlerError::internal(e.to_string()))?;
            v["crc32c"] = serde_json::json!(crc);
        }
        pipe.reply(id, v.to_string()).await?;
        Ok(())
    }
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
