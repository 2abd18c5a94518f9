//! Routes interned towards the peer: the first START on a route carries its name with
//! a number to store it under, later ones only the number (docs/PROTOCOL.md §5.3).

use crate::frame::RouteField;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use bytes::Bytes;

#[derive(Debug)]
pub(super) struct RouteTable {
    names: BTreeMap<String, u64>,
    /// Numbers of forgotten routes, to hand out again.
    free: Vec<u64>,
    next: u64,
    /// How many routes the peer stores for us (0: no interning).
    peer_max: u64,
    /// The route used last and its number (0: none). Consecutive messages nearly
    /// always share a route; this spares the tree walk. `last` keeps its buffer, so
    /// switching routes does not allocate.
    last: String,
    last_number: u64,
}

impl RouteTable {
    pub(super) fn new() -> Self {
        RouteTable {
            names: BTreeMap::new(),
            free: Vec::new(),
            next: 1,
            peer_max: 0,
            last: String::new(),
            last_number: 0,
        }
    }

    pub(super) fn set_peer_max(&mut self, max: u64) {
        self.peer_max = max;
    }

    /// The route field for `route`, interning it if there is room.
    #[inline]
    pub(super) fn field(&mut self, route: &str) -> RouteField {
        // Compared inline: routes are short, a call to `memcmp` costs more.
        if self.last_number != 0
            && self.last.len() == route.len()
            && self.last.bytes().zip(route.bytes()).all(|(a, b)| a == b)
        {
            return RouteField::Ref(self.last_number);
        }
        self.field_slow(route)
    }

    /// [`field`](Self::field) for a route other than the last one.
    fn field_slow(&mut self, route: &str) -> RouteField {
        if let Some(&n) = self.names.get(route) {
            self.remember(route, n);
            return RouteField::Ref(n);
        }
        let number = if let Some(n) = self.free.pop() {
            Some(n)
        } else if self.next <= self.peer_max {
            self.next += 1;
            Some(self.next - 1)
        } else {
            None
        };
        let name = Bytes::copy_from_slice(route.as_bytes());
        match number {
            Some(n) => {
                self.names.insert(String::from(route), n);
                self.remember(route, n);
                RouteField::Literal { intern_as: n, name }
            }
            None => RouteField::Literal { intern_as: 0, name },
        }
    }

    fn remember(&mut self, route: &str, number: u64) {
        self.last.clear();
        self.last.push_str(route);
        self.last_number = number;
    }

    /// Forgets every interned route; they are sent as literals again.
    pub(super) fn forget_all(&mut self) {
        let numbers = core::mem::take(&mut self.names).into_values();
        self.free.extend(numbers);
        self.last_number = 0;
    }

    /// Forgets interned route `number`.
    pub(super) fn forget(&mut self, number: u64) {
        let before = self.names.len();
        self.names.retain(|_, n| *n != number);
        if self.names.len() != before {
            self.free.push(number);
        }
        if self.last_number == number {
            self.last_number = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_forgets() {
        let mut t = RouteTable::new();
        t.set_peer_max(2);
        let lit = |n: u64, s: &str| RouteField::Literal {
            intern_as: n,
            name: Bytes::copy_from_slice(s.as_bytes()),
        };
        assert_eq!(t.field("a"), lit(1, "a"));
        assert_eq!(t.field("a"), RouteField::Ref(1));
        assert_eq!(t.field("b"), lit(2, "b"));
        assert_eq!(t.field("a"), RouteField::Ref(1));
        assert_eq!(t.field("c"), lit(0, "c"));
        assert_eq!(t.field("a"), RouteField::Ref(1));
        t.forget(1);
        assert_eq!(t.field("a"), lit(1, "a"));
        assert_eq!(t.field("b"), RouteField::Ref(2));
        t.forget_all();
        // Freed numbers come back last-freed first.
        assert_eq!(t.field("b"), lit(2, "b"));
        assert_eq!(t.field("a"), lit(1, "a"));
        assert_eq!(t.field("a"), RouteField::Ref(1));
        assert_eq!(t.field("b"), RouteField::Ref(2));
    }
}
