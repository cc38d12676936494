//! `--partition K/N`: a stable, hash-based slice of a fleet's shards, and what a partial report
//! records about the slice it covers.
//!
//! A shard belongs to partition `1 + (h mod N)` where `h` is the first eight bytes, read
//! big-endian, of the SHA-256 of its shard id (the report's `shard` field, UTF-8). The function
//! is fixed — not Rust's randomised `DefaultHasher` — so every job of a CI matrix, on any
//! machine and any deployclaw version, puts a shard in the same partition, and `report merge`
//! can check that every shard of a part belongs to that part's partition. What a partial
//! report records about its slice is [`crate::PartitionInfo`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One slice of the fleet: partition `index` of `count` (`1 ≤ index ≤ count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Partition {
    /// 1-based partition number.
    pub index: u32,
    /// How many partitions the fleet is split into.
    pub count: u32,
}

/// Why a `K/N` text is not a partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (expected K/N with 1 ≤ K ≤ N, e.g. 2/8)")]
pub struct PartitionSyntaxError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Partition {
    /// Partition `index` of `count`; `None` unless `1 ≤ index ≤ count`.
    pub fn new(index: u32, count: u32) -> Option<Partition> {
        (index >= 1 && index <= count).then_some(Partition { index, count })
    }

    /// The partition (1-based) `shard_id` falls in when the fleet is split into `count`
    /// (`count` 0 is read as 1).
    pub fn of(shard_id: &str, count: u32) -> u32 {
        let digest = Sha256::digest(shard_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let h = u64::from_be_bytes(first);
        // The remainder is below `count`, so it fits a u32.
        (h % u64::from(count.max(1))) as u32 + 1
    }

    /// Whether `shard_id` is in this partition.
    pub fn contains(&self, shard_id: &str) -> bool {
        Partition::of(shard_id, self.count) == self.index
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Partition {
    type Err = PartitionSyntaxError;

    fn from_str(text: &str) -> Result<Partition, PartitionSyntaxError> {
        let err = |reason: &str| PartitionSyntaxError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (k, n) = text.trim().split_once('/').ok_or_else(|| err("no `/`"))?;
        let number = |s: &str, what: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| err(&format!("{what} `{s}` is not a whole number")))
        };
        let (k, n) = (number(k, "K")?, number(n, "N")?);
        if n == 0 {
            return Err(err("N must be at least 1"));
        }
        Partition::new(k, n).ok_or_else(|| err(&format!("K must be between 1 and {n}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fixed_and_spreads_shards() {
        // Fixed values: a change of the function would move shards between CI jobs.
        assert_eq!(Partition::of("db1/app/tenant_0001", 1), 1);
        let ids: Vec<String> = (0..3000)
            .map(|i| format!("db1/app/tenant_{i:04}"))
            .collect();
        let mut per = [0usize; 3];
        for id in &ids {
            let p = Partition::of(id, 3);
            assert!((1..=3).contains(&p));
            per[(p - 1) as usize] += 1;
            assert!(Partition::new(p, 3).unwrap().contains(id));
        }
        assert!(per.iter().all(|n| (800..1200).contains(n)), "{per:?}");
        let sha = Sha256::digest(b"db1/app/tenant_0001");
        let h = u64::from_be_bytes(sha[..8].try_into().unwrap());
        assert_eq!(Partition::of("db1/app/tenant_0001", 7), (h % 7) as u32 + 1);
    }

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        assert_eq!(
            "2/8".parse::<Partition>(),
            Ok(Partition { index: 2, count: 8 })
        );
        assert_eq!(" 1/1 ".parse::<Partition>().unwrap().to_string(), "1/1");
        for bad in ["0/3", "4/3", "1/0", "3", "a/3", "1/-2", "", "1/3/4"] {
            let e = bad.parse::<Partition>().unwrap_err();
            assert!(e.to_string().contains("expected K/N"), "{bad}: {e}");
        }
        assert!(
            "4/3"
                .parse::<Partition>()
                .unwrap_err()
                .to_string()
                .contains("K must be between 1 and 3")
        );
    }
}
