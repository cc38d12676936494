//! Atlas's integrity check of a migrations directory, recomputed: `atlas.sum` holds, for every
//! file in order, the base64 SHA-256 of a running hash over each file's name and bytes up to
//! and including it, and on its first line the SHA-256 over every (name, file sum) pair. A file
//! edited after `atlas migrate hash` changes its own sum and every later one; Atlas refuses such
//! a directory, and so do we (checked against a real `atlas.sum` of a public project).

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{LayoutProblem, atlas_sum};

/// Check the sums of `atlas.sum` (`text`) against the files, read by name with `read`. The
/// first file whose sum differs is named at its line (a missing file is the caller's error).
pub fn atlas_check_sums(
    text: &str,
    read: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<(), LayoutProblem> {
    let files = atlas_sum(text)?;
    let listed: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .skip(1)
        .filter_map(|(i, l)| l.trim_end().rsplit_once(' ').map(|(_, s)| (i + 1, s)))
        .collect();
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    let mut running = Sha256::new();
    let mut dir = Sha256::new();
    for (name, (line, recorded)) in files.iter().zip(&listed) {
        let Some(bytes) = read(name) else {
            continue;
        };
        running.update(name.as_bytes());
        running.update(&bytes);
        let sum = format!("h1:{}", b64(&running.clone().finalize()));
        if sum != *recorded {
            return Err(LayoutProblem::at(
                *line,
                name.len() + 2,
                format!(
                    "{name} does not match its sum in atlas.sum: it changed after `atlas migrate hash` \
                     (Atlas refuses this directory too; run `atlas migrate hash` if the change is intended)"
                ),
            ));
        }
        dir.update(name.as_bytes());
        dir.update(&sum.as_bytes()[3..]);
    }
    let total = format!("h1:{}", b64(&dir.finalize()));
    if text.lines().next().map(str::trim_end) != Some(total.as_str()) {
        return Err(LayoutProblem::at(
            1,
            1,
            "the directory sum on the first line of atlas.sum does not match its file sums \
             (run `atlas migrate hash`)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two files hashed the way Atlas does; an edit of the first breaks its line.
    #[test]
    fn sums_are_recomputed() {
        let files = [
            ("1_a.sql", "CREATE TABLE a (id int);\n"),
            ("2_b.sql", "CREATE TABLE b (id int);\n"),
        ];
        let mut running = Sha256::new();
        let mut dir = Sha256::new();
        let mut lines = Vec::new();
        for (n, b) in files {
            running.update(n.as_bytes());
            running.update(b.as_bytes());
            let s = base64::engine::general_purpose::STANDARD.encode(running.clone().finalize());
            dir.update(n.as_bytes());
            dir.update(s.as_bytes());
            lines.push(format!("{n} h1:{s}"));
        }
        let text = format!(
            "h1:{}\n{}\n",
            base64::engine::general_purpose::STANDARD.encode(dir.finalize()),
            lines.join("\n")
        );
        let read = |edit: bool| {
            move |n: &str| {
                let b = files
                    .iter()
                    .find(|(f, _)| *f == n)
                    .map(|(_, b)| b.to_string())?;
                Some(
                    if edit && n == "1_a.sql" {
                        b.replace('a', "z")
                    } else {
                        b
                    }
                    .into_bytes(),
                )
            }
        };
        assert_eq!(atlas_check_sums(&text, read(false)), Ok(()));
        let e = atlas_check_sums(&text, read(true)).unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
        assert!(e.message.contains("1_a.sql does not match"), "{e:?}");
        let first = text.lines().next().unwrap();
        let other_total = text.replacen(first, &format!("h1:{}=", "A".repeat(43)), 1);
        assert_eq!(
            atlas_check_sums(&other_total, read(false))
                .unwrap_err()
                .line,
            1
        );
    }
}
