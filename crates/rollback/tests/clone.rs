//! A catalog loaded into an empty database comes back identical: the shadow can be built from a
//! shard's catalog alone (`Setup::Catalog`).

use rollback::{Setup, Shadow};

fn pagila() -> String {
    // Beside the checkout, or two levels up from a git worktree (`/work/wt/<name>`).
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let near = here.join("../../../shared/corpus/pagila/pagila-schema.sql");
    let p = if near.is_file() {
        near
    } else {
        here.join("../../../../shared/corpus/pagila/pagila-schema.sql")
    };
    std::fs::read_to_string(p).expect("pagila schema is readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagila_catalog_round_trips_through_load_into() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let c1 = shadow
        .catalog_of(Setup::Sql(&pagila()), "public")
        .await
        .expect("pagila loads");
    assert!(
        c1.tables.len() > 15,
        "pagila has its tables: {}",
        c1.tables.len()
    );
    assert!(
        !c1.functions.is_empty()
            && c1
                .tables
                .values()
                .any(|t| t.kind == topology::catalog::TableKind::View)
            && !c1.domains.is_empty()
            && !c1.enums.is_empty()
    );
    let c2 = shadow
        .catalog_of(Setup::Catalog(&c1), "public")
        .await
        .expect("catalog loads");
    let diff = rollback::mismatches(&c1, &c2);
    assert!(diff.is_empty(), "differences after load_into: {diff:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_schema_catalog_round_trips() {
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let setup = pagila()
        .replace("public.", "tenant_0007.")
        .replace("SCHEMA public", "SCHEMA tenant_0007");
    let setup = format!("CREATE SCHEMA tenant_0007;\n{setup}");
    let c1 = shadow
        .catalog_of(Setup::Sql(&setup), "tenant_0007")
        .await
        .expect("tenant loads");
    let c2 = shadow
        .catalog_of(Setup::Catalog(&c1), "tenant_0007")
        .await
        .expect("catalog loads");
    let diff = rollback::mismatches(&c1, &c2);
    assert!(diff.is_empty(), "differences after load_into: {diff:#?}");
}
