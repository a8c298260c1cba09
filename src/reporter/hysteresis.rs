//! Which peers are reported present: a peer joins as soon as one successful
//! poll sees it, and leaves only after `leave_after` consecutive successful
//! polls missed it. A DNS answer that briefly lacks a healthy peer (a
//! libcluster complaint: partial answers disconnect healthy nodes) is absorbed.
//! Failed polls are not observations and never reach this state machine.

use std::collections::{BTreeMap, BTreeSet};

use crate::discovery::{Diff, diff};

#[derive(Debug, Clone)]
pub struct Membership {
    leave_after: u32,
    /// Reported peers → consecutive successful polls that missed them.
    peers: BTreeMap<String, u32>,
}

impl Membership {
    /// `leave_after` 0 is taken as 1: a peer missing once is gone.
    pub fn new(leave_after: u32) -> Self {
        Membership {
            leave_after: leave_after.max(1),
            peers: BTreeMap::new(),
        }
    }

    /// Feeds one successful poll; returns who joined and who left (sorted).
    pub fn observe(&mut self, seen: &BTreeSet<String>) -> Diff {
        let reported = self.reported();
        let Diff {
            joined,
            left: missing,
        } = diff(&reported, seen);
        for node in seen {
            // Seen again: counts back up to fully present at once.
            self.peers.insert(node.clone(), 0);
        }
        let mut left = Vec::new();
        for node in missing {
            let misses = self.peers.entry(node.clone()).or_insert(0);
            *misses += 1;
            if *misses >= self.leave_after {
                self.peers.remove(&node);
                left.push(node);
            }
        }
        Diff { joined, left }
    }

    /// The peers currently reported present (also those missed fewer than
    /// `leave_after` times).
    pub fn reported(&self) -> BTreeSet<String> {
        self.peers.keys().cloned().collect()
    }

    /// How many successful polls in a row missed `node` (None: not reported).
    pub fn misses(&self, node: &str) -> Option<u32> {
        self.peers.get(node).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nodes: &[&str]) -> BTreeSet<String> {
        nodes.iter().map(|n| n.to_string()).collect()
    }

    /// One step: the poll's answer, then the expected joins, leaves and
    /// reported set.
    type Step<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);

    #[test]
    fn scenarios() {
        let table: [(u32, &[Step]); 5] = [
            // leave_after 3: two misses keep b, the third reports it left.
            (
                3,
                &[
                    (&["a", "b"], &["a", "b"], &[], &["a", "b"]),
                    (&["a"], &[], &[], &["a", "b"]),
                    (&["a"], &[], &[], &["a", "b"]),
                    (&["a"], &[], &["b"], &["a"]),
                    (&["a"], &[], &[], &["a"]),
                ],
            ),
            // Seen again after two misses: the count starts over.
            (
                3,
                &[
                    (&["a", "b"], &["a", "b"], &[], &["a", "b"]),
                    (&["a"], &[], &[], &["a", "b"]),
                    (&["a"], &[], &[], &["a", "b"]),
                    (&["a", "b"], &[], &[], &["a", "b"]),
                    (&["a"], &[], &[], &["a", "b"]),
                    (&["a"], &[], &[], &["a", "b"]),
                    (&["a"], &[], &["b"], &["a"]),
                ],
            ),
            // leave_after 1: gone at the first miss; back at once.
            (
                1,
                &[
                    (&["a", "b"], &["a", "b"], &[], &["a", "b"]),
                    (&[], &[], &["a", "b"], &[]),
                    (&["b"], &["b"], &[], &["b"]),
                ],
            ),
            // leave_after 0 behaves as 1.
            (
                0,
                &[
                    (&["a"], &["a"], &[], &["a"]),
                    (&["c"], &["c"], &["a"], &["c"]),
                ],
            ),
            // Empty answers are observations too; no change, no report.
            (
                2,
                &[
                    (&[], &[], &[], &[]),
                    (&["a"], &["a"], &[], &["a"]),
                    (&["a"], &[], &[], &["a"]),
                    (&[], &[], &[], &["a"]),
                    (&[], &[], &["a"], &[]),
                    (&[], &[], &[], &[]),
                ],
            ),
        ];
        for (case, (leave_after, steps)) in table.iter().enumerate() {
            let mut m = Membership::new(*leave_after);
            for (i, (seen, joined, left, reported)) in steps.iter().enumerate() {
                let d = m.observe(&set(seen));
                assert_eq!(
                    d.joined,
                    set(joined).into_iter().collect::<Vec<_>>(),
                    "case {case} step {i}"
                );
                assert_eq!(
                    d.left,
                    set(left).into_iter().collect::<Vec<_>>(),
                    "case {case} step {i}"
                );
                assert_eq!(m.reported(), set(reported), "case {case} step {i}");
            }
        }
    }

    #[test]
    fn miss_counts() {
        let mut m = Membership::new(3);
        m.observe(&set(&["a", "b"]));
        m.observe(&set(&["a"]));
        assert_eq!(m.misses("a"), Some(0));
        assert_eq!(m.misses("b"), Some(1));
        assert_eq!(m.misses("c"), None);
    }
}
