//! The ids a server hands out: UUIDv7s, unique and sorted by creation time.
//!
//! The domain draws ids from an [`IdSource`] it is given; this is the one
//! a server gives it.

use spool_core::ids::IdSource;

/// Fresh ids `prefix_<UUIDv7 in simple hex>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Uuid7Ids;

impl IdSource for Uuid7Ids {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_keep_their_prefix() {
        let a = Uuid7Ids.new_id("msg");
        let b = Uuid7Ids.new_id("msg");
        assert!(a.starts_with("msg_"));
        assert!(a < b, "{a} !< {b}");
    }
}
