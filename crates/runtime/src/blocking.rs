//! Blocking facade (in progress).
