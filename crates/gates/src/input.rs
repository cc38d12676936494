//! Reading the files a user hands deployclaw (migrations, rollback scripts, configuration,
//! reports) with a size cap, so that `deployclaw lint /dev/zero`, a 10 GB log passed by mistake
//! or an endless pipe ends with a clear error instead of exhausting memory. Migrations are read
//! whole and parsed in memory (a few dozen bytes of token per byte of SQL), so the cap is well
//! above any real migration and well below what a CI runner can hold. [`crate::lint`] reads
//! every file through it; the CLI and the pipeline too (`deployclaw::input` re-exports it).

use std::io::Read as _;
use std::path::Path;

/// The largest input deployclaw reads: 32 MiB.
pub const MAX_INPUT_BYTES: u64 = 32 * 1024 * 1024;

fn too_large() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!(
            "larger than {} MiB, the most deployclaw reads (a migration that size is data, not schema: split it)",
            MAX_INPUT_BYTES / (1024 * 1024)
        ),
    )
}

/// Read all of `reader`, failing with [`std::io::ErrorKind::FileTooLarge`] past
/// [`MAX_INPUT_BYTES`] (only that much plus one byte is ever read).
pub fn read_capped_from(reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take(MAX_INPUT_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    Ok(buf)
}

/// Read the file at `path` (a regular file, a pipe or a device) with the size cap. A regular
/// file over the cap is refused before any of it is read.
pub fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "is a directory",
        ));
    }
    if meta.is_file() && meta.len() > MAX_INPUT_BYTES {
        return Err(too_large());
    }
    read_capped_from(file)
}

/// [`read_capped`] as UTF-8 text; text that is not UTF-8 is an
/// [`std::io::ErrorKind::InvalidData`] error naming the line and column of the first bad byte.
pub fn read_capped_to_string(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_capped(path)?).map_err(|e| {
        let (line, column) =
            migration_parser::byte_location(e.as_bytes(), e.utf8_error().valid_up_to());
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not valid UTF-8 at line {line}, column {column}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_endless_readers_and_big_files() {
        let e = read_capped_from(std::io::repeat(0)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("32 MiB"), "{e}");
        let e = read_capped(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.sql");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_INPUT_BYTES + 1).unwrap();
        assert_eq!(
            read_capped(&big).unwrap_err().kind(),
            std::io::ErrorKind::FileTooLarge
        );
        let ok = dir.path().join("ok.sql");
        std::fs::write(&ok, "SELECT 1;").unwrap();
        assert_eq!(read_capped(&ok).unwrap(), b"SELECT 1;");
        let latin1 = dir.path().join("latin1.toml");
        std::fs::write(&latin1, b"# ok\n# caf\xe9\n").unwrap();
        let e = read_capped_to_string(&latin1).unwrap_err();
        assert_eq!(e.to_string(), "not valid UTF-8 at line 2, column 6");
        assert_eq!(
            read_capped(dir.path()).unwrap_err().kind(),
            std::io::ErrorKind::IsADirectory
        );
    }
}
