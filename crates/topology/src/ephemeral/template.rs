//! The template cache: a never-started `initdb` output per server version and options, copied
//! into a new cluster's data directory instead of running `initdb` again.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::initdb::INITDB_ARGS;

/// The format of the cached template (what a template directory holds and how it is keyed).
/// Part of every template's key, and of the CI cache key (`scripts/action/install.sh
/// cache-key` reads it from this line): change it whenever a template made by an older
/// deployclaw must not be used.
pub const TEMPLATE_FORMAT: &str = "v2";

/// A cached, never-started data directory (see [`EphemeralOptions::template_cache`]).
#[derive(Debug, Clone)]
pub(super) struct Template {
    cache: PathBuf,
    path: PathBuf,
    /// Spare databases it holds.
    pub(super) spares: u32,
}

impl Template {
    /// The template for these binaries in `cache`, creating `cache` (mode 0700) if needed.
    /// `None` when the cache directory is not ours or the binaries cannot be identified.
    pub(super) fn locate(
        cache: &Path,
        bin_dir: &Path,
        run_as: Option<(u32, u32)>,
        spares: u32,
    ) -> Option<Template> {
        use sha2::{Digest, Sha256};
        use std::os::unix::fs::MetadataExt as _;
        if !cache.exists() {
            std::fs::create_dir_all(cache).ok()?;
            std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o700)).ok()?;
        }
        let meta = std::fs::symlink_metadata(cache).ok()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
            return None;
        }
        let postgres = std::fs::metadata(bin_dir.join("postgres")).ok()?;
        let mut h = Sha256::new();
        h.update(format!("deployclaw-pg-template-{TEMPLATE_FORMAT}\0"));
        h.update(bin_dir.as_os_str().as_encoded_bytes());
        h.update(format!(
            "\0{}\0{}\0{}\0{:?}\0{}\0spares={spares}",
            postgres.len(),
            postgres.mtime(),
            postgres.mtime_nsec(),
            run_as,
            INITDB_ARGS.join(" ")
        ));
        let key = hex::encode(&h.finalize()[..8]);
        Some(Template {
            cache: cache.to_path_buf(),
            path: cache.join(format!("pg-template-{key}")),
            spares,
        })
    }

    /// Whether the template exists, is complete and is private to this user.
    pub(super) fn usable(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(meta) = std::fs::symlink_metadata(&self.path) else {
            return false;
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        meta.is_dir()
            && meta.uid() == me
            && meta.mode() & 0o077 == 0
            && self.path.join("PG_VERSION").is_file()
            && self.path.join("global/pg_control").is_file()
    }

    /// Copy the template to `data_dir` (which must not exist), owned by `run_as` when given.
    pub(super) fn copy_into(
        &self,
        data_dir: &Path,
        run_as: Option<(u32, u32)>,
    ) -> std::io::Result<()> {
        if !self.usable() {
            return Err(std::io::Error::other("no usable template"));
        }
        copy_tree(&self.path, data_dir, run_as)
    }

    /// Keep a copy of the freshly initialised `data_dir` as the template (atomically: copied
    /// under a temporary name, then renamed; a template another process stored first wins).
    pub(super) fn store(&self, data_dir: &Path) -> std::io::Result<()> {
        if self.usable() {
            return Ok(());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = self
            .cache
            .join(format!(".tmp-template-{}-{nanos:x}", std::process::id()));
        let r = copy_tree(data_dir, &tmp, None).and_then(|()| {
            if self.path.exists() {
                // An unusable leftover (incomplete or foreign): replace it.
                std::fs::remove_dir_all(&self.path)?;
            }
            std::fs::rename(&tmp, &self.path)
        });
        if r.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        r
    }

    /// Remove the template (a cluster made from it did not start).
    pub(super) fn discard(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A cluster's data directory on a first run (no usable template): `initdb` into a staging
/// directory inside the cluster's directory `dir`, copied to `data_dir` for this cluster — and
/// the template made from the staging directory (its spare databases added with the
/// single-user backend, then stored) by a background thread, off the start's critical path.
/// Returns that thread; join it before `dir` is removed. Without `template`, plain `initdb`.
pub(super) fn init_data_dir(
    template: Option<&Template>,
    bin_dir: &Path,
    run_as: Option<(u32, u32)>,
    dir: &Path,
    data_dir: &Path,
) -> Result<Option<std::thread::JoinHandle<()>>, crate::TopologyError> {
    let _ = std::fs::remove_dir_all(data_dir);
    let Some(t) = template else {
        super::initdb::initdb(bin_dir, run_as, dir, data_dir)?;
        return Ok(None);
    };
    let stage = dir.join("template-stage");
    let _ = std::fs::remove_dir_all(&stage);
    super::initdb::initdb(bin_dir, run_as, dir, &stage)?;
    copy_tree(&stage, data_dir, run_as)
        .map_err(|e| crate::TopologyError::io(format!("copy {}", stage.display()), e))?;
    let (t, bin_dir, dir) = (t.clone(), bin_dir.to_path_buf(), dir.to_path_buf());
    let spawned = std::thread::Builder::new()
        .name("pg-template".into())
        .spawn(move || {
            // Best effort: without spares `create_database` falls back to CREATE DATABASE,
            // and a cache that cannot be written only costs the next run its initdb.
            let _ = super::initdb::add_spare_databases(&bin_dir, run_as, &dir, &stage, t.spares);
            let _ = t.store(&stage);
            let _ = std::fs::remove_dir_all(&stage);
        });
    Ok(spawned.ok())
}

/// Copy a directory tree of regular files (no symlinks, no special files), keeping modes, and
/// give every copy to `owner` when set.
pub(super) fn copy_tree(src: &Path, dst: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    if !meta.is_dir() {
        return Err(std::io::Error::other(format!(
            "{} is not a directory",
            src.display()
        )));
    }
    std::fs::create_dir(dst)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dst, Some(uid), Some(gid))?;
    }
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if ty.is_dir() {
            copy_tree(&entry.path(), &to, owner)?;
        } else if ty.is_file() {
            std::fs::copy(entry.path(), &to)?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(&to, Some(uid), Some(gid))?;
            }
        } else {
            return Err(std::io::Error::other(format!(
                "{} is not a regular file or directory",
                entry.path().display()
            )));
        }
    }
    Ok(())
}
