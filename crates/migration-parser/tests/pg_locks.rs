//! The knowledge table against a real PostgreSQL: each statement runs inside a transaction on an
//! ephemeral cluster (started from the installed server binaries, as the `postgres` OS user when
//! the test runs as root), the locks it holds are read from `pg_locks` and rewrites from
//! `pg_class.relfilenode`, then the transaction is rolled back. The table's mode for every
//! relation it names must be the strongest mode the server holds on it, and its `Rewrite::Table`
//! must match a new relfilenode.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

use migration_parser::{
    LockMode, Operation, ParseOptions, PgVersion, Rewrite, lock_facts, parse, type_change_rewrites,
};

/// An ephemeral cluster on a private Unix socket; stopped and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    as_postgres: bool,
}

const PORT: &str = "5433";

fn newest_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.starts_with("postgres:"))?;
    let f: Vec<&str> = line.split(':').collect();
    Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let bin = newest_bin_dir()?;
        let as_postgres = std::fs::metadata("/proc/self").ok()?.uid() == 0;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("mp{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let ids = postgres_ids();
        if as_postgres {
            let (uid, gid) = ids?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).ok()?;
        }
        let c = Cluster {
            bin,
            dir,
            as_postgres,
        };
        let data = c.dir.join("data");
        let ok = c
            .server_cmd("initdb")
            .args([
                "-D",
                data.to_str()?,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .output()
            .ok()?
            .status
            .success();
        assert!(ok, "initdb failed");
        let opts = format!(
            "-c listen_addresses= -k {} -p {PORT} -c fsync=off -c timezone=UTC",
            c.dir.display()
        );
        let log = c.dir.join("server.log");
        let ok = c
            .server_cmd("pg_ctl")
            .args([
                "-D",
                data.to_str()?,
                "-l",
                log.to_str()?,
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ])
            .output()
            .ok()?
            .status
            .success();
        assert!(
            ok,
            "pg_ctl start failed: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(c)
    }

    fn server_cmd(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env("HOME", &self.dir);
        if self.as_postgres
            && let Some((uid, gid)) = postgres_ids()
        {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Run SQL with psql; returns stdout, panics on error.
    fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-p",
                PORT,
                "-h",
            ])
            .arg(&self.dir)
            .args(["-d", "postgres", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SETUP: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text, name text, total int, note varchar(10), ts timestamp);
INSERT INTO users SELECT g, 'e'||g, 'n', g, 'x', now() FROM generate_series(1,100) g;
CREATE UNIQUE INDEX users_email_idx ON users (email);
CREATE TABLE orders (id int PRIMARY KEY, user_id int, total int, created_at timestamptz);
INSERT INTO orders SELECT g, g, g, now() FROM generate_series(1,100) g;
CREATE INDEX idx_orders_user ON orders (user_id);
ALTER TABLE orders ADD CONSTRAINT fk_nv FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE users ADD CONSTRAINT chk_nv CHECK (total > 0) NOT VALID;
CREATE TABLE p (id int, k int) PARTITION BY LIST (k);
CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);
CREATE TABLE c2 (id int, k int);
CREATE TABLE mvsrc (id int PRIMARY KEY);
CREATE MATERIALIZED VIEW mv AS SELECT * FROM mvsrc;
CREATE UNIQUE INDEX mv_id ON mv (id);
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER tg0 BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION trg();
CREATE SEQUENCE seq1;
CREATE VIEW v1 AS SELECT id FROM users;
";

/// Per relation: the modes held by the statement and whether its relfilenode changed.
fn observe(c: &Cluster, stmt: &str) -> BTreeMap<String, (Vec<LockMode>, bool)> {
    let q = format!(
        "BEGIN;
CREATE TEMP TABLE before_fn ON COMMIT DROP AS SELECT c.oid, c.relfilenode FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public';
{stmt};
SELECT c.relname || ' ' || l.mode || ' ' || (b.relfilenode IS NOT NULL AND b.relfilenode <> c.relfilenode AND c.relkind IN ('r','m'))
  FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN before_fn b ON b.oid = c.oid
 WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid() AND n.nspname = 'public';
ROLLBACK;"
    );
    let mut map: BTreeMap<String, (Vec<LockMode>, bool)> = BTreeMap::new();
    for line in c.psql(&q).lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if let [rel, mode, rewritten] = f.as_slice() {
            let e = map.entry(rel.to_string()).or_default();
            e.0.extend(LockMode::from_pg_locks_name(mode));
            e.1 |= matches!(*rewritten, "t" | "true");
        }
    }
    map
}

#[test]
fn lock_table_matches_a_real_server() {
    let Some(c) = Cluster::start() else {
        eprintln!("SKIPPED: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    c.psql(SETUP);
    let version = PgVersion(
        c.psql("SHOW server_version_num")
            .parse::<u32>()
            .expect("version")
            / 10000,
    );
    let statements = [
        "ALTER TABLE users ADD COLUMN metadata JSONB NOT NULL DEFAULT '{}'",
        "ALTER TABLE users ADD COLUMN t timestamptz DEFAULT now()",
        "ALTER TABLE users ADD COLUMN u uuid DEFAULT gen_random_uuid()",
        "ALTER TABLE users ADD COLUMN s bigserial",
        "ALTER TABLE users ADD COLUMN g int GENERATED ALWAYS AS (total * 2) STORED",
        "ALTER TABLE users ADD COLUMN i bigint GENERATED BY DEFAULT AS IDENTITY",
        "CREATE INDEX i1 ON orders (total)",
        "ALTER TABLE orders ADD CONSTRAINT fk2 FOREIGN KEY (user_id) REFERENCES users (id)",
        "ALTER TABLE orders ADD CONSTRAINT fk3 FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID",
        "ALTER TABLE orders VALIDATE CONSTRAINT fk_nv",
        "ALTER TABLE users VALIDATE CONSTRAINT chk_nv",
        "ALTER TABLE orders ALTER COLUMN total TYPE bigint",
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL",
        "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)",
        "ALTER TABLE users ADD CONSTRAINT c1 CHECK (total > 0)",
        "ALTER TABLE users RENAME COLUMN name TO full_name",
        "ALTER TABLE users DROP COLUMN name",
        "ALTER TABLE users ALTER COLUMN name SET DEFAULT 'x'",
        "ALTER TABLE users DROP CONSTRAINT chk_nv",
        "ALTER INDEX idx_orders_user RENAME TO idx2",
        "REINDEX INDEX idx_orders_user",
        "REINDEX TABLE orders",
        "TRUNCATE orders, users",
        "REFRESH MATERIALIZED VIEW mv",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY mv",
        "CREATE TRIGGER tg BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION trg()",
        "ALTER TABLE p ATTACH PARTITION c2 FOR VALUES IN (2)",
        "ALTER TABLE p DETACH PARTITION p1",
        "CREATE TABLE p3 PARTITION OF p FOR VALUES IN (3)",
        "CREATE TABLE n (id int REFERENCES users (id))",
        "CLUSTER users USING users_pkey",
        "ALTER TABLE c2 SET UNLOGGED",
        "ALTER TABLE users SET (fillfactor = 70)",
        "ALTER TABLE users ALTER COLUMN total SET STATISTICS 500",
        "ALTER TABLE users DISABLE TRIGGER ALL",
        "ALTER TABLE users REPLICA IDENTITY FULL",
        "UPDATE users SET total = 1",
        "DELETE FROM orders WHERE id = 1",
        "INSERT INTO orders VALUES (1000, 1, 1, now())",
        "LOCK TABLE users IN SHARE MODE",
        "LOCK TABLE users",
        "DROP TRIGGER tg0 ON orders",
        "ALTER SEQUENCE seq1 OWNED BY users.id",
        "ALTER VIEW v1 RENAME TO v2",
        "ALTER MATERIALIZED VIEW mv RENAME TO mv2",
    ];
    let mut failures = Vec::new();
    for sql in statements {
        let m = parse("pg.sql", sql, &ParseOptions::default()).expect("parses");
        let observed = observe(&c, sql);
        for op in &m.statements[0].operations {
            for fact in lock_facts(op, version) {
                // A renamed relation shows up under its new name.
                let name = match op {
                    Operation::RenameIndex { new_name, .. }
                    | Operation::RenameTable { new_name, .. }
                    | Operation::RenameView { new_name, .. } => new_name,
                    _ => &fact.relation.name,
                };
                let Some((modes, rewritten)) = observed.get(name) else {
                    failures.push(format!(
                        "{sql}: {} not locked by the server: {observed:?}",
                        fact.relation
                    ));
                    continue;
                };
                let strongest = modes.iter().max().copied();
                if strongest != Some(fact.mode) {
                    failures.push(format!(
                        "{sql}: {} table says {}, server holds {modes:?}",
                        fact.relation, fact.mode
                    ));
                }
                // TRUNCATE swaps in new files but is not a size-proportional rewrite.
                let truncate = sql.starts_with("TRUNCATE");
                if !truncate && (fact.rewrite == Rewrite::Table) != *rewritten {
                    failures.push(format!(
                        "{sql}: {} table says {:?}, server rewrote: {rewritten}",
                        fact.relation, fact.rewrite
                    ));
                }
            }
        }
    }
    // Type changes: `type_change_rewrites` against the server's relfilenode.
    for (column, old, new) in [
        ("note", "varchar(10)", "varchar(20)"),
        ("note", "varchar(10)", "text"),
        ("note", "varchar(10)", "varchar(5)"),
        ("email", "text", "varchar(50)"),
        ("email", "text", "varchar"),
        ("total", "int", "bigint"),
        ("total", "int", "numeric(12,2)"),
    ] {
        let observed = observe(
            &c,
            &format!("ALTER TABLE users ALTER COLUMN {column} TYPE {new}"),
        );
        let rewritten = observed.get("users").is_some_and(|(_, r)| *r);
        if type_change_rewrites(old, new) != Some(rewritten) {
            failures.push(format!(
                "{old} -> {new}: table says {:?}, server rewrote: {rewritten}",
                type_change_rewrites(old, new)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "PostgreSQL {version} disagrees:\n{}",
        failures.join("\n")
    );
}
