//! One policy for every command the agent wants to run.
//!
//! A command is parsed as the shell would (pipes, `&&`, `;`, `$(…)`, backticks, `sh -c`,
//! `bash -c`, `eval`, `xargs`, `env`, …) and each program it runs is classified
//! `read_only`, `mutating`, `destructive` or `denied`; the command's class is the worst of
//! them. What the policy cannot see through (a variable, a script read from stdin) is denied
//! or left to a person, never assumed harmless.

mod awk;
mod endpoints;
pub use endpoints::{Target, url_target};
mod environment;
pub use environment::glob_matches;
mod http;
mod links;
mod options;
mod reach;
mod readers;
mod rules;
mod sed;
mod subject;
pub use subject::{Arg, ProgramVerdict, Route, Split, SubjectWords, known};
mod verbs;
pub use verbs::{VERBS, Verb, verb_of};
mod walk;

pub use endpoints::Endpoints;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How dangerous a command is, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    ReadOnly,
    Mutating,
    Destructive,
    Denied,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read_only",
            Self::Mutating => "mutating",
            Self::Destructive => "destructive",
            Self::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::ReadOnly,
            Self::Mutating,
            Self::Destructive,
            Self::Denied,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy's judgement of one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub class: Class,
    /// Why, for the parts that made the class (worst first).
    pub reasons: Vec<String>,
    /// Every program invocation found, as words (unknown values shown as `?`).
    pub invocations: Vec<Vec<String>>,
    /// Every invocation matches an allow rule: no person needs to be asked.
    pub allowed: bool,
}

impl Verdict {
    pub fn reason(&self) -> String {
        if self.reasons.is_empty() {
            self.class.as_str().to_string()
        } else {
            self.reasons.join("; ")
        }
    }
}

pub use crate::config::Mode;

/// What happens to a command under a mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Run,
    /// A person must approve, for this reason.
    Ask(String),
    Refuse(String),
}

pub fn gate(mode: Mode, v: &Verdict) -> Gate {
    let why = v.reason();
    match (v.class, mode) {
        (Class::Denied, _) => Gate::Refuse(format!("denied by policy: {why}")),
        (Class::ReadOnly, _) => Gate::Run,
        (c, Mode::Observe) => {
            let would = match (c, v.allowed) {
                (Class::Mutating, _) | (_, true) => "would have run it",
                _ => "would have asked a person first",
            };
            Gate::Refuse(format!(
                "not run: observe mode runs only read-only commands, and this one is {c} ({why}); in auto mode the agent {would}"
            ))
        }
        (_, _) if v.allowed => Gate::Run,
        (Class::Mutating, Mode::Auto) => Gate::Run,
        (c, _) => Gate::Ask(format!("{c}: {why}")),
    }
}

/// The folder inside the instance's where commands may write (the sandbox binds it
/// writable; everything else of the state is read-only or absent there).
pub const SCRATCH: &str = "scratch";

/// Where the operator keeps what the agent must never touch except through `operator`.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    /// The state dir (instance records, node data, logs).
    pub state_dir: PathBuf,
    /// The ticket DB.
    pub db: PathBuf,
    /// The working directory commands run in, to resolve relative paths.
    pub cwd: PathBuf,
    /// The operator's configuration folder (its allow list, its model settings): read or
    /// written only by a person.
    pub config_dir: PathBuf,
    /// The home folder of the user running the operator (its dot-files and credentials are
    /// guarded); the commands themselves get their folder as HOME.
    pub home: PathBuf,
    /// The config file the operator was started with (`--config`, `OPERATOR_CONFIG`),
    /// wherever it lies: guarded as the configuration folder is.
    pub config_file: Option<PathBuf>,
}

impl Protected {
    /// The configuration folder and home of the user running the operator.
    pub fn user_dirs() -> (PathBuf, PathBuf) {
        let home = dirs::home_dir().unwrap_or_default();
        let config = dirs::config_dir()
            .unwrap_or_else(|| home.join(".config"))
            .join("operator");
        (config, home)
    }
}

/// Allow and deny rules, what to protect, and the subjects whose words it knows.
#[derive(Clone, Default)]
pub struct Policy {
    /// Command prefixes (as words) that run without asking a person.
    allow: Vec<Vec<String>>,
    /// Command prefixes that are always denied.
    deny: Vec<Vec<String>>,
    protected: Protected,
    /// Where clients may point; none known until the instance's topology is given.
    endpoints: Endpoints,
    /// The subjects whose programs and addresses it judges: the instance's own, or every
    /// subject when a command is judged with no instance. A program of none of them is
    /// unknown, and a person decides.
    subjects: Vec<&'static dyn SubjectWords>,
    /// Their clients' URL schemes with default ports.
    schemes: Vec<(&'static str, u16)>,
    /// The commands' folder with its links followed, once: relative paths are walked from
    /// here.
    cwd_walked: PathBuf,
    /// The folder of the operator's binary (first on the commands' PATH), looked up once.
    exe_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("allow", &self.allow)
            .field("deny", &self.deny)
            .field("protected", &self.protected)
            .field("endpoints", &self.endpoints)
            .field(
                "subjects",
                &self.subjects.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Splits a prefix rule such as `operator node restart` into words.
pub fn prefix_words(rule: &str) -> Vec<String> {
    rule.split_whitespace().map(str::to_string).collect()
}

impl Policy {
    /// A policy judging commands by the words of `subjects`.
    pub fn new(
        allow: &[String],
        deny: &[String],
        protected: Protected,
        subjects: Vec<&'static dyn SubjectWords>,
    ) -> Self {
        Self {
            allow: allow
                .iter()
                .map(|r| prefix_words(r))
                .filter(|w| !w.is_empty())
                .collect(),
            deny: deny
                .iter()
                .map(|r| prefix_words(r))
                .filter(|w| !w.is_empty())
                .collect(),
            cwd_walked: through_links(Path::new("/"), &protected.cwd),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf)),
            protected,
            endpoints: Endpoints::default(),
            schemes: subjects
                .iter()
                .flat_map(|s| s.url_schemes().iter().copied())
                .collect(),
            subjects,
        }
    }

    /// The folder of the operator's own binary.
    pub(crate) fn exe_dir(&self) -> Option<&Path> {
        self.exe_dir.as_deref()
    }

    /// The subjects whose words it judges by.
    pub(crate) fn subjects(&self) -> &[&'static dyn SubjectWords] {
        &self.subjects
    }

    /// Where `url` points, its scheme's default port read from the subjects' clients.
    pub(crate) fn url_target(&self, url: &str) -> Option<Target> {
        url_target(url, &self.schemes)
    }

    /// The instance's endpoints: its clients may reach these and nothing else.
    pub fn with_endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    pub fn set_endpoints(&mut self, endpoints: Endpoints) {
        self.endpoints = endpoints;
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn allow_prefix(&mut self, rule: &str) {
        let w = prefix_words(rule);
        if !w.is_empty() && !self.allow.contains(&w) {
            self.allow.push(w);
        }
    }

    pub fn protected(&self) -> &Protected {
        &self.protected
    }

    /// Classifies a command line.
    pub fn classify(&self, command: &str) -> Verdict {
        let mut found = walk::Findings::default();
        walk::walk_source(self, command, 0, &mut found);
        let mut invocations: Vec<Vec<String>> =
            found.invocations.iter().map(|i| i.words()).collect();
        invocations.dedup();
        let mut class = Class::ReadOnly;
        let mut reasons: Vec<(Class, String)> = found.marks;
        for inv in &invocations {
            if let Some(rule) = self.deny.iter().find(|p| starts_with(inv, p)) {
                reasons.push((
                    Class::Denied,
                    format!("matches the deny rule `{}`", rule.join(" ")),
                ));
            }
        }
        for (c, _) in &reasons {
            class = class.max(*c);
        }
        reasons.sort_by_key(|r| std::cmp::Reverse(r.0));
        let worst: Vec<String> = reasons
            .iter()
            .filter(|(c, _)| *c == class && class != Class::ReadOnly)
            .map(|(_, r)| r.clone())
            .collect();
        let allowed = !invocations.is_empty()
            && invocations
                .iter()
                .all(|inv| self.allow.iter().any(|p| starts_with(inv, p)));
        Verdict {
            class,
            reasons: if worst.is_empty() && class == Class::ReadOnly {
                vec!["reads only".into()]
            } else {
                worst
            },
            invocations,
            allowed: allowed && class != Class::Denied,
        }
    }

    /// Resolves a path argument as the command will see it.
    pub(crate) fn resolve(&self, path: &str) -> PathBuf {
        let home_relative = path
            .strip_prefix("~/")
            .or(path.strip_prefix('~').filter(|r| r.is_empty()));
        // The executor gives commands their folder as HOME: `~` is that folder, not the home
        // of the user running the operator (whose files are guarded by their own rules).
        let own = !self.protected.cwd.as_os_str().is_empty();
        if let Some(rest) = home_relative {
            return if own {
                through_links(&self.cwd_walked, Path::new(rest))
            } else {
                through_links(Path::new("/"), &self.protected.home.join(rest))
            };
        }
        let p = Path::new(path);
        if p.is_absolute() {
            through_links(Path::new("/"), p)
        } else if own {
            through_links(&self.cwd_walked, p)
        } else {
            normalize(p)
        }
    }
}

fn starts_with(inv: &[String], prefix: &[String]) -> bool {
    inv.len() >= prefix.len() && inv.iter().zip(prefix).all(|(a, b)| a == b)
}

/// A path as the kernel walks it: each symbolic link on the way is followed before a `..`
/// after it applies (`/var/run/../etc` is `/etc`, since /var/run is a link to /run;
/// `/dev/fd/..` is a process's folder in /proc). Inside a process's folder in /proc the
/// links (`cwd`, `root`, `fd/N`) are the command's, not this process's: they are kept as
/// written, for the /proc checks to judge. What does not exist is taken as written.
fn through_links(start: &Path, p: &Path) -> PathBuf {
    use std::path::Component;
    if !start.is_absolute() {
        return normalize(&start.join(p));
    }
    let mut pending: Vec<std::ffi::OsString> = p
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut out = start.to_path_buf();
    let mut hops = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            out.pop();
            continue;
        }
        out.push(&name);
        let in_process = out.starts_with("/proc") && out.components().count() > 3;
        // Past a process's own link (`cwd`, `root`, `exe`, `fd/N`), the rest is relative to
        // the command's folders, not this process's: kept as written, `..` and all.
        let door = in_process
            && (matches!(name.to_str(), Some("cwd" | "root" | "exe"))
                || out
                    .parent()
                    .and_then(Path::file_name)
                    .is_some_and(|p| p == "fd" || p == "map_files"));
        if door {
            while let Some(rest) = pending.pop() {
                out.push(rest);
            }
            break;
        }
        if in_process || hops >= 40 {
            continue;
        }
        let Ok(target) = std::fs::read_link(&out) else {
            continue;
        };
        hops += 1;
        out.pop();
        if target.is_absolute() {
            out = PathBuf::from("/");
        }
        for c in target.components().rev() {
            match c {
                Component::Normal(n) => pending.push(n.to_os_string()),
                Component::ParentDir => pending.push("..".into()),
                _ => {}
            }
        }
    }
    out
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests;
