//! The monitor's code sits together at the front of the `operator` binary
//! (`assets/link/hot.ld`, written by `scripts/profile-layout.sh`): the kernel maps code in
//! 64 KiB windows or larger around each page run, so scattered, the monitor's thousand-odd
//! functions keep ~10 MiB resident; together, a few. Nothing else would notice if the list
//! stopped matching (a new toolchain's symbol names, much renamed code): this test does.

#![cfg(target_os = "linux")]

use std::collections::HashSet;
use std::process::Command;

const OPERATOR: &str = env!("CARGO_BIN_EXE_operator");
const LIST: &str = include_str!("../assets/link/hot.ld");

/// The binary's functions by address, from `nm` (binutils, which the C compiler brings).
fn functions() -> Vec<(u64, String)> {
    let out = Command::new("nm")
        .args(["--defined-only", OPERATOR])
        .output()
        .expect("nm runs (binutils)");
    assert!(out.status.success(), "nm failed on {OPERATOR}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            let (addr, kind, name) = (p.next()?, p.next()?, p.next()?);
            matches!(kind, "t" | "T").then(|| (u64::from_str_radix(addr, 16).ok(), name))
        })
        .filter_map(|(a, n)| Some((a?, n.to_string())))
        .collect()
}

/// The list's names, as patterns: `NAME` or `NAME*`.
fn listed() -> Vec<String> {
    LIST.lines()
        .filter_map(|l| l.trim().strip_prefix("*(.text."))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// A function's name as the list writes it: without the `.llvm.<n>` LLVM adds to a copy it
/// made local, which the list's wildcard stands for.
fn listed_as(name: &str) -> &str {
    name.split(".llvm.").next().unwrap_or(name)
}

#[test]
fn the_listed_functions_exist_and_lie_at_the_front() {
    let functions = functions();
    let listed = listed();
    assert!(listed.len() > 1000, "the list holds {} names", listed.len());
    let keys: HashSet<&str> = listed.iter().map(|p| p.trim_end_matches('*')).collect();
    let names: HashSet<&str> = functions.iter().map(|(_, n)| listed_as(n)).collect();
    let missing: Vec<&&str> = keys.iter().filter(|k| !names.contains(**k)).collect();
    assert!(
        missing.len() * 10 < keys.len(),
        "{} of {} listed functions are not in the binary (e.g. {:?}): run scripts/profile-layout.sh",
        missing.len(),
        keys.len(),
        &missing[..missing.len().min(3)]
    );

    // The listed functions lie together at the front: all but the odd one (a function some
    // other name stands for) within the first quarter of the code.
    let start = functions.iter().map(|(a, _)| *a).min().expect("functions");
    let end = functions.iter().map(|(a, _)| *a).max().expect("functions");
    let hot: Vec<u64> = functions
        .iter()
        .filter(|(_, n)| keys.contains(listed_as(n)))
        .map(|(a, _)| *a)
        .collect();
    let mut sorted = hot.clone();
    sorted.sort_unstable();
    let front = sorted[sorted.len() * 99 / 100] - start;
    assert!(
        front * 4 < end - start,
        "the listed functions spread over {front} of {} bytes of code: is the layout applied (build.rs)?",
        end - start
    );
    // And the monitor's own cycle is among them.
    assert!(
        functions
            .iter()
            .any(|(a, n)| n.contains("8operator7monitor7Monitor5cycle") && *a - start <= front),
        "no Monitor::cycle lies at the front"
    );
}
