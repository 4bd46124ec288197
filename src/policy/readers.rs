//! Programs that read, until an argument makes them run a program, write a file or change the
//! host: `sed`'s `e` and `w`, awk's pipes, `tar --to-command`, `less +!`, git's hooks and
//! pagers, `sort -o`, `date -s`. Each is read-only only in a form proven to do nothing more;
//! any other form goes to a person.

use super::Class;
use super::rules::{Ctx, any_dyn, lits, redirect_target};
use super::walk::Arg;

/// Judges `prog` if it is one of the readers above; false when it is not.
pub(super) fn reader(ctx: &mut Ctx, prog: &str, args: &[Arg]) -> bool {
    match prog {
        "sed" => super::sed::sed(ctx, args),
        "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => super::awk::awk(ctx, args),
        // tar's program-running forms here; what it writes is judged with the other
        // writers (`rules::program`).
        "tar" => {
            tar(ctx, args);
            return false;
        }
        "git" => git(ctx, args),
        "uniq" | "xxd" => {
            // `uniq IN OUT` and `xxd IN OUT` write their second operand (`-` as the input is
            // standard input, and as the output standard output). Operands are found past
            // each option's value; a word neither an option nor an operand goes to a person.
            match in_out_operands(prog, args) {
                Some(files) => {
                    for out in files.into_iter().skip(1) {
                        match out.lit() {
                            Some("-") => {}
                            Some(p) => redirect_target(
                                ctx.policy,
                                &Arg::Lit(p.to_string()),
                                true,
                                ctx.found,
                            ),
                            None => ctx.mark(
                                Class::Destructive,
                                format!("{prog} writes to a file only known at run time"),
                            ),
                        }
                    }
                }
                None => ctx.mark(
                    Class::Destructive,
                    format!("{prog} is given a word beginning with - that the policy cannot read as an option, which it may take as the file it writes"),
                ),
            }
            return false;
        }
        "hostname" => {
            // Only the options that print; anything else (`-F FILE`, `-b`, a name, and
            // their long forms by any beginning) may rename the host.
            let prints = lits(args).iter().all(|a| {
                matches!(
                    *a,
                    "--short"
                        | "--fqdn"
                        | "--long"
                        | "--domain"
                        | "--ip-address"
                        | "--all-ip-addresses"
                        | "--all-fqdns"
                        | "--alias"
                        | "--nis"
                        | "--version"
                        | "--help"
                ) || (a.len() > 1
                    && a.starts_with('-')
                    && !a.starts_with("--")
                    && a[1..].chars().all(|c| "sfdiIAayVh".contains(c)))
            });
            if !prints || any_dyn(args) {
                ctx.mark(Class::Destructive, "hostname renames the host");
            }
        }
        "timedatectl" | "hostnamectl" => {
            // Only the verbs that show; options only those that shape the output.
            let l = lits(args);
            let reads = l.iter().all(|a| {
                matches!(
                    *a,
                    "status"
                        | "show"
                        | "list-timezones"
                        | "timesync-status"
                        | "show-timesync"
                        | "--no-pager"
                        | "--no-ask-password"
                        | "--all"
                        | "-a"
                        | "--json=short"
                        | "--json=pretty"
                        | "--monitor"
                        | "--value"
                        | "--help"
                        | "--version"
                )
            });
            if !reads || any_dyn(args) {
                ctx.mark(
                    Class::Destructive,
                    format!("{prog} changes the host, or reaches another (-H)"),
                );
            }
        }
        // `date MMDDhhmm…` (a word that is not a `+FORMAT`) sets the clock.
        "date"
            if lits(args).iter().enumerate().any(|(i, a)| {
                let value = i > 0
                    && matches!(
                        lits(args)[i - 1],
                        "-d" | "--date" | "-f" | "--file" | "-r" | "--reference" | "-I"
                    );
                !a.starts_with(['-', '+']) && !value
            }) =>
        {
            ctx.mark(
                Class::Destructive,
                "date with a date as its word sets the host's clock",
            );
        }
        "date" => {
            // Short bundles up to the first letter that takes a value (`-d`, `-f`, `-r`,
            // `-I`): the rest of the word is that value (`-Iseconds`).
            let sets = lits(args).iter().any(|a| {
                a.starts_with("--set")
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && a[1..]
                            .chars()
                            .take_while(|c| !"dfrI".contains(*c))
                            .any(|c| c == 's'))
            });
            if sets {
                ctx.mark(Class::Destructive, "date sets the host's clock");
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
                // `trap '' TERM` ignores the signal that ends a command at its time limit.
                Some(Arg::Lit(a)) if a.trim().is_empty() && rest.len() > 1 => ctx.mark(
                    Class::Destructive,
                    "trap '' ignores signals, so the command may outlive its time limit",
                ),
                // It runs later, from wherever a `cd` has taken the shell by then, so its
                // paths may name other files than they seem to: judged now, and a person
                // decides.
                Some(cmd) if rest.len() > 1 => {
                    ctx.source(Some(cmd), "trap");
                    ctx.mark(
                        Class::Destructive,
                        "trap runs its command later (at exit or on a signal), from wherever a cd has taken the shell by then",
                    );
                }
                Some(_) => {}
            }
        }
        _ => {
            let Some(acting) = ACTING.iter().find(|a| a.programs.contains(&prog)) else {
                return false;
            };
            let acts = lits(args).iter().any(|a| {
                // A long option by any beginning of its name (`--se` for `--set`), as GNU
                // getopt reads it.
                let abbreviated = a.strip_prefix("--").is_some_and(|long| {
                    let name = long.split('=').next().unwrap_or(long);
                    !name.is_empty()
                        && acting.prefixes.iter().any(|p| {
                            p.strip_prefix("--")
                                .is_some_and(|full| full.starts_with(name))
                        })
                });
                abbreviated
                    || acting.prefixes.iter().any(|p| a.starts_with(p))
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && a[1..].contains(|c| acting.letters.contains(c)))
            });
            if acts {
                ctx.mark(Class::Destructive, format!("{prog} {}", acting.why));
            }
            // man reads a word holding a slash as a file, and follows its `.so` lines to
            // any other file.
            if prog == "man"
                && lits(args)
                    .iter()
                    .any(|a| !a.starts_with('-') && a.contains('/'))
            {
                ctx.mark(
                    Class::Destructive,
                    "man reads a page from a file by its path, whose .so lines may name any file",
                );
            }
            // arp given a host looks its name up.
            if prog == "arp" {
                super::reach::names(ctx, prog, args);
            }
            if matches!(prog, "jq" | "gojq" | "jaq" | "yq")
                && lits(args).iter().any(|a| reads_env(a))
            {
                ctx.mark(
                    Class::Denied,
                    format!("{prog}'s program reads the environment (env, $ENV)"),
                );
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

/// jq's `env` and `$ENV` (and yq's, where yq wraps jq) hold every variable of the process.
fn reads_env(program: &str) -> bool {
    program.contains("$ENV")
        || program.match_indices("env").any(|(i, _)| {
            let before = program[..i].chars().next_back();
            let after = program[i + 3..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '$')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
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
        "yq" => args
            .iter()
            .any(|a| calls(a, "load") || calls(a, "import") || calls(a, "include")),
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
        programs: &["pidstat"],
        prefixes: &["-e"],
        letters: "",
        why: "runs the program it is given",
    },
    Acting {
        programs: &["shuf"],
        prefixes: &["-o", "--output", "--random-source"],
        letters: "o",
        why: "writes its output to a file, or reads another as its randomness",
    },
    Acting {
        programs: &["less", "more", "most"],
        prefixes: &["+", "--lesskey", "-k"],
        letters: "",
        why: "runs the commands given with + or a lesskey file names",
    },
    Acting {
        programs: &["man"],
        prefixes: &[
            "-P",
            "--pager",
            "-H",
            "--html",
            "-l",
            "--local-file",
            "-C",
            "--config-file",
            "-M",
            "--manpath",
            "-p",
            "--preprocessor",
            // A page file by its path: its `.so` lines inline any file.
            "/",
            ".",
        ],
        letters: "",
        why: "runs the pager or browser it is given",
    },
    Acting {
        programs: &["rg"],
        prefixes: &["--pre", "--search-zip", "-z", "--hostname-bin"],
        letters: "",
        why: "runs a preprocessor program",
    },
    Acting {
        programs: &["sort"],
        prefixes: &[
            "--compress-program",
            "--output",
            "--temporary-directory",
            "--files0-from",
        ],
        letters: "oT",
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
        prefixes: &["-o", "-R", "--fromfile"],
        letters: "o",
        why: "writes a file",
    },
    Acting {
        programs: &["yq"],
        // Both yqs: Go's (`--inplace`, `--split-exp`) and the jq wrapper (`--in-place`, jq's
        // `-f` and `-L`).
        prefixes: &[
            "--inplace",
            "--in-place",
            "--split-exp",
            "--from-file",
            "--expression-file",
            "-L",
            "--library-path",
        ],
        letters: "isfL",
        why: "edits files in place, writes files or reads its expression or modules from files",
    },
    Acting {
        programs: &["dmesg"],
        prefixes: &[
            "--clear",
            "--read-clear",
            "--console-off",
            "--console-on",
            "--console-level",
            "--file",
        ],
        // `-F/PATH`: a file named in its option, which the path checks (whole words) miss.
        letters: "cCDEnF",
        why: "clears the kernel log or its console, or reads a file its option names",
    },
    // Files named in their options (`-F/PATH`, `-uf/PATH`, `-bf/PATH`) escape the path
    // checks, which judge whole words; `file -C` writes a compiled magic file.
    Acting {
        programs: &["date"],
        prefixes: &["--file"],
        letters: "f",
        why: "reads the file its option names, printing its lines",
    },
    Acting {
        programs: &["file"],
        prefixes: &["--files-from", "--magic-file", "--compile"],
        letters: "fmC",
        why: "reads the names or the magic it uses from a file its option names, or writes one",
    },
    Acting {
        programs: &["hexdump"],
        prefixes: &["--format-file"],
        letters: "f",
        why: "reads its format from the file its option names, printing its lines",
    },
    Acting {
        programs: &["ss"],
        prefixes: &["--kill", "--diag"],
        letters: "KD",
        why: "closes connections or writes a file",
    },
    Acting {
        programs: &["arp"],
        prefixes: &["--set", "--delete", "--file"],
        letters: "sdDf",
        why: "changes the host's neighbour table",
    },
];

/// tar: listing and creating archives. Extracting (the archive decides which files it
/// writes), programs it runs (`--to-command`, `-I`, checkpoint actions, scripts, rsh), files
/// it removes or writes beside the archive, `-C`, `-P`, names read from a file (`-T`) and
/// archives on another host (`host:file`) go to a person. Short options are read in
/// bundles, old style (`tar cxf`) too; a letter of these anywhere in a bundle counts.
fn tar(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    let bundles: Vec<&str> = l
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a.strip_prefix('-') {
            Some(b) if !b.starts_with('-') => Some(b),
            // The first word without a dash is a bundle, old style.
            None if i == 0 && !a.contains(['/', '.']) => Some(a),
            _ => None,
        })
        .collect();
    let letter = |set: &str| bundles.iter().any(|b| b.contains(|c| set.contains(c)));
    let long = |names: &[&str]| {
        l.iter().any(|a| {
            names
                .iter()
                .any(|n| *a == *n || a.strip_prefix(n).is_some_and(|r| r.starts_with('=')))
        })
    };
    if letter("x") || long(&["--extract", "--get"]) {
        ctx.mark(
            Class::Destructive,
            "tar extracts the files its archive names, over what is there",
        );
    }
    if letter("IFCPTgU")
        || long(&[
            "--to-command",
            "--use-compress-program",
            "--checkpoint-action",
            "--info-script",
            "--new-volume-script",
            "--rsh-command",
            "--rmt-command",
            "--remove-files",
            "--directory",
            "--absolute-names",
            "--files-from",
            "--listed-incremental",
            "--index-file",
            "--volno-file",
            "--unlink-first",
            "--recursive-unlink",
        ])
    {
        ctx.mark(
            Class::Destructive,
            "tar runs a program, removes files, reads names from a file or writes outside its folder",
        );
    }
    // `-f host:file` reaches the host through rsh, unless `--force-local`.
    if !l.contains(&"--force-local")
        && l.iter().any(|a| {
            let value = a.strip_prefix("--file=").unwrap_or(a);
            !value.starts_with("--") && value.contains(':')
        })
    {
        ctx.mark(
            Class::Destructive,
            "tar reaches an archive on another host (host:file)",
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

/// The operands of `uniq` or `xxd` (their input and output files), past each option's value;
/// `None` when a word beginning with `-` is none of their options. uniq reads its options
/// with GNU getopt (bundles, `--` ends them, long ones by any unambiguous beginning); xxd by
/// hand, taking any other word beginning with `-` as a file (`xxd - -/../x` writes `x`).
fn in_out_operands<'a>(prog: &str, args: &'a [Arg]) -> Option<Vec<&'a Arg>> {
    const XXD_FLAGS: &[&str] = &[
        "-a",
        "-autoskip",
        "-b",
        "-bits",
        "-C",
        "-capitalize",
        "-d",
        "-decimal",
        "-E",
        "-EBCDIC",
        "-e",
        "-h",
        "-help",
        "-i",
        "-include",
        "-p",
        "-ps",
        "-postscript",
        "-plain",
        "-r",
        "-revert",
        "-u",
        "-uppercase",
        "-v",
        "-version",
    ];
    const XXD_WITH_VALUE: &[&str] = &[
        "-c",
        "-cols",
        "-g",
        "-groupsize",
        "-l",
        "-len",
        "-n",
        "-name",
        "-o",
        "-offset",
        "-s",
        "-seek",
        "-R",
    ];
    const UNIQ_LONG: &[(&str, bool)] = &[
        ("all-repeated", false),
        ("check-chars", true),
        ("count", false),
        ("group", false),
        ("help", false),
        ("ignore-case", false),
        ("repeated", false),
        ("skip-chars", true),
        ("skip-fields", true),
        ("unique", false),
        ("version", false),
        ("zero-terminated", false),
    ];
    let mut out = Vec::new();
    let mut ended = false;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let Some(w) = a.lit() else {
            out.push(a);
            continue;
        };
        if ended || w == "-" || !w.starts_with('-') {
            out.push(a);
            continue;
        }
        if prog == "xxd" {
            let attached = ["-c", "-g", "-l", "-o", "-s"].iter().any(|o| {
                w.strip_prefix(o).is_some_and(|v| {
                    !v.is_empty()
                        && v.trim_start_matches(['+', '-'])
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric())
                })
            });
            if XXD_WITH_VALUE.contains(&w) {
                i += 1;
            } else if !XXD_FLAGS.contains(&w) && !attached {
                return None;
            }
        } else if w == "--" {
            ended = true;
        } else if let Some(long) = w.strip_prefix("--") {
            if long.contains('=') {
                continue;
            }
            let matching: Vec<bool> = UNIQ_LONG
                .iter()
                .filter(|(name, _)| name.starts_with(long))
                .map(|(_, value)| *value)
                .collect();
            match matching.as_slice() {
                [true] => i += 1,
                [false] => {}
                _ => return None,
            }
        } else {
            // A bundle: `f`, `s` or `w` takes the rest, or else the next word.
            let letters = &w[1..];
            if let Some(at) = letters.find(['f', 's', 'w'])
                && at + 1 == letters.len()
            {
                i += 1;
            }
        }
    }
    Some(out)
}
