//! Route names as messages carry them: cheap to clone, and not allocated at all when
//! known at compile time.
//!
//! Every message head holds its route. A `String` there cost an allocation and a copy
//! per message on both ends (the sender's head, the receiver's copy of an interned
//! name); a [`Route`] is a `&'static str`, a short name stored inline, or a shared
//! `Arc<str>`, so cloning one copies at most 24 bytes. Names of up to
//! [`Route::INLINE_MAX`] bytes, most routes, are inline: they are never allocated, and
//! their clones share no reference count, which matters when a receiving driver hands
//! millions of messages to an application on another CPU (a shared count bounces
//! between the two caches with every message). On targets without atomic pointers
//! (e.g. Cortex-M0), where `Arc` does not exist, the shared form is a `Box<str>` that
//! clones by copying.

use alloc::string::String;
use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;

/// A route name, e.g. `sensor/read`. It derefs to `str`; clones share the text.
///
/// Build one from any string (`"a/b".into()`, `String::into()`), or with
/// [`Route::from_static`] for a name known at compile time, which allocates nothing:
/// keep such a route in a constant and clone it for every message.
///
/// ```
/// use netcore_core::{MessageHead, Route};
///
/// const READ: Route = Route::from_static("sensor/read");
/// let head = MessageHead::to_route(READ.clone());
/// assert_eq!(head.route.as_deref(), Some("sensor/read"));
///
/// let dynamic = Route::from(format!("user/{}", 42));
/// assert_eq!(dynamic, "user/42");
/// assert_eq!(dynamic.clone().as_str(), "user/42");
/// ```
#[derive(Clone)]
pub struct Route(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Inline(Inline),
    Shared(Shared),
}

/// A name of at most `Route::INLINE_MAX` bytes, held in place. Built only from a
/// `&str`, so its bytes are always UTF-8.
#[derive(Clone, Copy)]
struct Inline {
    len: u8,
    bytes: [u8; Route::INLINE_MAX],
}

#[cfg(target_has_atomic = "ptr")]
type Shared = alloc::sync::Arc<str>;
#[cfg(not(target_has_atomic = "ptr"))]
type Shared = alloc::boxed::Box<str>;

impl Route {
    /// Longest name (in bytes) a `Route` holds in place, without an allocation.
    pub const INLINE_MAX: usize = 22;

    /// A route naming `name`, allocating nothing.
    pub const fn from_static(name: &'static str) -> Route {
        Route(Repr::Static(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            // Always UTF-8 (copied from a `str`); checked rather than assumed, as this
            // crate has no `unsafe`: a few instructions for a short name.
            Repr::Inline(i) => core::str::from_utf8(&i.bytes[..usize::from(i.len)]).unwrap_or(""),
            Repr::Shared(s) => s,
        }
    }

    /// The name's length in bytes. Inherent (ahead of `str::len` through `Deref`) so
    /// that it does not re-check an inline name's text, as `as_str` does.
    ///
    /// ```
    /// use netcore_core::Route;
    /// assert_eq!(Route::from("sensor/read").len(), 11);
    /// assert!(Route::default().is_empty());
    /// ```
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Static(s) => s.len(),
            Repr::Inline(i) => usize::from(i.len),
            Repr::Shared(s) => s.len(),
        }
    }

    /// Whether the name is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `name` in place if it is short enough.
    fn inline(name: &str) -> Option<Route> {
        let len = name.len();
        if len > Route::INLINE_MAX {
            return None;
        }
        let mut bytes = [0; Route::INLINE_MAX];
        bytes[..len].copy_from_slice(name.as_bytes());
        Some(Route(Repr::Inline(Inline {
            len: len as u8,
            bytes,
        })))
    }
}

impl Default for Route {
    /// The empty name.
    fn default() -> Route {
        Route::from_static("")
    }
}

impl Deref for Route {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Route {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Route {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Route {
    /// Copies `name`: in place up to [`Route::INLINE_MAX`] bytes, else into a shared
    /// allocation.
    fn from(name: &str) -> Route {
        Route::inline(name).unwrap_or_else(|| Route(Repr::Shared(Shared::from(name))))
    }
}

impl From<&String> for Route {
    fn from(name: &String) -> Route {
        Route::from(name.as_str())
    }
}

impl From<String> for Route {
    fn from(name: String) -> Route {
        Route::inline(&name).unwrap_or_else(|| Route(Repr::Shared(Shared::from(name))))
    }
}

#[cfg(target_has_atomic = "ptr")]
impl From<alloc::sync::Arc<str>> for Route {
    fn from(name: alloc::sync::Arc<str>) -> Route {
        Route(Repr::Shared(name))
    }
}

impl From<Route> for String {
    fn from(route: Route) -> String {
        String::from(route.as_str())
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl PartialEq<str> for Route {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Route {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Route {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialOrd for Route {
    fn partial_cmp(&self, other: &Route) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Route {
    fn cmp(&self, other: &Route) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Route {
    /// Hashes as the `str` it holds (consistent with `Borrow<str>`).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::string::ToString;

    #[test]
    fn every_form_compares_and_orders_by_its_text() {
        let forms = [
            Route::from_static("a/b"),
            Route::from("a/b"),
            Route::from(String::from("a/b")),
            Route::from(alloc::sync::Arc::<str>::from("a/b")),
        ];
        for x in &forms {
            for y in &forms {
                assert_eq!(x, y);
                assert_eq!(x.cmp(y), Ordering::Equal);
            }
            assert_eq!(*x, "a/b");
            assert_eq!(x.to_string(), "a/b");
            assert_eq!(alloc::format!("{x:?}"), "\"a/b\"");
        }
        let (a, b) = (Route::from_static("a"), Route::from("b"));
        assert!(a < b);
        assert_eq!(Route::default(), "");
        // Looked up by `str` in maps keyed by routes.
        let mut m = BTreeMap::new();
        m.insert(Route::from("x"), 1);
        assert_eq!(m.get("x"), Some(&1));
    }

    #[test]
    fn long_names_are_shared_short_ones_inline() {
        let long = "a/route/name/longer/than/22";
        let r = Route::from(String::from(long));
        let c = r.clone();
        assert!(core::ptr::eq(r.as_str(), c.as_str()));
        assert!(matches!(r.0, Repr::Shared(_)));
        let s = Route::from_static("static");
        assert!(core::ptr::eq(s.as_str(), "static"));
        // Up to INLINE_MAX bytes, multi-byte characters included, held in place.
        for name in [
            "",
            "a",
            "sensor/read",
            "exactly/22/bytes/long!",
            "ünïcödé/ßtraße",
        ] {
            assert!(name.len() <= Route::INLINE_MAX, "{name}");
            for r in [Route::from(name), Route::from(String::from(name))] {
                assert!(matches!(r.0, Repr::Inline(_)), "{name}");
                assert_eq!(r.as_str(), name);
                assert_eq!((r.len(), r.is_empty()), (name.len(), name.is_empty()));
                assert_eq!(r.clone(), Route::from_static(name));
            }
        }
        let just_over = "twenty/three/bytes/long";
        assert_eq!(just_over.len(), Route::INLINE_MAX + 1);
        assert!(matches!(Route::from(just_over).0, Repr::Shared(_)));
        assert_eq!(Route::from(just_over), just_over);
        // No bigger than the two-word forms with their tag.
        assert_eq!(core::mem::size_of::<Route>(), 24);
    }
}
