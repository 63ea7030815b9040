//! Which subscriptions a signal could concern, by kind and namespace, so that publishing looks
//! at the subscribers of that kind in that namespace (or in every namespace) and at no others.
//! Ditto does the same in two steps: its distributed pub/sub subscribes per streaming type to
//! the read subjects (optionally namespaced, `ReadSubjectExtractor.determineTopicsFor`) and each
//! session then checks its namespaces.

use super::subscription::{Kind, Kinds};
use std::collections::HashMap;

/// Slots of subscriptions, bucketed.
#[derive(Debug, Default)]
pub(super) struct Index {
    kinds: [KindIndex; Kind::ALL.len()],
}

#[derive(Debug, Default)]
struct KindIndex {
    /// Subscriptions without namespaces.
    everywhere: Vec<u32>,
    by_namespace: HashMap<Box<str>, Vec<u32>>,
}

impl Index {
    /// Files `slot` under each of `kinds`, in each of `namespaces` (`None`: everywhere). A
    /// namespace listed twice is filed once.
    pub(super) fn insert(&mut self, slot: u32, kinds: Kinds, namespaces: Option<&[String]>) {
        for kind in kinds.iter() {
            let index = &mut self.kinds[kind.index()];
            match namespaces {
                None => index.everywhere.push(slot),
                Some(namespaces) => {
                    for ns in namespaces {
                        let bucket = index.by_namespace.entry(ns.as_str().into()).or_default();
                        if !bucket.contains(&slot) {
                            bucket.push(slot);
                        }
                    }
                }
            }
        }
    }

    /// Takes `slot` out again; `kinds` and `namespaces` as it was inserted with.
    pub(super) fn remove(&mut self, slot: u32, kinds: Kinds, namespaces: Option<&[String]>) {
        for kind in kinds.iter() {
            let index = &mut self.kinds[kind.index()];
            match namespaces {
                None => index.everywhere.retain(|s| *s != slot),
                Some(namespaces) => {
                    for ns in namespaces {
                        if let Some(bucket) = index.by_namespace.get_mut(ns.as_str()) {
                            bucket.retain(|s| *s != slot);
                            if bucket.is_empty() {
                                index.by_namespace.remove(ns.as_str());
                            }
                        }
                    }
                }
            }
        }
    }

    /// The slots subscribed to `kind` in `namespace`: those of that namespace first, then those
    /// of every namespace, each in the order they subscribed. No slot comes twice.
    pub(super) fn candidates<'i>(
        &'i self,
        kind: Kind,
        namespace: &str,
    ) -> impl Iterator<Item = u32> + 'i {
        let index = &self.kinds[kind.index()];
        let named = index
            .by_namespace
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or_default();
        named.iter().chain(&index.everywhere).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn buckets_by_kind_and_namespace() {
        let mut index = Index::default();
        let a = ns(&["a", "a", "b"]);
        index.insert(
            0,
            Kinds::from([Kind::TwinEvents, Kind::LiveEvents]),
            Some(&a),
        );
        index.insert(1, Kind::TwinEvents.into(), None);
        index.insert(2, Kind::TwinEvents.into(), Some(&ns(&["b"])));
        fn got(index: &Index, kind: Kind, namespace: &str) -> Vec<u32> {
            index.candidates(kind, namespace).collect()
        }
        assert_eq!(got(&index, Kind::TwinEvents, "a"), [0, 1]);
        assert_eq!(got(&index, Kind::TwinEvents, "b"), [0, 2, 1]);
        assert_eq!(got(&index, Kind::TwinEvents, "c"), [1]);
        assert_eq!(got(&index, Kind::LiveEvents, "a"), [0]);
        assert!(got(&index, Kind::LiveMessages, "a").is_empty());

        index.remove(
            0,
            Kinds::from([Kind::TwinEvents, Kind::LiveEvents]),
            Some(&a),
        );
        assert_eq!(got(&index, Kind::TwinEvents, "a"), [1]);
        assert_eq!(got(&index, Kind::TwinEvents, "b"), [2, 1]);
        assert!(got(&index, Kind::LiveEvents, "a").is_empty());
        assert!(!index.kinds[Kind::TwinEvents.index()]
            .by_namespace
            .contains_key("a"));
    }
}
