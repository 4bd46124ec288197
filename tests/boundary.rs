//! The Subject boundary, checked in the source: outside `src/subjects/<name>/` (and the rate
//! limiter's own binary) no code names a subject's node, role or program, nor reaches into a
//! subject's module. Comments, test modules and the property tests' corpus are aside. What is
//! left, each with why, is listed in `LEFT`; anything else fails.

use std::path::{Path, PathBuf};

/// Exact string literals that are a subject's node, role or program.
const NAMES: &[&str] = &[
    "redis",
    "ratelimiter",
    "etcd",
    "redis-server",
    "redis-cli",
    "redis-benchmark",
    "etcdctl",
];
/// Node names with a number: `ratelimiter-2`, `etcd-3`.
const NUMBERED: &[&str] = &["ratelimiter-", "etcd-"];
/// Reaching into a subject's module, or its role constants.
const PATHS: &[&str] = &[
    "subjects::ratelimiter",
    "subjects::etcd",
    "ROLE_LIMITER",
    "ROLE_REDIS",
    "ROLE_MEMBER",
];

/// What remains, by file and a piece of the line: the config names each subject's section
/// (one line each), and the runtime sections still hold the rate limiter's program (moving
/// it changes a config key users have).
const LEFT: &[(&str, &str)] = &[
    (
        "src/config.rs",
        "pub use crate::subjects::etcd::config::EtcdConfig;",
    ),
    (
        "src/config.rs",
        "pub use crate::subjects::ratelimiter::config::{",
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// String literals on a line (no escapes inside a name, so a plain scan does).
fn literals(line: &str) -> Vec<&str> {
    line.split('"').skip(1).step_by(2).collect()
}

/// The line without its trailing comment: a `//` outside any string literal.
fn code_of(line: &str) -> &str {
    let mut quotes = 0;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' if i == 0 || bytes[i - 1] != b'\\' => quotes += 1,
            b'/' if quotes % 2 == 0 && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The file without its inline test module (`#[cfg(test)]` then `mod tests {`, to the end);
/// a `#[cfg(test)] mod tests;` pointing elsewhere cuts nothing.
fn without_tests(text: &str) -> &str {
    let mut at = 0;
    while let Some(i) = text[at..].find("#[cfg(test)]") {
        let start = at + i;
        let rest = text[start + "#[cfg(test)]".len()..].trim_start();
        if rest.starts_with("mod tests {") || rest.starts_with("mod tests{") {
            return &text[..start];
        }
        at = start + 1;
    }
    text
}

fn names_a_subject(line: &str) -> bool {
    let code = code_of(line);
    literals(code).iter().any(|l| {
        NAMES.contains(l)
            || NUMBERED.iter().any(|p| {
                l.strip_prefix(p)
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            })
    }) || PATHS.iter().any(|p| code.contains(p))
}

#[test]
fn no_code_outside_a_subject_folder_names_its_nodes_roles_or_programs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for f in files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if rel.starts_with("src/subjects/")
            && rel != "src/subjects/mod.rs"
            && rel != "src/subjects/launch.rs"
        {
            continue; // a subject's own folder (the registry's files are checked)
        }
        if rel == "src/bin/ratelimiter.rs"
            || rel == "src/properties.rs"
            || name == "tests.rs"
            || name == "fixtures.rs"
            || name.ends_with("_tests.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = without_tests(&text);
        for (i, line) in code.lines().enumerate() {
            let t = line.trim();
            if t.starts_with("//") || !names_a_subject(t) {
                continue;
            }
            if LEFT
                .iter()
                .any(|(file, piece)| *file == rel && t.contains(piece))
            {
                continue;
            }
            found.push(format!("{rel}:{}: {t}", i + 1));
        }
    }
    assert!(
        found.is_empty(),
        "subject names outside the subject folders:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    assert!(names_a_subject(r#"if role == "redis" {"#));
    assert!(names_a_subject(r#"let n = "etcd-3";"#));
    assert!(names_a_subject("use crate::subjects::etcd::gateway;"));
    assert!(!names_a_subject(
        r#"say!("start Redis and the ratelimiter nodes")"#
    ));
    assert!(!names_a_subject(r#"let x = "etcd-"; // "redis""#));
    assert!(names_a_subject(r#"get("http://x"); let r = "redis";"#));
    let text =
        "fn a() {}\n#[cfg(test)]\nmod tests;\nfn b() { \"redis\" }\n#[cfg(test)]\nmod tests {\n}\n";
    let kept = without_tests(text);
    assert!(
        kept.contains("fn b()") && !kept.contains("mod tests {"),
        "{kept}"
    );
}
