//! Per-message state keyed by message id, and a message's queue of body chunks.
//!
//! Ids of one direction are handed out in increasing order and most messages end soon
//! after they start, so the live ids form a dense window: a deque indexed by
//! `id - base` gives O(1) lookups with no hashing, no tree rebalancing and no entries
//! shifted around on insert or remove. A rare long-lived message would pin the
//! window's front and let it grow with every id after it, so once the window is mostly
//! holes its oldest entries move to a small ordered map: memory stays proportional to
//! the live entries whatever the pattern.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use bytes::Bytes;

/// Holes tolerated in the dense window beyond one per live entry.
const SLACK: u64 = 32;

/// Window slots kept allocated however few entries are left.
const KEEP_SLOTS: usize = 256;

#[derive(Debug)]
pub(super) struct IdMap<T> {
    /// Id of the window's first slot.
    base: u64,
    /// Ring buffer of the window (power-of-two length, or empty): slot `i` of the
    /// window is `slots[(head + i) & mask]`. Hand-rolled rather than a `VecDeque` so
    /// that dropping holes at the front only moves `head`: popping would copy each
    /// large slot out.
    slots: Vec<Option<T>>,
    head: usize,
    /// Slots in the window, holes included.
    span: usize,
    /// Live entries in the window.
    dense_len: usize,
    /// Largest `span` and number of inserts in the current epoch (see `note_insert`).
    peak: usize,
    inserts: usize,
    /// Entries with ids below `base`.
    old: BTreeMap<u64, T>,
}

impl<T> Default for IdMap<T> {
    fn default() -> Self {
        IdMap {
            base: 0,
            slots: Vec::new(),
            head: 0,
            span: 0,
            dense_len: 0,
            peak: 0,
            inserts: 0,
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

    /// Index into `slots` of window position `i` (`i < span`).
    #[inline]
    fn slot(&self, i: usize) -> usize {
        (self.head + i) & (self.slots.len().wrapping_sub(1))
    }

    /// Window position of `id`, if inside the window.
    #[inline]
    fn index(&self, id: u64) -> Option<usize> {
        let i = usize::try_from(id.checked_sub(self.base)?).ok()?;
        (i < self.span).then_some(i)
    }

    #[inline(always)]
    pub(super) fn get(&self, id: u64) -> Option<&T> {
        match self.index(id) {
            Some(i) => self.slots[self.slot(i)].as_ref(),
            None if id < self.base => self.old.get(&id),
            None => None,
        }
    }

    #[inline(always)]
    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        match self.index(id) {
            Some(i) => {
                let k = self.slot(i);
                self.slots[k].as_mut()
            }
            None if id < self.base => self.old.get_mut(&id),
            None => None,
        }
    }

    pub(super) fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    /// Inserts `value` under `id`. Ids are expected in increasing order (anything
    /// else still works, through the ordered map).
    #[inline(always)]
    pub(super) fn insert(&mut self, id: u64, value: T) {
        // The usual case first, inlined so that the (large) value is written straight
        // into its slot rather than copied through temporaries.
        if id == self.base + self.span as u64 && self.span < self.slots.len() {
            let k = self.slot(self.span);
            self.slots[k] = Some(value);
            self.span += 1;
            self.dense_len += 1;
            self.note_insert();
            if self.span as u64 > 2 * self.dense_len as u64 + SLACK {
                self.compact();
            }
            return;
        }
        self.insert_slow(id, value);
    }

    /// Evicts old entries while the window is mostly holes.
    #[cold]
    fn compact(&mut self) {
        while self.span as u64 > 2 * self.dense_len as u64 + SLACK {
            self.evict_front();
        }
    }

    fn insert_slow(&mut self, id: u64, value: T) {
        let end = self.base + self.span as u64;
        if id < end {
            match self.index(id) {
                Some(i) => {
                    let k = self.slot(i);
                    if self.slots[k].replace(value).is_none() {
                        self.dense_len += 1;
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
        while self.span > 0 && self.span as u64 + gap + 1 > 2 * (self.dense_len as u64 + 1) + SLACK
        {
            self.evict_front();
        }
        if self.span == 0 {
            self.base = id;
        } else {
            // Bounded by the live entries, by the loop above.
            for _ in 0..gap {
                self.push_slot(None);
            }
        }
        self.push_slot(Some(value));
        self.dense_len += 1;
        self.note_insert();
    }

    fn push_slot(&mut self, v: Option<T>) {
        if self.span == self.slots.len() {
            // Full: double, laying the window out from index 0 again.
            let cap = (self.slots.len() * 2).max(8);
            self.slots.rotate_left(self.head);
            self.slots.resize_with(cap, || None);
            self.head = 0;
        }
        let k = self.slot(self.span);
        self.slots[k] = v;
        self.span += 1;
    }

    /// Moves the window's first entry to the ordered map.
    fn evict_front(&mut self) {
        let k = self.head;
        if let Some(v) = self.slots[k].take() {
            self.old.insert(self.base, v);
            self.dense_len -= 1;
        }
        self.advance(1);
        self.trim_front();
    }

    fn advance(&mut self, n: usize) {
        self.head = self.slot(n);
        self.span -= n;
        self.base += n as u64;
    }

    /// Drops the holes at the front of the window (they hold nothing to drop).
    fn trim_front(&mut self) {
        while self.span > 0 && self.slots[self.head].is_none() {
            self.advance(1);
        }
    }

    /// Counts an insert; every `slots.len()` inserts, gives back the room of a past
    /// burst if the window stayed far smaller meanwhile (a sender that once queued
    /// thousands of messages should not keep room for them for good). Judged over a
    /// whole epoch so that a steady fill-and-drain pattern does not resize each time.
    #[inline]
    fn note_insert(&mut self) {
        self.peak = self.peak.max(self.span);
        self.inserts += 1;
        if self.inserts >= self.slots.len() {
            self.end_epoch();
        }
    }

    #[cold]
    fn end_epoch(&mut self) {
        if self.slots.len() > KEEP_SLOTS && self.peak * 4 <= self.slots.len() {
            self.shrink((self.peak * 2).next_power_of_two().max(KEEP_SLOTS));
        }
        self.inserts = 0;
        self.peak = self.span;
    }

    fn shrink(&mut self, cap: usize) {
        let mut slots = Vec::with_capacity(cap);
        for i in 0..self.span {
            let k = self.slot(i);
            slots.push(self.slots[k].take());
        }
        slots.resize_with(cap, || None);
        self.slots = slots;
        self.head = 0;
    }

    pub(super) fn remove(&mut self, id: u64) -> Option<T> {
        let Some(i) = self.index(id) else {
            return self.old.remove(&id);
        };
        let k = self.slot(i);
        let v = self.slots[k].take()?;
        self.dense_len -= 1;
        if i == 0 {
            self.trim_front();
        }
        Some(v)
    }

    /// Removes and drops `id`'s entry in place; whether there was one.
    #[inline(always)]
    pub(super) fn delete(&mut self, id: u64) -> bool {
        let Some(i) = self.index(id) else {
            return self.old.remove(&id).is_some();
        };
        let k = self.slot(i);
        if self.slots[k].is_none() {
            return false;
        }
        self.slots[k] = None;
        self.dense_len -= 1;
        if i == 0 {
            self.trim_front();
        }
        true
    }

    /// Entries in id order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        let base = self.base;
        self.old.iter().map(|(&id, v)| (id, v)).chain(
            (0..self.span)
                .filter_map(move |i| Some((base + i as u64, self.slots[self.slot(i)].as_ref()?))),
        )
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.iter().map(|(_, v)| v)
    }

    /// Takes every entry out, in id order.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = (u64, T)> {
        let mut taken = core::mem::take(self);
        let base = taken.base;
        taken.slots.rotate_left(taken.head);
        taken.slots.truncate(taken.span);
        taken.old.into_iter().chain(
            taken
                .slots
                .into_iter()
                .enumerate()
                .filter_map(move |(i, v)| Some((base + i as u64, v?))),
        )
    }
}

/// A message's body chunks in order. A message nearly always holds at most one chunk
/// (a body given whole, or one frame's worth received), so the first sits inline and
/// the rest only exist, boxed, once a second chunk queues behind it (which keeps the
/// per-message state small and cheap to drop).
#[derive(Debug, Default)]
pub(super) struct Chunks {
    /// The front chunk; `None` only when `rest` is empty too.
    front: Option<Bytes>,
    // Boxed on purpose: 8 bytes instead of 32 in every message's state.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Bytes>>>,
}

impl Chunks {
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    /// Chunks holding just `chunk` (none if it is empty).
    #[inline]
    pub(super) fn one(chunk: Bytes) -> Chunks {
        Chunks {
            front: (!chunk.is_empty()).then_some(chunk),
            rest: None,
        }
    }

    #[inline]
    pub(super) fn push_back(&mut self, chunk: Bytes) {
        if self.front.is_none() {
            self.front = Some(chunk);
        } else {
            self.rest.get_or_insert_with(Box::default).push_back(chunk);
        }
    }

    #[inline]
    pub(super) fn front(&self) -> Option<&Bytes> {
        self.front.as_ref()
    }

    /// The chunk after the front one.
    #[inline]
    pub(super) fn second(&self) -> Option<&Bytes> {
        self.rest.as_ref().and_then(|r| r.front())
    }

    #[inline]
    pub(super) fn front_mut(&mut self) -> Option<&mut Bytes> {
        self.front.as_mut()
    }

    #[inline]
    pub(super) fn pop_front(&mut self) -> Option<Bytes> {
        match &mut self.rest {
            None => self.front.take(),
            Some(rest) => {
                let next = rest.pop_front();
                core::mem::replace(&mut self.front, next)
            }
        }
    }

    pub(super) fn clear(&mut self) {
        self.front = None;
        self.rest = None;
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
        assert!(m.span <= 2 * m.dense_len + SLACK as usize + 2);
        assert_eq!(m.get(1), Some(&10));
        assert_eq!(m.remove(1), Some(10));
        assert!(m.is_empty());
        // A burst's room is given back once it drains.
        for id in 20_000..30_000u64 {
            m.insert(id, id);
        }
        assert!(m.slots.len() >= 10_000);
        for id in 20_000..29_990u64 {
            assert!(m.delete(id));
        }
        assert_eq!(m.iter().count(), 10);
        assert_eq!(m.get(29_995), Some(&29_995));
        for id in 29_990..30_000u64 {
            assert!(m.delete(id));
        }
        for id in 30_000..70_000u64 {
            m.insert(id, id);
            assert!(m.delete(id));
        }
        assert!(m.slots.len() <= KEEP_SLOTS);
        // A wide gap does not allocate holes for it.
        m.insert(5, 5);
        m.insert(1_000_000_000, 6);
        assert!(m.span <= 2);
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

    /// Random inserts (ascending, with gaps) and removals against a `BTreeMap`.
    #[test]
    fn matches_btreemap() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut m = IdMap::default();
        let mut model = BTreeMap::new();
        let mut id = 1u64;
        for step in 0..20_000u64 {
            if next(3) > 0 || model.is_empty() {
                id += if next(10) == 0 { next(300) } else { 1 };
                m.insert(id, step);
                model.insert(id, step);
                // Removals may leave holes; inserts bring the window back in bounds.
                assert!(m.span as u64 <= 2 * m.dense_len as u64 + SLACK);
            } else {
                // Mostly the oldest (messages end roughly in order), sometimes any.
                let k = if next(2) == 0 {
                    0
                } else {
                    next(model.len() as u64) as usize
                };
                let victim = *model.keys().nth(k).unwrap();
                if next(2) == 0 {
                    assert_eq!(m.remove(victim), model.remove(&victim));
                } else {
                    assert_eq!(m.delete(victim), model.remove(&victim).is_some());
                }
            }
            let probe = next(id + 2);
            assert_eq!(m.get(probe), model.get(&probe));
            assert_eq!(m.len(), model.len());
        }
        let all: Vec<_> = m.iter().map(|(k, &v)| (k, v)).collect();
        assert_eq!(all, model.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
        assert_eq!(m.drain().collect::<Vec<_>>(), all);
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
