//! The standard layout of a message's metadata block: an ordered list of headers.
//!
//! The core carries metadata as opaque bytes; the netcore app layer (and anything that
//! wants interoperable headers) stores `key_len:varint key value_len:varint value`
//! entries back to back. Keys are UTF-8, values arbitrary bytes; order is kept and
//! keys may repeat. See docs/PROTOCOL.md §9.

use crate::varint;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

/// Why a metadata block could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataError {
    /// A length runs past the end of the block.
    Truncated,
    /// A key is not UTF-8.
    InvalidKey,
}

impl core::fmt::Display for MetadataError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MetadataError::Truncated => "metadata block ends inside an entry",
            MetadataError::InvalidKey => "metadata key is not UTF-8",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MetadataError {}
#[cfg(feature = "std")]
extern crate std;

/// Ordered headers of a message.
///
/// ```
/// use netcore_core::metadata::Headers;
/// let mut h = Headers::new();
/// h.insert("content-type", "application/json");
/// h.insert("authorization", "Bearer t0ken");
/// let block = h.encode();
/// let back = Headers::decode(&block).unwrap();
/// assert_eq!(back.get_str("content-type"), Some("application/json"));
/// assert_eq!(back, h);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Bytes)>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Appends a header (keys may repeat).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Bytes>) {
        self.entries.push((key.into(), value.into()));
    }

    /// Replaces all values of `key` with one.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Bytes>) {
        let key = key.into();
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, value.into()));
    }

    /// First value of `key`.
    pub fn get(&self, key: &str) -> Option<&Bytes> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// First value of `key` if it is UTF-8.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(|v| core::str::from_utf8(v).ok())
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The metadata block.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::new();
        for (k, v) in &self.entries {
            varint::encode(k.len() as u64, &mut out);
            out.extend_from_slice(k.as_bytes());
            varint::encode(v.len() as u64, &mut out);
            out.extend_from_slice(v);
        }
        Bytes::from(out)
    }

    /// Parses a metadata block. Its size was already bounded by the connection's
    /// metadata limit, so this allocates at most about that much.
    pub fn decode(block: &[u8]) -> Result<Headers, MetadataError> {
        let mut entries = Vec::new();
        let mut rest = block;
        let take = |rest: &mut &[u8]| -> Result<Vec<u8>, MetadataError> {
            let (len, n) = varint::decode(rest).map_err(|_| MetadataError::Truncated)?;
            let after = &rest[n..];
            if len > after.len() as u64 {
                return Err(MetadataError::Truncated);
            }
            let (value, tail) = after.split_at(len as usize);
            *rest = tail;
            Ok(value.to_vec())
        };
        while !rest.is_empty() {
            let key = String::from_utf8(take(&mut rest)?).map_err(|_| MetadataError::InvalidKey)?;
            let value = Bytes::from(take(&mut rest)?);
            entries.push((key, value));
        }
        Ok(Headers { entries })
    }
}
