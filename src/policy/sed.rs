//! sed: read-only only while its script prints. The `e` command and flag run commands, `w`,
//! `W` and the `w` flag write files, `r`/`R` read them, `-i` edits in place and `-f` reads a
//! script the policy cannot see. Options are read as GNU getopt reads them (bundles, values
//! attached or in the next word, operands anywhere); an option not listed goes to a person.

use super::Class;
use super::rules::{Ctx, redirect_target};
use super::walk::Arg;

/// Judges one sed invocation (its long options already spelled out in full).
pub(super) fn sed(ctx: &mut Ctx, args: &[Arg]) {
    let mut scripts: Vec<String> = Vec::new();
    let mut explicit = false;
    let mut in_place = false;
    let mut operands: Vec<&Arg> = Vec::new();
    let mut doubt: Option<String> = None;
    let mut ended = false;
    let mut i = 0;
    // The value of an option: attached, or the next word.
    let value = |i: &mut usize, attached: Option<&str>| -> Option<String> {
        match attached {
            Some(v) => Some(v.to_string()),
            None => {
                *i += 1;
                args.get(*i).and_then(Arg::lit).map(str::to_string)
            }
        }
    };
    while i < args.len() {
        let word = match &args[i] {
            Arg::Lit(w) if !ended && w.starts_with('-') && w.len() > 1 => w.as_str(),
            a => {
                operands.push(a);
                i += 1;
                continue;
            }
        };
        if word == "--" {
            ended = true;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            match name {
                "expression" => {
                    explicit = true;
                    match value(&mut i, attached) {
                        Some(s) => scripts.push(s),
                        None => {
                            doubt.get_or_insert("sed's script is only known at run time".into());
                        }
                    }
                }
                "file" => {
                    doubt.get_or_insert("sed reads its script from a file".into());
                }
                "in-place" => {
                    in_place = true;
                    if attached.is_some_and(|v| v.contains('/')) {
                        doubt.get_or_insert("sed -i writes its backup into another folder".into());
                    }
                }
                "line-length" => {
                    value(&mut i, attached);
                }
                "quiet" | "silent" | "regexp-extended" | "separate" | "unbuffered"
                | "null-data" | "zero-terminated" | "debug" | "posix" | "sandbox"
                | "follow-symlinks" | "binary" | "help" | "version"
                    if attached.is_none() => {}
                _ => {
                    doubt.get_or_insert(format!(
                        "sed --{name} is an option the policy does not read"
                    ));
                }
            }
        } else {
            let letters = &word[1..];
            for (k, c) in letters.char_indices() {
                let rest = &letters[k + c.len_utf8()..];
                let attached = (!rest.is_empty()).then_some(rest);
                match c {
                    'n' | 'r' | 'E' | 's' | 'u' | 'z' | 'b' => continue,
                    // The rest of the word is the backup's suffix; with a `/` it names a
                    // folder the backup is written to.
                    'i' => {
                        in_place = true;
                        if rest.contains('/') {
                            doubt.get_or_insert(
                                "sed -i writes its backup into another folder".into(),
                            );
                        }
                    }
                    'e' => {
                        explicit = true;
                        match value(&mut i, attached) {
                            Some(s) => scripts.push(s),
                            None => {
                                doubt
                                    .get_or_insert("sed's script is only known at run time".into());
                            }
                        }
                    }
                    'l' => {
                        value(&mut i, attached);
                    }
                    'f' => {
                        doubt.get_or_insert("sed reads its script from a file".into());
                    }
                    other => {
                        doubt.get_or_insert(format!(
                            "sed -{other} is an option the policy does not read"
                        ));
                    }
                }
                break;
            }
        }
        i += 1;
    }
    // Without -e, the first operand is the script and the rest are files.
    let mut files = operands.into_iter();
    if !explicit {
        match files.next() {
            Some(Arg::Lit(s)) => scripts.push(s.clone()),
            Some(Arg::Dyn(_)) => {
                doubt.get_or_insert("sed's script is only known at run time".into());
            }
            None => {}
        }
    }
    let files: Vec<&Arg> = files.collect();
    if let Some(why) = doubt {
        ctx.mark(Class::Destructive, why);
    }
    if in_place {
        // The files are rewritten: judged as writes to them.
        if files.is_empty() || files.iter().any(|a| a.lit().is_none()) {
            ctx.mark(Class::Destructive, "sed edits files only known at run time");
        }
        for f in files {
            redirect_target(ctx.policy, f, true, ctx.found);
        }
        ctx.mark(Class::Mutating, "sed edits files in place");
    }
    // GNU sed joins its `-e` scripts with newlines, so a command may run across two; each is
    // judged alone and joined.
    let joined = scripts.join("\n");
    if scripts
        .iter()
        .chain(std::iter::once(&joined))
        .any(|s| runs_or_writes(s, true) || runs_or_writes(s, false))
    {
        ctx.mark(
            Class::Destructive,
            "the sed script runs commands (e), reads or writes files (r, w)",
        );
    }
}

/// Whether a sed script may hold a command or flag that runs, reads or writes: every
/// character outside regexes, replacements and labels counts as a command (the text of `a`,
/// `i` and `c` too, since seds end it differently). Whether a `[…]` in a regex may hold its delimiter
/// differs between sed's addresses and its `s` command, and between seds: the script is
/// scanned both ways (`brackets`), and it is trusted only when both find nothing.
fn runs_or_writes(script: &str, brackets: bool) -> bool {
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            's' | 'y' => {
                let Some(&delim) = chars.get(i) else {
                    return true;
                };
                if delim == '\n' || delim == '\\' {
                    return true;
                }
                i += 1;
                i = skip_field(&chars, i, delim, brackets && c == 's');
                i = skip_field(&chars, i, delim, false);
                // Flags, up to the end of the command.
                while let Some(&f) = chars.get(i) {
                    if matches!(f, ';' | '\n' | '}') {
                        break;
                    }
                    if matches!(f, 'e' | 'w' | 'W' | 'r' | 'R') {
                        return true;
                    }
                    i += 1;
                }
            }
            'e' | 'w' | 'W' | 'r' | 'R' => return true,
            '/' => i = skip_field(&chars, i, '/', brackets),
            '\\' => {
                let Some(&delim) = chars.get(i) else {
                    return true;
                };
                i = skip_field(&chars, i + 1, delim, brackets);
            }
            ':' | 'b' | 't' | 'T' => {
                // A label: letters, digits and `_` only; anything else is read as a
                // command (where sed may read it as part of the label, that is only stricter).
                while chars.get(i).is_some_and(|d| *d == ' ' || *d == '\t') {
                    i += 1;
                }
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
                {
                    i += 1;
                }
            }
            _ => {}
        }
    }
    false
}

/// Skips a regex or replacement up to its closing `delim`, from `i`; returns the index after
/// it. With `brackets`, a `[…]` bracket expression may hold the delimiter.
fn skip_field(chars: &[char], mut i: usize, delim: char, brackets: bool) -> usize {
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c == '\\' {
            i += 1;
        } else if c == delim {
            return i;
        } else if c == '[' && brackets {
            // `[]…]` and `[^]…]` hold a `]`; `[:alpha:]` and the like hold their own.
            if chars.get(i) == Some(&'^') {
                i += 1;
            }
            if chars.get(i) == Some(&']') {
                i += 1;
            }
            while let Some(&d) = chars.get(i) {
                i += 1;
                if d == '[' && matches!(chars.get(i), Some(':' | '.' | '=')) {
                    let kind = chars[i];
                    i += 1;
                    while i < chars.len() && !(chars[i] == kind && chars.get(i + 1) == Some(&']')) {
                        i += 1;
                    }
                    i += 2;
                } else if d == ']' {
                    break;
                }
            }
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::runs_or_writes;

    #[test]
    fn scripts_that_only_print_are_trusted() {
        for s in [
            "s/a/b/g",
            "1,5p",
            "/error/p",
            "s/[/]/x/g",
            ":a;N;$!ba;s/\\n/ /g",
            "/^$/d",
            "y/abc/xyz/",
            "s|/var/log|X|",
            "10q",
        ] {
            assert!(!runs_or_writes(s, true) && !runs_or_writes(s, false), "{s}");
        }
    }

    #[test]
    fn scripts_that_run_read_or_write_are_caught_whichever_way_brackets_read() {
        for s in [
            "1e id",
            "/[/]/e id",
            "1bx;:x e id",
            ":x e id",
            "s/x/id/e",
            "s/[/e/;e id;/]/x/",
            "1w /tmp/x",
            "$r /etc/passwd",
            "\\,x,e id",
            "/x/{e id\n}",
        ] {
            assert!(runs_or_writes(s, true) || runs_or_writes(s, false), "{s}");
        }
    }
}
