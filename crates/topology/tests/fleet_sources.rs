//! Fleet sources: topology files (parsing, errors with locations) and live discovery.

use topology::ephemeral::{EphemeralOptions, EphemeralPg};
use topology::fixture::{FixtureLayout, FixtureSpec, create_tenants};
use topology::{
    DiscoverySpec, Fleet, ShardLocation, ShardSource, Topology, TopologyError, discover_on_instance,
};

const EXAMPLE: &str = r#"
[defaults]
user = "deployclaw"
database = "app"
sslmode = "require"
schemas = "tenant_*"

[[instance]]
name = "eu-1"
host = "db-eu-1.internal"
labels = { region = "eu" }

[[instance]]
name = "us-1"
url = "postgres://reader:urlsecret@db-us-1.internal:6432/tenants?sslmode=verify-full"
databases = "tenant_%"

[[instance]]
name = "legacy"
host = "/var/run/postgresql"
password = "inline-secret"
shards = ["tenant_acme", "tenant_globex"]

[[instance]]
name = "vip"
host = "10.0.0.10"
port = 5433
[[instance.shard]]
id = "vip/acme"
database = "acme"
schema = "public"
"#;

#[test]
fn parses_the_documented_example() {
    let t = Topology::from_toml_str(EXAMPLE, "fleet.toml").expect("parse");
    assert_eq!(t.instances.len(), 4);
    let eu = &t.instances[0];
    assert_eq!(eu.instance.connection.host, "db-eu-1.internal");
    assert_eq!(eu.instance.connection.port, 5432);
    assert_eq!(eu.instance.connection.user, "deployclaw");
    assert_eq!(eu.instance.connection.database, "app");
    assert_eq!(eu.instance.connection.sslmode.as_deref(), Some("require"));
    assert_eq!(
        eu.instance.labels.get("region").map(String::as_str),
        Some("eu")
    );
    assert_eq!(
        eu.shards,
        ShardSource::Discover(DiscoverySpec::schemas("tenant_*"))
    );

    let us = &t.instances[1].instance.connection;
    assert_eq!(
        (
            us.host.as_str(),
            us.port,
            us.user.as_str(),
            us.database.as_str()
        ),
        ("db-us-1.internal", 6432, "reader", "tenants")
    );
    assert_eq!(us.sslmode.as_deref(), Some("verify-full"));
    assert_eq!(us.password.as_ref().map(|p| p.expose()), Some("urlsecret"));
    assert_eq!(
        us.redacted_url(),
        "postgres://reader:***@db-us-1.internal:6432/tenants?sslmode=verify-full"
    );
    assert_eq!(
        t.instances[1].shards,
        ShardSource::Discover(DiscoverySpec::databases("tenant_%"))
    );

    let ShardSource::Explicit(legacy) = &t.instances[2].shards else {
        panic!("explicit")
    };
    let ids: Vec<&str> = legacy.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["legacy/app/tenant_acme", "legacy/app/tenant_globex"]
    );
    assert!(!format!("{t:?}").contains("inline-secret"));
    assert!(!format!("{t:?}").contains("urlsecret"));

    let ShardSource::Explicit(vip) = &t.instances[3].shards else {
        panic!("explicit")
    };
    assert_eq!(vip[0].id, "vip/acme");
    assert_eq!(
        vip[0].location,
        ShardLocation::Database {
            database: "acme".into(),
            schema: "public".into()
        }
    );
}

fn invalid(text: &str) -> (usize, usize, String) {
    match Topology::from_toml_str(text, "bad.toml") {
        Err(TopologyError::TopologyFileInvalid {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn errors_carry_file_line_and_column() {
    // Syntax error on line 3.
    let (line, col, msg) = invalid("[[instance]]\nname = \"a\"\nhost = = 1\n");
    assert_eq!(line, 3, "{msg}");
    assert!(col >= 7, "{col}");
    // Unknown key, reported where it is.
    let (line, _, msg) = invalid("[[instance]]\nname = \"a\"\nhost = \"h\"\nhots = \"x\"\n");
    assert_eq!(line, 4, "{msg}");
    assert!(msg.contains("hots"), "{msg}");
    // Semantic error: the second instance lacks a host; points at that instance.
    let (line, _, msg) =
        invalid("[[instance]]\nname = \"a\"\nhost = \"h\"\n\n[[instance]]\nname = \"b\"\n");
    assert!(line >= 5, "line {line}: {msg}");
    assert!(
        msg.contains("instance `b`") && msg.contains("host"),
        "{msg}"
    );
    // Two shard sources.
    let (_, _, msg) = invalid(
        "[[instance]]\nname = \"a\"\nhost = \"h\"\nschemas = \"t_*\"\ndatabases = \"d_*\"\n",
    );
    assert!(msg.contains("only one"), "{msg}");
    // Bad pattern.
    let (_, _, msg) = invalid("[[instance]]\nname = \"a\"\nhost = \"h\"\nschemas = \"t_[\"\n");
    assert!(msg.contains("invalid pattern"), "{msg}");
    // Display form.
    let e = Topology::from_toml_str("[[instance]]\nname = 1\n", "fleet.toml").unwrap_err();
    assert!(e.to_string().starts_with("fleet.toml:2:"), "{e}");
}

#[test]
fn password_env_is_read_and_missing_var_is_an_error() {
    // SAFETY: tests in this binary do not read this variable concurrently.
    unsafe { std::env::set_var("DC_TEST_TOPO_PW", "from-env") };
    let t = Topology::from_toml_str(
        "[[instance]]\nname = \"a\"\nhost = \"h\"\npassword_env = \"DC_TEST_TOPO_PW\"\n",
        "f.toml",
    )
    .unwrap();
    assert_eq!(
        t.instances[0]
            .instance
            .connection
            .password
            .as_ref()
            .map(|p| p.expose()),
        Some("from-env")
    );
    let e = Topology::from_toml_str(
        "[[instance]]\nname = \"a\"\nhost = \"h\"\npassword_env = \"DC_TEST_TOPO_UNSET_VAR\"\n",
        "f.toml",
    )
    .unwrap_err();
    assert!(matches!(e, TopologyError::PasswordEnvMissing { .. }));
    assert!(e.to_string().contains("DC_TEST_TOPO_UNSET_VAR"));
}

#[test]
fn missing_file_is_a_read_error() {
    let e = Topology::from_toml_file("/nonexistent/fleet.toml").unwrap_err();
    assert!(matches!(e, TopologyError::TopologyFileRead { .. }), "{e}");
}

#[tokio::test]
async fn discovers_schemas_and_databases_live() {
    let pg = EphemeralPg::start_async(EphemeralOptions::default())
        .await
        .unwrap();
    let conn = pg.connection_spec();
    create_tenants(
        &conn,
        &FixtureSpec {
            tenants: 3,
            rows: 5,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    create_tenants(
        &conn,
        &FixtureSpec {
            tenants: 2,
            rows: 5,
            prefix: "tdb_".into(),
            layout: FixtureLayout::DatabasePerTenant,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let instance = topology::Instance {
        name: "local".into(),
        connection: conn.with_database("app"),
        labels: Default::default(),
        replica_of: None,
    };

    let shards = discover_on_instance(&instance, &DiscoverySpec::schemas("tenant_*"))
        .await
        .unwrap();
    let ids: Vec<&str> = shards.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "local/app/tenant_0001",
            "local/app/tenant_0002",
            "local/app/tenant_0003"
        ]
    );
    // LIKE form, and a pattern matching a single one.
    assert_eq!(
        discover_on_instance(&instance, &DiscoverySpec::schemas("tenant\\_%"))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        discover_on_instance(&instance, &DiscoverySpec::schemas("tenant_0002"))
            .await
            .unwrap()
            .len(),
        1
    );
    // `shared` and `public` are not tenants.
    assert!(
        discover_on_instance(&instance, &DiscoverySpec::schemas("tenant_*"))
            .await
            .unwrap()
            .iter()
            .all(|s| s.location.schema().starts_with("tenant_"))
    );

    let dbs = discover_on_instance(&instance, &DiscoverySpec::databases("tdb_*"))
        .await
        .unwrap();
    let locs: Vec<&ShardLocation> = dbs.iter().map(|s| &s.location).collect();
    assert_eq!(
        locs,
        vec![
            &ShardLocation::Database {
                database: "tdb_0001".into(),
                schema: "public".into()
            },
            &ShardLocation::Database {
                database: "tdb_0002".into(),
                schema: "public".into()
            },
        ]
    );

    // The same through a topology file resolved live, and through a URL.
    let dir = std::env::temp_dir().join(format!("dc-topo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fleet.toml");
    std::fs::write(
        &file,
        format!(
            "[[instance]]\nname = \"a\"\nhost = \"127.0.0.1\"\nport = {}\ndatabase = \"app\"\nschemas = \"tenant_*\"\n\n[[instance]]\nname = \"b\"\nurl = \"{}\"\ndatabases = \"tdb_%\"\n",
            pg.port(),
            pg.url()
        ),
    )
    .unwrap();
    let fleet = Fleet::from_toml_file(&file).await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(fleet.instances.len(), 2);
    assert_eq!(fleet.shards.len(), 5);
    assert_eq!(fleet.shards_on("b").count(), 2);

    let f2 = Fleet::from_url(
        "x",
        &pg.url_for_db("app"),
        &DiscoverySpec::schemas("tenant_000[12]"),
    )
    .await
    .unwrap();
    assert_eq!(f2.shards.len(), 2);

    // Unreachable instance: a connect error that names the instance, without a password.
    let dead = topology::Instance {
        name: "dead".into(),
        connection: topology::ConnectionSpec::from_url("postgres://u:hunter2@127.0.0.1:1/app")
            .unwrap(),
        labels: Default::default(),
        replica_of: None,
    };
    let e = discover_on_instance(&dead, &DiscoverySpec::schemas("*"))
        .await
        .unwrap_err();
    assert!(e.is_unreachable());
    let msg = e.to_string();
    assert!(msg.contains("`dead`") && !msg.contains("hunter2"), "{msg}");
}

#[test]
fn topology_values_are_never_echoed_and_url_accepts_key_value_pairs() {
    // A numeric password has the wrong type: the error says so without the value.
    let (line, _, msg) =
        invalid("[[instance]]\nname = \"a\"\nhost = \"h\"\npassword = 9876543210\n");
    assert_eq!(line, 4, "{msg}");
    assert!(
        msg.contains("invalid type: integer (value not shown)"),
        "{msg}"
    );
    assert!(!msg.contains("9876543210"), "{msg}");
    // An unparsable url: its password is not echoed.
    let (_, _, msg) =
        invalid("[[instance]]\nname = \"a\"\nurl = \"postgress://u:TopoLeak42@h/db\"\n");
    assert!(msg.contains("postgress://***"), "{msg}");
    assert!(!msg.contains("TopoLeak42"), "{msg}");
    // libpq key=value pairs as `url`.
    let t = Topology::from_toml_str(
        "[[instance]]\nname = \"a\"\nurl = \"host=db.internal port=6432 user=gate password='p w' dbname=app\"\n",
        "f.toml",
    )
    .unwrap();
    let c = &t.instances[0].instance.connection;
    assert_eq!(c.redacted_url(), "postgres://gate:***@db.internal:6432/app");
    assert_eq!(c.password.as_ref().map(|p| p.expose()), Some("p w"));
}

#[test]
fn topology_instances_without_a_password_use_the_password_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    std::fs::write(&file, "pgpass-only.test:5433:app:gate:from\\:file\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // SAFETY: tests in this binary do not read these variables concurrently in a way that
    // matters: the file only matches the host `pgpass-only.test`.
    unsafe {
        std::env::set_var("PGPASSFILE", &file);
        std::env::remove_var("PGPASSWORD");
    }
    let t = Topology::from_toml_str(
        "[[instance]]\nname = \"a\"\nhost = \"pgpass-only.test\"\nport = 5433\nuser = \"gate\"\ndatabase = \"app\"\n\n\
         [[instance]]\nname = \"b\"\nhost = \"pgpass-only.test\"\nport = 5433\nuser = \"gate\"\ndatabase = \"app\"\npassword = \"inline\"\n",
        "f.toml",
    )
    .unwrap();
    let pw = |i: usize| {
        t.instances[i]
            .instance
            .connection
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
    };
    assert_eq!(pw(0).as_deref(), Some("from:file"));
    // A password given in the file wins over the password file.
    assert_eq!(pw(1).as_deref(), Some("inline"));
    unsafe { std::env::remove_var("PGPASSFILE") };
}
