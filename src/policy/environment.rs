//! Every way a command can read the environment (besides `env`, `printenv`, `set`,
//! `export`, `$VAR` and `/proc/*/environ`, which the walk and the path checks catch): the
//! programs that print it when asked a certain way, and the recursive reads of a process's
//! folder in /proc.

use super::rules::{INTERPRETERS, has, has_short, lits};
use super::walk::Arg;

/// Programs that print the environment when asked a certain way (besides `env`,
/// `printenv`, `set`, `export`: see `program`).
pub(super) fn reads_environment(prog: &str, args: &[Arg]) -> Option<String> {
    let l = lits(args);
    let word = |text: &str, w: &str| {
        text.match_indices(w).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + w.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    };
    let hit = match prog {
        // `env`, `$ENV`, `$__loc__` aside: jq's builtins that read the environment.
        // `$ ENV` is `$ENV` to both: spaces are read away first.
        // A comment (`#` to the end of the line) is read away too: `$#x⏎ENV` is `$ENV`. The
        // text is judged with and without them, as a `#` may sit inside a string.
        "jq" | "gojq" | "jaq" => l.iter().any(|a| {
            let uncommented: String = a
                .lines()
                .map(|line| line.split('#').next().unwrap_or_default())
                .collect();
            [a.to_string(), uncommented].iter().any(|t| {
                let t: String = t.chars().filter(|c| !c.is_whitespace()).collect();
                word(&t, "env") || t.contains("$ENV")
            })
        }),
        "yq" => l.iter().any(|a| {
            let a: String = a.chars().filter(|c| !c.is_whitespace()).collect();
            a.contains("env(")
                || a.contains("strenv(")
                || a.contains("envsubst")
                || a.contains("$ENV")
        }),
        // BSD-style `e` (`ps e`, `ps auxe`, `ps eww`) adds each process's environment.
        // procps retries a dashed word that fails its standard parse as BSD letters
        // (`-ewwx`, `-auxe`): a dashed `e` beside a BSD-only letter is BSD's `e` too.
        "ps" => l.iter().any(|a| {
            let bare = a.trim_start_matches('-');
            !a.starts_with("--")
                && bare.chars().all(|c| c.is_ascii_alphanumeric())
                && bare.contains('e')
                && (!a.starts_with('-') || bare.contains(['x', 'w', 'u', 'S', 'r', 'j', 'v']))
        }),
        "tmux" => l
            .iter()
            .any(|a| matches!(*a, "show-environment" | "showenv")),
        "systemctl" => {
            let show = l.contains(&"show");
            let props: Vec<&str> = l
                .windows(2)
                .filter(|w| matches!(w[0], "-p" | "--property"))
                .map(|w| w[1])
                .chain(l.iter().filter_map(|a| a.strip_prefix("--property=")))
                .collect();
            l.contains(&"show-environment")
                || (show && (props.is_empty() || props.iter().any(|p| p.contains("Environment"))))
        }
        "launchctl" => l.contains(&"getenv") || l.contains(&"export"),
        p if INTERPRETERS
            .iter()
            .any(|i| p == *i || p.starts_with(&format!("{i}."))) =>
        {
            l.iter().any(|a| {
                a.contains("environ")
                    || a.contains("getenv")
                    || a.contains("ENV[")
                    || a.contains("%ENV")
                    || word(a, "ENV")
                    || a.contains("process.env")
                    || a.contains("$_ENV")
                    || a.contains("$_SERVER")
                    || a.contains("Getenv")
            })
        }
        _ => false,
    };
    hit.then(|| format!("{prog} {} reads the environment", l.join(" ")))
}

/// Where a bracket expression holding a class (`[:alpha:]`, `[=a=]`, `[.a.]`) ends: the index
/// of its closing `]` in `tail` (what follows the opening `[`).
fn class_end(tail: &[char]) -> Option<usize> {
    let mut i = 0;
    let mut class = false;
    while i < tail.len() {
        match (tail[i], tail.get(i + 1)) {
            ('[', Some(&k @ (':' | '=' | '.'))) => {
                let end = (i + 2..tail.len().saturating_sub(1))
                    .find(|&j| tail[j] == k && tail[j + 1] == ']')?;
                class = true;
                i = end + 2;
            }
            (']', _) if i > 0 => return class.then_some(i),
            _ => i += 1,
        }
    }
    None
}

/// Whether a shell glob (`*`, `?`, `[…]`) matches `name`: `envir?n` and `e*` name `environ`.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    /// Whether `p[pi..]` matches `n[ni..]`; each pair decided once (`seen`), so a pattern of
    /// many `*` costs p×n steps, not exponentially many (fuzzing found the hang).
    fn go(p: &[char], n: &[char], pi: usize, ni: usize, seen: &mut [Option<bool>]) -> bool {
        let key = pi * (n.len() + 1) + ni;
        if let Some(known) = seen[key] {
            return known;
        }
        let (rest, name) = (&p[pi..], &n[ni..]);
        let hit = match rest.split_first() {
            None => name.is_empty(),
            Some(('*', _)) => (ni..=n.len()).any(|i| go(p, n, pi + 1, i, seen)),
            Some(('?', _)) => !name.is_empty() && go(p, n, pi + 1, ni + 1, seen),
            // A class (`[[:alpha:]]`, `[[=a=]]`, `[[.a.]]`) may match any one character: the
            // policy does not know the locale's classes, and "could match" is the safe side.
            Some(('[', tail)) if class_end(tail).is_some() => {
                let close = class_end(tail).unwrap_or(0);
                !name.is_empty() && go(p, n, pi + close + 2, ni + 1, seen)
            }
            Some(('[', tail)) => match tail.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) {
                None => name.first() == Some(&'[') && go(p, n, pi + 1, ni + 1, seen),
                Some(close) => {
                    let set = &tail[..close];
                    let (negate, set) = match set.first() {
                        Some('!' | '^') => (true, &set[1..]),
                        _ => (false, set),
                    };
                    match name.first() {
                        None => false,
                        Some(c) => {
                            let mut inside = false;
                            let mut i = 0;
                            while i < set.len() {
                                if i + 2 < set.len() && set[i + 1] == '-' {
                                    inside |= set[i] <= *c && *c <= set[i + 2];
                                    i += 3;
                                } else {
                                    inside |= set[i] == *c;
                                    i += 1;
                                }
                            }
                            inside != negate && go(p, n, pi + close + 2, ni + 1, seen)
                        }
                    }
                }
            },
            Some(('\\', tail)) if !tail.is_empty() => {
                name.first() == Some(&tail[0]) && go(p, n, pi + 2, ni + 1, seen)
            }
            Some((c, _)) => name.first() == Some(c) && go(p, n, pi + 1, ni + 1, seen),
        };
        seen[key] = Some(hit);
        hit
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let mut seen = vec![None; (p.len() + 1) * (n.len() + 1)];
    go(&p, &n, 0, 0, &mut seen)
}

/// `/proc` or one process's folder in it (`/proc/self`, `/proc/1`, `/proc/*`,
/// `/proc/self/task/2`): read recursively, its `environ` goes with it.
pub(super) fn process_dir(p: &str) -> bool {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    matches!(
        parts.as_slice(),
        ["proc"] | ["proc", _] | ["proc", _, "task"] | ["proc", _, "task", _]
    )
}

/// Programs that read a folder's files recursively, always or with `-r`/`-R`/`-a`.
pub(super) fn reads_recursively(prog: &str, args: &[Arg]) -> bool {
    match prog {
        "rg" | "tar" | "zip" | "rsync" | "ag" | "ack" => true,
        "grep" | "egrep" | "fgrep" | "zgrep" | "cp" | "diff" | "gzip" | "gunzip" | "zcat"
        | "xz" | "bzip2" => {
            let l: Vec<&str> = args.iter().filter_map(Arg::lit).collect();
            has_short(args, 'r')
                || has_short(args, 'R')
                || has_short(args, 'a')
                || has(
                    args,
                    &["--recursive", "--dereference-recursive", "--archive"],
                )
                // grep's `-d recurse`, `-drecurse`, `--directories=recurse`.
                || l.iter().any(|a| a.ends_with("recurse"))
        }
        _ => false,
    }
}
