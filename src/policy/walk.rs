//! Walks a command line's shell syntax (parsed by brush-parser) and collects every program
//! it would run, with its arguments as far as they can be known before running it.

use std::io::Cursor;

use brush_parser::ast::{
    Command, CommandPrefixOrSuffixItem, CompoundCommand, CompoundList, IoFileRedirectKind,
    IoFileRedirectTarget, IoRedirect, Pipeline, ProcessSubstitutionKind, SimpleCommand, Word,
};
use brush_parser::word::{WordPiece, WordPieceWithSource};
use brush_parser::{Parser, ParserOptions};

use super::rules;
use super::{Class, Policy};

/// How deep `sh -c`, `eval` and `$(…)` may nest before the policy gives up.
const MAX_DEPTH: u32 = 6;

/// One argument: known text, or a value only the shell will know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Lit(String),
    Dyn(Split),
}

/// How many words a value known only at run time becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Any number, none included: an unquoted expansion is split and globbed (`$rev` may be
    /// `--endpoints=elsewhere 5`).
    Any,
    /// Exactly one, whatever its text: every expansion in it is double-quoted (`"$rev"`).
    /// It may still begin with `-`.
    One,
}

impl Arg {
    /// A value only known at run time, of any number of words.
    pub const UNKNOWN: Arg = Arg::Dyn(Split::Any);

    pub fn lit(&self) -> Option<&str> {
        match self {
            Self::Lit(s) => Some(s),
            Self::Dyn(_) => None,
        }
    }

    pub fn is_dyn(&self) -> bool {
        matches!(self, Self::Dyn(_))
    }
}

/// One program the command would run.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv: Vec<Arg>,
    /// Its input comes from a download earlier in the same pipeline.
    pub after_download: bool,
}

impl Invocation {
    pub fn words(&self) -> Vec<String> {
        self.argv
            .iter()
            .map(|a| a.lit().unwrap_or("?").to_string())
            .collect()
    }
}

#[derive(Debug, Default)]
pub struct Findings {
    pub invocations: Vec<Invocation>,
    pub marks: Vec<(Class, String)>,
    /// Walking a command run inside one of the instance's containers (`docker exec`): there,
    /// loopback is that container.
    pub in_container: bool,
    /// Words with a glob character outside quotes, which the shell expands into file names
    /// (`'*'` quoted is just a star).
    pub globs: std::collections::HashSet<String>,
    /// Where an earlier `cd` left the commands that follow it.
    pub moved: Moved,
    /// Variables set from what read-only commands printed (`rev=$(etcdctl … status …)`):
    /// expanding one is no more than running that substitution in its place.
    pub read_vars: std::collections::HashSet<String>,
    /// The lines the previous stage of this pipeline prints, when its words alone say
    /// (`printf '%s\n' a b`, `seq 1 3`): what `xargs -I` hands on.
    pub piped: Option<Vec<String>>,
    /// The command being judged reads input the line gives it (a pipe, `<`, a here-string
    /// or here-document).
    pub fed: bool,
}

/// Where the shell stands after the commands walked so far: the policy resolves relative
/// paths against the instance's folder, so after a `cd` they mean something else.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    #[default]
    No,
    /// Into a folder inside the instance's: paths that stay below it stay inside.
    Inside,
    /// Anywhere else, or somewhere the policy cannot tell (`cd -`, `cd "$x"`, `popd`).
    Away,
}

impl Findings {
    pub fn mark(&mut self, class: Class, reason: impl Into<String>) {
        self.marks.push((class, reason.into()));
    }
}

fn options() -> ParserOptions {
    ParserOptions::default()
}

/// Whether `src` holds bash's `{NAME}>`, `{NAME}<` or `{NAME}>&-`: the redirection
/// assigns the new descriptor's number to NAME. An element (`{x[i]}>`) counts too, whatever
/// its index holds, as bash evaluates the index (`a[$(cmd)]` in it runs cmd).
fn names_a_descriptor(src: &str) -> bool {
    src.match_indices('{').any(|(at, _)| {
        let rest = &src[at + 1..];
        let ident = rest
            .char_indices()
            .take_while(|(i, c)| {
                *c == '_' || c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())
            })
            .count();
        if ident == 0 {
            return false;
        }
        let after = &rest[ident..];
        if let Some(r) = after.strip_prefix('}') {
            return r.starts_with(['<', '>']);
        }
        after.starts_with('[') && (after.contains("]}>") || after.contains("]}<"))
    })
}

pub fn walk_source(policy: &Policy, src: &str, depth: u32, found: &mut Findings) {
    if depth > MAX_DEPTH {
        found.mark(Class::Denied, "nested too deeply to check");
        return;
    }
    if src.trim().is_empty() {
        return;
    }
    if names_a_descriptor(src) {
        found.mark(
            Class::Destructive,
            "a {NAME}> redirection sets NAME (PATH, HOME…) to a descriptor's number",
        );
    }
    if paren_depth(src) > MAX_PARENS {
        // The parser's time grows exponentially with nesting (fuzzing found it).
        found.mark(Class::Denied, "nested too deeply to check");
        return;
    }
    if oversized_fd(src) {
        // brush-parser panics on these (fuzzing found it); bash refuses them too.
        found.mark(
            Class::Denied,
            "a redirection's file descriptor number is too large",
        );
        return;
    }
    // The parser is not ours: should it panic on some other input, that command is denied
    // rather than the agent brought down.
    let parsed =
        std::panic::catch_unwind(|| Parser::new(Cursor::new(src), &options()).parse_program());
    match parsed {
        Ok(Ok(program)) => {
            for list in &program.complete_commands {
                walk_list(policy, list, depth, found);
            }
        }
        Ok(Err(e)) => found.mark(Class::Denied, format!("cannot parse it as shell: {e}")),
        Err(_) => found.mark(Class::Denied, "the shell parser failed on it"),
    }
}

/// Parentheses open at once, at most: a person's command seldom nests five.
const MAX_PARENS: usize = 10;

/// How deep parentheses nest in `src`, quotes not minded (a quoted one only costs a denial).
fn paren_depth(src: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in src.chars() {
        match c {
            '(' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Whether a run of more digits than a file descriptor has comes right before `<` or `>`.
fn oversized_fd(src: &str) -> bool {
    let mut run = 0;
    for c in src.chars() {
        match c {
            '0'..='9' => run += 1,
            '<' | '>' if run > 9 => return true,
            _ => run = 0,
        }
    }
    false
}

/// Whether a glob's expansion may begin with `-`: its fixed start is itself a dash (`-*`,
/// `-e*`, `--pre=*`: letters or a value from a file's name), or it starts with a pattern
/// that can match one (`*`, `?`, `[-]`, `[!x]`, a class). `[r]atelimiter` cannot.
fn may_expand_to_option(text: &str) -> bool {
    if text.starts_with('-') {
        return true;
    }
    match text.chars().next() {
        Some('*' | '?') => true,
        // A `[` with no `]` after it is a plain word (`[ -d data ]`).
        Some('[') => text[1..].find(']').is_some_and(|end| {
            let set = &text[1..1 + end];
            set.is_empty()
                || !set
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        }),
        _ => false,
    }
}

fn walk_list(policy: &Policy, list: &CompoundList, depth: u32, found: &mut Findings) {
    for item in &list.0 {
        let and_or = &item.0;
        walk_pipeline(policy, &and_or.first, depth, found);
        for next in &and_or.additional {
            let p = match next {
                brush_parser::ast::AndOr::And(p) | brush_parser::ast::AndOr::Or(p) => p,
            };
            walk_pipeline(policy, p, depth, found);
        }
    }
}

fn walk_pipeline(policy: &Policy, p: &Pipeline, depth: u32, found: &mut Findings) {
    let mut download = false;
    let mut lines = None;
    for (i, cmd) in p.seq.iter().enumerate() {
        found.piped = lines.take();
        // An input of its own (`< file`, a here-string) replaces the pipe's.
        let own_input = cmd.to_string().contains('<');
        if own_input {
            found.piped = None;
        }
        found.fed = i > 0 || own_input;
        let program = walk_command(policy, cmd, depth, download, found);
        if program.as_deref().is_some_and(rules::is_download) {
            download = true;
        }
        if matches!(cmd, Command::Simple(_)) {
            lines = found
                .invocations
                .last()
                .and_then(|inv| literal_output(&inv.argv));
        }
    }
    found.piped = None;
    found.fed = false;
}

/// What a command prints, when its words alone say: `echo WORDS`, `printf 'FMT%s…\n' ARGS`
/// with one `%s`, `seq [FIRST [STEP]] LAST`; at most `MAX_LOOP` lines.
fn literal_output(argv: &[Arg]) -> Option<Vec<String>> {
    let words: Vec<&str> = argv.iter().map(Arg::lit).collect::<Option<_>>()?;
    let lines = match words.as_slice() {
        ["echo", rest @ ..] if rest.iter().all(|w| !w.starts_with('-')) => vec![rest.join(" ")],
        ["printf", fmt, args @ ..] if !args.is_empty() => {
            let body = fmt.strip_suffix("\\n")?;
            if body.matches("%s").count() != 1 || body.replace("%s", "").contains(['%', '\\']) {
                return None;
            }
            args.iter().map(|a| body.replace("%s", a)).collect()
        }
        ["seq", nums @ ..] if (1..=3).contains(&nums.len()) => {
            let n: Vec<i64> = nums.iter().map(|w| w.parse().ok()).collect::<Option<_>>()?;
            let (first, step, last) = match n.as_slice() {
                [l] => (1, 1, *l),
                [f, l] => (*f, 1, *l),
                [f, s, l] => (*f, *s, *l),
                _ => return None,
            };
            if step <= 0 || last < first || (last - first) / step >= MAX_LOOP as i64 {
                return None;
            }
            (0..=(last - first) / step)
                .map(|i| (first + i * step).to_string())
                .collect()
        }
        _ => return None,
    };
    // xargs reads quotes and backslashes in its input, and drops blanks around words: only
    // plain lines are taken as they are printed.
    (lines.len() <= MAX_LOOP
        && lines.iter().all(|l| {
            !l.contains(['\n', '\'', '"', '\\']) && l.trim() == l.as_str() && !l.is_empty()
        }))
    .then_some(lines)
}

/// Walks one command; returns the program it runs, when it is a known simple command.
fn walk_command(
    policy: &Policy,
    cmd: &Command,
    depth: u32,
    after_download: bool,
    found: &mut Findings,
) -> Option<String> {
    match cmd {
        Command::Simple(sc) => walk_simple(policy, sc, depth, after_download, found),
        Command::Compound(cc, redirects) => {
            walk_compound(policy, cc, depth, found);
            for r in redirects.iter().flat_map(|l| &l.0) {
                redirect(policy, r, depth, found);
            }
            None
        }
        Command::Function(_) => {
            found.mark(
                Class::Denied,
                "defines a shell function, which cannot be checked",
            );
            None
        }
        Command::ExtendedTest(test, redirects) => {
            let text = test.to_string();
            if text.contains("$(") || text.contains('`') {
                found.mark(Class::Denied, "runs a command inside [[ ]]");
            }
            test_arithmetic(&text, found);
            if text.contains("-v") && text.contains('[') {
                found.mark(
                    Class::Destructive,
                    "[[ -v ]] of an array element evaluates its index, which may run a command",
                );
            }
            // `[[ $SECRET == sk-* ]]` answers questions about a variable's value.
            if text.contains('$') {
                found.mark(
                    Class::Destructive,
                    "tests a variable's value inside [[ ]], which can tell what a secret holds",
                );
            }
            for r in redirects.iter().flat_map(|l| &l.0) {
                redirect(policy, r, depth, found);
            }
            None
        }
    }
}

fn walk_compound(policy: &Policy, cc: &CompoundCommand, depth: u32, found: &mut Findings) {
    match cc {
        CompoundCommand::BraceGroup(b) => walk_list(policy, &b.list, depth, found),
        CompoundCommand::Subshell(s) => walk_list(policy, &s.list, depth, found),
        CompoundCommand::ForClause(f) => {
            // The loop assigns its variable: `for PATH in /tmp` is `PATH=/tmp`.
            super::reach::assignment(
                policy,
                found,
                &format!("{}=", f.variable_name),
                false,
                false,
            );
            let values: Vec<Arg> = f
                .values
                .iter()
                .flatten()
                .map(|w| word(policy, w, depth, found))
                .collect();
            // A loop over a short literal list runs its body once per value: judged so.
            let literal: Option<Vec<String>> = values
                .iter()
                .map(|v| v.lit().filter(|t| plain_value(t)).map(str::to_string))
                .collect();
            let body_text = f.body.list.to_string();
            // The shell sets some names itself (`$_` is the last word of the command before,
            // `BASH_REMATCH` what `=~` matched): the body's text with the value put in is not
            // what runs. A loop variable must be a plain lower-case name to be unrolled.
            let shells_own =
                f.variable_name == "_" || f.variable_name.chars().any(|c| c.is_ascii_uppercase());
            let reassigned = shells_own || names_bare(&body_text, &f.variable_name);
            match literal {
                // A body that may set the variable itself (`c=bash`, `printf -v c`, `read
                // c`) is not the text with the value put in: judged as it stands.
                Some(list)
                    if f.values.is_some()
                        && !list.is_empty()
                        && list.len() <= MAX_LOOP
                        && !reassigned =>
                {
                    let body = f.body.list.to_string();
                    let before = found.marks.len();
                    for value in &list {
                        walk_source(
                            policy,
                            &substitute(&body, &f.variable_name, value),
                            depth,
                            found,
                        );
                    }
                    // Each value's run judged alone says nothing of them together: jobs
                    // left in the background pile up, and a change made over and over (16
                    // restarts of every member) is a flood of its own.
                    if background_job(&body) {
                        found.mark(
                            Class::Destructive,
                            "starts a background job each time round a loop",
                        );
                    }
                    if list.len() > MAX_REPEATED_CHANGES
                        && found.marks[before..]
                            .iter()
                            .any(|(c, _)| *c >= Class::Mutating)
                    {
                        found.mark(
                            Class::Destructive,
                            format!("repeats a change {} times", list.len()),
                        );
                    }
                }
                // Over words only known at run time (`$(seq 1 100000)`): as many times as
                // they say.
                _ if values.iter().any(Arg::is_dyn) => {
                    repeat(policy, depth, found, &[&f.body.list]);
                }
                _ => walk_list(policy, &f.body.list, depth, found),
            }
        }
        CompoundCommand::ArithmeticForClause(f) => {
            // Its header is arithmetic, judged as `(( … ))` is: a substitution in it runs.
            for e in [&f.initializer, &f.condition, &f.updater]
                .into_iter()
                .flatten()
            {
                arithmetic(policy, &e.value, found);
            }
            repeat(policy, depth, found, &[&f.body.list])
        }
        CompoundCommand::CaseClause(c) => {
            word(policy, &c.value, depth, found);
            for item in &c.cases {
                // The shell expands each pattern: a substitution in one runs.
                for pattern in &item.patterns {
                    word(policy, pattern, depth, found);
                }
                if let Some(list) = &item.cmd {
                    walk_list(policy, list, depth, found);
                }
            }
        }
        CompoundCommand::IfClause(i) => {
            walk_list(policy, &i.condition, depth, found);
            walk_list(policy, &i.then, depth, found);
            for e in i.elses.iter().flatten() {
                if let Some(c) = &e.condition {
                    walk_list(policy, c, depth, found);
                }
                walk_list(policy, &e.body, depth, found);
            }
        }
        CompoundCommand::WhileClause(w) | CompoundCommand::UntilClause(w) => {
            repeat(policy, depth, found, &[&w.0, &w.1.list]);
        }
        CompoundCommand::Arithmetic(a) => arithmetic(policy, &a.to_string(), found),
        CompoundCommand::Coprocess(_) => {
            found.mark(Class::Denied, "starts a coprocess, which cannot be checked");
        }
    }
}

/// Arithmetic bash evaluates (`(( … ))`, a `for (( … ))` header): a command run inside,
/// a variable it sets, a value it reads.
fn arithmetic(policy: &Policy, text: &str, found: &mut Findings) {
    if runs_in_arithmetic(text) {
        found.mark(
            Class::Denied,
            format!("runs a command inside arithmetic ({text})"),
        );
    }
    arithmetic_assignments(policy, text, found);
    arithmetic_reads_variables(text, found);
}

/// Whether arithmetic text can run a command: a substitution, or an array index (bash
/// evaluates `a[…]` indexes, and `$(…)` inside them runs).
pub(super) fn runs_in_arithmetic(text: &str) -> bool {
    text.contains("$(") || text.contains('`') || text.contains('[')
}

/// Arithmetic that reads a variable (`x`, `$x`) evaluates its value as arithmetic again, and
/// a value like `a[$(cmd)]` runs `cmd`: whatever set it, a person decides. Only numbers and
/// operators are read as harmless.
pub(super) fn arithmetic_reads_variables(text: &str, found: &mut Findings) {
    if text.contains(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$') {
        found.mark(
            Class::Destructive,
            format!(
                "arithmetic on a variable ({}) evaluates its value, which may run a command (a[$(…)])",
                text.trim()
            ),
        );
    }
}

/// `[[ A -gt B ]]` evaluates A and B as arithmetic: judged as `(( A > B ))` would be.
fn test_arithmetic(text: &str, found: &mut Findings) {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    for (k, t) in tokens.iter().enumerate() {
        if matches!(*t, "-eq" | "-ne" | "-lt" | "-le" | "-gt" | "-ge") {
            for side in [k.checked_sub(1), Some(k + 1)].into_iter().flatten() {
                if let Some(operand) = tokens.get(side) {
                    arithmetic_reads_variables(operand, found);
                }
            }
        }
    }
}

/// Arithmetic assigns too (`((OPERATOR_INSTANCE=6))`, `let i++`): each name it assigns is
/// judged as a `NAME=` would be.
pub(super) fn arithmetic_assignments(policy: &Policy, text: &str, found: &mut Findings) {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let before: String = chars[start.saturating_sub(2)..start].iter().collect();
            let after: String = chars[i..]
                .iter()
                .skip_while(|c| c.is_whitespace())
                .take(3)
                .collect();
            let assigns = before.ends_with("++")
                || before.ends_with("--")
                || after.starts_with("++")
                || after.starts_with("--")
                || (after.starts_with('=') && !after.starts_with("=="))
                || ["+=", "-=", "*=", "/=", "%=", "&=", "^=", "|=", "<<=", ">>="]
                    .iter()
                    .any(|op| after.starts_with(op));
            if assigns {
                super::reach::assignment(policy, found, &format!("{name}="), false, false);
            }
        } else {
            i += 1;
        }
    }
}

/// Whether unquoted text holds a brace expansion (`{a,b}`, `{1..3}`), which bash turns into
/// several words before anything runs.
fn brace_expands(text: &str) -> bool {
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                depth += 1;
                start.get_or_insert(i);
            }
            '}' if depth > 0 => {
                depth -= 1;
                if let Some(s) = start {
                    let inner = &text[s + 1..i];
                    if inner.contains(',') || inner.contains("..") {
                        return true;
                    }
                }
                if depth == 0 {
                    start = None;
                }
            }
            _ => {}
        }
    }
    false
}

/// Whether `text` names `var` other than by expanding it (`$var`, `${var}`): as a word of
/// its own or at the start of an assignment, where the body may set it.
fn names_bare(text: &str, var: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(at) = text[from..].find(var) {
        let start = from + at;
        let end = start + var.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        let whole = !before.is_some_and(ident) && !after.is_some_and(ident);
        let expanded = matches!(before, Some('$')) || text[..start].ends_with("${");
        if whole && !expanded {
            return true;
        }
        from = end;
    }
    false
}

/// The most values a loop may repeat a change over without a person: one per node of a
/// three-node cluster.
const MAX_REPEATED_CHANGES: usize = 3;

/// Whether a loop body sends a job to the background (`cmd &`, not `&&`, `>&`, `&>`).
fn background_job(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, c)| {
        *c == b'&'
            && !matches!(b.get(i + 1), Some(b'&' | b'>'))
            && !matches!(i.checked_sub(1).map(|j| b[j]), Some(b'&' | b'>' | b'<'))
    })
}

/// The longest literal list a `for` loop is unrolled over.
const MAX_LOOP: usize = 16;

/// A loop value that reads the same unquoted, in double quotes and as a word: no spaces,
/// quotes, expansions or operators (glob characters may stay: the loop would expand them).
fn plain_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/@%+=,*?[]".contains(c))
}

/// The loop body with `$var` and `${var}` replaced by `value`, outside single quotes (where
/// the shell does not expand them either).
fn substitute(body: &str, var: &str, value: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let chars: Vec<char> = body.chars().collect();
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if !single => {
                out.push(c);
                if let Some(n) = chars.get(i + 1) {
                    out.push(*n);
                }
                i += 2;
                continue;
            }
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '$' if !single => {
                let rest: String = chars[i + 1..].iter().collect();
                let braced = format!("{{{var}}}");
                if rest.starts_with(&braced) {
                    out.push_str(value);
                    i += 1 + braced.chars().count();
                    continue;
                }
                if rest.starts_with(var)
                    && !rest[var.len()..]
                        .chars()
                        .next()
                        .is_some_and(|n| n.is_ascii_alphanumeric() || n == '_')
                {
                    out.push_str(value);
                    i += 1 + var.chars().count();
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Variables that change what a program is or how it loads: never set by the agent.
pub(super) const DANGEROUS_VARIABLES: &[&str] = &[
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "BASH_ENV",
    "BASH_CMDS",
    "BASH_ALIASES",
    "BASH_LOADABLES_PATH",
    "BASH_XTRACEFD",
    "HISTFILE",
    "EXECIGNORE",
    "PS0",
    "ENV",
    "IFS",
    "PS4",
    "PROMPT_COMMAND",
    "SHELLOPTS",
    // Read by a bash that starts: each option named is on (`BASHOPTS=dotglob`).
    "BASHOPTS",
    // Set at all, it turns on dotglob: `*` then matches dot-files, which a copy into the
    // commands' HOME lands as settings (`.curlrc`).
    "GLOBIGNORE",
    // Where `$"…"` finds its translation, which bash then expands.
    "TEXTDOMAIN",
    "TEXTDOMAINDIR",
];

fn walk_simple(
    policy: &Policy,
    sc: &SimpleCommand,
    depth: u32,
    after_download: bool,
    found: &mut Findings,
) -> Option<String> {
    let mut argv = Vec::new();
    let items = sc
        .prefix
        .iter()
        .flat_map(|p| &p.0)
        .map(|i| (i, true))
        .chain(sc.suffix.iter().flat_map(|s| &s.0).map(|i| (i, false)));
    let mut prefix_items = Vec::new();
    let mut suffix_items = Vec::new();
    for (item, is_prefix) in items {
        if is_prefix {
            prefix_items.push(item);
        } else {
            suffix_items.push(item);
        }
    }
    let standalone = sc.word_or_name.is_none() && suffix_items.is_empty();
    for item in prefix_items {
        match item {
            CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                let before = found.marks.len();
                let text = word(policy, w, depth, found);
                let assigned = a.to_string();
                super::reach::assignment(
                    policy,
                    found,
                    &assigned,
                    text.lit().is_some(),
                    !standalone,
                );
                let (name, value) = assigned.split_once('=').unwrap_or((&assigned, ""));
                let name = name.to_string();
                let value = value.trim_matches('"');
                let substitution = value.starts_with("$(") && value.ends_with(')')
                    || value.len() > 1 && value.starts_with('`') && value.ends_with('`');
                if standalone
                    && substitution
                    && found.marks[before..]
                        .iter()
                        .all(|(c, _)| *c == Class::ReadOnly)
                {
                    found.read_vars.insert(name);
                } else {
                    found.read_vars.remove(&name);
                }
            }
            other => simple_item(policy, other, depth, &mut argv, found),
        }
    }
    if let Some(w) = &sc.word_or_name {
        argv.push(word(policy, w, depth, found));
    }
    for item in suffix_items {
        simple_item(policy, item, depth, &mut argv, found);
    }
    if argv.is_empty() {
        return None;
    }
    let inv = Invocation {
        argv,
        after_download,
    };
    let program = inv.argv[0].lit().map(rules::program_name);
    after_cd(policy, &inv, found);
    rules::classify(policy, &inv, depth, found);
    found.invocations.push(inv);
    program
}

/// Judges a command that runs after a `cd`, and follows a `cd` itself: its paths are judged
/// against the instance's folder, which is right only while the shell stays below it.
fn after_cd(policy: &Policy, inv: &Invocation, found: &mut Findings) {
    let words: Vec<&str> = inv.argv.iter().filter_map(Arg::lit).collect();
    // `builtin cd`, `command cd`: the same move by another name.
    if words.len() > 1
        && matches!(words[0], "builtin" | "command" | "exec")
        && words[1..]
            .iter()
            .any(|w| matches!(*w, "cd" | "pushd" | "popd" | "chdir"))
    {
        found.moved = Moved::Away;
    }
    match found.moved {
        Moved::No => {}
        Moved::Away => found.mark(
            Class::Destructive,
            "runs after a `cd` out of the instance's folder, where its paths cannot be judged",
        ),
        Moved::Inside => {
            if words.iter().any(|w| w.contains("..")) {
                found.mark(
                    Class::Destructive,
                    "climbs out (`..`) of the folder an earlier `cd` went to",
                );
            }
        }
    }
    let Some(program) = words.first().map(|w| rules::program_name(w)) else {
        return;
    };
    if !matches!(program.as_str(), "cd" | "pushd" | "popd" | "chdir") {
        return;
    }
    let targets: Vec<&Arg> = inv.argv[1..]
        .iter()
        .filter(|a| a.lit().is_none_or(|w| !w.starts_with('-')))
        .collect();
    let inside = program != "popd"
        && match targets.as_slice() {
            [Arg::Lit(t)] => {
                !t.starts_with('~') && policy.resolve(t).starts_with(&policy.protected().cwd)
            }
            _ => false,
        };
    if !inside || found.moved == Moved::Away {
        found.moved = Moved::Away;
    } else {
        found.moved = Moved::Inside;
    }
}

fn simple_item(
    policy: &Policy,
    item: &CommandPrefixOrSuffixItem,
    depth: u32,
    argv: &mut Vec<Arg>,
    found: &mut Findings,
) {
    match item {
        CommandPrefixOrSuffixItem::Word(w) => argv.push(word(policy, w, depth, found)),
        CommandPrefixOrSuffixItem::IoRedirect(r) => redirect(policy, r, depth, found),
        // `<(cmd)`: the program reads cmd's output (judged on its own) through a pipe the
        // shell names /dev/fd/N, as a pipeline's next stage would.
        CommandPrefixOrSuffixItem::ProcessSubstitution(kind, sub) => {
            walk_list(policy, &sub.list, depth, found);
            argv.push(match kind {
                ProcessSubstitutionKind::Read => Arg::Lit("/dev/fd/63".into()),
                ProcessSubstitutionKind::Write => Arg::UNKNOWN,
            });
        }
        // `export A=b` and the like: the text itself is the argument.
        CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
            word(policy, w, depth, found);
            argv.push(Arg::Lit(a.to_string()));
        }
    }
}

/// A loop that may run any number of times (`while`, `until`, `for ((…))`, `for` over
/// substituted words): a change repeated is a flood, not a repair, and so are reads repeated
/// with no pause of half a second or more (`sleep 1`) until the time limit ends them.
fn repeat(policy: &Policy, depth: u32, found: &mut Findings, parts: &[&CompoundList]) {
    let mut body = Findings {
        in_container: found.in_container,
        globs: found.globs.clone(),
        ..Findings::default()
    };
    for list in parts {
        walk_list(policy, list, depth, &mut body);
    }
    // A job sent to the background each time round (`sleep 1000 &`) piles up.
    let background = parts.iter().any(|list| background_job(&list.to_string()));
    if background {
        found.mark(
            Class::Destructive,
            "starts a background job each time round a loop",
        );
    }
    let paused = body.invocations.iter().any(|i| {
        matches!(i.argv.as_slice(), [Arg::Lit(p), Arg::Lit(d)]
            if rules::program_name(p) == "sleep"
                && rules::seconds(d).is_some_and(|s| s >= 0.5))
    });
    if body.marks.iter().any(|(c, _)| *c >= Class::Mutating) {
        found.mark(
            Class::Destructive,
            "repeats a change in a loop that may not end",
        );
    } else if !paused {
        found.mark(
            Class::Destructive,
            "repeats commands in a loop with no pause (sleep), a flood until the time limit",
        );
    }
    found.marks.append(&mut body.marks);
    found.invocations.append(&mut body.invocations);
    found.globs.extend(body.globs);
}

fn redirect(policy: &Policy, r: &IoRedirect, depth: u32, found: &mut Findings) {
    match r {
        IoRedirect::File(_, kind, target) => match target {
            IoFileRedirectTarget::Filename(w) => {
                let arg = word(policy, w, depth, found);
                let write = matches!(
                    kind,
                    IoFileRedirectKind::Write
                        | IoFileRedirectKind::Append
                        | IoFileRedirectKind::Clobber
                        | IoFileRedirectKind::ReadAndWrite
                );
                rules::redirect_target(policy, &arg, write, found);
            }
            IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                walk_list(policy, &sub.list, depth, found);
            }
            IoFileRedirectTarget::Fd(_) => {}
            // `>& 2` copies a descriptor; `>& file` writes the file. bash expands a target
            // that is no number a second time: `$(…)` quoted in it runs.
            IoFileRedirectTarget::Duplicate(w) => {
                if w.value.contains(['$', '`']) {
                    found.mark(
                        Class::Denied,
                        format!(
                            "bash expands the target of >& ({}) a second time, which may run a command",
                            w.value
                        ),
                    );
                }
                let arg = word(policy, w, depth, found);
                let copies = arg
                    .lit()
                    .is_some_and(|t| t == "-" || t.trim_end_matches('-').parse::<u32>().is_ok());
                if !copies {
                    rules::redirect_target(policy, &arg, true, found);
                }
            }
        },
        IoRedirect::OutputAndError(w, _) => {
            let arg = word(policy, w, depth, found);
            rules::redirect_target(policy, &arg, true, found);
        }
        IoRedirect::HereString(_, w) => {
            word(policy, w, depth, found);
        }
        // An unquoted delimiter expands the body as a double-quoted string would.
        IoRedirect::HereDocument(_, doc) if doc.requires_expansion => {
            let body = &doc.doc.value;
            if body.contains("$(") || body.contains('`') {
                found.mark(
                    Class::Denied,
                    "a here-document that runs commands in its body",
                );
            } else if body.contains('$') {
                found.mark(
                    Class::Destructive,
                    "a here-document that expands variables the policy cannot see",
                );
            }
        }
        IoRedirect::HereDocument(..) => {}
    }
}

/// What a word will be: its text when quoting and escapes are all there is, else unknown.
/// Command substitutions inside are classified too.
fn word(policy: &Policy, w: &Word, depth: u32, found: &mut Findings) -> Arg {
    let parsed = std::panic::catch_unwind(|| brush_parser::word::parse(&w.value, &options()));
    let Ok(parsed) = parsed else {
        found.mark(Class::Denied, "the shell parser failed on a word of it");
        return Arg::UNKNOWN;
    };
    match parsed {
        Ok(pieces) => {
            // Brace expansion spans quoted parts too: `{0,"a b"}` is two words.
            let unquoted: String = pieces
                .iter()
                .map(|p| match &p.piece {
                    WordPiece::Text(t) => t.as_str(),
                    _ => "x",
                })
                .collect();
            if brace_expands(&unquoted) {
                found.mark(
                    Class::Destructive,
                    format!(
                        "brace expansion ({}) makes words the policy does not see",
                        w.value
                    ),
                );
                return Arg::UNKNOWN;
            }
            let mut text = String::new();
            if pieces_text(policy, &w.value, &pieces, depth, found, &mut text) {
                let unquoted_glob = pieces
                    .iter()
                    .any(|p| matches!(&p.piece, WordPiece::Text(t) if t.contains(['*', '?', '['])));
                if unquoted_glob {
                    if may_expand_to_option(&text) {
                        found.mark(
                            Class::Destructive,
                            format!(
                                "{text} may expand to option words (a file's name can be `-…`), which no rule then sees"
                            ),
                        );
                    }
                    found.globs.insert(text.clone());
                }
                Arg::Lit(text)
            } else if one_word(&w.value, &pieces) {
                Arg::Dyn(Split::One)
            } else {
                Arg::UNKNOWN
            }
        }
        Err(e) => {
            found.mark(
                Class::Denied,
                format!("cannot parse the word `{}`: {e}", w.value),
            );
            Arg::UNKNOWN
        }
    }
}

/// Whether a word the shell completes at run time stays one word: every expansion in it is
/// double-quoted (neither split nor globbed), none is `$@`, `${a[@]}` or `${!x}` (which
/// may make a word of each element), and its unquoted text holds nothing a glob or an
/// extended glob reads.
fn one_word(source: &str, pieces: &[WordPieceWithSource]) -> bool {
    pieces.iter().all(|p| match &p.piece {
        WordPiece::Text(t) => !t.contains(['*', '?', '[', ']', '(', ')', '!', '@', '+', '{', '}']),
        WordPiece::SingleQuotedText(_)
        | WordPiece::EscapeSequence(_)
        | WordPiece::AnsiCQuotedText(_)
        | WordPiece::TildeExpansion(brush_parser::word::TildeExpr::Home) => true,
        WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
            inner.iter().all(|q| match &q.piece {
                // `"${!x}"` is as many words as what x names (`x=@`).
                WordPiece::ParameterExpansion(_) => source
                    .get(q.start_index..q.end_index)
                    .is_some_and(|t| !t.contains(['@', '!'])),
                _ => true,
            })
        }
        _ => false,
    })
}

/// Whether unquoted or double-quoted text holds a `$` that bash would expand (`${!:…}`,
/// `$[…]`, `$x`): the parser gives such text as plain text when it does not read the form.
fn unread_expansion(text: &str) -> bool {
    text.match_indices('$').any(|(at, _)| {
        text[at + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || "_{([!@#?$*-".contains(c))
    })
}

/// Appends the pieces' text; false when some piece is only known at run time.
fn pieces_text(
    policy: &Policy,
    source: &str,
    pieces: &[WordPieceWithSource],
    depth: u32,
    found: &mut Findings,
    out: &mut String,
) -> bool {
    let mut known = true;
    for (i, p) in pieces.iter().enumerate() {
        match &p.piece {
            WordPiece::Text(s) => {
                // The parser may give the `$` and what follows as two pieces (`$`, `{!:1}`).
                let joined = match pieces.get(i + 1).map(|n| &n.piece) {
                    Some(WordPiece::Text(next)) => format!("{s}{next}"),
                    _ => s.clone(),
                };
                if unread_expansion(&joined) {
                    found.mark(
                        Class::Denied,
                        format!(
                            "holds a `$` form ({s}) that bash expands and the shell parser did not read as an expansion"
                        ),
                    );
                    known = false;
                }
                out.push_str(s)
            }
            WordPiece::SingleQuotedText(s) => out.push_str(s),
            WordPiece::EscapeSequence(s) => out.push_str(s.strip_prefix('\\').unwrap_or(s)),
            WordPiece::AnsiCQuotedText(s) => {
                if s.contains('\\') {
                    known = false;
                } else {
                    out.push_str(s);
                }
            }
            WordPiece::DoubleQuotedSequence(inner) => {
                known &= pieces_text(policy, source, inner, depth, found, out);
            }
            // `$"…"` is looked up in a message catalog (TEXTDOMAIN, TEXTDOMAINDIR, the
            // locale), and the translation found is expanded: a catalog may hold commands.
            WordPiece::GettextDoubleQuotedSequence(inner) => {
                found.mark(
                    Class::Destructive,
                    "a $\"…\" string is replaced by its translation from a message catalog, which is then expanded (a catalog may hold commands)",
                );
                known &= pieces_text(policy, source, inner, depth, found, out);
            }
            // `~` is the commands' HOME, which the executor sets to their folder; `~+` that
            // folder; the others (`~user`, `~-`, the directory stack) the policy does not
            // follow.
            WordPiece::TildeExpansion(t) => match t {
                brush_parser::word::TildeExpr::Home => out.push('~'),
                brush_parser::word::TildeExpr::WorkingDir => {
                    out.push_str(&policy.protected().cwd.to_string_lossy())
                }
                _ => {
                    found.mark(
                        Class::Destructive,
                        "a ~ form (~user, ~-, ~N) names a folder the policy does not follow",
                    );
                    known = false;
                }
            },
            WordPiece::ParameterExpansion(_) => {
                let text = source.get(p.start_index..p.end_index).unwrap_or("$…");
                let name = text
                    .strip_prefix("${")
                    .and_then(|t| t.strip_suffix('}'))
                    .or(text.strip_prefix('$'))
                    .unwrap_or("");
                if found.read_vars.contains(name) {
                    known = false;
                    continue;
                }
                found.mark(
                    Class::Denied,
                    format!(
                        "expands a variable ({text}): the policy cannot tell what runs, and the environment stays private"
                    ),
                );
                known = false;
            }
            WordPiece::CommandSubstitution(src) | WordPiece::BackquotedCommandSubstitution(src) => {
                walk_source(policy, src, depth + 1, found);
                known = false;
            }
            WordPiece::ArithmeticExpression(_) => {
                let text = source.get(p.start_index..p.end_index).unwrap_or("$((…))");
                let inner = text
                    .strip_prefix("$((")
                    .and_then(|t| t.strip_suffix("))"))
                    .unwrap_or(text);
                arithmetic_assignments(policy, inner, found);
                arithmetic_reads_variables(inner, found);
                if runs_in_arithmetic(inner) {
                    found.mark(
                        Class::Denied,
                        format!("runs a command inside arithmetic ({text})"),
                    );
                }
                known = false;
            }
        }
    }
    known
}
