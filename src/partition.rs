//! `--partition K/N` in the pipeline: the slice of the fleet a partial run validates, and the
//! record ([`report::PartitionInfo`]) `report merge` checks the parts with.
//!
//! What is per slice (said in README.md, "Splitting a huge fleet"): the fleet is resolved whole
//! and then sliced by [`report::Partition`] (a SHA-256 of the shard id), so every job sees the
//! same fleet and the same slices; catalogs, probes, rehearsals (one per schema shape present in
//! the slice) and rollback proofs run for the slice's shards only. Schema-shape grouping and the
//! drift reference (the largest shape group) are computed within the slice: the reference is
//! recorded and `report merge` refuses parts whose references differ. The fleet-level rerun
//! (`second-tenant-fails`: two tenants of one database rehearsed in sequence) takes the first
//! such pair of the slice, so a merged report can carry that finding on up to one shard per
//! part. Counts, risk, the fleet gate and the fleet fingerprint are recomputed by the merge.

use report::{Partition, PartitionInfo, sha256_hex};
use topology::Fleet;

use crate::options::ValidateOptions;

/// The fleet with only the shards of `partition`; instances are kept (an instance without a
/// shard in the slice is not connected to).
pub fn slice(fleet: &Fleet, partition: Partition) -> Fleet {
    Fleet {
        instances: fleet.instances.clone(),
        shards: fleet
            .shards
            .iter()
            .filter(|s| partition.contains(&s.id))
            .cloned()
            .collect(),
    }
}

/// The slice of `fleet` for [`ValidateOptions::partition`], its step logged; `None` without a
/// partition (the whole fleet).
pub(crate) fn slice_for_run(
    opts: &ValidateOptions,
    fleet: &Fleet,
    steps: &mut crate::steps::Steps,
) -> Option<Fleet> {
    let p = opts.partition?;
    let sliced = slice(fleet, p);
    steps.push((
        "partition".into(),
        format!(
            "partition {p}: {} of {} shards (SHA-256 of the shard id)",
            sliced.shards.len(),
            fleet.shards.len()
        ),
        0,
    ));
    Some(sliced)
}

/// Hex SHA-256 over the options that change verdicts: the configuration (rules, severities,
/// budgets, custom rules, PostgreSQL version), the effective lock budget, the rehearsal mode,
/// the rollback proof and its script, which rows the shadow holds, the live reads and the gate
/// policy. Two parts with different digests were not run alike and are not merged.
pub fn options_sha256(opts: &ValidateOptions, policy: &report::GatePolicy) -> String {
    let c = &opts.config;
    let rollback_script = match &opts.rollback {
        Some(crate::options::MigrationSource::File(p)) => {
            std::fs::read(p).ok().map(|b| sha256_hex(&b))
        }
        Some(crate::options::MigrationSource::Text { sql, .. }) => Some(sha256_hex(sql.as_bytes())),
        None => None,
    };
    let text = format!(
        "pg_version={:?}\ntransaction_mode={:?}\ntenant_schema_pattern={:?}\nrules={:?}\n\
         lock_budget_ms={}\nlimits={:?}\ndata_changes={:?}\ncustom_rules={:?}\n\
         rehearsal={:?}\nvalidate_rollback={}\nrollback_script={:?}\nshadow_data={:?}\n\
         live={:?}\npolicy={:?}\n",
        c.pg_version,
        c.transaction_mode,
        c.tenant_schema_pattern,
        c.rules,
        opts.lock_budget(),
        c.limits,
        c.data_changes,
        c.custom_rules,
        opts.sim.rehearsal,
        opts.validate_rollback,
        rollback_script,
        opts.shadow_data(),
        opts.sim.live,
        policy,
    );
    sha256_hex(text.as_bytes())
}

/// The `fleet.partition` record of a partial report.
pub(crate) fn info(
    opts: &ValidateOptions,
    partition: Partition,
    shards_in_fleet: usize,
    drift_reference: Option<String>,
    policy: &report::GatePolicy,
) -> PartitionInfo {
    PartitionInfo {
        index: partition.index,
        count: partition.count,
        shards_in_fleet,
        drift_reference,
        options_sha256: options_sha256(opts, policy),
        policy: policy.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use topology::{Shard, ShardLocation};

    #[test]
    fn the_slices_cover_the_fleet_once() {
        let fleet = Fleet {
            instances: Vec::new(),
            shards: (0..50)
                .map(|i| {
                    Shard::new(
                        "db1",
                        ShardLocation::Schema {
                            database: "app".into(),
                            schema: format!("tenant_{i:02}"),
                        },
                    )
                })
                .collect(),
        };
        let mut seen: Vec<String> = (1..=3)
            .flat_map(|k| slice(&fleet, Partition::new(k, 3).unwrap()).shards)
            .map(|s| s.id)
            .collect();
        seen.sort();
        let mut all: Vec<String> = fleet.shards.iter().map(|s| s.id.clone()).collect();
        all.sort();
        assert_eq!(seen, all);
        assert_eq!(slice(&fleet, Partition::new(1, 1).unwrap()), fleet);
    }

    #[test]
    fn the_options_digest_sees_a_changed_budget() {
        let policy = report::GatePolicy::default();
        let mut o = ValidateOptions::from_sql("m.sql", "SELECT 1");
        let a = options_sha256(&o, &policy);
        assert_eq!(a, options_sha256(&o, &policy));
        o.lock_budget_ms = Some(1);
        assert_ne!(a, options_sha256(&o, &policy));
    }
}
