//! awk: read-only only while its program reads its input and prints. `system()`, pipes to
//! or from commands, `getline`, output redirected to a file, gawk's `@` (extensions,
//! includes, indirect calls such as `@f()` with `f = "system"`) and writes to `ARGV` (which
//! choose the files it reads) go to a person. Options other than `-F` and `-v` go to a
//! person too: gawk's `-f`, `-i`, `-l`, `-d`, `-o`, `-p` and mawk's `-W` load or write files.

use super::Class;
use super::rules::Ctx;
use super::walk::Arg;

/// Judges one awk invocation.
pub(super) fn awk(ctx: &mut Ctx, args: &[Arg]) {
    if args.iter().filter_map(Arg::lit).any(|a| {
        ["ENVIRON", "PROCINFO", "SYMTAB"]
            .iter()
            .any(|n| a.contains(n))
    }) {
        ctx.mark(
            Class::Denied,
            "the awk program reads the environment (ENVIRON, PROCINFO, SYMTAB)",
        );
    }
    let mut programs: Vec<&Arg> = Vec::new();
    let mut explicit = false;
    let mut doubt: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let Some(a) = args[i].lit() else {
            break;
        };
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        let (name, attached) = match a.strip_prefix("--") {
            Some(long) => match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            },
            None => {
                let first = a[1..].chars().next().map_or(1, char::len_utf8);
                (
                    &a[1..1 + first],
                    Some(&a[1 + first..]).filter(|v| !v.is_empty()),
                )
            }
        };
        match name {
            "F" | "v" | "field-separator" | "assign" => {
                if attached.is_none() {
                    i += 1;
                }
            }
            // gawk's program text given as an option: judged as the program.
            "e" | "source" => {
                explicit = true;
                match attached {
                    Some(_) => programs.push(&args[i]),
                    None => {
                        i += 1;
                        if let Some(p) = args.get(i) {
                            programs.push(p);
                        }
                    }
                }
            }
            "version"
            | "help"
            | "posix"
            | "traditional"
            | "re-interval"
            | "sandbox"
            | "characters-as-bytes"
            | "use-lc-numeric"
            | "csv"
                if attached.is_none() => {}
            _ => {
                doubt.get_or_insert(format!(
                    "awk {a} is an option that may load, run or write files"
                ));
            }
        }
        i += 1;
    }
    if !explicit {
        programs.extend(args.get(i));
    }
    if let Some(why) = doubt {
        ctx.mark(Class::Destructive, why);
    }
    for program in programs {
        let Arg::Lit(text) = program else {
            ctx.mark(
                Class::Destructive,
                "the awk program is only known at run time",
            );
            continue;
        };
        // `--source=TEXT` and `-eTEXT` hold the program after their name.
        let text = text
            .strip_prefix("--source=")
            .or_else(|| text.strip_prefix("-e"))
            .unwrap_or(text);
        // Words that act are looked for in the whole text too, in case a literal was read
        // wrongly (a string in a string, a regex taken for a division).
        let raw = acts(text).filter(|w| !w.contains("pipes") && !w.contains("writes"));
        if let Some(why) = raw.or_else(|| acts(&code(text))) {
            ctx.mark(Class::Destructive, format!("the awk program {why}"));
        }
    }
}

/// What in an awk program (without its literals) makes it more than a reader.
fn acts(code: &str) -> Option<&'static str> {
    let word = |w: &str| {
        code.match_indices(w).any(|(i, _)| {
            let before = code[..i].chars().next_back();
            let after = code[i + w.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    };
    if word("system") || word("getline") || word("close") || word("fflush") {
        return Some("runs commands or reads other files");
    }
    if code.contains('@') {
        return Some("loads code or calls a function by a name made at run time (@)");
    }
    if word("ARGV") || word("ARGC") {
        return Some("changes which files it reads (ARGV)");
    }
    let bytes = code.as_bytes();
    if bytes.iter().enumerate().any(|(i, b)| {
        *b == b'|' && bytes.get(i + 1) != Some(&b'|') && (i == 0 || bytes[i - 1] != b'|')
    }) {
        return Some("pipes to or from a command");
    }
    if redirects(code) {
        return Some("writes to a file (print >)");
    }
    None
}

/// Whether a `>` sits in a `print` or `printf` statement outside parentheses, where awk
/// reads it as output to a file; elsewhere it compares (`$3 > 100`).
fn redirects(code: &str) -> bool {
    let chars: Vec<char> = code.chars().collect();
    let mut depth = 0i32;
    let mut print_at: Option<i32> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ';' | '\n' | '}' | '{' => print_at = None,
            '>' if print_at == Some(depth) => return true,
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i + 1)
                    .is_some_and(|d| d.is_alphanumeric() || *d == '_')
                {
                    i += 1;
                }
                let w: String = chars[start..=i].iter().collect();
                if w == "print" || w == "printf" {
                    print_at = Some(depth);
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// An awk program without its string and regex literals, so `/a|b/` and `"x > y"` do not
/// look like pipes or redirections.
fn code(program: &str) -> String {
    let mut out = String::new();
    let mut chars = program.chars().peekable();
    let mut last_significant = ' ';
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == '"' {
                        break;
                    }
                }
                out.push_str("\"\"");
                last_significant = '"';
            }
            // A regex literal starts where an operand may start: after anything but an
            // operand's end (a name, a number, `)`, `]`, a string). One holding a quote is
            // where awk and this reading could part: kept as code, so that what follows is
            // judged as code too.
            '/' if !(last_significant.is_alphanumeric()
                || matches!(last_significant, '_' | ')' | ']' | '"' | '.' | '$')) =>
            {
                let mut escaped = false;
                let mut literal = String::new();
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == '/' {
                        break;
                    }
                    literal.push(d);
                }
                if literal.contains('"') {
                    out.push_str("| a regex holding a quote |");
                } else {
                    out.push_str("//");
                }
                last_significant = '/';
            }
            _ => {
                out.push(c);
                if !c.is_whitespace() {
                    last_significant = c;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{acts, code};

    #[test]
    fn programs_that_compare_and_print_are_readers() {
        for p in [
            "$3 > 100 {print $1}",
            "{ if ($2 > max) max = $2 } END { print max }",
            "/a|b/ {print}",
            "{print \"x > y\"}",
            "{ print ($1 > 5) }",
            "$1 == \"x\" || $2 == \"y\"",
            "{sum += $1} END {printf \"%d\\n\", sum}",
        ] {
            assert_eq!(acts(&code(p)), None, "{p}");
        }
    }

    #[test]
    fn programs_that_act_are_caught() {
        for p in [
            "{print > \"/tmp/x\"}",
            "{print $1 >> \"f\"}",
            "{printf \"%s\", $0 > f}",
            "BEGIN{system(\"id\")}",
            "BEGIN{f=\"sys\" \"tem\"; @f(\"id\")}",
            "BEGIN{ARGV[1]=\"/etc/shadow\"; ARGC=2} {print}",
            "{print | \"sh\"}",
            "BEGIN{\"id\" | getline x}",
            "BEGIN{while((getline l < \"/etc/passwd\")>0) print l}",
            "@load \"filefuncs\"",
        ] {
            assert!(acts(&code(p)).is_some(), "{p}");
        }
    }
}
