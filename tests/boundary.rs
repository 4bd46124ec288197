//! The floors, checked in the source. Outside `src/subjects/<name>/` (and the rate limiter's own
//! binary) no code names a subject's node, role, program or config type, nor reaches into a
//! subject's module; only the top floors read the subject registry; `config.rs`, on the
//! ground floor, imports nothing above it; and the store imports none of its callers. Comments, test modules and the property tests'
//! corpus are aside. What is left, each with why, is listed in `LEFT`; anything else fails.

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
    "tikv",
    "pd-server",
    "tikv-server",
    "pd-ctl",
    "tikv-ctl",
];
/// Node names with a number: `ratelimiter-2`, `etcd-3`.
const NUMBERED: &[&str] = &["ratelimiter-", "etcd-", "tikv-", "pd-"];
/// Reaching into a subject's module, its role constants or its config types.
const PATHS: &[&str] = &[
    "subjects::ratelimiter",
    "subjects::etcd",
    "subjects::tikv",
    "ROLE_PD",
    "ROLE_STORE",
    "TikvConfig",
    "ROLE_LIMITER",
    "ROLE_REDIS",
    "ROLE_MEMBER",
    "RateLimiterConfig",
    "EtcdConfig",
];

/// What remains, by file and a piece of the line: nothing today.
const LEFT: &[(&str, &str)] = &[];

/// The top floors, which alone look a subject up in the registry and hand it down: the CLI
/// (the monitor's entry among it), the app, the harness, and the test support the property
/// tests and benchmarks share.
const TOP: &[&str] = &[
    "src/main.rs",
    "src/cli/",
    "src/tui/",
    "src/eval/harness.rs",
    "src/eval/campaign.rs",
    "src/eval/trial.rs",
    "src/eval/slot.rs",
    "src/properties.rs",
    "src/subjects/registry.rs",
];

/// The ground floor: what `config.rs` may import.
const GROUND: &[&str] = &["clock", "paths", "invariant", "config"];

/// What the store may import: the ground floor, the tickets' state machine it applies in its
/// transactions, and itself. Its rows are its own types, so the agent, chaos and the harness
/// stand above it.
const BELOW_THE_STORE: &[&str] = &["clock", "paths", "invariant", "config", "tickets", "store"];

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

/// Each `src/` file, its path from the root, and its code without comments or inline tests.
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files
        .into_iter()
        .filter(|f| {
            let name = f.file_name().unwrap().to_string_lossy();
            name != "tests.rs" && name != "fixtures.rs" && !name.ends_with("_tests.rs")
        })
        .map(|f| {
            let rel = f
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&f).unwrap();
            let code: Vec<&str> = without_tests(&text)
                .lines()
                .map(code_of)
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            (rel, code.join("\n"))
        })
        .collect()
}

/// Whether `code` reads the subject registry: names its module, or its static as a word.
fn reads_the_registry(code: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    code.contains("subjects::registry")
        || code.lines().any(|l| {
            l.contains("subjects::{") && l.contains("registry")
                || l.match_indices("REGISTRY").any(|(i, m)| {
                    !word(l[..i].chars().next_back()) && !word(l[i + m.len()..].chars().next())
                })
        })
}

#[test]
fn only_the_top_floors_read_the_subject_registry() {
    let found: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, code)| !TOP.iter().any(|t| rel.starts_with(t)) && reads_the_registry(code))
        .map(|(rel, _)| rel)
        .collect();
    assert!(
        found.is_empty(),
        "below the top floors, these read the subject registry (hand the subject down \
         instead):\n{}",
        found.join("\n")
    );
}

/// The modules `code` names as `crate::X`.
fn crate_modules(code: &str) -> Vec<&str> {
    code.match_indices("crate::")
        .map(|(i, _)| {
            let rest = &code[i + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn the_config_imports_nothing_above_the_ground_floor() {
    let (_, code) = sources()
        .into_iter()
        .find(|(rel, _)| rel == "src/config.rs")
        .expect("src/config.rs");
    let above: Vec<&str> = crate_modules(&code)
        .into_iter()
        .filter(|m| !GROUND.contains(m))
        .collect();
    assert!(
        above.is_empty(),
        "config.rs imports from above the ground floor: {above:?}"
    );
    assert!(
        !code.contains("super::"),
        "config.rs reaches up with super::"
    );
}

#[test]
fn the_store_imports_none_of_its_callers() {
    let above: Vec<String> = sources()
        .into_iter()
        .filter(|(rel, _)| rel.starts_with("src/store/"))
        .flat_map(|(rel, code)| {
            crate_modules(&code)
                .into_iter()
                .filter(|m| !BELOW_THE_STORE.contains(m))
                .map(|m| format!("{rel}: crate::{m}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        above.is_empty(),
        "the store imports from its callers (give it a row type of its own):\n{}",
        above.join("\n")
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    assert!(reads_the_registry(
        "let k = crate::subjects::registry::kind(s);"
    ));
    assert!(reads_the_registry("for k in REGISTRY {"));
    assert!(reads_the_registry(
        "use crate::subjects::{Subject, registry};"
    ));
    assert!(!reads_the_registry("let k = subject.kind();"));
    assert!(!reads_the_registry(
        "c.unknown_all(REGISTRY_MISMATCH, why);"
    ));
    assert_eq!(
        crate_modules("use crate::clock::now; x: crate::policy::Mode"),
        ["clock", "policy"]
    );
    assert!(names_a_subject(
        "let c: RateLimiterConfig = config.section()?;"
    ));
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
