//! Which offsets may be committed: per partition, the contiguous watermark below which every
//! consumed message is settled. A later success never moves the commit past an earlier message
//! that is still pending; a message handed back for redelivery rewinds its partition to it.

use std::collections::{BTreeSet, HashMap};

/// A topic and partition.
pub type Partition = (String, i32);

/// One partition's consumed offsets.
#[derive(Debug, Default)]
struct Offsets {
    /// Consumed, handed to the broker, not settled.
    pending: BTreeSet<i64>,
    /// One past the highest offset consumed since the last rewind.
    next: Option<i64>,
    /// One past the highest offset ever consumed in this assignment: below it, a record is
    /// consumed again.
    seen: i64,
    /// The last offset committed.
    committed: Option<i64>,
}

impl Offsets {
    fn watermark(&self) -> Option<i64> {
        self.pending.first().copied().or(self.next)
    }
}

/// What is to be done after a settlement.
#[derive(Debug, PartialEq, Eq)]
pub enum Settled {
    /// Nothing more (counted, or unknown: of a released partition or a rewound stretch).
    Done,
    /// Seek the partition to this offset: the message is consumed again.
    Rewind(Partition, i64),
}

/// The offsets of every assigned partition, and the settle tokens of the pending messages.
#[derive(Debug, Default)]
pub struct Tracker {
    partitions: HashMap<Partition, Offsets>,
    tokens: HashMap<u64, (Partition, i64)>,
}

impl Tracker {
    /// Messages consumed and not settled, over every partition.
    pub fn in_flight(&self) -> usize {
        self.tokens.len()
    }

    /// Pending messages of `partitions`.
    pub fn pending_in(&self, partitions: &[Partition]) -> usize {
        partitions
            .iter()
            .filter_map(|p| self.partitions.get(p))
            .map(|o| o.pending.len())
            .sum()
    }

    /// A message consumed at `offset`, to be settled by `token` (`None`: at most once, it counts
    /// as settled now). Returns whether it was consumed before (after a rewind).
    pub fn consumed(&mut self, partition: &Partition, offset: i64, token: Option<u64>) -> bool {
        let offsets = self.partitions.entry(partition.clone()).or_default();
        let again = offset < offsets.seen;
        offsets.seen = offsets.seen.max(offset + 1);
        offsets.next = Some(offsets.next.map_or(offset + 1, |n| n.max(offset + 1)));
        if let Some(token) = token {
            offsets.pending.insert(offset);
            self.tokens.insert(token, (partition.clone(), offset));
        }
        again
    }

    /// The message of `token` settled: `redeliver` rewinds its partition to it.
    pub fn settled(&mut self, token: u64, redeliver: bool) -> Settled {
        let Some((partition, offset)) = self.tokens.remove(&token) else {
            return Settled::Done;
        };
        let Some(offsets) = self.partitions.get_mut(&partition) else {
            return Settled::Done;
        };
        if !redeliver {
            offsets.pending.remove(&offset);
            return Settled::Done;
        }
        // Everything from `offset` on comes again: forget it, and the tokens of it, so that
        // their late settlements do not count for the copies consumed again.
        offsets.pending.retain(|o| *o < offset);
        offsets.next = Some(offset);
        self.tokens
            .retain(|_, (p, o)| !(*p == partition && *o >= offset));
        Settled::Rewind(partition, offset)
    }

    /// The partitions whose watermark moved past their last commit, with it.
    pub fn to_commit(&self) -> Vec<(Partition, i64)> {
        self.partitions
            .iter()
            .filter_map(|(p, o)| {
                let mark = o.watermark()?;
                (o.committed.is_none_or(|c| mark > c)).then(|| (p.clone(), mark))
            })
            .collect()
    }

    /// `offsets` were committed.
    pub fn committed(&mut self, offsets: &[(Partition, i64)]) {
        for (partition, offset) in offsets {
            if let Some(o) = self.partitions.get_mut(partition) {
                o.committed = Some(o.committed.map_or(*offset, |c| c.max(*offset)));
            }
        }
    }

    /// A commit of `partitions` failed: their watermark is committed again next time.
    pub fn commit_failed(&mut self, partitions: &[Partition]) {
        for p in partitions {
            if let Some(o) = self.partitions.get_mut(p) {
                o.committed = None;
            }
        }
    }

    /// `partitions` were released (rebalance): their pending messages are forgotten.
    pub fn release(&mut self, partitions: &[Partition]) {
        for p in partitions {
            self.partitions.remove(p);
        }
        self.tokens.retain(|_, (p, _)| !partitions.contains(p));
    }

    /// Every partition tracked.
    pub fn partitions(&self) -> Vec<Partition> {
        self.partitions.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Partition {
        ("t".to_owned(), 0)
    }

    #[test]
    fn the_commit_waits_for_the_oldest_pending_message() {
        let mut t = Tracker::default();
        for offset in 0..10 {
            assert!(!t.consumed(&p(), offset, Some(offset as u64)));
        }
        // Messages 3..10 succeed first: nothing can be committed past 0.
        for token in 3..10 {
            assert_eq!(t.settled(token, false), Settled::Done);
        }
        assert_eq!(t.to_commit(), vec![(p(), 0)]);
        t.committed(&[(p(), 0)]);
        assert!(t.to_commit().is_empty());
        t.settled(0, false);
        t.settled(1, false);
        assert_eq!(t.to_commit(), vec![(p(), 2)]);
        t.settled(2, false);
        assert_eq!(t.to_commit(), vec![(p(), 10)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn a_redelivery_rewinds_and_later_settlements_of_the_stretch_are_ignored() {
        let mut t = Tracker::default();
        for offset in 0..10 {
            t.consumed(&p(), offset, Some(offset as u64));
        }
        t.settled(0, false);
        t.settled(1, false);
        assert_eq!(t.settled(2, true), Settled::Rewind(p(), 2));
        // 3..10 were pending; their settlements no longer count.
        for token in 3..10 {
            assert_eq!(t.settled(token, false), Settled::Done);
        }
        assert_eq!(t.to_commit(), vec![(p(), 2)]);
        t.committed(&[(p(), 2)]);
        // Consumed again: marked as such, and committed as they settle.
        for offset in 2..10 {
            assert!(t.consumed(&p(), offset, Some(100 + offset as u64)));
        }
        assert!(t.to_commit().is_empty());
        for offset in 2..10 {
            t.settled(100 + offset as u64, false);
        }
        assert_eq!(t.to_commit(), vec![(p(), 10)]);
        assert!(!t.consumed(&p(), 10, Some(200)), "not consumed before");
    }

    #[test]
    fn at_most_once_counts_as_settled_when_consumed() {
        let mut t = Tracker::default();
        t.consumed(&p(), 5, None);
        t.consumed(&p(), 6, None);
        assert_eq!(t.to_commit(), vec![(p(), 7)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn released_partitions_forget_their_messages() {
        let mut t = Tracker::default();
        let other = ("t".to_owned(), 1);
        t.consumed(&p(), 0, Some(1));
        t.consumed(&other, 0, Some(2));
        assert_eq!(t.pending_in(&[p()]), 1);
        t.release(&[p()]);
        assert_eq!(t.pending_in(&[p()]), 0);
        assert_eq!(t.settled(1, false), Settled::Done);
        assert_eq!(t.in_flight(), 1);
        assert_eq!(t.partitions(), vec![other]);
    }
}
