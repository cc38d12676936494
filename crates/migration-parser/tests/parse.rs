//! Parser behaviour: splitting, spans, operations, transactions, settings, ignores, errors.

use migration_parser::{
    AlterTableAction, ConstraintKind, FkAction, LockMode, MaintenanceCommand, Operation,
    OperationKind, ParseError, ParseOptions, QualifiedName, ReindexTarget, SequenceOwnedBy,
    StatementKind, TransactionMode, TxContext, TxControl, TypeAttribute, TypeRepresentation,
    Volatility, parse, parse_bytes,
};

fn p(sql: &str) -> migration_parser::Migration {
    parse("t.sql", sql, &ParseOptions::default()).expect("parses")
}

fn wrap(sql: &str) -> migration_parser::Migration {
    let o = ParseOptions {
        transaction_mode: TransactionMode::WrapFile,
        ..Default::default()
    };
    parse("t.sql", sql, &o).expect("parses")
}

/// The operations of a single-statement source.
fn ops(sql: &str) -> Vec<Operation> {
    let m = p(sql);
    assert_eq!(m.statements.len(), 1, "{sql}");
    assert_eq!(m.statements[0].kind, StatementKind::Parsed, "{sql}");
    m.statements[0].operations.clone()
}

fn one(sql: &str) -> Operation {
    let mut o = ops(sql);
    assert_eq!(o.len(), 1, "{sql}: {o:?}");
    o.remove(0)
}

fn t(name: &str) -> QualifiedName {
    QualifiedName::new(name)
}

// ---------------------------------------------------------------- splitting and spans

#[test]
fn splits_on_top_level_semicolons_only() {
    let src = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql;\n\
               INSERT INTO t VALUES ('a;b');\n\
               -- a comment; with a semicolon\n\
               /* block; comment */ SELECT 1;\n\
               ;;\n\
               -- only a comment\n\
               ;\n\
               SELECT 2";
    let m = p(src);
    let sqls: Vec<&str> = m.statements.iter().map(|s| s.sql.as_str()).collect();
    assert_eq!(
        sqls,
        [
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql",
            "INSERT INTO t VALUES ('a;b')",
            "SELECT 1",
            "SELECT 2",
        ]
    );
    assert_eq!(
        m.statements.iter().map(|s| s.index).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    // The last statement has no `;`: its span ends at its last character.
    let last = &m.statements[3];
    assert_eq!(&src[last.span.start..last.span.end], "SELECT 2");
    assert_eq!((last.span.end_line, last.span.end_column), (8, 8));
}

#[test]
fn spans_count_characters_and_bytes_with_unicode() {
    // 'é' is 2 bytes, '🦀' is 4 bytes: columns count characters, offsets count bytes.
    let src = "-- café\n  SELECT '🦀;' AS x, 'é';  -- tail é\nSELECT 2;";
    let m = p(src);
    assert_eq!(m.statements.len(), 2);
    let s = &m.statements[0];
    assert_eq!((s.span.line, s.span.column), (2, 3));
    assert_eq!(s.span.start, "-- café\n  ".len());
    assert_eq!(s.sql, "SELECT '🦀;' AS x, 'é'");
    assert_eq!(&src[s.span.start..s.span.end], "SELECT '🦀;' AS x, 'é';");
    // The `;` is the 24th character of line 2.
    assert_eq!((s.span.end_line, s.span.end_column), (2, 24));
    let s2 = &m.statements[1];
    assert_eq!(
        (
            s2.span.line,
            s2.span.column,
            s2.span.end_line,
            s2.span.end_column
        ),
        (3, 1, 3, 9)
    );
    assert_eq!(&src[s2.span.start..s2.span.end], "SELECT 2;");
}

#[test]
fn spans_with_crlf_line_endings() {
    let src = "SET lock_timeout = '2s';\r\n\r\nALTER TABLE t\r\n  ADD COLUMN c int;\r\n";
    let m = p(src);
    assert_eq!(m.statements.len(), 2);
    let s = &m.statements[1];
    assert_eq!((s.span.line, s.span.column), (3, 1));
    assert_eq!((s.span.end_line, s.span.end_column), (4, 19));
    assert_eq!(s.sql, "ALTER TABLE t\r\n  ADD COLUMN c int");
    assert_eq!(
        &src[s.span.start..s.span.end],
        "ALTER TABLE t\r\n  ADD COLUMN c int;"
    );
}

#[test]
fn multi_line_statement_span_ends_on_its_last_line() {
    let src = "CREATE TABLE t (\n  id bigint,\n  name text\n);\n";
    let s = &p(src).statements[0];
    assert_eq!(
        (
            s.span.line,
            s.span.column,
            s.span.end_line,
            s.span.end_column
        ),
        (1, 1, 4, 2)
    );
    assert_eq!(s.span.end, src.len() - 1);
}

#[test]
fn byte_order_mark_is_skipped() {
    let src = "\u{feff}SELECT 1;\nSELECT 2;";
    let m = parse_bytes("bom.sql", src.as_bytes(), &ParseOptions::default()).unwrap();
    let s = &m.statements[0];
    assert_eq!(s.kind, StatementKind::Parsed);
    assert_eq!((s.span.line, s.span.column, s.span.start), (1, 2, 3));
    assert_eq!(s.sql, "SELECT 1");
    assert_eq!(m.statements[1].span.start, 13);
}

// ---------------------------------------------------------------- errors

#[test]
fn unterminated_string_is_a_tokenize_error_with_location() {
    let e = parse(
        "m.sql",
        "SELECT 1;\nSELECT 'abc;\n",
        &ParseOptions::default(),
    )
    .unwrap_err();
    match e {
        ParseError::Tokenize {
            file,
            line,
            column,
            message,
        } => {
            assert_eq!(file, "m.sql");
            assert_eq!(line, 2);
            assert_eq!(column, 8, "{message}");
            assert!(message.to_lowercase().contains("unterminated"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unterminated_quoted_identifier_and_dollar_quote_are_tokenize_errors() {
    for (src, line, col) in [
        ("SELECT 1;\n\nSELECT \"abc FROM t;", 3, 8),
        ("SELECT 1;\nDO $$ BEGIN\n PERFORM 1;\nEND;", 2, 4),
        (
            "CREATE FUNCTION f() AS $a$ x $a$;\nDO $body$ BEGIN\n PERFORM '$a$';\nEND;",
            2,
            4,
        ),
    ] {
        match parse("m.sql", src, &ParseOptions::default()) {
            Err(ParseError::Tokenize {
                line: l, column, ..
            }) => {
                assert_eq!((l, column), (line, col), "{src}");
            }
            other => panic!("{src}: {other:?}"),
        }
    }
}

#[test]
fn nul_byte_is_binary_with_location() {
    let e = parse_bytes("b.sql", b"SELECT 1;\nSEL\0ECT", &ParseOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::Binary {
                line: 2,
                column: 4,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "b.sql: binary data, not SQL (NUL byte at line 2, column 4)"
    );
}

#[test]
fn invalid_utf8_reports_first_bad_byte() {
    let e = parse_bytes(
        "b.sql",
        "SELECT 1;\n-- é ok\nSELECT '\u{e9}"
            .as_bytes()
            .iter()
            .copied()
            .chain([0xff, b'\''])
            .collect::<Vec<_>>()
            .as_slice(),
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::NotUtf8 {
                line: 3,
                column: 10,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn valid_bytes_parse() {
    let m = parse_bytes("b.sql", "SELECT 'é';".as_bytes(), &ParseOptions::default()).unwrap();
    assert_eq!(m.statements.len(), 1);
}

#[test]
fn unparsable_statement_does_not_stop_the_file() {
    let m = p("SELECT 1;\nCREATE FOO bar baz;\nSELECT 2;");
    assert_eq!(m.statements.len(), 3);
    match &m.statements[1].kind {
        StatementKind::Unparsed {
            error,
            line,
            column,
        } => {
            assert_eq!(*line, 2, "{error}");
            assert!(*column >= 8, "{column}: error location is file-relative");
        }
        k => panic!("{k:?}"),
    }
    assert!(m.statements[1].operations.is_empty());
    assert_eq!(m.statements[2].kind, StatementKind::Parsed);
}

#[test]
fn psql_meta_commands_end_at_the_line_and_are_unparsed() {
    let m = p("\\set ON_ERROR_STOP on\nSELECT 1;\n  \\i other.sql\n");
    assert_eq!(m.statements.len(), 3);
    assert_eq!(m.statements[0].sql, "\\set ON_ERROR_STOP on");
    assert!(
        matches!(&m.statements[0].kind, StatementKind::Unparsed { error, line: 1, column: 1 } if error.contains("psql meta-command"))
    );
    assert_eq!(m.statements[1].sql, "SELECT 1");
    assert!(matches!(
        &m.statements[2].kind,
        StatementKind::Unparsed {
            line: 3,
            column: 3,
            ..
        }
    ));
}

// ---------------------------------------------------------------- operations

#[test]
fn add_column_details() {
    let o = ops(
        "ALTER TABLE App.\"Users\" ADD COLUMN IF NOT EXISTS Meta JSONB NOT NULL DEFAULT '{}'::jsonb, ADD COLUMN id2 bigserial, ADD COLUMN c timestamptz DEFAULT now() COLLATE \"C\"",
    );
    assert_eq!(o.len(), 3);
    let Operation::AddColumn {
        table,
        column,
        if_not_exists,
    } = &o[0]
    else {
        panic!("{o:?}")
    };
    assert_eq!(table, &QualifiedName::qualified("app", "Users"));
    assert!(*if_not_exists);
    assert_eq!(column.name, "meta");
    assert_eq!(column.data_type, "jsonb");
    assert!(column.not_null);
    assert_eq!(
        column.default.as_ref().map(|d| d.volatility),
        Some(Volatility::Immutable)
    );
    let Operation::AddColumn { column, .. } = &o[1] else {
        panic!()
    };
    assert!(column.serial && column.not_null);
    assert_eq!(column.data_type, "bigserial");
    let Operation::AddColumn { column, .. } = &o[2] else {
        panic!()
    };
    assert_eq!(
        column.default.as_ref().map(|d| d.volatility),
        Some(Volatility::Stable)
    );
    assert_eq!(column.collation.as_deref(), Some("C"));
}

#[test]
fn column_constraints_identity_generated() {
    let o = one("ALTER TABLE t ADD COLUMN a int GENERATED ALWAYS AS (b * 2) STORED");
    let Operation::AddColumn { column, .. } = o else {
        panic!()
    };
    assert!(column.generated_stored && !column.identity);
    let o = one("ALTER TABLE t ADD COLUMN a bigint GENERATED ALWAYS AS IDENTITY");
    let Operation::AddColumn { column, .. } = o else {
        panic!()
    };
    assert!(column.identity && !column.generated_stored);
    let o = one(
        "ALTER TABLE t ADD COLUMN a int REFERENCES u (id) ON DELETE CASCADE CHECK (a > 0) UNIQUE",
    );
    let Operation::AddColumn { column, .. } = o else {
        panic!()
    };
    assert!(column.unique);
    assert_eq!(column.check.as_deref(), Some("a > 0"));
    assert!(
        matches!(column.references, Some(ConstraintKind::ForeignKey { ref ref_table, on_delete: FkAction::Cascade, .. }) if ref_table == &t("u"))
    );
}

#[test]
fn volatility_classification() {
    let vol = |e: &str| {
        let Operation::SetDefault { default, .. } =
            one(&format!("ALTER TABLE t ALTER COLUMN c SET DEFAULT {e}"))
        else {
            panic!()
        };
        default.volatility
    };
    use Volatility::*;
    for (e, v) in [
        ("0", Immutable),
        ("'x'", Immutable),
        ("'{}'::jsonb", Immutable),
        ("CAST('1' AS int)", Immutable),
        ("-1", Immutable),
        ("ARRAY[]::text[]", Immutable),
        ("lower('A')", Immutable),
        ("now()", Stable),
        ("CURRENT_TIMESTAMP", Stable),
        ("current_date", Stable),
        ("localtimestamp", Stable),
        ("statement_timestamp()", Stable),
        ("transaction_timestamp()", Stable),
        ("now() + interval '1 day'", Stable),
        ("random()", Volatile),
        ("gen_random_uuid()", Volatile),
        ("uuid_generate_v4()", Volatile),
        ("clock_timestamp()", Volatile),
        ("nextval('s'::regclass)", Volatile),
        ("timeofday()", Volatile),
        ("my_function()", Volatile),
        ("(SELECT 1)", Volatile),
    ] {
        assert_eq!(vol(e), v, "{e}");
    }
}

#[test]
fn alter_column_forms() {
    assert_eq!(
        one("ALTER TABLE t ALTER COLUMN a SET DATA TYPE BIGINT USING a::bigint"),
        Operation::AlterColumnType {
            table: t("t"),
            column: "a".into(),
            new_type: "bigint".into(),
            collation: None,
            using: Some("a::BIGINT".into())
        }
    );
    assert_eq!(
        one("ALTER TABLE t ALTER a SET NOT NULL"),
        Operation::SetNotNull {
            table: t("t"),
            column: "a".into()
        }
    );
    assert_eq!(
        one("ALTER TABLE t ALTER COLUMN a DROP NOT NULL"),
        Operation::DropNotNull {
            table: t("t"),
            column: "a".into()
        }
    );
    assert_eq!(
        one("ALTER TABLE t ALTER COLUMN a DROP DEFAULT"),
        Operation::DropDefault {
            table: t("t"),
            column: "a".into()
        }
    );
    // COLLATE after TYPE (sqlparser rejects it): recognised from tokens.
    assert_eq!(
        one("ALTER TABLE t ALTER COLUMN a TYPE varchar(20) COLLATE \"C\""),
        Operation::AlterColumnType {
            table: t("t"),
            column: "a".into(),
            new_type: "varchar(20)".into(),
            collation: Some("C".into()),
            using: None
        }
    );
    assert!(
        matches!(one("ALTER TABLE t ALTER COLUMN a SET STATISTICS 500"), Operation::AlterTableOther { action: AlterTableAction::SetStatistics { column }, .. } if column == "a")
    );
}

#[test]
fn constraints() {
    let o = one(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE SET NULL NOT VALID",
    );
    let Operation::AddConstraint { table, constraint } = o else {
        panic!()
    };
    assert_eq!(table, t("orders"));
    assert!(constraint.not_valid);
    assert_eq!(constraint.name.as_deref(), Some("fk"));
    assert_eq!(
        constraint.kind,
        ConstraintKind::ForeignKey {
            columns: vec!["user_id".into()],
            ref_table: t("users"),
            ref_columns: vec!["id".into()],
            on_delete: FkAction::SetNull,
            on_update: FkAction::NoAction,
            match_full: false,
        }
    );
    let Operation::AddConstraint { constraint, .. } =
        one("ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID")
    else {
        panic!()
    };
    assert!(constraint.not_valid && matches!(constraint.kind, ConstraintKind::Check { .. }));
    let Operation::AddConstraint { constraint, .. } =
        one("ALTER TABLE t ADD CONSTRAINT u UNIQUE (a, b)")
    else {
        panic!()
    };
    assert_eq!(
        constraint.kind,
        ConstraintKind::Unique {
            columns: vec!["a".into(), "b".into()],
            using_index: None,
            nulls_not_distinct: false
        }
    );
    let Operation::AddConstraint { constraint, .. } =
        one("ALTER TABLE t ADD CONSTRAINT pk PRIMARY KEY USING INDEX idx")
    else {
        panic!()
    };
    assert_eq!(
        constraint.kind,
        ConstraintKind::PrimaryKey {
            columns: vec![],
            using_index: Some("idx".into())
        }
    );
    let Operation::AddConstraint { constraint, .. } =
        one("ALTER TABLE t ADD CONSTRAINT ex EXCLUDE USING gist (r WITH &&)")
    else {
        panic!()
    };
    assert!(matches!(constraint.kind, ConstraintKind::Exclusion { .. }));
    assert_eq!(
        one("ALTER TABLE t VALIDATE CONSTRAINT fk"),
        Operation::ValidateConstraint {
            table: t("t"),
            name: "fk".into()
        }
    );
    assert_eq!(
        one("ALTER TABLE t DROP CONSTRAINT IF EXISTS fk CASCADE"),
        Operation::DropConstraint {
            table: t("t"),
            name: "fk".into(),
            if_exists: true,
            cascade: true
        }
    );
    assert_eq!(
        one("ALTER TABLE t RENAME CONSTRAINT a TO b"),
        Operation::RenameConstraint {
            table: t("t"),
            name: "a".into(),
            new_name: "b".into()
        }
    );
}

#[test]
fn renames_and_drops() {
    assert_eq!(
        one("ALTER TABLE t RENAME TO u"),
        Operation::RenameTable {
            table: t("t"),
            new_name: "u".into()
        }
    );
    assert_eq!(
        one("ALTER TABLE t RENAME COLUMN a TO \"B\""),
        Operation::RenameColumn {
            table: t("t"),
            column: "a".into(),
            new_name: "B".into()
        }
    );
    assert_eq!(
        ops("ALTER TABLE t DROP COLUMN IF EXISTS a CASCADE, DROP COLUMN b").len(),
        2
    );
    assert_eq!(
        ops("DROP TABLE IF EXISTS a, s.b CASCADE"),
        vec![
            Operation::DropTable {
                table: t("a"),
                if_exists: true,
                cascade: true
            },
            Operation::DropTable {
                table: QualifiedName::qualified("s", "b"),
                if_exists: true,
                cascade: true
            },
        ]
    );
    assert_eq!(ops("DROP SCHEMA x, y CASCADE").len(), 2);
    assert_eq!(
        one("DROP DATABASE d"),
        Operation::DropDatabase {
            name: "d".into(),
            force: false
        }
    );
    assert_eq!(
        one("DROP TYPE IF EXISTS e"),
        Operation::DropType {
            name: t("e"),
            if_exists: true,
            cascade: false
        }
    );
    assert_eq!(
        one("DROP MATERIALIZED VIEW mv"),
        Operation::DropView {
            name: t("mv"),
            materialized: true,
            if_exists: false,
            cascade: false
        }
    );
    assert_eq!(
        one("DROP SEQUENCE IF EXISTS s CASCADE"),
        Operation::DropSequence {
            name: t("s"),
            if_exists: true,
            cascade: true
        }
    );
}

#[test]
fn indexes() {
    assert_eq!(
        one(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx ON s.t USING btree (lower(b), c) WHERE d IS NULL"
        ),
        Operation::CreateIndex {
            name: Some("idx".into()),
            table: QualifiedName::qualified("s", "t"),
            columns: vec!["lower(b)".into(), "c".into()],
            unique: true,
            concurrently: true,
            if_not_exists: true,
            method: Some("btree".into()),
            predicate: Some("d IS NULL".into()),
            only: false,
            opclass: false,
        }
    );
    assert!(matches!(
        one("CREATE INDEX idx ON ONLY events (tenant_id)"),
        Operation::CreateIndex {
            only: true,
            opclass: false,
            concurrently: false,
            ..
        }
    ));
    assert_eq!(
        ops("DROP INDEX CONCURRENTLY IF EXISTS a, s.b CASCADE"),
        vec![
            Operation::DropIndex {
                name: t("a"),
                concurrently: true,
                if_exists: true,
                cascade: true
            },
            Operation::DropIndex {
                name: QualifiedName::qualified("s", "b"),
                concurrently: true,
                if_exists: true,
                cascade: true
            },
        ]
    );
    assert_eq!(
        one("DROP INDEX a"),
        Operation::DropIndex {
            name: t("a"),
            concurrently: false,
            if_exists: false,
            cascade: false
        }
    );
    assert_eq!(
        one("ALTER INDEX a RENAME TO b"),
        Operation::RenameIndex {
            name: t("a"),
            new_name: "b".into()
        }
    );
    assert_eq!(
        one("ALTER INDEX IF EXISTS a RENAME TO b"),
        Operation::RenameIndex {
            name: t("a"),
            new_name: "b".into()
        }
    );
    assert_eq!(
        one("ALTER INDEX p ATTACH PARTITION s.c"),
        Operation::AttachIndexPartition {
            index: t("p"),
            partition: QualifiedName::qualified("s", "c")
        }
    );
    assert_eq!(
        one("REINDEX INDEX CONCURRENTLY idx"),
        Operation::Reindex {
            target_kind: ReindexTarget::Index,
            name: t("idx"),
            concurrently: true
        }
    );
    assert_eq!(
        one("REINDEX (VERBOSE) TABLE t"),
        Operation::Reindex {
            target_kind: ReindexTarget::Table,
            name: t("t"),
            concurrently: false
        }
    );
}

#[test]
fn maintenance_and_misc_token_forms() {
    use MaintenanceCommand as C;
    let m = |command: C, tables: &[&str]| Operation::Maintenance {
        command,
        tables: tables.iter().map(|x| t(x)).collect(),
    };
    assert_eq!(one("VACUUM t"), m(C::Vacuum, &["t"]));
    assert_eq!(one("VACUUM FULL t, u"), m(C::VacuumFull, &["t", "u"]));
    assert_eq!(
        one("VACUUM (FULL, ANALYZE) t (a)"),
        m(C::VacuumFull, &["t"])
    );
    assert_eq!(one("VACUUM ANALYZE t"), m(C::VacuumAnalyze, &["t"]));
    assert_eq!(one("VACUUM"), m(C::Vacuum, &[]));
    assert_eq!(one("CLUSTER t USING idx"), m(C::Cluster, &["t"]));
    assert_eq!(one("ANALYZE t"), m(C::Analyze, &["t"]));
    assert_eq!(
        one("DO $$ BEGIN PERFORM 1; END $$"),
        Operation::Do {
            body: " BEGIN PERFORM 1; END ".into()
        }
    );
    assert_eq!(
        one("DO LANGUAGE plpgsql 'BEGIN NULL; END'"),
        Operation::Do {
            body: "BEGIN NULL; END".into()
        }
    );
    assert!(
        matches!(one("ALTER TABLE t SET SCHEMA other"), Operation::AlterTableOther { action: AlterTableAction::SetSchema { schema }, .. } if schema == "other")
    );
    assert!(
        matches!(one("ALTER TABLE t SET TABLESPACE fast"), Operation::AlterTableOther { action: AlterTableAction::SetTablespace { tablespace }, .. } if tablespace == "fast")
    );
    assert!(matches!(
        one("ALTER TABLE t SET LOGGED"),
        Operation::AlterTableOther {
            action: AlterTableAction::SetLogged,
            ..
        }
    ));
    assert!(matches!(
        one("ALTER TABLE t SET (fillfactor = 70)"),
        Operation::AlterTableOther {
            action: AlterTableAction::SetStorageParameters,
            ..
        }
    ));
    assert!(
        matches!(one("CREATE TABLE t_new (LIKE t INCLUDING ALL)"), Operation::CreateTable { table, .. } if table == t("t_new"))
    );
    assert_eq!(
        one("CREATE MATERIALIZED VIEW mv AS SELECT 1 WITH NO DATA"),
        Operation::CreateView {
            name: t("mv"),
            materialized: true,
            or_replace: false,
            columns: vec![],
            depends_on: vec![]
        }
    );
    assert_eq!(
        one("ALTER SYSTEM SET work_mem = '1GB'"),
        Operation::AlterSystem {
            name: "work_mem".into()
        }
    );
    assert_eq!(
        one("CREATE DATABASE d"),
        Operation::CreateDatabase { name: "d".into() }
    );
    assert!(
        matches!(one("COMMENT ON CONSTRAINT c ON t IS 'x'"), Operation::Comment { object_kind, text: Some(_), .. } if object_kind == "constraint")
    );
    assert_eq!(
        one("ALTER SEQUENCE s OWNED BY t.id"),
        Operation::AlterSequence {
            name: t("s"),
            owned_by: SequenceOwnedBy::Column {
                table: t("t"),
                column: "id".into()
            }
        }
    );
    assert_eq!(
        one("ALTER SEQUENCE IF EXISTS app.s RESTART WITH 5 OWNED BY app.t.\"Id\""),
        Operation::AlterSequence {
            name: QualifiedName::qualified("app", "s"),
            owned_by: SequenceOwnedBy::Column {
                table: QualifiedName::qualified("app", "t"),
                column: "Id".into()
            }
        }
    );
    assert_eq!(
        one("ALTER SEQUENCE IF EXISTS app.s RENAME TO s2"),
        Operation::RenameSequence {
            name: QualifiedName::qualified("app", "s"),
            new_name: "s2".into()
        }
    );
    assert_eq!(
        one("ALTER SEQUENCE s OWNED BY NONE"),
        Operation::AlterSequence {
            name: t("s"),
            owned_by: SequenceOwnedBy::Nobody
        }
    );
}

#[test]
fn other_statements() {
    assert!(
        matches!(one("CREATE TABLE IF NOT EXISTS p_1 PARTITION OF p FOR VALUES IN (1)"), Operation::CreateTable { partition_of: Some(ref x), if_not_exists: true, .. } if x == &t("p"))
    );
    assert!(matches!(
        one("CREATE TABLE c AS SELECT * FROM t"),
        Operation::CreateTable {
            as_select: true,
            ..
        }
    ));
    assert_eq!(
        one("CREATE TYPE mood AS ENUM ('sad', 'ok')"),
        Operation::CreateEnum {
            name: t("mood"),
            values: vec!["sad".into(), "ok".into()]
        }
    );
    assert_eq!(
        one("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy' AFTER 'ok'"),
        Operation::AddEnumValue {
            name: t("mood"),
            value: "happy".into(),
            if_not_exists: true
        }
    );
    assert_eq!(
        one("ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'"),
        Operation::RenameEnumValue {
            name: t("mood"),
            value: "sad".into(),
            new_value: "blue".into()
        }
    );
    assert_eq!(
        one("TRUNCATE a, b CASCADE"),
        Operation::Truncate {
            tables: vec![t("a"), t("b")],
            cascade: true
        }
    );
    assert_eq!(
        one("CREATE SCHEMA IF NOT EXISTS tenant_1"),
        Operation::CreateSchema {
            name: "tenant_1".into(),
            if_not_exists: true
        }
    );
    assert_eq!(
        one("UPDATE t SET a = 1, b = 2"),
        Operation::Update {
            table: t("t"),
            has_where: false,
            columns: vec!["a".into(), "b".into()],
            filter: None,
        }
    );
    assert_eq!(
        one("DELETE FROM t WHERE a = 1"),
        Operation::Delete {
            table: t("t"),
            has_where: true,
            filter: Some(migration_parser::RowFilter {
                from_sql: "t".into(),
                where_sql: "a = 1".into(),
                batched: false,
            }),
        }
    );
    assert_eq!(
        one("INSERT INTO t SELECT * FROM u"),
        Operation::Insert {
            table: t("t"),
            from_select: true
        }
    );
    assert_eq!(
        one("INSERT INTO t (a) VALUES (1)"),
        Operation::Insert {
            table: t("t"),
            from_select: false
        }
    );
    assert_eq!(
        one("CREATE OR REPLACE VIEW v AS SELECT 1"),
        Operation::CreateView {
            name: t("v"),
            materialized: false,
            or_replace: true,
            columns: vec![],
            depends_on: vec![]
        }
    );
    assert_eq!(
        one("REFRESH MATERIALIZED VIEW CONCURRENTLY mv"),
        Operation::RefreshMaterializedView {
            name: t("mv"),
            concurrently: true
        }
    );
    assert_eq!(
        one("LOCK TABLE a, b IN SHARE ROW EXCLUSIVE MODE NOWAIT"),
        Operation::LockTable {
            tables: vec![t("a"), t("b")],
            mode: LockMode::ShareRowExclusive
        }
    );
    assert_eq!(
        one("LOCK t"),
        Operation::LockTable {
            tables: vec![t("t")],
            mode: LockMode::AccessExclusive
        }
    );
    assert!(matches!(
        one("ALTER TABLE p ATTACH PARTITION c FOR VALUES FROM (1) TO (2)"),
        Operation::AttachPartition { .. }
    ));
    assert!(matches!(
        one("ALTER TABLE p DETACH PARTITION c CONCURRENTLY"),
        Operation::DetachPartition {
            concurrently: true,
            ..
        }
    ));
    assert_eq!(
        one("CREATE SEQUENCE s"),
        Operation::CreateSequence { name: t("s") }
    );
    assert_eq!(
        one("CREATE EXTENSION IF NOT EXISTS pg_trgm"),
        Operation::CreateExtension {
            name: "pg_trgm".into(),
            if_not_exists: true
        }
    );
    assert!(matches!(
        one(
            "CREATE OR REPLACE FUNCTION f() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ LANGUAGE plpgsql"
        ),
        Operation::CreateFunction { .. }
    ));
    assert_eq!(
        one("CREATE TRIGGER trg BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()"),
        Operation::CreateTrigger {
            name: "trg".into(),
            table: t("t")
        }
    );
    assert_eq!(
        one("COMMENT ON TABLE t IS 'hi'"),
        Operation::Comment {
            object_kind: "table".into(),
            object: "t".into(),
            text: Some("hi".into())
        }
    );
    assert!(
        matches!(one("GRANT SELECT ON t TO r"), Operation::Other { description } if description == "GRANT")
    );
    assert!(
        matches!(one("CREATE POLICY p ON t USING (true)"), Operation::Other { description } if description == "CREATE POLICY")
    );
}

/// Functions, triggers, views, types, domains, sequences and extensions are typed operations,
/// not `Other` with their leading keywords.
#[test]
fn typed_create_and_drop_of_functions_views_types() {
    assert_eq!(
        one(
            "CREATE OR REPLACE FUNCTION app.f(a int, OUT b text, VARIADIC c text[]) RETURNS text AS $$ SELECT 'x' $$ LANGUAGE sql"
        ),
        Operation::CreateFunction {
            name: QualifiedName::qualified("app", "f"),
            args: vec!["int".into(), "text[]".into()],
            or_replace: true,
            procedure: false
        }
    );
    assert_eq!(
        ops("DROP FUNCTION IF EXISTS f(int, varchar), g CASCADE"),
        vec![
            Operation::DropFunction {
                name: t("f"),
                args: Some(vec!["int".into(), "varchar".into()]),
                if_exists: true,
                cascade: true,
                procedure: false
            },
            Operation::DropFunction {
                name: t("g"),
                args: None,
                if_exists: true,
                cascade: true,
                procedure: false
            }
        ]
    );
    assert_eq!(
        one(
            "CREATE OR REPLACE PROCEDURE app.p(a int, INOUT b text) LANGUAGE plpgsql AS $$ BEGIN END $$"
        ),
        Operation::CreateFunction {
            name: QualifiedName::qualified("app", "p"),
            args: vec!["int".into(), "text".into()],
            or_replace: true,
            procedure: true
        }
    );
    assert!(matches!(
        one("DROP PROCEDURE p()"),
        Operation::DropFunction { procedure: true, args: Some(a), .. } if a.is_empty()
    ));
    assert_eq!(
        one("DROP TRIGGER IF EXISTS trg ON app.t"),
        Operation::DropTrigger {
            name: "trg".into(),
            table: Some(QualifiedName::qualified("app", "t")),
            if_exists: true,
            cascade: false
        }
    );
    assert_eq!(
        one(
            "CREATE VIEW v (x, \"Y\") AS WITH w AS (SELECT id FROM b) SELECT a.id, w.id FROM app.a JOIN w ON true JOIN a ON true"
        ),
        Operation::CreateView {
            name: t("v"),
            materialized: false,
            or_replace: false,
            columns: vec!["x".into(), "Y".into()],
            depends_on: vec![t("b"), QualifiedName::qualified("app", "a"), t("a")]
        }
    );
    assert_eq!(
        one("DROP VIEW IF EXISTS v CASCADE"),
        Operation::DropView {
            name: t("v"),
            materialized: false,
            if_exists: true,
            cascade: true
        }
    );
    assert_eq!(
        one("ALTER MATERIALIZED VIEW mv RENAME TO mv2"),
        Operation::RenameView {
            name: t("mv"),
            new_name: "mv2".into(),
            materialized: true
        }
    );
    assert_eq!(
        one("CREATE TYPE pair AS (a int, \"B\" text)"),
        Operation::CreateType {
            name: t("pair"),
            representation: TypeRepresentation::Composite {
                attributes: vec![
                    TypeAttribute {
                        name: "a".into(),
                        data_type: "int".into()
                    },
                    TypeAttribute {
                        name: "B".into(),
                        data_type: "text".into()
                    }
                ]
            }
        }
    );
    assert_eq!(
        one("CREATE TYPE r AS RANGE (SUBTYPE = float8)"),
        Operation::CreateType {
            name: t("r"),
            representation: TypeRepresentation::Range {
                subtype: Some("float8".into())
            }
        }
    );
    assert_eq!(
        one("ALTER TYPE pair RENAME TO couple"),
        Operation::RenameType {
            name: t("pair"),
            new_name: "couple".into()
        }
    );
    assert!(matches!(
        one("CREATE DOMAIN posint AS int DEFAULT 1 CHECK (VALUE > 0)"),
        Operation::CreateDomain { name, data_type, default: Some(_), checks, .. }
            if name == t("posint") && data_type == "int" && checks == ["VALUE > 0"]
    ));
    // The forms sqlparser rejects or misreads: no `AS`, `NOT NULL` / `NULL` constraints.
    for (sql, default, not_null, checks) in [
        ("CREATE DOMAIN d int NOT NULL", None, true, vec![]),
        (
            "CREATE DOMAIN d AS text DEFAULT '' NOT NULL",
            Some("''"),
            true,
            vec![],
        ),
        (
            "CREATE DOMAIN d AS int CONSTRAINT c CHECK (VALUE IS NOT NULL) NULL",
            None,
            false,
            vec!["VALUE IS NOT NULL".to_string()],
        ),
        (
            "CREATE DOMAIN d AS int DEFAULT NULL",
            Some("NULL"),
            false,
            vec![],
        ),
    ] {
        let op = one(sql);
        let Operation::CreateDomain {
            name,
            data_type,
            default: d,
            not_null: n,
            checks: c,
        } = op
        else {
            panic!("{sql}: {op:?}");
        };
        assert_eq!(
            (name, data_type.as_str(), d.map(|e| e.sql), n, c),
            (
                t("d"),
                if sql.contains("text") { "text" } else { "int" },
                default.map(String::from),
                not_null,
                checks
            ),
            "{sql}"
        );
    }
    assert_eq!(
        one("DROP DOMAIN IF EXISTS posint"),
        Operation::DropDomain {
            name: t("posint"),
            if_exists: true,
            cascade: false
        }
    );
    assert_eq!(
        ops("DROP EXTENSION IF EXISTS a, b CASCADE"),
        ["a", "b"]
            .map(|n| Operation::DropExtension {
                name: n.into(),
                if_exists: true,
                cascade: true
            })
            .to_vec()
    );
}

/// Every `ALTER TABLE` action without an operation of its own becomes a typed
/// `AlterTableAction`, whether sqlparser or the token-level recogniser read it.
#[test]
fn alter_table_actions_are_typed() {
    use AlterTableAction as A;
    let col = || "c".to_string();
    let cases = [
        ("SET LOGGED", A::SetLogged),
        ("SET UNLOGGED", A::SetUnlogged),
        ("SET ACCESS METHOD heap", A::SetAccessMethod),
        ("SET WITHOUT CLUSTER", A::SetWithoutCluster),
        ("SET WITHOUT OIDS", A::SetWithoutOids),
        (
            "CLUSTER ON t_idx",
            A::ClusterOn {
                index: "t_idx".into(),
            },
        ),
        ("SET (fillfactor = 70)", A::SetStorageParameters),
        ("RESET (fillfactor)", A::ResetStorageParameters),
        (
            "ALTER COLUMN c SET STORAGE EXTERNAL",
            A::SetStorage { column: col() },
        ),
        (
            "ALTER c SET COMPRESSION lz4",
            A::SetCompression { column: col() },
        ),
        (
            "ALTER COLUMN c SET (n_distinct = 10)",
            A::SetAttributeOptions { column: col() },
        ),
        (
            "ALTER COLUMN c ADD GENERATED ALWAYS AS IDENTITY",
            A::AddIdentity { column: col() },
        ),
        ("REPLICA IDENTITY FULL", A::ReplicaIdentity),
        (
            "ENABLE ALWAYS TRIGGER trg",
            A::EnableTrigger {
                trigger: "trg".into(),
            },
        ),
        (
            "DISABLE TRIGGER ALL",
            A::DisableTrigger {
                trigger: "all".into(),
            },
        ),
        ("ENABLE RULE r", A::EnableRule),
        ("DISABLE RULE r", A::DisableRule),
        ("ENABLE ROW LEVEL SECURITY", A::EnableRowLevelSecurity),
        ("DISABLE ROW LEVEL SECURITY", A::DisableRowLevelSecurity),
        ("FORCE ROW LEVEL SECURITY", A::ForceRowLevelSecurity),
        ("NO FORCE ROW LEVEL SECURITY", A::NoForceRowLevelSecurity),
        ("OWNER TO app", A::OwnerTo),
        (
            "INHERIT s.parent",
            A::Inherit {
                parent: QualifiedName::qualified("s", "parent"),
            },
        ),
        (
            "NO INHERIT parent",
            A::NoInherit {
                parent: t("parent"),
            },
        ),
        ("OF some_type", A::OfType),
        ("NOT OF", A::NotOfType),
    ];
    for (action, expected) in cases {
        let sql = format!("ALTER TABLE t {action}");
        assert_eq!(
            one(&sql),
            Operation::AlterTableOther {
                table: t("t"),
                action: expected
            },
            "{sql}"
        );
    }
    // Several actions at once, one of them only the token-level recogniser knows.
    assert_eq!(
        ops("ALTER TABLE t SET SCHEMA s2, ALTER COLUMN c SET STATISTICS 100"),
        vec![
            Operation::AlterTableOther {
                table: t("t"),
                action: A::SetSchema {
                    schema: "s2".into()
                }
            },
            Operation::AlterTableOther {
                table: t("t"),
                action: A::SetStatistics { column: col() }
            }
        ]
    );
}

/// The kind of an operation is its variant, by the stable names custom rules use.
#[test]
fn operation_kinds_name_the_variants() {
    let kinds: Vec<OperationKind> = [
        "DROP FUNCTION f",
        "ALTER TABLE t SET UNLOGGED",
        "VACUUM FULL t",
        "REINDEX TABLE t",
        "SELECT 1",
    ]
    .iter()
    .map(|sql| one(sql).kind())
    .collect();
    assert_eq!(
        kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        [
            "drop_function",
            "alter_table_other",
            "maintenance",
            "reindex",
            "other"
        ]
    );
    assert_eq!("drop_trigger".parse(), Ok(OperationKind::DropTrigger));
    assert_eq!(OperationKind::DropTrigger.to_string(), "drop_trigger");
    assert_eq!(
        AlterTableAction::SetUnlogged.to_string(),
        "set unlogged",
        "messages keep the words the string field held"
    );
    assert_eq!(MaintenanceCommand::VacuumFull.to_string(), "vacuum full");
    assert_eq!(ReindexTarget::Table.to_string(), "table");
}

// ---------------------------------------------------------------- transactions

fn tx(m: &migration_parser::Migration) -> Vec<(usize, bool)> {
    m.statements
        .iter()
        .map(|s| (s.tx.transaction, s.tx.in_block))
        .collect()
}

#[test]
fn autocommit_transactions() {
    let m = p(
        "SELECT 1; BEGIN; SELECT 2; SAVEPOINT a; COMMIT; SELECT 3; START TRANSACTION; SELECT 4; ROLLBACK; COMMIT; SELECT 5",
    );
    assert_eq!(
        tx(&m),
        [
            (0, false),
            (1, true),
            (1, true),
            (1, true),
            (1, true),
            (2, false),
            (3, true),
            (3, true),
            (3, true),
            (4, false),
            (5, false)
        ]
    );
    assert_eq!(
        m.statements[4].operations,
        vec![Operation::Transaction(TxControl::Commit)]
    );
}

#[test]
fn wrap_file_transactions() {
    let m = wrap(
        "SELECT 1; BEGIN; SELECT 2; COMMIT; CREATE INDEX CONCURRENTLY i ON t (a); BEGIN; SELECT 3",
    );
    // BEGIN inside the wrapping transaction is a no-op; the explicit COMMIT ends it; later
    // statements autocommit until the next BEGIN.
    assert_eq!(
        tx(&m),
        [
            (0, true),
            (0, true),
            (0, true),
            (0, true),
            (1, false),
            (2, true),
            (2, true)
        ]
    );
    assert_eq!(
        m.statements[0].tx,
        TxContext {
            transaction: 0,
            in_block: true
        }
    );
}

// ---------------------------------------------------------------- settings

#[test]
fn settings_are_tracked() {
    let m = p("SET lock_timeout = '2s';\n\
               SET statement_timeout TO 5000;\n\
               SELECT 1;\n\
               BEGIN;\n\
               SET LOCAL lock_timeout = '5min';\n\
               SELECT 2;\n\
               COMMIT;\n\
               SELECT 3;\n\
               SET SESSION lock_timeout = 0;\n\
               SELECT 4;\n\
               SET search_path TO app, \"Public\", '$user';\n\
               RESET statement_timeout;\n\
               SELECT 5;\n\
               RESET ALL;\n\
               SELECT set_config('lock_timeout', '1.5s', false);\n\
               SET lock_timeout = DEFAULT;\n\
               SELECT 6;");
    let s = |i: usize| m.statements[i].settings.clone();
    assert_eq!(s(0).lock_timeout_ms, None);
    assert_eq!(
        (s(2).lock_timeout_ms, s(2).statement_timeout_ms),
        (Some(2000), Some(5000))
    );
    assert_eq!(
        s(5).lock_timeout_ms,
        Some(300_000),
        "SET LOCAL inside the block"
    );
    assert_eq!(
        s(7).lock_timeout_ms,
        Some(2000),
        "SET LOCAL ends with the transaction"
    );
    assert_eq!(s(9).lock_timeout_ms, None, "0 = disabled");
    assert_eq!(
        s(12).search_path,
        Some(vec![
            "app".to_string(),
            "Public".to_string(),
            "$user".to_string()
        ])
    );
    assert_eq!(s(12).statement_timeout_ms, None);
    assert_eq!(s(14), Default::default());
    assert_eq!(s(15).lock_timeout_ms, Some(1500), "set_config");
    assert_eq!(s(16).lock_timeout_ms, None, "SET ... TO DEFAULT");
}

#[test]
fn set_local_outside_a_block_has_no_effect_and_rollback_undoes_set() {
    let m = p(
        "SET LOCAL lock_timeout = '1s'; SELECT 1; BEGIN; SET lock_timeout = '3s'; ROLLBACK; SELECT 2;",
    );
    assert_eq!(m.statements[1].settings.lock_timeout_ms, None);
    assert_eq!(m.statements[4].settings.lock_timeout_ms, Some(3000));
    assert_eq!(m.statements[5].settings.lock_timeout_ms, None);
    // In a wrapped file SET LOCAL lasts for the whole file.
    let m = wrap("SET LOCAL lock_timeout = '1s'; SELECT 1;");
    assert_eq!(m.statements[1].settings.lock_timeout_ms, Some(1000));
}

#[test]
fn the_time_zone_is_tracked() {
    let m = p(
        "SELECT 1; SET TIME ZONE 'UTC'; SELECT 2; SET TimeZone = 'Europe/Berlin'; SELECT 3; \
               SET timezone TO 'Etc/UTC'; SELECT 4; RESET TimeZone; SELECT 5; SET TIME ZONE LOCAL; SELECT 6;",
    );
    let tz = |i: usize| m.statements[i].settings.timezone.clone();
    let utc = |i: usize| m.statements[i].settings.timezone_is_utc();
    assert_eq!((tz(0), utc(0)), (None, false), "unknown until set");
    assert_eq!((tz(2).as_deref(), utc(2)), (Some("UTC"), true));
    assert_eq!((tz(4).as_deref(), utc(4)), (Some("Europe/Berlin"), false));
    assert!(utc(6), "Etc/UTC has a fixed zero offset");
    assert_eq!(
        (tz(8), utc(8)),
        (None, false),
        "RESET: the deploy's own zone, unknown"
    );
    assert_eq!(tz(10), None, "SET TIME ZONE LOCAL is the default");
    let m = p("BEGIN; SET LOCAL TIME ZONE 'UTC'; SELECT 1; COMMIT; SELECT 2;");
    assert!(m.statements[2].settings.timezone_is_utc());
    assert!(
        !m.statements[4].settings.timezone_is_utc(),
        "SET LOCAL ends with the block"
    );
}

#[test]
fn durations() {
    use migration_parser::parse_duration_ms as d;
    assert_eq!(d("2s"), Some(2000));
    assert_eq!(d("2000"), Some(2000));
    assert_eq!(d("'5min'"), Some(300_000));
    assert_eq!(d("1h"), Some(3_600_000));
    assert_eq!(d("1d"), Some(86_400_000));
    assert_eq!(d("250ms"), Some(250));
    assert_eq!(d("1.5s"), Some(1500));
    assert_eq!(d("0"), Some(0));
    assert_eq!(d("soon"), None);
}

// ---------------------------------------------------------------- ignores

#[test]
fn inline_ignores() {
    let m = p("-- deployclaw:ignore-file ban-truncate\n\
               -- deployclaw:ignore require-concurrent-index, DC101\n\
               -- why: small table\n\
               CREATE INDEX i ON t (a);\n\
               CREATE INDEX j ON t (b); -- deployclaw:ignore setting-not-null\n\
               \n\
               -- deployclaw:ignore renaming-column\n\
               \n\
               ALTER TABLE t RENAME a TO b;\n\
               SELECT 1; -- deployclaw:ignore all\n\
               SELECT 2;\n\
               /* deployclaw:ignore dropping-table */\n\
               DROP TABLE x;\n\
               -- deployclaw:ignore\n\
               DROP TABLE y;\n\
               -- deployclaw:ignore ban-truncate -- the table is empty in production\n\
               TRUNCATE z;");
    let ig = |i: usize| m.statements[i].ignored_rules.clone();
    assert_eq!(m.file_ignored_rules, ["ban-truncate"]);
    assert_eq!(ig(0), ["require-concurrent-index", "DC101"]);
    assert_eq!(ig(1), ["setting-not-null"]);
    assert!(
        ig(2).is_empty(),
        "a blank line separates the comment from the statement"
    );
    assert_eq!(ig(3), ["all"]);
    assert!(
        ig(4).is_empty(),
        "a trailing comment belongs to the statement on its line"
    );
    assert_eq!(ig(5), ["dropping-table"]);
    assert_eq!(ig(6), ["all"], "no rule named = all rules");
    assert_eq!(ig(7), ["ban-truncate"], "text after ` --` is a reason");
}

#[test]
fn never_panics_on_any_prefix_of_tricky_input() {
    let src = "-- é\nSET LOCAL lock_timeout = '1.5s';\nBEGIN;\nALTER TABLE \"T\" ALTER COLUMN a TYPE varchar(2) COLLATE \"C\" USING a::text, SET SCHEMA s;\n\
               DO $x$ BEGIN PERFORM ';'; END $x$;\nDROP INDEX CONCURRENTLY IF EXISTS a, b;\nCOMMENT ON CONSTRAINT c ON t IS NULL;\n\
               VACUUM (FULL false) t (a);\nCREATE INDEX i ON ONLY t (a);\nREINDEX (CONCURRENTLY) TABLE t;\n\\set x y\nCOMMIT;\n/* tail";
    let mut ends: Vec<usize> = src.char_indices().map(|(i, _)| i).collect();
    ends.push(src.len());
    for end in ends {
        let prefix = &src[..end];
        for mode in [TransactionMode::Autocommit, TransactionMode::WrapFile] {
            let o = ParseOptions {
                transaction_mode: mode,
                ..Default::default()
            };
            if let Ok(m) = parse("p.sql", prefix, &o) {
                for s in &m.statements {
                    assert!(s.span.start <= s.span.end && s.span.end <= prefix.len());
                    for op in &s.operations {
                        for v in 11..=17 {
                            let _ =
                                migration_parser::lock_facts(op, migration_parser::PgVersion(v));
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- issue 15: forms pg_dump emits

/// `DROP DATABASE ... WITH (FORCE)` (PostgreSQL 13+), with and without `WITH` and `IF EXISTS`.
#[test]
fn drop_database_with_force() {
    for (sql, force) in [
        ("DROP DATABASE d WITH (FORCE)", true),
        ("DROP DATABASE IF EXISTS d WITH (FORCE)", true),
        ("DROP DATABASE d (force)", true),
        ("DROP DATABASE IF EXISTS d", false),
    ] {
        assert_eq!(
            one(sql),
            Operation::DropDatabase {
                name: "d".into(),
                force
            },
            "{sql}"
        );
    }
}

/// Functions and procedures exactly as `pg_dump -s` of PostgreSQL 15 prints them (every option
/// it emits: `LEAKPROOF`, `COST`, `ROWS`, `PARALLEL`, `SUPPORT`, `WINDOW`, `SECURITY DEFINER`,
/// `SET ... TO ...`, `RETURN`), plus `NOT LEAKPROOF`, `EXTERNAL SECURITY` and `TRANSFORM`.
#[test]
fn create_function_options_pg_dump_emits() {
    let cases = [
        (
            "CREATE FUNCTION app.f1(a integer) RETURNS integer\n    LANGUAGE sql IMMUTABLE STRICT LEAKPROOF COST 5 PARALLEL SAFE\n    AS $$ select a $$",
            "f1",
            false,
        ),
        (
            "CREATE FUNCTION app.f2(a integer) RETURNS SETOF integer\n    LANGUAGE sql STABLE SECURITY DEFINER COST 10 ROWS 100\n    SET search_path TO 'pg_catalog', 'public'\n    SET work_mem TO '64MB'\n    AS $$ select a $$",
            "f2",
            false,
        ),
        (
            "CREATE FUNCTION app.f4(a integer) RETURNS integer\n    LANGUAGE sql PARALLEL RESTRICTED\n    SET search_path TO '$user', 'public'\n    RETURN (a + 1)",
            "f4",
            false,
        ),
        (
            "CREATE FUNCTION app.f5(a text) RETURNS text\n    LANGUAGE sql IMMUTABLE SUPPORT pg_catalog.textlike_support\n    AS $$ select a $$",
            "f5",
            false,
        ),
        (
            "CREATE FUNCTION app.f6(a integer, VARIADIC b integer[]) RETURNS integer\n    LANGUAGE sql WINDOW\n    AS $$ select a $$",
            "f6",
            false,
        ),
        (
            "CREATE OR REPLACE FUNCTION app.f9() RETURNS int LANGUAGE sql NOT LEAKPROOF EXTERNAL SECURITY DEFINER AS 'select 1' COST 1",
            "f9",
            false,
        ),
        (
            "CREATE FUNCTION app.f12() RETURNS TABLE(a int) LANGUAGE sql TRANSFORM FOR TYPE int AS 'select 1'",
            "f12",
            false,
        ),
        (
            "CREATE PROCEDURE app.p1(IN a integer)\n    LANGUAGE plpgsql SECURITY DEFINER COST 100\n    SET search_path TO 'app'\n    AS $$ begin null; end $$",
            "p1",
            true,
        ),
    ];
    for (sql, name, is_procedure) in cases {
        match one(sql) {
            Operation::CreateFunction {
                name: got,
                procedure,
                ..
            } => {
                assert_eq!(got, QualifiedName::qualified("app", name), "{sql}");
                assert_eq!(procedure, is_procedure, "{sql}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
}

/// SQL-standard function bodies (PostgreSQL 14+): the semicolons inside `BEGIN ATOMIC … END`
/// do not end the statement (psql's rule), its `END` is no `COMMIT`, and the function is known.
#[test]
fn begin_atomic_bodies_are_one_statement() {
    let m = p(
        "CREATE FUNCTION add_one(a integer) RETURNS integer LANGUAGE sql IMMUTABLE
               BEGIN ATOMIC
                 SELECT CASE WHEN a > 0 THEN a + 1 ELSE 0 END;
                 SELECT a;
               END;
               CREATE OR REPLACE PROCEDURE tidy() LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END;
               SELECT 1 AS begin_at;
               CREATE TABLE t2 (id int);",
    );
    assert_eq!(m.statements.len(), 4, "{:#?}", m.statements);
    assert!(
        matches!(&m.statements[0].operations[..], [Operation::CreateFunction { name, args, .. }]
            if name == &t("add_one") && args == &["integer".to_string()]),
        "{:?}",
        m.statements[0].operations
    );
    assert!(
        m.statements[0].sql.trim_end().ends_with("END"),
        "{}",
        m.statements[0].sql
    );
    assert!(
        m.statements
            .iter()
            .all(|s| !matches!(s.operations.first(), Some(Operation::Transaction(_)))),
        "no END became a COMMIT"
    );
    assert!(matches!(
        m.statements[3].operations[..],
        [Operation::CreateTable { .. }]
    ));
}
