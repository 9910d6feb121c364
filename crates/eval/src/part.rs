//! The tuning/holdout split of an evaluation set's rows (see the crate docs,
//! "Holdout quarter").

use std::fmt;
use std::str::FromStr;

/// Which rows of a set to score: all of them, the three quarters we may tune
/// on, or the quarter kept out of tuning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Part {
    #[default]
    All,
    Tune,
    Holdout,
}

impl Part {
    /// The name used on the command line and in the detail lines.
    pub fn name(self) -> &'static str {
        match self {
            Part::All => "all",
            Part::Tune => "tune",
            Part::Holdout => "holdout",
        }
    }

    /// Whether the row with this key belongs to the part.
    pub fn keeps(self, key: &str) -> bool {
        match self {
            Part::All => true,
            Part::Tune => !is_holdout(key),
            Part::Holdout => is_holdout(key),
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Part {
    type Err = String;

    fn from_str(text: &str) -> Result<Part, String> {
        match text {
            "all" => Ok(Part::All),
            "tune" => Ok(Part::Tune),
            "holdout" => Ok(Part::Holdout),
            other => Err(format!("part {other:?} is not one of: all, tune, holdout")),
        }
    }
}

/// 64-bit FNV-1a of `bytes` (offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3), written out so the split never changes with a
/// dependency.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A row is in the holdout quarter when the FNV-1a hash of its key, its
/// upper half folded onto its lower half, is 0 mod 4. The fold matters:
/// FNV-1a's lowest bits depend only on the lowest bits of each input byte
/// (the prime is odd), so the raw hash mod 4 of decimal line numbers would
/// follow the digits' residues rather than look random.
pub fn is_holdout(key: &str) -> bool {
    let hash = fnv1a64(key.as_bytes());
    (hash ^ (hash >> 32)).is_multiple_of(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_split_is_stable_and_about_a_quarter() {
        // Stable: the same keys give the same verdicts, run after run (these
        // values are pinned so a change of hash or fold cannot pass unseen).
        let first: Vec<bool> = (1..=12).map(|n| is_holdout(&n.to_string())).collect();
        let again: Vec<bool> = (1..=12).map(|n| is_holdout(&n.to_string())).collect();
        assert_eq!(first, again);
        let pinned: Vec<usize> = (1..=40).filter(|n| is_holdout(&n.to_string())).collect();
        assert_eq!(pinned, PINNED_HOLDOUT_1_TO_40);
        // About 25 % for line numbers, for uids and for report ids.
        for keys in [
            (1..=2400).map(|n| n.to_string()).collect::<Vec<_>>(),
            (1..=3000).map(|n| format!("{}", 3 * n + 7)).collect(),
            (1..=800).map(|n| format!("devA-{n:03}")).collect(),
        ] {
            let held = keys.iter().filter(|key| is_holdout(key)).count();
            let share = held as f64 / keys.len() as f64;
            assert!((0.22..=0.28).contains(&share), "share {share}");
            // Tune and holdout partition the rows.
            let tuned = keys.iter().filter(|key| Part::Tune.keeps(key)).count();
            assert_eq!(held + tuned, keys.len());
            assert!(keys.iter().all(|key| Part::All.keeps(key)));
        }
    }

    #[test]
    fn parts_parse_and_print() {
        for part in [Part::All, Part::Tune, Part::Holdout] {
            assert_eq!(part.to_string().parse::<Part>(), Ok(part));
        }
        assert!("half".parse::<Part>().is_err());
        assert_eq!(Part::default(), Part::All);
    }

    const PINNED_HOLDOUT_1_TO_40: &[usize] = &[1, 5, 9, 11, 15, 19, 20, 24, 28, 33, 37];
}
