//! Programs that read, until an argument makes them run a program, write a file or change the
//! host: `sed`'s `e` and `w`, awk's pipes, `tar --to-command`, `less +!`, git's hooks and
//! pagers, `sort -o`, `date -s`. Each is read-only only in a form proven to do nothing more;
//! any other form goes to a person.

use super::Class;
use super::rules::{Ctx, has, lits, redirect_target};
use super::walk::Arg;

/// Judges `prog` if it is one of the readers above; false when it is not.
pub(super) fn reader(ctx: &mut Ctx, prog: &str, args: &[Arg]) -> bool {
    match prog {
        "sed" => sed(ctx, args),
        "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => awk(ctx, args),
        // tar's program-running forms here; what it writes is judged with the other
        // writers (`rules::program`).
        "tar" => {
            tar(ctx, args);
            return false;
        }
        "git" => git(ctx, args),
        "uniq" | "xxd" => {
            // `uniq IN OUT` and `xxd IN OUT` write their second file.
            let files: Vec<&str> = lits(args)
                .into_iter()
                .filter(|a| !a.starts_with('-'))
                .collect();
            if let Some(out) = files.get(1) {
                redirect_target(ctx.policy, &Arg::Lit(out.to_string()), true, ctx.found);
            }
            return false;
        }
        "hostname" => {
            if lits(args).iter().any(|a| !a.starts_with('-'))
                || has(args, &["-F", "--file", "-b", "--boot"])
            {
                ctx.mark(Class::Destructive, "hostname renames the host");
            }
        }
        "timedatectl" | "hostnamectl" => {
            if lits(args)
                .iter()
                .any(|a| a.starts_with("set-") || *a == "hostname")
            {
                ctx.mark(Class::Destructive, format!("{prog} changes the host"));
            }
        }
        "trap" => {
            // `trap CMD SIGNAL…` runs CMD later: judged as if it ran now. `trap -p`,
            // `trap -l` and `trap - SIG` (reset) only read or undo.
            let rest: Vec<&Arg> = args
                .iter()
                .skip_while(|a| a.lit().is_some_and(|s| s == "--"))
                .collect();
            match rest.first() {
                None => {}
                Some(Arg::Lit(a)) if matches!(a.as_str(), "-p" | "-l" | "-") => {}
                Some(cmd) if rest.len() > 1 => ctx.source(Some(cmd), "trap"),
                Some(_) => {}
            }
        }
        _ => {
            let Some(acting) = ACTING.iter().find(|a| a.programs.contains(&prog)) else {
                return false;
            };
            let acts = lits(args).iter().any(|a| {
                acting.prefixes.iter().any(|p| a.starts_with(p))
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && a[1..].contains(|c| acting.letters.contains(c)))
            });
            if acts {
                ctx.mark(Class::Destructive, format!("{prog} {}", acting.why));
            }
            if loads_files(prog, &lits(args)) {
                ctx.mark(
                    Class::Destructive,
                    format!("{prog}'s program reads files by a name the policy cannot judge"),
                );
            }
        }
    }
    true
}

/// jq's `import`/`include` and yq's `load…()` read the files they name, from inside the
/// program text, where no path check sees them.
fn loads_files(prog: &str, args: &[&str]) -> bool {
    let calls = |text: &str, name: &str| {
        text.match_indices(name).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '$')
        })
    };
    match prog {
        "jq" | "gojq" | "jaq" => args
            .iter()
            .any(|a| calls(a, "import") || calls(a, "include")),
        "yq" => args.iter().any(|a| calls(a, "load")),
        _ => false,
    }
}

/// A reader's arguments that make it act: words starting with one of `prefixes`, or short
/// option bundles holding one of `letters`.
struct Acting {
    programs: &'static [&'static str],
    prefixes: &'static [&'static str],
    letters: &'static str,
    why: &'static str,
}

const ACTING: &[Acting] = &[
    Acting {
        programs: &["less", "more", "most"],
        prefixes: &["+"],
        letters: "",
        why: "runs the commands given with +",
    },
    Acting {
        programs: &["man"],
        prefixes: &["-P", "--pager", "-H", "--html", "-l", "--local-file"],
        letters: "",
        why: "runs the pager or browser it is given",
    },
    Acting {
        programs: &["rg"],
        prefixes: &["--pre", "--search-zip", "-z"],
        letters: "",
        why: "runs a preprocessor program",
    },
    Acting {
        programs: &["sort"],
        prefixes: &[
            "--compress-program",
            "-o",
            "--output",
            "-T",
            "--temporary-directory",
            "--files0-from",
        ],
        letters: "",
        why: "runs a compressor, writes a file or reads file names from one",
    },
    Acting {
        programs: &["wc", "du"],
        prefixes: &["--files0-from"],
        letters: "",
        why: "reads the names of the files it reads from a file",
    },
    Acting {
        programs: &["jq", "gojq", "jaq"],
        prefixes: &["--from-file", "-L", "--library-path"],
        letters: "fL",
        why: "reads its program or modules from files the policy cannot see",
    },
    Acting {
        programs: &["tree"],
        prefixes: &["-o", "-R"],
        letters: "",
        why: "writes a file",
    },
    Acting {
        programs: &["yq"],
        prefixes: &["--inplace"],
        letters: "i",
        why: "edits a file in place",
    },
    Acting {
        programs: &["date"],
        prefixes: &["--set"],
        letters: "s",
        why: "sets the host's clock",
    },
    Acting {
        programs: &["dmesg"],
        prefixes: &[
            "--clear",
            "--read-clear",
            "--console-off",
            "--console-on",
            "--console-level",
        ],
        letters: "cCDEn",
        why: "clears the kernel log or its console",
    },
    Acting {
        programs: &["ss"],
        prefixes: &["--kill"],
        letters: "K",
        why: "closes connections",
    },
    Acting {
        programs: &["arp"],
        prefixes: &["-s", "-d", "-f", "--set", "--delete", "--file"],
        letters: "",
        why: "changes the host's neighbour table",
    },
    Acting {
        programs: &["timedatectl", "hostnamectl"],
        prefixes: &["set-", "hostname"],
        letters: "",
        why: "changes the host",
    },
];

/// sed: a script that only prints. `e` runs commands, `w`/`W` and `s///w` write files, `-i`
/// edits in place, `-f` reads a script the policy cannot see.
fn sed(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    let in_place = l.iter().any(|a| {
        *a == "--in-place"
            || a.starts_with("--in-place=")
            || (a.starts_with('-')
                && !a.starts_with("--")
                && a.len() > 1
                && a[1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphabetic())
                    .any(|c| c == 'i'))
    });
    if l.iter().any(|a| {
        matches!(*a, "-f" | "--file")
            || a.starts_with("--file=")
            || (a.starts_with("-f") && a.len() > 2)
    }) {
        ctx.mark(Class::Destructive, "sed reads its script from a file");
    }
    // The script: the first word that is not an option (or each `-e` value).
    let mut scripts = Vec::new();
    let mut i = 0;
    let mut explicit = false;
    while i < l.len() {
        let a = l[i];
        if matches!(a, "-l" | "--line-length") {
            i += 2;
            continue;
        }
        if matches!(a, "-e" | "--expression") {
            scripts.extend(l.get(i + 1));
            explicit = true;
            i += 2;
            continue;
        }
        if let Some(s) = a.strip_prefix("--expression=") {
            scripts.push(s);
            explicit = true;
        } else if !explicit && !a.starts_with('-') {
            scripts.push(a);
            break;
        }
        i += 1;
    }
    if in_place {
        // The files after the script are rewritten: judged as writes to them.
        let files: Vec<&str> = l
            .iter()
            .skip(i + 1)
            .filter(|a| !a.starts_with('-'))
            .copied()
            .collect();
        if files.is_empty() || args.iter().any(|a| a.lit().is_none()) {
            ctx.mark(Class::Destructive, "sed edits files only known at run time");
        }
        for f in files {
            redirect_target(ctx.policy, &Arg::Lit(f.to_string()), true, ctx.found);
        }
        ctx.mark(Class::Mutating, "sed edits files in place");
    }
    if scripts.iter().any(|s| sed_runs_or_writes(s)) {
        ctx.mark(
            Class::Destructive,
            "the sed script runs commands (e) or writes files (w)",
        );
    }
}

/// Whether a sed script may hold `e`, `w`, `W` or `r`-like commands, or an `e`/`w` flag. A
/// script is trusted only when every letter in a command position is one that prints, moves
/// or substitutes without those flags.
fn sed_runs_or_writes(script: &str) -> bool {
    // The commands and flags that only read: print, delete from the output, quit, next,
    // labels and branches, holds, substitution and transliteration with plain flags.
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            's' | 'y' => {
                // s/re/rep/flags: find the delimiter and skip two fields.
                let Some(delim) = chars.next() else {
                    return true;
                };
                let mut fields = 0;
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == delim {
                        fields += 1;
                        if fields == 2 {
                            break;
                        }
                    }
                }
                // Flags until a separator.
                while let Some(&f) = chars.peek() {
                    if f == ';' || f == '\n' || f == '}' {
                        break;
                    }
                    chars.next();
                    if matches!(f, 'e' | 'w' | 'W' | 'r' | 'R') {
                        return true;
                    }
                }
            }
            'e' | 'w' | 'W' | 'r' | 'R' | 'F' | 'z' => return true,
            '/' | '\\' => {
                // An address regex: skip to its end.
                let delim = if c == '\\' {
                    chars.next().unwrap_or('/')
                } else {
                    '/'
                };
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == delim {
                        break;
                    }
                }
            }
            ':' | 'b' | 't' | 'T' => {
                // A label runs to the end of the command.
                for d in chars.by_ref() {
                    if d == ';' || d == '\n' {
                        break;
                    }
                }
            }
            'a' | 'i' | 'c' => {
                // Text commands: the rest of the line is text.
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    false
}

/// awk: a program that only reads its input and prints. `system()`, pipes to or from
/// commands, `getline` from a file, and output redirected to a file all go to a person.
fn awk(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    if l.iter()
        .any(|a| a.contains("ENVIRON") || a.contains("PROCINFO"))
    {
        ctx.mark(
            Class::Denied,
            "the awk program reads the environment (ENVIRON)",
        );
    }
    if l.iter().any(|a| {
        matches!(
            *a,
            "-f" | "--file" | "-i" | "--include" | "-l" | "--load" | "-E" | "--exec"
        ) || a.starts_with("--file=")
            || a.starts_with("--include=")
            || a.starts_with("--load=")
            // mawk's `-W exec FILE` and other `-W` settings.
            || a.starts_with("-W")
    }) {
        ctx.mark(Class::Destructive, "awk loads a program from a file");
    }
    // The program text: the first word that is not an option or an option's value.
    let program = {
        let mut i = 0;
        let mut found = None;
        while i < l.len() {
            let a = l[i];
            if matches!(a, "-F" | "-v" | "--assign" | "--field-separator") {
                i += 2;
                continue;
            }
            if a.starts_with('-') {
                i += 1;
                continue;
            }
            found = Some(a);
            break;
        }
        found
    };
    let Some(program) = program else {
        return;
    };
    let code = awk_code(program);
    if code.contains("system")
        || code.contains('|')
        || code.contains("getline")
        || code.contains('>')
        || code.contains("fflush")
        || code.contains("close")
        || code.contains("@load")
        || code.contains("@include")
    {
        ctx.mark(
            Class::Destructive,
            "the awk program runs commands, reads other files or writes files",
        );
    }
}

/// An awk program without its string and regex literals, so `/a|b/` and `"x > y"` do not
/// look like pipes or redirections.
fn awk_code(program: &str) -> String {
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
            // A regex literal starts where an operand may start.
            '/' if matches!(
                last_significant,
                ' ' | '(' | ',' | '!' | '~' | '{' | ';' | '&' | '|' | '\n'
            ) =>
            {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == '/' {
                        break;
                    }
                }
                out.push_str("//");
                last_significant = '/';
            }
            _ => {
                // `>=` and `>` as comparison inside a condition are rare in diagnosis; a
                // person decides (fail closed).
                out.push(c);
                if !c.is_whitespace() {
                    last_significant = c;
                }
            }
        }
    }
    out
}

/// tar: listing and creating archives. Extracting (the archive decides which files it
/// writes), `--to-command`, `-I` (a compressor program), checkpoint actions, `-C` and
/// `--remove-files` go to a person.
fn tar(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    // Extracting writes whatever names the archive holds, over the working folder.
    let extracts = l.iter().enumerate().any(|(i, a)| {
        matches!(*a, "--extract" | "--get")
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('x'))
            || (i == 0
                && !a.starts_with('-')
                && a.contains('x')
                && !a.contains('/')
                && !a.contains('.'))
    });
    if extracts {
        ctx.mark(
            Class::Destructive,
            "tar extracts the files its archive names, over what is there",
        );
    }
    if l.iter().any(|a| {
        a.starts_with("--to-command")
            || a.starts_with("--use-compress-program")
            || a.starts_with("--checkpoint-action")
            || a.starts_with("--info-script")
            || a.starts_with("--new-volume-script")
            || a.starts_with("--rsh-command")
            || *a == "-F"
            || *a == "-I"
            || (a.starts_with("-I") && a.len() > 2)
            || a.starts_with("--remove-files")
            || a.starts_with("--directory")
            || *a == "-C"
            || a.starts_with("--absolute-names")
            || *a == "-P"
    }) {
        ctx.mark(
            Class::Destructive,
            "tar runs a program, removes files or writes outside its folder",
        );
    }
}

/// git: only its version and help are proven reads. Settings from the command line can run
/// programs (`-c core.pager=…`, aliases with `!`), `-C` moves elsewhere, and every other
/// subcommand reads a repository config that can name programs.
fn git(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    if l.iter().any(|a| {
        matches!(
            *a,
            "-c" | "-C" | "--exec-path" | "--git-dir" | "--work-tree" | "--config-env"
        ) || a.starts_with("--exec-path=")
            || a.starts_with("--git-dir=")
            || a.starts_with("--work-tree=")
            || a.starts_with("--config-env=")
            || (a.starts_with("-c") && a.len() > 2 && !a.starts_with("--"))
            || (a.starts_with("-C") && a.len() > 2)
    }) {
        ctx.mark(
            Class::Destructive,
            "git with settings or a folder from the command line (they can run programs)",
        );
        return;
    }
    let sub = l
        .iter()
        .find(|a| !a.starts_with('-'))
        .copied()
        .unwrap_or("");
    if matches!(sub, "version" | "help") || l.as_slice() == ["--version"] {
        return;
    }
    // Even `git status` reads the repository's own config, whose fsmonitor, hooks, pager and
    // diff drivers are programs; the repository may be one the agent wrote a moment ago.
    let why = if matches!(
        sub,
        "reset" | "clean" | "checkout" | "restore" | "rebase" | "push"
    ) {
        "git throws away or rewrites work".to_string()
    } else {
        format!(
            "git {sub} runs the programs its repository's config names (fsmonitor, hooks, pagers)"
        )
    };
    ctx.mark(Class::Destructive, why);
}
