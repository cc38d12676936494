//! Every migration-tool layout `discover` knows, from realistic fixture directories
//! (`tests/fixtures/layouts/<tool>`): detection, the tool's order, the pairs; the layouts with
//! rollbacks (Flyway undo scripts, Liquibase `--rollback` lines) proven on a real PostgreSQL.

use std::path::PathBuf;

use rollback::{
    HistoryOptions, Layout, MigrationPair, RollbackError, Shadow, discover, prove_history,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layouts")
        .join(name)
}

fn names(pairs: &[MigrationPair]) -> Vec<&str> {
    pairs.iter().map(|p| p.name.as_str()).collect()
}

/// The error's message with the fixture directory shortened (for snapshots).
fn message(e: &RollbackError) -> String {
    e.to_string()
        .replace(&fixture("").display().to_string(), "<fixtures>/")
}

#[test]
fn every_fixture_is_detected_as_its_layout() {
    for (dir, layout, count) in [
        ("diesel", Layout::Diesel, 2),
        ("sqlx", Layout::Sqlx, 2),
        ("golang_migrate", Layout::GolangMigrate, 2),
        ("dbmate", Layout::Dbmate, 2),
        ("flyway", Layout::Flyway, 5),
        ("liquibase", Layout::Liquibase, 5),
        ("prisma", Layout::Prisma, 2),
        ("drizzle", Layout::Drizzle, 2),
        ("atlas", Layout::Atlas, 2),
    ] {
        let pairs = discover(&fixture(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(pairs.len(), count, "{dir}: {:?}", names(&pairs));
        assert!(pairs.iter().all(|p| p.layout == layout), "{dir}");
        let with_down = pairs.iter().filter(|p| p.down.is_some()).count();
        let expected_down = match layout {
            Layout::Prisma | Layout::Drizzle | Layout::Atlas => 0,
            Layout::Flyway => 4,
            Layout::Liquibase => 4,
            _ => count,
        };
        assert_eq!(with_down, expected_down, "{dir}: pairs with a down script");
    }
}

#[test]
fn flyway_versions_sort_by_numeric_segments_and_repeatables_last() {
    let pairs = discover(&fixture("flyway")).expect("flyway");
    assert_eq!(
        names(&pairs),
        [
            "V1__create_accounts",
            "V1_1__add_display_name",
            "V1_9__add_created_at",
            "V1_10__unique_email",
            "R__active_accounts"
        ]
    );
    assert_eq!(
        pairs[3].down.as_deref().map(str::trim),
        Some("DROP INDEX accounts_email_key;")
    );
    assert_eq!(pairs[4].down, None);
}

#[test]
fn liquibase_changesets_with_their_rollback_lines() {
    let pairs = discover(&fixture("liquibase")).expect("liquibase");
    assert_eq!(
        names(&pairs),
        [
            "001_accounts.sql::alice:1",
            "001_accounts.sql::alice:2",
            "002_orders.sql::bob:orders-1",
            "002_orders.sql::bob:orders-2",
            "002_orders.sql::bob:orders-3"
        ]
    );
    assert_eq!(
        pairs[2].down.as_deref(),
        Some("DROP INDEX orders_account_id_idx;\nDROP TABLE orders;")
    );
    assert!(
        !pairs[2].up.contains("DROP"),
        "rollback lines are not in the up"
    );
    assert!(!pairs[3].run_in_transaction);
    assert_eq!(pairs[4].down, None, "`--rollback not required`");
}

#[test]
fn drizzle_order_comes_from_the_journal_and_prisma_from_directory_names() {
    let d = discover(&fixture("drizzle")).expect("drizzle");
    assert_eq!(names(&d), ["0000_gifted_hulk", "0001_amazing_thor"]);
    let p = discover(&fixture("prisma")).expect("prisma");
    assert_eq!(
        names(&p),
        ["20240101120000_init", "20240215093000_add_posts"]
    );
    let a = discover(&fixture("atlas")).expect("atlas");
    assert_eq!(
        names(&a),
        ["20240101000000_init", "20240102000000_add_posts"]
    );
}

#[test]
fn ambiguous_and_mismatching_directories_are_clear_errors() {
    let ambiguous = discover(&fixture("ambiguous")).expect_err("two layouts match");
    assert!(matches!(
        ambiguous,
        RollbackError::AmbiguousLayout {
            first: Layout::Flyway,
            second: Layout::GolangMigrate,
            ..
        }
    ));
    let bad_sum = discover(&fixture("atlas_bad_sum")).expect_err("malformed atlas.sum");
    assert!(matches!(bad_sum, RollbackError::LayoutFile { line: 3, .. }));
    let unlisted = discover(&fixture("atlas_unlisted")).expect_err("file not in atlas.sum");
    assert!(matches!(unlisted, RollbackError::LayoutFile { .. }));
    insta::assert_snapshot!([&ambiguous, &bad_sum, &unlisted].map(message).join("\n"));
    // A file edited after `atlas migrate hash`: its recomputed sum differs (line 3).
    let changed = discover(&fixture("atlas_changed")).expect_err("edited after hashing");
    assert!(
        matches!(changed, RollbackError::LayoutFile { line: 3, .. }),
        "{changed:?}"
    );
    assert!(
        message(&changed).contains("20240102000000_add_posts.sql does not match its sum"),
        "{}",
        message(&changed)
    );
}

async fn prove_fixture(dir: &str) -> Vec<(String, bool)> {
    let pairs = discover(&fixture(dir)).expect("layout detected");
    let shadow = Shadow::ephemeral()
        .await
        .expect("ephemeral PostgreSQL starts");
    let report = prove_history(&shadow, &pairs, &HistoryOptions::default(), |_| {})
        .await
        .expect("history replays");
    assert_eq!(
        report.entries.len(),
        pairs.len(),
        "{dir}: every migration ran"
    );
    report
        .entries
        .iter()
        .map(|e| {
            assert!(e.up_error.is_none(), "{dir} {}: {:?}", e.name, e.up_error);
            let restored = e
                .upstream
                .as_ref()
                .is_some_and(|p| p.rollback_error.is_none() && p.restored);
            (e.name.clone(), restored)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn flyway_undo_scripts_are_proven_on_postgres() {
    let proven = prove_fixture("flyway").await;
    assert_eq!(
        proven,
        [
            ("V1__create_accounts".to_string(), true),
            ("V1_1__add_display_name".to_string(), true),
            ("V1_9__add_created_at".to_string(), true),
            ("V1_10__unique_email".to_string(), true),
            ("R__active_accounts".to_string(), false),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn liquibase_rollback_lines_are_proven_on_postgres() {
    let proven = prove_fixture("liquibase").await;
    let restored: Vec<bool> = proven.iter().map(|(_, r)| *r).collect();
    assert_eq!(restored, [true, true, true, true, false], "{proven:?}");
}
