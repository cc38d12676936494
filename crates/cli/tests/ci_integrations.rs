//! The CI integrations, run as CI would run them: the composite GitHub Action's steps
//! (`scripts/action/*.sh`, called by `action.yml`) in a temporary git repository with a base
//! commit, with the real `deployclaw` binary and a real PostgreSQL fleet; the sticky comment
//! against a local HTTP server standing in for the GitHub API; the pre-commit hook's `entry` on
//! staged files; and the README "In CI" snippets, checked against the action's inputs and
//! outputs, the hook ids and the CLI's flags.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::fingerprint_db;
use serde_yaml::Value;
use topology::fixture::{FixtureSpec, start_fleet};

const BIN: &str = env!("CARGO_BIN_EXE_deployclaw");
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A red finding: dropping a table loses its data.
const RED_SQL: &str = "DROP TABLE users;\n";
/// A yellow finding only: a plain CREATE INDEX blocks writes.
const YELLOW_SQL: &str =
    "SET lock_timeout = '2s';\nCREATE INDEX orders_customer_idx ON orders (customer_id);\n";
/// Nothing to report.
const CLEAN_SQL: &str = "CREATE TABLE audit_log (id bigint PRIMARY KEY, note text);\n";

fn root(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("valid YAML")
}

fn out_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// PATH with the directory of the binary under test first, as the action's install step does.
fn path_with_bin() -> String {
    let dir = Path::new(BIN).parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(o.status.success(), "git {args:?}: {}", out_text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A git repository (`r/` in a temporary directory, so that reports and outputs written next
/// to it stay out of it) whose base commit (tag `base`) holds `migrations/0001_drop.sql` (red:
/// it must never be linted, it did not change) and a README.
fn repo() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let r = d.path().join("r");
    std::fs::create_dir_all(r.join("migrations")).unwrap();
    git(&r, &["init", "-q", "-b", "main"]);
    std::fs::write(r.join("migrations/0001_drop.sql"), RED_SQL).unwrap();
    std::fs::write(r.join("README.md"), "app\n").unwrap();
    git(&r, &["add", "-A"]);
    git(&r, &["commit", "-q", "-m", "base"]);
    git(&r, &["tag", "base"]);
    (d, r)
}

fn commit(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "change"]);
}

/// What `scripts/action/gate.sh` left: its outputs (the `GITHUB_OUTPUT` file) and its run.
struct GateRun {
    outputs: BTreeMap<String, String>,
    output: Output,
}

fn run_gate(repo: &Path, env: &[(&str, &str)]) -> GateRun {
    let out_file = repo.join("../github_output");
    let _ = std::fs::remove_file(&out_file);
    let mut c = Command::new(root("scripts/action/gate.sh"));
    c.current_dir(repo)
        .env("GITHUB_OUTPUT", &out_file)
        .env("PATH", path_with_bin())
        .env("DC_BASE_REF", "base")
        .env("DC_REPORT_DIR", repo.join("../report"))
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .env_remove("GITHUB_BASE_REF")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let output = c.output().expect("gate.sh");
    assert_eq!(output.status.code(), Some(0), "{}", out_text(&output));
    let text = std::fs::read_to_string(&out_file).expect("GITHUB_OUTPUT written");
    let outputs = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    GateRun { outputs, output }
}

impl GateRun {
    fn get(&self, key: &str) -> &str {
        self.outputs
            .get(key)
            .unwrap_or_else(|| panic!("output {key} missing: {:?}", self.outputs))
    }
}

/// The last step: the job's exit code is the gate's.
fn finish(code: &str, gate: &str) -> Option<i32> {
    Command::new(root("scripts/action/finish.sh"))
        .env("DC_EXIT_CODE", code)
        .env("DC_GATE", gate)
        .output()
        .expect("finish.sh")
        .status
        .code()
}

#[test]
fn gate_lints_only_changed_migrations_and_sets_outputs_per_exit_code() {
    let (_d, repo) = repo();

    // A wrong mode or base is a usage error of the step itself.
    for (k, v) in [
        ("DC_CHANGED_MODE", "everything"),
        ("DC_BASE_REF", "no-such-ref"),
    ] {
        let o = Command::new(root("scripts/action/gate.sh"))
            .current_dir(&repo)
            .env("PATH", path_with_bin())
            .env(k, v)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{k}={v}: {}", out_text(&o));
        assert!(out_text(&o).contains(v), "{}", out_text(&o));
    }

    // Nothing changed: green, no lint run.
    let g = run_gate(&repo, &[]);
    assert_eq!(
        (g.get("gate"), g.get("changed"), g.get("exit-code")),
        ("GREEN", "0", "0")
    );

    // A yellow migration: only it is linted (the red base file is not), exit 1.
    commit(&repo, &[("migrations/0002_index.sql", YELLOW_SQL)]);
    let g = run_gate(&repo, &[]);
    assert_eq!(
        (g.get("gate"), g.get("changed"), g.get("exit-code")),
        ("YELLOW", "1", "1"),
        "{}",
        out_text(&g.output)
    );
    assert_eq!((g.get("risk"), g.get("report")), ("", ""));
    let sarif = std::fs::read_to_string(Path::new(g.get("sarif")).join("lint.sarif")).unwrap();
    assert!(sarif.contains("0002_index.sql"), "{sarif}");
    assert!(
        !sarif.contains("0001_drop.sql"),
        "unchanged file linted: {sarif}"
    );
    let body = std::fs::read_to_string(g.get("comment")).unwrap();
    assert!(body.starts_with("<!-- deployclaw-gate -->\n"), "{body}");
    insta::assert_snapshot!("gate_comment_lint_only", body);
    assert_eq!(finish(g.get("exit-code"), g.get("gate")), Some(1));
    // The log carries GitHub annotations for the diff.
    assert!(
        String::from_utf8_lossy(&g.output.stdout).contains("::warning"),
        "{}",
        out_text(&g.output)
    );

    // allow-yellow: the gate stays YELLOW, the job passes.
    let g = run_gate(&repo, &[("DC_ALLOW_YELLOW", "true")]);
    assert_eq!((g.get("gate"), g.get("exit-code")), ("YELLOW", "0"));
    assert_eq!(finish(g.get("exit-code"), g.get("gate")), Some(0));

    // A red migration on top: red, exit 2, even with allow-yellow.
    commit(
        &repo,
        &[("migrations/0003_drop.sql", "DROP TABLE orders;\n")],
    );
    let g = run_gate(&repo, &[("DC_ALLOW_YELLOW", "true")]);
    assert_eq!(
        (g.get("gate"), g.get("changed"), g.get("exit-code")),
        ("RED", "2", "2")
    );
    assert_eq!(finish(g.get("exit-code"), g.get("gate")), Some(2));

    // A migration that does not parse: exit 3, the job fails.
    commit(
        &repo,
        &[("migrations/0004_bad.sql", "SELECT 1;\nSELECT 'oops;\n")],
    );
    let g = run_gate(&repo, &[]);
    assert_eq!((g.get("gate"), g.get("exit-code")), ("ERROR", "3"));
    let body = std::fs::read_to_string(g.get("comment")).unwrap();
    assert!(body.contains("migrations/0004_bad.sql:2:"), "{body}");
    assert_eq!(finish(g.get("exit-code"), g.get("gate")), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_validates_changed_migrations_against_a_real_fleet() {
    let fx = start_fleet(
        1,
        &FixtureSpec {
            tenants: 2,
            rows: 40,
            ..FixtureSpec::default()
        },
    )
    .await
    .expect("fixture fleet");
    let pg = &fx.clusters[0];
    let before = fingerprint_db(&pg.connection_spec()).await;
    // A password in the target (the cluster trusts loopback, so it is not checked) must never
    // reach the log or the comment.
    let target = format!(
        "postgres://postgres:hunter2-secret@127.0.0.1:{}/app",
        pg.port()
    );

    let (_d, repo) = repo();
    commit(
        &repo,
        &[
            (
                "migrations/0002_note.sql",
                "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN note text;\n",
            ),
            (
                "migrations/0003_rename.sql",
                "SET lock_timeout = '2s';\nALTER TABLE users RENAME COLUMN phone TO phone_number;\n",
            ),
        ],
    );
    let g = run_gate(
        &repo,
        &[
            ("DC_TARGET_DB", target.as_str()),
            ("DC_TENANT_SCHEMAS", "tenant_*"),
            ("DC_VALIDATE_ARGS", "--lock-budget-ms 5000"),
        ],
    );
    let log = out_text(&g.output);
    assert_eq!(g.get("changed"), "2", "{log}");
    // The rename is yellow: the worst report is its own, and the outputs are read from it.
    let report = g.get("report");
    assert!(report.contains("0003_rename"), "{report}: {log}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    assert_eq!(g.get("gate"), json["gate"].as_str().unwrap(), "{log}");
    assert_eq!(g.get("gate"), "YELLOW", "{log}");
    assert_eq!(
        g.get("risk"),
        json["safety_gates"]["risk_level"].as_str().unwrap()
    );
    assert_eq!(g.get("exit-code"), "1", "{log}");
    assert_eq!(finish(g.get("exit-code"), g.get("gate")), Some(1));
    let sarifs: BTreeSet<String> = std::fs::read_dir(g.get("sarif"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        sarifs.contains("lint.sarif") && sarifs.len() == 3,
        "{sarifs:?}"
    );
    let body = std::fs::read_to_string(g.get("comment")).unwrap();
    assert!(
        body.contains("### validate-migration `migrations/0003_rename.sql` (exit 1)"),
        "{body}"
    );
    assert!(
        body.contains("### validate-migration `migrations/0002_note.sql` (exit 0)"),
        "{body}"
    );
    assert!(
        !log.contains("hunter2") && !body.contains("hunter2"),
        "{log}"
    );
    assert_eq!(
        fingerprint_db(&pg.connection_spec()).await,
        before,
        "target changed"
    );
}

/// The comments of one pull request, as the GitHub API keeps them, and every request seen.
#[derive(Default)]
struct FakeGitHub {
    comments: Vec<(u64, String)>,
    requests: Vec<(String, String, String)>,
}

/// A tiny HTTP server on loopback answering the three calls comment.sh makes.
fn serve(state: Arc<Mutex<FakeGitHub>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let (mut len, mut auth, mut expect) = (0usize, String::new(), false);
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "authorization" => auth = v.trim().to_owned(),
                    "expect" => expect = true,
                    _ => {}
                }
            }
            if expect {
                stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let (status, reply) = answer(&state, &method, &path, &auth, &body);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reply.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(reply.as_bytes()).unwrap();
        }
    });
    format!("http://{addr}")
}

fn answer(
    state: &Mutex<FakeGitHub>,
    method: &str,
    path: &str,
    auth: &str,
    body: &[u8],
) -> (&'static str, String) {
    let mut s = state.lock().unwrap();
    s.requests
        .push((method.to_owned(), path.to_owned(), auth.to_owned()));
    let text = || -> String {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["body"].as_str().unwrap().to_owned()
    };
    let list = "/repos/acme/app/issues/7/comments";
    match method {
        "GET" if path.starts_with(list) => {
            let page = if path.ends_with("&page=1") {
                &s.comments[..]
            } else {
                &[]
            };
            let v: Vec<_> = page
                .iter()
                .map(|(id, b)| serde_json::json!({"id": id, "body": b}))
                .collect();
            ("200 OK", serde_json::Value::from(v).to_string())
        }
        "POST" if path == list => {
            let id = 100 + s.comments.len() as u64;
            s.comments.push((id, text()));
            ("201 Created", format!("{{\"id\":{id}}}"))
        }
        "PATCH" => {
            let id: u64 = path.rsplit('/').next().unwrap().parse().unwrap();
            let b = text();
            match s.comments.iter_mut().find(|c| c.0 == id) {
                Some(c) => {
                    c.1 = b;
                    ("200 OK", format!("{{\"id\":{id}}}"))
                }
                None => ("404 Not Found", "{}".to_owned()),
            }
        }
        _ => ("404 Not Found", "{}".to_owned()),
    }
}

fn post_comment(api: &str, body: &Path) -> Output {
    Command::new(root("scripts/action/comment.sh"))
        .env("GITHUB_API_URL", api)
        .env("GITHUB_REPOSITORY", "acme/app")
        .env("GITHUB_TOKEN", "s3cr3t-t0ken")
        .env("DC_PR_NUMBER", "7")
        .env("DC_BODY_FILE", body)
        .output()
        .expect("comment.sh")
}

#[test]
fn sticky_comment_is_created_once_then_updated() {
    let (_d, repo) = repo();
    commit(&repo, &[("migrations/0002_index.sql", YELLOW_SQL)]);

    let state = Arc::new(Mutex::new(FakeGitHub::default()));
    state.lock().unwrap().comments.push((1, "LGTM".to_owned()));
    let api = serve(state.clone());

    let first = run_gate(&repo, &[]);
    let o = post_comment(&api, Path::new(first.get("comment")));
    assert!(o.status.success(), "{}", out_text(&o));
    assert!(!out_text(&o).contains("s3cr3t"), "token printed");

    commit(&repo, &[("migrations/0003_audit.sql", CLEAN_SQL)]);
    let second = run_gate(&repo, &[]);
    let o = post_comment(&api, Path::new(second.get("comment")));
    assert!(o.status.success(), "{}", out_text(&o));

    let s = state.lock().unwrap();
    let calls: Vec<(&str, &str)> = s
        .requests
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "GET",
                "/repos/acme/app/issues/7/comments?per_page=100&page=1"
            ),
            ("POST", "/repos/acme/app/issues/7/comments"),
            (
                "GET",
                "/repos/acme/app/issues/7/comments?per_page=100&page=1"
            ),
            ("PATCH", "/repos/acme/app/issues/comments/101"),
        ]
    );
    assert!(s.requests.iter().all(|r| r.2 == "Bearer s3cr3t-t0ken"));
    // One comment of ours, holding the second run's body; the other comment untouched.
    assert_eq!(s.comments.len(), 2);
    assert_eq!(s.comments[0], (1, "LGTM".to_owned()));
    let ours = &s.comments[1].1;
    assert_eq!(
        *ours,
        std::fs::read_to_string(second.get("comment")).unwrap()
    );
    assert!(ours.contains("0003_audit.sql") && ours.starts_with("<!-- deployclaw-gate -->"));
}

/// Every `scripts/action/NAME.sh` a text refers to: each must exist and be executable.
fn script_refs(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"scripts/action/[a-z_-]+\.sh").unwrap();
    let refs: BTreeSet<String> = re.find_iter(text).map(|m| m.as_str().to_owned()).collect();
    for r in &refs {
        let mode = std::fs::metadata(root(r))
            .unwrap_or_else(|e| panic!("{r}: {e}"))
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "{r} is not executable");
    }
    refs
}

/// The outputs scripts/action/gate.sh writes (`echo "NAME=...`).
fn gate_outputs() -> BTreeSet<String> {
    let re = regex::Regex::new(r#"echo "([a-z-]+)="#).unwrap();
    let keys: BTreeSet<String> = re
        .captures_iter(&read("scripts/action/gate.sh"))
        .map(|c| c[1].to_owned())
        .collect();
    assert!(
        keys.contains("gate") && keys.contains("exit-code"),
        "{keys:?}"
    );
    keys
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn action_yml_is_a_composite_whose_scripts_inputs_and_outputs_exist() {
    let text = read("action.yml");
    let action = yaml(&text);
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    let inputs = keys(&action["inputs"]);
    for needed in ["target-db", "topology", "migrations", "allow-yellow"] {
        assert!(inputs.contains(needed), "input {needed} missing");
    }
    // Every `inputs.X` used is declared.
    let used = regex::Regex::new(r"inputs\.([a-z-]+)").unwrap();
    for c in used.captures_iter(&text) {
        assert!(inputs.contains(&c[1]), "inputs.{} is not declared", &c[1]);
    }
    let steps = action["runs"]["steps"].as_sequence().expect("steps");
    let ids: BTreeSet<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    let mut scripts = BTreeSet::new();
    for step in steps {
        if let Some(run) = step["run"].as_str() {
            assert_eq!(
                step["shell"].as_str(),
                Some("bash"),
                "{run}: composite runs need a shell"
            );
            let refs = script_refs(run);
            assert_eq!(refs.len(), 1, "{run}: one script per step");
            // Every DC_* variable a step sets is one its script documents.
            let script = read(refs.first().unwrap());
            for k in keys(&step["env"]).iter().filter(|k| k.starts_with("DC_")) {
                assert!(script.contains(k.as_str()), "{k} is not read by {refs:?}");
            }
            scripts.extend(refs);
        } else {
            let uses = step["uses"].as_str().expect("a step runs or uses");
            assert!(uses.contains('@'), "{uses}: pin a version");
        }
    }
    assert_eq!(
        scripts.into_iter().collect::<Vec<_>>(),
        [
            "scripts/action/comment.sh",
            "scripts/action/finish.sh",
            "scripts/action/gate.sh",
            "scripts/action/install.sh",
        ]
    );
    assert!(text.contains("github/codeql-action/upload-sarif@"));
    // Every `steps.ID.outputs.K` names a step, and the gate step writes K.
    let gate_keys = gate_outputs();
    let refs = regex::Regex::new(r"steps\.([a-z]+)\.outputs\.([a-z-]+)").unwrap();
    for c in refs.captures_iter(&text) {
        assert!(ids.contains(&c[1]), "no step {}", &c[1]);
        if &c[1] == "gate" {
            assert!(gate_keys.contains(&c[2]), "gate.sh writes no {}", &c[2]);
        }
    }
    for out in ["gate", "risk", "report", "exit-code"] {
        assert!(keys(&action["outputs"]).contains(out), "output {out}");
    }
}

#[test]
fn install_key_names_the_version_and_the_lockfile() {
    let o = Command::new(root("scripts/action/install.sh"))
        .arg("key")
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(o.status.success(), "{}", out_text(&o));
    let version = format!("-{}-", env!("CARGO_PKG_VERSION"));
    assert!(
        key.starts_with("deployclaw-") && key.contains(&version),
        "{key}"
    );
}

/// The CI cache of deployclaw's own cache directory (`--cache-dir`: the shadow's initdb template
/// and calibration) is keyed on what makes a cached template unusable: the PostgreSQL server
/// version, the deployclaw version and the template format; and the action passes the cached
/// directory to validate-migration.
#[test]
fn cache_key_names_postgres_deployclaw_and_the_template_format() {
    let o = Command::new(root("scripts/action/install.sh"))
        .arg("cache-key")
        .output()
        .unwrap();
    let key = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(o.status.success(), "{}", out_text(&o));
    let bin = topology::ephemeral::find_bin_dir().expect("PostgreSQL server binaries");
    let v = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .unwrap();
    let pg = String::from_utf8_lossy(&v.stdout)
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or_default()
        .to_owned();
    assert!(!pg.is_empty());
    for part in [
        format!("-pg{pg}-"),
        format!("-{}-", env!("CARGO_PKG_VERSION")),
        format!("-template-{}", topology::ephemeral::TEMPLATE_FORMAT),
    ] {
        assert!(key.contains(&part), "{key} lacks {part}");
    }
    assert!(key.starts_with("deployclaw-cache-"), "{key}");
    let action = yaml(&read("action.yml"));
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let cache_step = steps
        .iter()
        .find(|s| s["with"]["path"].as_str() == Some("${{ inputs.cache-dir }}"))
        .expect("an actions/cache step for inputs.cache-dir");
    assert_eq!(
        cache_step["with"]["key"].as_str(),
        Some("${{ steps.cachekey.outputs.key }}")
    );
    let gate = steps
        .iter()
        .find(|s| s["id"].as_str() == Some("gate"))
        .unwrap();
    assert_eq!(
        gate["env"]["DC_CACHE_DIR"].as_str(),
        Some("${{ inputs.cache-dir }}")
    );
    assert!(read("scripts/action/gate.sh").contains("--cache-dir \"$DC_CACHE_DIR\""));
}

/// The one hook, as pre-commit reads it.
fn hook() -> Value {
    let hooks = yaml(&read(".pre-commit-hooks.yaml"));
    let hooks = hooks.as_sequence().expect("a list of hooks");
    assert_eq!(hooks.len(), 1);
    hooks[0].clone()
}

/// Runs the hook's entry as pre-commit does: `entry args... <staged files matching files:>`.
fn run_hook(repo: &Path, hook: &Value, args: &[&str]) -> (Vec<String>, Output) {
    let files = regex::Regex::new(hook["files"].as_str().unwrap()).unwrap();
    let staged: Vec<String> = git(
        repo,
        &["diff", "--cached", "--name-only", "--diff-filter=ACMR"],
    )
    .lines()
    .filter(|f| files.is_match(f))
    .map(str::to_owned)
    .collect();
    let mut entry = hook["entry"].as_str().unwrap().split_whitespace();
    let o = Command::new(entry.next().unwrap())
        .args(entry)
        .args(args)
        .args(&staged)
        .current_dir(repo)
        .env("PATH", path_with_bin())
        .env("NO_COLOR", "1")
        .output()
        .expect("hook entry runs");
    (staged, o)
}

#[test]
fn pre_commit_hook_lints_the_staged_sql_files() {
    let hook = hook();
    assert_eq!(hook["id"].as_str(), Some("deployclaw-lint"));
    assert_eq!(hook["language"].as_str(), Some("system"));
    let (_d, repo) = repo();
    std::fs::write(repo.join("migrations/0002_index.sql"), YELLOW_SQL).unwrap();
    std::fs::write(repo.join("app.py"), "print(1)\n").unwrap();
    std::fs::write(repo.join("README.md"), "changed\n").unwrap();
    git(&repo, &["add", "-A"]);
    let (staged, o) = run_hook(&repo, &hook, &[]);
    assert_eq!(staged, ["migrations/0002_index.sql"]);
    assert_eq!(o.status.code(), Some(1), "{}", out_text(&o));
    assert!(out_text(&o).contains("0002_index.sql"), "{}", out_text(&o));
    let (_, o) = run_hook(&repo, &hook, &["--allow-yellow"]);
    assert_eq!(o.status.code(), Some(0), "{}", out_text(&o));

    std::fs::write(repo.join("migrations/0002_index.sql"), CLEAN_SQL).unwrap();
    git(&repo, &["add", "-A"]);
    let (_, o) = run_hook(&repo, &hook, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", out_text(&o));
    std::fs::write(repo.join("migrations/0003_drop.sql"), RED_SQL).unwrap();
    git(&repo, &["add", "-A"]);
    let (_, o) = run_hook(&repo, &hook, &["--allow-yellow"]);
    assert_eq!(o.status.code(), Some(2), "{}", out_text(&o));
}

/// The fenced YAML blocks of README.md's "In CI" section.
fn readme_ci_snippets() -> Vec<Value> {
    let readme = read("README.md");
    let start = readme
        .find("\n## In CI\n")
        .expect("README has an In CI section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    let blocks: Vec<Value> = section
        .split("```yaml\n")
        .skip(1)
        .map(|b| yaml(&b[..b.find("```").unwrap()]))
        .collect();
    assert_eq!(blocks.len(), 3, "GitHub Actions, GitLab CI, pre-commit");
    blocks
}

/// The long flags `deployclaw SUB --help` lists.
fn cli_flags(sub: &str) -> BTreeSet<String> {
    let o = Command::new(BIN).args([sub, "--help"]).output().unwrap();
    assert!(o.status.success(), "{sub} --help: {}", out_text(&o));
    let re = regex::Regex::new(r"--[a-z][a-z-]*").unwrap();
    re.find_iter(&String::from_utf8_lossy(&o.stdout))
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// Every `deployclaw SUB --flag` in a shell line uses a flag SUB has.
fn check_cli_line(line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if *w != "deployclaw" || i + 1 >= words.len() {
            continue;
        }
        let flags = cli_flags(words[i + 1]);
        for f in words[i + 2..].iter().filter(|f| f.starts_with("--")) {
            assert!(
                flags.contains(*f),
                "`{line}`: deployclaw {} has no {f}",
                words[i + 1]
            );
        }
    }
}

#[test]
fn readme_ci_snippets_use_existing_inputs_outputs_scripts_flags_and_hooks() {
    let [github, gitlab, pre_commit]: [Value; 3] = readme_ci_snippets().try_into().unwrap();
    let action = yaml(&read("action.yml"));

    // GitHub Actions: the step that uses the action passes declared inputs only.
    let steps = github["jobs"]["gate"]["steps"].as_sequence().unwrap();
    let ours = steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.contains("deployclaw")))
        .expect("a step uses the action");
    let inputs = keys(&action["inputs"]);
    for k in keys(&ours["with"]) {
        assert!(inputs.contains(&k), "README passes undeclared input {k}");
    }
    let id = ours["id"].as_str().unwrap();
    let text = serde_yaml::to_string(&github).unwrap();
    let used = regex::Regex::new(&format!(r"steps\.{id}\.outputs\.([a-z-]+)")).unwrap();
    let outputs = keys(&action["outputs"]);
    assert!(used.is_match(&text));
    for c in used.captures_iter(&text) {
        assert!(
            outputs.contains(&c[1]),
            "README reads undeclared output {}",
            &c[1]
        );
    }

    // GitLab CI: the scripts exist, their variables and outputs are real, the flags exist.
    let job = &gitlab["migration-gate"];
    let lines: Vec<&str> = job["script"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let documented = read("scripts/action/gate.sh") + &read("scripts/action/finish.sh");
    let vars = regex::Regex::new(r"\bDC_[A-Z_]+").unwrap();
    let gate_keys = gate_outputs();
    let output_read = regex::Regex::new(r"\^([a-z-]+)=").unwrap();
    for line in &lines {
        script_refs(line);
        check_cli_line(line);
        for v in vars.find_iter(line) {
            assert!(
                documented.contains(v.as_str()),
                "{}: not read by the scripts",
                v.as_str()
            );
        }
        if let Some(c) = output_read.captures(line) {
            assert!(gate_keys.contains(&c[1]), "gate.sh writes no {}", &c[1]);
        }
    }
    assert!(lines.iter().any(|l| l.contains("scripts/action/gate.sh")));

    // pre-commit: the hook id exists, its args are lint flags.
    let hooks = &pre_commit["repos"][0]["hooks"];
    let hook = hook();
    let lint = cli_flags("lint");
    for h in hooks.as_sequence().unwrap() {
        assert_eq!(h["id"], hook["id"]);
        for a in h["args"].as_sequence().into_iter().flatten() {
            assert!(lint.contains(a.as_str().unwrap()), "lint has no {a:?}");
        }
    }
}
