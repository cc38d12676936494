//! The per-fleet proof of non-tenant objects: when several shards share a database, the
//! migration is rehearsed for two of them in sequence on one shadow database holding both
//! schemas, each run with its own `search_path`, as a per-tenant rollout runs it. What the
//! second run fails on and its own rehearsal does not is what the first run left behind in the
//! database (`CREATE SCHEMA utils`, a function in `public`, an extension).

use std::collections::BTreeSet;

use migration_parser::Migration;
use sqlx::{Connection, PgConnection};
use topology::{Fleet, Shard};

use super::job::RehearsalJob;
use super::shadow::run_for_schema;
use crate::conn::connect_options;
use crate::control::CancelToken;
use crate::dump::{DumpCache, clone_lists_on};
use crate::rehearsal::FleetRerun;
use crate::rehearsal::RehearsalLimits;
use crate::rehearsal::clone::clone_schemas;
use crate::rehearsal::server::ShadowServer;

/// Two reachable shards that share an instance and a database with different schemas: the
/// first as a job (with its instance's connection), the second. `preferred` (the first
/// rehearsal's shard) with the first other such shard of its database when it has one — its
/// rehearsal then carries the proof ([`super::shadow::rehearse_on_shadow`]) — else the first
/// two in fleet order.
pub(super) fn first_pair(
    fleet: &Fleet,
    unreachable: &std::collections::HashMap<String, String>,
    preferred: Option<&Shard>,
) -> Option<(RehearsalJob, Shard)> {
    let ok: Vec<&Shard> = fleet
        .shards
        .iter()
        .filter(|s| !unreachable.contains_key(&s.id))
        .collect();
    let pair = |a: &Shard, b: &Shard| {
        let inst = fleet.instances.iter().find(|x| x.name == a.instance)?;
        let job = RehearsalJob {
            fingerprint: String::new(),
            shard: a.clone(),
            spec: inst.connection.clone(),
        };
        Some((job, b.clone()))
    };
    if let Some(a) = preferred.filter(|p| ok.iter().any(|s| s.id == p.id))
        && let Some(b) = fleet_partner(fleet, a, |s| !unreachable.contains_key(&s.id))
    {
        return pair(a, b);
    }
    for (i, a) in ok.iter().enumerate() {
        if let Some(b) = ok[i + 1..].iter().find(|b| same_database(a, b)) {
            return pair(a, b);
        }
    }
    None
}

/// The shard the first rehearsal (of `shard`, the first reachable shard in fleet order) runs
/// the migration for after its own, on the same shadow database, as the per-fleet proof of
/// non-tenant objects: the first other `reachable` shard in fleet order of the same instance
/// and database, in another schema. `None` for a database-per-tenant shard. The rollback proof
/// asks too, so that its `pg_dump` is the rehearsal's ([`schemas_to_clone`](crate::schemas_to_clone)).
pub fn fleet_partner<'a>(
    fleet: &'a Fleet,
    shard: &Shard,
    reachable: impl Fn(&Shard) -> bool,
) -> Option<&'a Shard> {
    fleet
        .shards
        .iter()
        .find(|b| same_database(shard, b) && reachable(b))
}

/// Whether `b` is another tenant of `a`'s database: same instance and database, another schema.
fn same_database(a: &Shard, b: &Shard) -> bool {
    b.instance == a.instance
        && b.location.database() == a.location.database()
        && b.location.schema() != a.location.schema()
}

/// Rehearse `first` then `second` on one fresh shadow database (always dropped) and return
/// the second run.
#[allow(clippy::too_many_arguments)]
pub(super) async fn rerun_second(
    migration: &Migration,
    first: &RehearsalJob,
    second: &Shard,
    server: &ShadowServer,
    limits: RehearsalLimits,
    named: &BTreeSet<String>,
    dump_cache: Option<&DumpCache>,
    cancel: &CancelToken,
) -> FleetRerun {
    let database = first.shard.location.database().to_string();
    let mut out = FleetRerun {
        database: database.clone(),
        first_shard: first.shard.id.clone(),
        ..FleetRerun::default()
    };
    let db = match server.create_db().await {
        Ok(d) => d,
        Err(e) => {
            out.setup_error = Some(e.to_string());
            return out;
        }
    };
    let (a, b) = (first.shard.location.schema(), second.location.schema());
    let r = async {
        let opts = connect_options(&first.spec, &database).map_err(|e| e.to_string())?;
        let mut src = PgConnection::connect_with(&opts)
            .await
            .map_err(|e| format!("connect to source: {e}"))?;
        let schemas = match clone_lists_on(&mut src, a, Some(b), named).await {
            Ok((_, all)) => all,
            Err(e) => {
                let _ = src.close().await;
                return Err(format!("read source catalog: {e}"));
            }
        };
        let cloned = clone_schemas(
            &server.bin_dir,
            &first.spec,
            &database,
            &mut src,
            &schemas,
            &db.spec(),
            &db.name,
            dump_cache,
        )
        .await;
        let _ = src.close().await;
        cloned.map_err(|e| format!("clone failed: {e}"))?;
        db.demote().await.map_err(|e| e.to_string())?;
        let mut runs = Vec::new();
        for schema in [a, b] {
            let run = run_for_schema(
                migration, schema, server, &db, limits, &schemas, None, cancel,
            );
            runs.push(run.await?);
        }
        Ok::<_, String>(runs.pop().unwrap_or_default())
    }
    .await;
    let _ = db.drop_now().await;
    match r {
        Ok(statements) => out.statements = statements,
        Err(e) => out.setup_error = Some(e),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use topology::{ConnectionSpec, Fleet, Instance, Shard, ShardLocation};

    use super::{first_pair, fleet_partner};

    fn instance(name: &str) -> Instance {
        Instance {
            name: name.into(),
            connection: ConnectionSpec {
                host: "/tmp".into(),
                port: 5432,
                user: "u".into(),
                database: "postgres".into(),
                password: None,
                sslmode: None,
                iam_auth: false,
            },
            labels: Default::default(),
            replica_of: None,
        }
    }

    fn schema(inst: &str, db: &str, s: &str) -> Shard {
        Shard::new(
            inst,
            ShardLocation::Schema {
                database: db.into(),
                schema: s.into(),
            },
        )
    }

    /// `i1` holds a database-per-tenant shard first, then `app` with three tenant schemas;
    /// `i2` holds one more `app` (another instance: never a partner of `i1`'s shards).
    fn fleet() -> Fleet {
        Fleet {
            instances: vec![instance("i1"), instance("i2")],
            shards: vec![
                Shard::new(
                    "i1",
                    ShardLocation::Database {
                        database: "t_solo".into(),
                        schema: "public".into(),
                    },
                ),
                schema("i1", "app", "t1"),
                schema("i1", "app", "t2"),
                schema("i1", "app", "t3"),
                schema("i2", "app", "t4"),
            ],
        }
    }

    #[test]
    fn a_shard_is_paired_with_the_first_other_reachable_tenant_of_its_database() {
        let f = fleet();
        let all = |_: &Shard| true;
        let partner = |i: usize| fleet_partner(&f, &f.shards[i], all).map(|s| s.id.clone());
        assert_eq!(partner(1).as_deref(), Some("i1/app/t2"));
        assert_eq!(partner(2).as_deref(), Some("i1/app/t1"));
        // Database-per-tenant, and the only tenant of its instance: no partner.
        assert_eq!(partner(0), None);
        assert_eq!(partner(4), None);
        // An unreachable tenant is skipped.
        let not_t2 = |s: &Shard| s.id != "i1/app/t2";
        let p = fleet_partner(&f, &f.shards[1], not_t2).map(|s| s.id.clone());
        assert_eq!(p.as_deref(), Some("i1/app/t3"));
    }

    #[test]
    fn the_pair_starts_at_the_preferred_shard_else_at_the_first_that_has_a_partner() {
        let f = fleet();
        let none = HashMap::new();
        let ids = |p: Option<(super::RehearsalJob, Shard)>| {
            p.map(|(job, second)| (job.shard.id, second.id))
        };
        // The first rehearsal's shard has a partner: the pair starts there.
        let pair = ids(first_pair(&f, &none, Some(&f.shards[2])));
        assert_eq!(pair, Some(("i1/app/t2".into(), "i1/app/t1".into())));
        // It has none (database-per-tenant): the first two tenants sharing a database.
        let pair = ids(first_pair(&f, &none, Some(&f.shards[0])));
        assert_eq!(pair, Some(("i1/app/t1".into(), "i1/app/t2".into())));
        // The preferred shard is unreachable: not paired either.
        let down = HashMap::from([("i1/app/t2".to_string(), "down".to_string())]);
        let pair = ids(first_pair(&f, &down, Some(&f.shards[2])));
        assert_eq!(pair, Some(("i1/app/t1".into(), "i1/app/t3".into())));
    }
}
