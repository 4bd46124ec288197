//! Links below a folder that a recursive copy or archive takes along. A copy that keeps them
//! makes new doors to what they point at (`cp -r /usr/lib/ssl /tmp/s` makes `/tmp/s/private`,
//! which is `/etc/ssl/private`), and one that follows them reads what they point at. The path
//! rules judge the names a command writes, not what a later command finds through them, so
//! such a copy goes to a person.

use std::path::{Path, PathBuf};

/// How many entries are looked through before the policy gives up and asks a person: a
/// folder this large is no diagnosis, and judging must stay fast.
const BUDGET: usize = 2_000;

/// What a folder holds, for a recursive copy of it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Below {
    /// No link below it (or it is not a folder).
    Plain,
    /// The first link found.
    Link(PathBuf),
    /// More entries than the budget: not looked through.
    TooMany,
}

/// Walks `root` without following links and reports the first link below it.
pub(super) fn below(root: &Path) -> Below {
    let mut pending = vec![root.to_path_buf()];
    let mut seen = 0usize;
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > BUDGET {
                return Below::TooMany;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                return Below::Link(entry.path());
            }
            if kind.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Below::Plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_link_deep_below_and_none_in_a_plain_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), "x").unwrap();
        assert_eq!(below(dir.path()), Below::Plain);
        std::os::unix::fs::symlink("/etc", dir.path().join("a/b/l")).unwrap();
        assert_eq!(below(dir.path()), Below::Link(dir.path().join("a/b/l")));
        // A file, or nothing there, holds no link.
        assert_eq!(below(&dir.path().join("a/b/f")), Below::Plain);
        assert_eq!(below(&dir.path().join("none")), Below::Plain);
    }

    #[test]
    fn a_folder_over_the_budget_is_not_looked_through() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..=BUDGET {
            std::fs::write(dir.path().join(i.to_string()), "").unwrap();
        }
        assert_eq!(below(dir.path()), Below::TooMany);
    }
}
