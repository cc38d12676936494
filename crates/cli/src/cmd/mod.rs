//! One module per subcommand family.
pub mod aws;
pub mod changed;
pub mod help;
pub mod lint;
pub(crate) mod migration_dir;
pub mod report;
pub mod rollback;
pub mod rollback_prove;
pub mod sign;
pub mod topology;
pub mod validate;

use std::path::Path;

/// Check a `--sql-file` (or other input file) argument before anything else runs: a missing
/// file or a directory is an input error, printed here. Returns the exit code on error.
pub(crate) fn check_input_file(path: &Path) -> Result<(), i32> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            eprintln!("deployclaw: {shown}: is a directory (give a file)");
            Err(crate::exit::INPUT)
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("deployclaw: {shown}: no such file");
            Err(crate::exit::INPUT)
        }
        Err(e) => {
            eprintln!("deployclaw: {shown}: cannot read: {e}");
            Err(crate::exit::INPUT)
        }
    }
}

/// Parse a connection-string flag (`--shadow`, `--target-db` of `rollback generate`): a URL or
/// libpq key=value pairs, with the password resolved the libpq way when none is given
/// (`PGPASSWORD`, else the password file; for `--shadow` the file only). An unparsable value is an input error, printed here
/// without the value's secrets. Returns the exit code on error.
pub(crate) fn connection_flag(flag: &str, value: &str) -> Result<::topology::ConnectionSpec, i32> {
    match ::topology::ConnectionSpec::parse(value) {
        // `--shadow` is another server than the target: it never gets `PGPASSWORD` (the
        // target's password), only what its URL or the password file holds.
        Ok(mut spec) if flag == "--shadow" => {
            spec.resolve_password_from_file();
            Ok(spec)
        }
        Ok(spec) => Ok(spec.with_resolved_password()),
        Err(e) => {
            eprintln!("deployclaw: {flag}: {e}");
            Err(crate::exit::INPUT)
        }
    }
}
