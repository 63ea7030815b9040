//! Bounded LRU caches that take memory as they fill.

use lru::LruCache;
use std::hash::Hash;
use std::num::NonZeroUsize;

/// An LRU cache holding at most `cap` entries, whose table grows as entries come.
/// `LruCache::new` allocates the table for `cap` at once: for the shards' thing caches (a
/// million entries in all by default) that is tens of megabytes zeroed at start-up, before
/// the first thing arrives.
pub fn lru<K: Hash + Eq, V>(cap: NonZeroUsize) -> LruCache<K, V> {
    let mut cache = LruCache::unbounded();
    cache.resize(cap);
    cache
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_without_preallocating() {
        let cap = NonZeroUsize::new(2).expect("2 is not zero");
        let mut cache = lru(cap);
        assert_eq!(cache.cap(), cap);
        cache.put(1, "a");
        cache.put(2, "b");
        assert_eq!(cache.push(3, "c"), Some((1, "a")), "the least recent goes");
        assert_eq!(cache.len(), 2);
    }
}
