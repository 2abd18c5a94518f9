//! The `netcore` command.
fn main() {}
