//! Test support for the AWS RDS source: a real moto server on a loopback port, an isolated AWS
//! environment (named profiles in temp config files, instance metadata disabled), and helpers to
//! create RDS resources in moto with the SDK itself.
//!
//! moto is found via `MOTO_SERVER_BIN`, then `.venv/bin/moto_server` or `.venv-moto/bin/moto_server`
//! in the repository (or any parent directory of the crate), then `PATH`. When it is missing the
//! tests fail with the install command.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_rds::config::Credentials;
use aws_sdk_rds::types::Tag;

/// Secret access key of profile `moto` (and of [`rds_client`]). Must never be printed.
pub const MOTO_SECRET: &str = "motoSecretKeyMUSTNEVERBEPRINTED0000000001";
/// Access key id of profile `moto`.
pub const MOTO_KEY_ID: &str = "AKIDMOTOPROFILE00001";
/// Secret access key of profile `prod`. Must never be printed.
pub const PROD_SECRET: &str = "prodSecretKeyMUSTNEVERBEPRINTED000000002";
/// Access key id of profile `prod`.
pub const PROD_KEY_ID: &str = "AKIDPRODPROFILE00002";
/// Region of profile `prod`.
pub const PROD_REGION: &str = "eu-west-1";
/// Every secret the tests configure.
pub const ALL_SECRETS: &[&str] = &[MOTO_SECRET, PROD_SECRET, NOREGION_SECRET];
const NOREGION_SECRET: &str = "noregionSecretKeyMUSTNEVERBEPRINTED00003";

const INSTALL_HINT: &str = "moto server not found: install it with \
    `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'` at the repository root \
    (or set MOTO_SERVER_BIN to the moto_server executable)";

static ENV: Once = Once::new();

/// Isolate this test process from the machine's AWS setup, once, before any AWS call:
/// `AWS_EC2_METADATA_DISABLED=true` (never probe 169.254.169.254), no AWS_* credentials, region
/// or profile from the environment, and `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`
/// pointing at temp files with the named profiles `moto` (us-east-1), `prod` (eu-west-1),
/// `noregion` (keys, no region) and `nocreds` (region, no keys). Every test calls this first;
/// `Once` blocks the other test threads until the environment is set.
pub fn init_aws_env() {
    ENV.call_once(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        remove_stale_profile_dirs(&tmp);
        let dir = tmp.join(format!("aws-profiles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create profile dir");
        let config = dir.join("config");
        let credentials = dir.join("credentials");
        std::fs::write(
            &config,
            format!(
                "[profile moto]\nregion = us-east-1\n\n[profile prod]\nregion = {PROD_REGION}\n\n\
                 [profile noregion]\n\n[profile nocreds]\nregion = us-east-1\n"
            ),
        )
        .expect("write config");
        std::fs::write(
            &credentials,
            format!(
                "[moto]\naws_access_key_id = {MOTO_KEY_ID}\naws_secret_access_key = {MOTO_SECRET}\n\n\
                 [prod]\naws_access_key_id = {PROD_KEY_ID}\naws_secret_access_key = {PROD_SECRET}\n\n\
                 [noregion]\naws_access_key_id = AKIDNOREGION00003\naws_secret_access_key = {NOREGION_SECRET}\n"
            ),
        )
        .expect("write credentials");
        let remove = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_RDS",
            "AWS_ENDPOINT_URL_STS",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_SDK_LOAD_CONFIG",
        ];
        // SAFETY: runs once, inside `Once::call_once`, as the first thing every test in this
        // binary does; other test threads are blocked on the `Once` until it returns, so no
        // thread reads the environment concurrently.
        unsafe {
            for var in remove {
                std::env::remove_var(var);
            }
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
            std::env::set_var("AWS_CONFIG_FILE", &config);
            std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &credentials);
        }
    });
}

/// Remove `aws-profiles-<pid>` dirs of test processes that are gone.
fn remove_stale_profile_dirs(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("aws-profiles-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where the moto server executable is, or `None`.
pub fn find_moto_server() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("MOTO_SERVER_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            eprintln!("MOTO_SERVER_BIN={} is not a file", bin.display());
        }
        return bin.is_file().then_some(bin);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors() {
        for venv in [".venv", ".venv-moto"] {
            let candidate = dir.join(venv).join("bin").join("moto_server");
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
    })
}

/// A moto server process on a loopback port; killed on drop.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// Start a fresh moto server and wait until it answers. Panics (failing the test) with the
    /// install command when moto is missing.
    pub fn start() -> Moto {
        init_aws_env();
        let bin = find_moto_server().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("moto-{}-{port}.log", std::process::id()));
            let log_file = std::fs::File::create(&log).expect("moto log file");
            let mut cmd = Command::new(&bin);
            // SAFETY: prctl is async-signal-safe; it only makes the kernel kill moto when the
            // thread that started it (this test's thread, which owns the `Moto`) dies, so a
            // killed test run leaves no server behind.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("dup log"))
                .stderr(log_file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL_HINT}", bin.display()));
            let mut moto = Moto { child, port, log };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(_status)) = moto.child.try_wait() {
                    last_log = std::fs::read_to_string(&moto.log).unwrap_or_default();
                    break; // exited (port race?): retry on another port
                }
                if moto.try_reset().is_ok() {
                    return moto;
                }
                if Instant::now() > deadline {
                    last_log = std::fs::read_to_string(&moto.log).unwrap_or_default();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("moto server did not start; its output:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Wipe all state (`POST /moto-api/reset`).
    pub fn reset(&self) {
        self.try_reset().expect("moto reset");
    }

    fn try_reset(&self) -> std::io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        if response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "unexpected reset answer: {}",
                response.lines().next().unwrap_or("")
            )))
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// An SDK client for `region` on `moto`, with the `moto` profile's static keys (no credential
/// chain, no metadata service): used by tests to create resources.
pub async fn rds_client(moto: &Moto, region: &str) -> aws_sdk_rds::Client {
    init_aws_env();
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto.url())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            MOTO_KEY_ID,
            MOTO_SECRET,
            None,
            None,
            "test",
        ))
        .load()
        .await;
    aws_sdk_rds::Client::new(&conf)
}

fn tags(tags: &[(&str, &str)]) -> Option<Vec<Tag>> {
    Some(
        tags.iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
            .collect(),
    )
}

/// Create a standalone DB instance.
pub async fn create_instance(
    client: &aws_sdk_rds::Client,
    id: &str,
    engine: &str,
    db_name: Option<&str>,
    tag_list: &[(&str, &str)],
) {
    client
        .create_db_instance()
        .db_instance_identifier(id)
        .engine(engine)
        .engine_version(if engine == "mysql" { "8.0.35" } else { "15.4" })
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("master_user")
        .master_user_password("MasterPassw0rdNeverPrinted")
        .set_db_name(db_name.map(str::to_string))
        .set_tags(tags(tag_list))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create_db_instance {id}: {}",
                aws_sdk_rds::error::DisplayErrorContext(&e)
            )
        });
}

/// Create an Aurora PostgreSQL cluster with one member (writer) instance `<id>-1`.
pub async fn create_aurora(
    client: &aws_sdk_rds::Client,
    id: &str,
    db_name: Option<&str>,
    tag_list: &[(&str, &str)],
) {
    client
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .engine_version("15.4")
        .master_username("cluster_admin")
        .master_user_password("ClusterPassw0rdNeverPrinted")
        .set_database_name(db_name.map(str::to_string))
        .set_tags(tags(tag_list))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create_db_cluster {id}: {}",
                aws_sdk_rds::error::DisplayErrorContext(&e)
            )
        });
    client
        .create_db_instance()
        .db_instance_identifier(format!("{id}-1"))
        .db_cluster_identifier(id)
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create cluster member {id}-1: {}",
                aws_sdk_rds::error::DisplayErrorContext(&e)
            )
        });
}
