//! Function resolution on a real server: names resolve through the session's search path, every
//! overload counts, and the one side-effect policy judges them.

mod common;

use common::*;
use migration_parser::{CallContext, statement_refs};
use simulator::safety::{
    probe_search_path, refused_calls, refused_calls_on_paths, resolve_functions,
};

#[tokio::test]
async fn calls_are_judged_as_they_resolve_on_the_shard() {
    let pg = start().await;
    exec(
        &pg,
        "postgres",
        "CREATE SCHEMA tenant_s;
         CREATE FUNCTION tenant_s.touch(int) RETURNS int LANGUAGE sql VOLATILE AS 'SELECT $1';
         CREATE FUNCTION tenant_s.pure(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
         CREATE FUNCTION tenant_s.random() RETURNS int LANGUAGE sql STABLE AS 'SELECT 4';
         CREATE PROCEDURE tenant_s.p() LANGUAGE sql AS 'SELECT 1';",
    )
    .await;
    let mut c = conn(&pg, "postgres").await;
    sqlx::query("SET search_path = tenant_s, public")
        .execute(&mut c)
        .await
        .unwrap();
    let refs = refs_all();
    let names: Vec<_> = refs.functions.iter().map(|f| f.name.clone()).collect();
    let resolved = resolve_functions(&mut c, &names).await.unwrap();
    // `random` resolves to the shard's own function *and* the built-in: both are candidates.
    let random = &resolved[&migration_parser::QualifiedName::new("random")];
    assert_eq!(random.len(), 2, "{random:?}");
    let refused = refused_calls(&mut c, &refs.functions, CallContext::ReadOnlyProbe)
        .await
        .unwrap();
    let got: Vec<String> = refused
        .iter()
        .map(|r| format!("{}: {}", r.call.name, r.reason))
        .collect();
    insta::assert_debug_snapshot!(got);
    // The pre-flight's batch resolution over explicit search paths (one query for many shards)
    // judges exactly as the session does: same refusals for the shard's path, and for a path
    // without the shard's schema only the names that do not resolve or are denied anyway.
    let batch = refused_calls_on_paths(
        &mut c,
        &[
            (probe_search_path("tenant_s"), refs_all().functions),
            (probe_search_path("elsewhere"), refs_all().functions),
        ],
        CallContext::ReadOnlyProbe,
    )
    .await
    .unwrap();
    assert_eq!(batch[0], refused);
    let elsewhere: Vec<String> = batch[1].iter().map(|r| r.call.name.to_string()).collect();
    assert_eq!(
        elsewhere,
        ["pure", "touch", "nothing_here", "pg_terminate_backend"],
        "{:?}",
        batch[1]
    );
    // A procedure is never proven.
    let refs = statement_refs("SELECT 1 WHERE p() IS NULL").unwrap();
    let refused = refused_calls(&mut c, &refs.functions, CallContext::InPlaceRehearsal)
        .await
        .unwrap();
    assert!(refused[0].reason.contains("procedure"), "{refused:?}");
    drop(pg);
}

fn refs_all() -> migration_parser::SqlRefs {
    statement_refs(
        "SELECT lower('A'), pure(1), touch(2), random(), now(), nothing_here(), \
         pg_catalog.random(), tenant_s.pure(3), pg_terminate_backend(0), count(*) FROM t",
    )
    .unwrap()
}
