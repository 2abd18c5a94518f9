//! The cache: values of any type under string keys, with a default TTL and a TTL per
//! entry, on [moka](https://docs.rs/moka) (expiry without a polling thread; bounded by
//! an entry count).

use moka::sync::Cache as Moka;
use moka::Expiry;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    ttl: Option<Duration>,
}

struct PerEntry {
    default_ttl: Option<Duration>,
}

impl Expiry<String, Entry> for PerEntry {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        value.ttl.or(self.default_ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        value.ttl.or(self.default_ttl)
    }
}

/// A thread-safe cache of values of any type (`Clone + Send + Sync`) under string keys.
/// Cheap to clone (clones share the entries).
///
/// ```
/// use netcore::Cache;
/// use std::time::Duration;
/// let cache = Cache::new(10_000, Some(Duration::from_secs(300)));
/// cache.set("expensive_data", vec![1u32, 2, 3]);
/// cache.set_with_ttl("token", "abc".to_string(), Duration::from_secs(5));
/// assert_eq!(cache.get::<Vec<u32>>("expensive_data"), Some(vec![1, 2, 3]));
/// assert_eq!(cache.get::<String>("expensive_data"), None); // other type
/// cache.delete("token");
/// assert!(!cache.contains("token"));
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Moka<String, Entry>,
    default_ttl: Option<Duration>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("entries", &self.inner.entry_count())
            .field("default_ttl", &self.default_ttl)
            .finish()
    }
}

impl Cache {
    /// A cache of at most `capacity` entries whose entries live `default_ttl` unless set
    /// with their own (`None`: until removed or evicted).
    ///
    /// ```
    /// let cache = netcore::Cache::new(100, None);
    /// assert_eq!(cache.default_ttl(), None);
    /// ```
    pub fn new(capacity: u64, default_ttl: Option<Duration>) -> Cache {
        let inner = Moka::builder()
            .max_capacity(capacity)
            .expire_after(PerEntry { default_ttl })
            .build();
        Cache { inner, default_ttl }
    }

    /// The default TTL.
    ///
    /// ```
    /// let cache = netcore::Cache::new(1, Some(std::time::Duration::from_secs(1)));
    /// assert_eq!(cache.default_ttl(), Some(std::time::Duration::from_secs(1)));
    /// ```
    pub fn default_ttl(&self) -> Option<Duration> {
        self.default_ttl
    }

    /// The value under `key`, if present, unexpired and of type `T`.
    ///
    /// ```
    /// let cache = netcore::Cache::new(10, None);
    /// cache.set("n", 5u8);
    /// assert_eq!(cache.get::<u8>("n"), Some(5));
    /// assert_eq!(cache.get::<u8>("missing"), None);
    /// ```
    pub fn get<T: Clone + Send + Sync + 'static>(&self, key: &str) -> Option<T> {
        self.inner
            .get(key)
            .and_then(|e| e.value.downcast_ref::<T>().cloned())
    }

    /// Stores `value` with the default TTL.
    ///
    /// ```
    /// let cache = netcore::Cache::new(10, None);
    /// cache.set("k", "v".to_string());
    /// assert!(cache.contains("k"));
    /// ```
    pub fn set<T: Clone + Send + Sync + 'static>(&self, key: impl Into<String>, value: T) {
        self.inner.insert(
            key.into(),
            Entry {
                value: Arc::new(value),
                ttl: None,
            },
        );
    }

    /// Stores `value` living `ttl`.
    ///
    /// ```
    /// let cache = netcore::Cache::new(10, None);
    /// cache.set_with_ttl("k", 1i64, std::time::Duration::from_secs(300));
    /// assert_eq!(cache.get::<i64>("k"), Some(1));
    /// ```
    pub fn set_with_ttl<T: Clone + Send + Sync + 'static>(
        &self,
        key: impl Into<String>,
        value: T,
        ttl: Duration,
    ) {
        self.inner.insert(
            key.into(),
            Entry {
                value: Arc::new(value),
                ttl: Some(ttl),
            },
        );
    }

    /// The value under `key` (of type `T`), computing and storing it with the default
    /// TTL if absent (the seed's get-or-compute pattern). Two concurrent callers may
    /// both compute; the last one stored wins.
    ///
    /// ```
    /// let cache = netcore::Cache::new(10, None);
    /// let v: u32 = cache.get_or_set_with("answer", || 42);
    /// assert_eq!(v, 42);
    /// let v: u32 = cache.get_or_set_with("answer", || unreachable!());
    /// assert_eq!(v, 42);
    /// ```
    pub fn get_or_set_with<T, F>(&self, key: &str, compute: F) -> T
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> T,
    {
        if let Some(v) = self.get::<T>(key) {
            return v;
        }
        let v = compute();
        self.set(key, v.clone());
        v
    }

    /// Removes `key`; returns whether it was present.
    ///
    /// ```
    /// let cache = netcore::Cache::new(10, None);
    /// cache.set("k", 1u8);
    /// assert!(cache.delete("k"));
    /// assert!(!cache.delete("k"));
    /// ```
    pub fn delete(&self, key: &str) -> bool {
        self.inner.remove(key).is_some()
    }

    /// Whether `key` holds an unexpired value.
    ///
    /// ```
    /// assert!(!netcore::Cache::new(10, None).contains("k"));
    /// ```
    pub fn contains(&self, key: &str) -> bool {
        self.inner.contains_key(key)
    }

    /// Removes every entry.
    ///
    /// ```
    /// let cache = netcore::Cache::new(10, None);
    /// cache.set("a", 1u8);
    /// cache.clear();
    /// assert!(!cache.contains("a"));
    /// ```
    pub fn clear(&self) {
        self.inner.invalidate_all();
        self.inner.run_pending_tasks();
    }

    /// The number of live entries (expired ones are not counted; walks the cache).
    ///
    /// ```
    /// let cache = netcore::Cache::new(10, None);
    /// cache.set("a", 1u8);
    /// assert_eq!(cache.len(), 1);
    /// ```
    pub fn len(&self) -> u64 {
        self.inner.run_pending_tasks();
        self.inner.iter().count() as u64
    }

    /// Whether the cache is empty.
    ///
    /// ```
    /// assert!(netcore::Cache::new(10, None).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
