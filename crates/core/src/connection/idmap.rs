//! Per-message state keyed by message id, and a message's queue of body chunks.
//!
//! Ids of one direction are handed out in increasing order and most messages end soon
//! after they start, so the live ids form a dense window: a deque indexed by
//! `id - base` gives O(1) lookups with no hashing, no tree rebalancing and no entries
//! shifted around on insert or remove. A rare long-lived message would pin the
//! window's front and let it grow with every id after it, so once the window is mostly
//! holes its oldest entries move to a small ordered map: memory stays proportional to
//! the live entries whatever the pattern.

use alloc::collections::{BTreeMap, VecDeque};
use bytes::Bytes;

/// Holes tolerated in the dense window beyond one per live entry.
const SLACK: u64 = 32;

#[derive(Debug)]
pub(super) struct IdMap<T> {
    /// Id of `dense[0]`.
    base: u64,
    dense: VecDeque<Option<T>>,
    /// Live entries in `dense`.
    dense_len: usize,
    /// Entries with ids below `base`.
    old: BTreeMap<u64, T>,
}

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        IdMap {
            base: 0,
            dense: VecDeque::new(),
            dense_len: 0,
            old: BTreeMap::new(),
        }
    }
}

impl<T> IdMap<T> {
    pub(super) fn len(&self) -> usize {
        self.dense_len + self.old.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn index(&self, id: u64) -> Option<usize> {
        id.checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
    }

    pub(super) fn get(&self, id: u64) -> Option<&T> {
        match self.index(id) {
            Some(i) => self.dense.get(i)?.as_ref(),
            None => self.old.get(&id),
        }
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        match self.index(id) {
            Some(i) => self.dense.get_mut(i)?.as_mut(),
            None => self.old.get_mut(&id),
        }
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    /// Inserts `value` under `id`. Ids are expected in increasing order (anything
    /// else still works, through the ordered map).
    pub(super) fn insert(&mut self, id: u64, value: T) {
        let end = self.base + self.dense.len() as u64;
        if id < end {
            match self.index(id) {
                Some(i) => {
                    if let Some(slot) = self.dense.get_mut(i) {
                        if slot.replace(value).is_none() {
                            self.dense_len += 1;
                        }
                    }
                }
                None => {
                    self.old.insert(id, value);
                }
            }
            return;
        }
        let gap = id - end;
        // Keep the window at least about half full: rather than fill a wide gap with
        // holes (or keep a long tail of them), move the oldest entries out.
        while !self.dense.is_empty()
            && self.dense.len() as u64 + gap + 1 > 2 * (self.dense_len as u64 + 1) + SLACK
        {
            self.evict_front();
        }
        if self.dense.is_empty() {
            self.base = id;
        } else {
            self.dense.extend((0..gap).map(|_| None));
        }
        self.dense.push_back(Some(value));
        self.dense_len += 1;
    }

    /// Moves the window's first entry to the ordered map.
    fn evict_front(&mut self) {
        if let Some(Some(v)) = self.dense.pop_front() {
            self.old.insert(self.base, v);
            self.dense_len -= 1;
        }
        self.base += 1;
        self.trim_front();
    }

    fn trim_front(&mut self) {
        while let Some(None) = self.dense.front() {
            self.dense.pop_front();
            self.base += 1;
        }
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<T> {
        let Some(i) = self.index(id) else {
            return self.old.remove(&id);
        };
        let v = self.dense.get_mut(i)?.take()?;
        self.dense_len -= 1;
        if i == 0 {
            self.trim_front();
        }
        Some(v)
    }

    /// Entries in id order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        let base = self.base;
        self.old.iter().map(|(&id, v)| (id, v)).chain(
            self.dense
                .iter()
                .enumerate()
                .filter_map(move |(i, v)| Some((base + i as u64, v.as_ref()?))),
        )
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.iter().map(|(_, v)| v)
    }

    /// Takes every entry out, in id order.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = (u64, T)> {
        let taken = core::mem::take(self);
        let base = taken.base;
        taken.old.into_iter().chain(
            taken
                .dense
                .into_iter()
                .enumerate()
                .filter_map(move |(i, v)| Some((base + i as u64, v?))),
        )
    }
}

/// A message's body chunks in order. A message nearly always holds at most one chunk
/// (a body given whole, or one frame's worth received), so the first sits inline and
/// the deque allocates only when a second one queues behind it.
#[derive(Debug, Default)]
pub(super) struct Chunks {
    /// The front chunk; `None` only when `rest` is empty too.
    front: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl Chunks {
    pub(super) fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    pub(super) fn push_back(&mut self, chunk: Bytes) {
        if self.front.is_none() {
            self.front = Some(chunk);
        } else {
            self.rest.push_back(chunk);
        }
    }

    pub(super) fn front_mut(&mut self) -> Option<&mut Bytes> {
        self.front.as_mut()
    }

    pub(super) fn pop_front(&mut self) -> Option<Bytes> {
        let front = self.front.take();
        self.front = self.rest.pop_front();
        front
    }

    pub(super) fn clear(&mut self) {
        self.front = None;
        self.rest.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn dense_and_sparse() {
        let mut m = IdMap::default();
        for id in 1..=100u64 {
            m.insert(id, id * 10);
        }
        assert_eq!(m.len(), 100);
        // Everything but id 1 ends: the window collapses to the long-lived entry...
        for id in 2..=100u64 {
            assert_eq!(m.remove(id), Some(id * 10));
        }
        // ...which later moves aside instead of pinning a growing window.
        for id in 101..=10_000u64 {
            m.insert(id, id * 10);
            assert_eq!(m.remove(id), Some(id * 10));
        }
        assert!(m.dense.len() <= 2 * m.dense_len + SLACK as usize + 2);
        assert_eq!(m.get(1), Some(&10));
        assert_eq!(m.remove(1), Some(10));
        assert!(m.is_empty());
        // A wide gap does not allocate holes for it.
        m.insert(5, 5);
        m.insert(1_000_000_000, 6);
        assert!(m.dense.len() <= 2);
        assert_eq!(m.iter().collect::<Vec<_>>(), [(5, &5), (1_000_000_000, &6)]);
        assert_eq!(m.drain().collect::<Vec<_>>(), [(5, 5), (1_000_000_000, 6)]);
        assert!(m.is_empty() && m.get(5).is_none());
    }

    #[test]
    fn out_of_order_and_holes() {
        let mut m = IdMap::default();
        m.insert(10, 'a');
        m.insert(12, 'c');
        m.insert(11, 'b');
        m.insert(3, 'z');
        assert_eq!(
            m.iter().map(|(id, &v)| (id, v)).collect::<Vec<_>>(),
            [(3, 'z'), (10, 'a'), (11, 'b'), (12, 'c')]
        );
        assert_eq!(m.remove(11), Some('b'));
        assert_eq!(m.remove(11), None);
        assert_eq!(m.remove(10), Some('a'));
        assert_eq!(m.get(12), Some(&'c'));
        assert_eq!(m.len(), 2);
        assert_eq!(m.values().count(), 2);
    }

    #[test]
    fn chunks() {
        let mut c = Chunks::default();
        assert!(c.is_empty());
        c.push_back(Bytes::from_static(b"a"));
        c.push_back(Bytes::from_static(b"b"));
        c.push_back(Bytes::from_static(b"c"));
        assert_eq!(c.pop_front().as_deref(), Some(&b"a"[..]));
        assert_eq!(c.front_mut().map(|b| b.len()), Some(1));
        assert_eq!(c.pop_front().as_deref(), Some(&b"b"[..]));
        assert_eq!(c.pop_front().as_deref(), Some(&b"c"[..]));
        assert!(c.is_empty() && c.pop_front().is_none());
    }
}
