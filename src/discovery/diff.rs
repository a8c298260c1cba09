//! The difference between two peer sets.

use std::collections::BTreeSet;

/// What changed from one set to the next, both lists sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub joined: Vec<String>,
    pub left: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty() && self.left.is_empty()
    }
}

pub fn diff(old: &BTreeSet<String>, new: &BTreeSet<String>) -> Diff {
    Diff {
        joined: new.difference(old).cloned().collect(),
        left: old.difference(new).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nodes: &[&str]) -> BTreeSet<String> {
        nodes.iter().map(|n| n.to_string()).collect()
    }

    /// (old, new, joined, left)
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);

    #[test]
    fn diffs() {
        let table: [Case; 5] = [
            (&[], &[], &[], &[]),
            (&[], &["a@1", "b@2"], &["a@1", "b@2"], &[]),
            (&["a@1", "b@2"], &[], &[], &["a@1", "b@2"]),
            (&["a@1", "b@2"], &["b@2", "c@3"], &["c@3"], &["a@1"]),
            (&["a@1"], &["a@1"], &[], &[]),
        ];
        for (old, new, joined, left) in table {
            let d = diff(&set(old), &set(new));
            assert_eq!(d.joined, joined, "{old:?} -> {new:?}");
            assert_eq!(d.left, left, "{old:?} -> {new:?}");
            assert_eq!(d.is_empty(), joined.is_empty() && left.is_empty());
        }
    }
}
