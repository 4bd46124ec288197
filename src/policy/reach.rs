//! Where a client points: `curl`, `wget`, `nc`, `redis-cli`'s target and `docker`'s engine
//! are judged against the instance's endpoints, and so are the variables that redirect them
//! (`DOCKER_HOST`, `https_proxy`, …). Anything not the instance's is outside it.

use super::endpoints::{Target, canonical_host};
use super::rules::{Ctx, lits};
use super::walk::{self, Arg, Findings};
use super::{Class, Policy};

/// Marks a client's target that is not one of the instance's endpoints. Inside one of the
/// instance's containers (`docker exec NODE …`), loopback is that node.
/// Returns whether the target is the instance's.
pub(super) fn outside(ctx: &mut Ctx, what: &str, target: Option<Target>) -> bool {
    let Some(target) = target else {
        ctx.mark(
            Class::Destructive,
            format!("{what}: an address the policy cannot read"),
        );
        return false;
    };
    let loopback =
        matches!(&target, Target::Tcp { host, .. } if canonical_host(host) == "127.0.0.1");
    if (ctx.found.in_container && loopback) || ctx.policy.endpoints().reaches(&target) {
        return true;
    }
    // Outside the instance is refused in every mode: the agent's work is its instance.
    ctx.mark(
        Class::Denied,
        format!("{what} reaches {target}, outside the instance"),
    );
    false
}

/// Whether the docker client reaches the instance's engine endpoint (the one its commands
/// are given): another host (`-H`), context (`--context`, `-c`) or config folder is another
/// engine, and where the instance runs no containers every engine is someone else's.
pub(super) fn docker_engine(ctx: &mut Ctx, prog: &str, args: &[Arg]) -> bool {
    let endpoints = ctx.policy.endpoints();
    if endpoints.docker().is_none() {
        ctx.mark(
            Class::Denied,
            format!(
                "this instance's nodes are not containers: {prog} would reach an engine outside the instance"
            ),
        );
        return false;
    }
    let l = lits(args);
    let mut i = 0;
    while i < l.len() {
        let a = l[i];
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v)),
            _ if a.starts_with("-H") && a.len() > 2 => ("-H", Some(&a[2..])),
            _ if a.starts_with("-c") && a.len() > 2 && !a.starts_with("--") => {
                ("-c", Some(&a[2..]))
            }
            _ => (a, None),
        };
        let value = inline.or_else(|| l.get(i + 1).copied());
        let elsewhere = match opt {
            "-H" | "--host" => !value.is_some_and(|v| endpoints.is_docker(v)),
            "-c" | "--context" | "--config" | "--tlscacert" | "--tlscert" | "--tlskey" => true,
            _ if !a.starts_with('-') => break,
            _ => false,
        };
        if elsewhere {
            let shown = if matches!(opt, "-H" | "--host") {
                format!(" {}", value.unwrap_or("?"))
            } else {
                String::new()
            };
            ctx.mark(
                Class::Denied,
                format!(
                    "{prog} {opt}{shown} points the client at another engine than the instance's"
                ),
            );
            return false;
        }
        i += if inline.is_none()
            && matches!(
                opt,
                "-H" | "--host"
                    | "-c"
                    | "--context"
                    | "--config"
                    | "-l"
                    | "--log-level"
                    | "--tlscacert"
                    | "--tlscert"
                    | "--tlskey"
            ) {
            2
        } else {
            1
        };
    }
    true
}

/// Variables that point a client at another endpoint, or at a configuration that can.
const ENDPOINT_VARIABLES: &[(&str, &str)] = &[
    ("DOCKER_HOST", "the docker client's engine"),
    ("DOCKER_CONTEXT", "the docker client's engine"),
    (
        "DOCKER_CONFIG",
        "the docker client's configuration (and contexts)",
    ),
    ("DOCKER_CERT_PATH", "the docker client's TLS identity"),
    ("DOCKER_TLS_VERIFY", "the docker client's TLS"),
    ("KUBECONFIG", "the Kubernetes cluster"),
    ("CURL_HOME", "curl's configuration"),
    ("WGETRC", "wget's configuration"),
];

/// Variables that make a reader run a program of their choosing (a pager, a preprocessor,
/// an editor, git's hooks and transports): judged like the program they name would be,
/// they go to a person.
const PROGRAM_VARIABLES: &[&str] = &[
    "PAGER",
    "MANPAGER",
    "SYSTEMD_PAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "LESSKEY",
    "EDITOR",
    "VISUAL",
    "BROWSER",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "TAR_OPTIONS",
    "GZIP",
    "XZ_OPT",
    "PYTHONSTARTUP",
    "PERL5OPT",
    "NODE_OPTIONS",
    "RUBYOPT",
];

/// Variables bash gives the integer attribute itself. An assignment to RANDOM, SRANDOM,
/// OPTIND or HISTCMD is evaluated as arithmetic, however it is spelled (`RANDOM=$(…)`, `for
/// OPTIND in …`, `printf -v`); BASHPID ignores one (bash 5.2), and is refused alike.
const ARITHMETIC_VARIABLES: &[&str] = &["RANDOM", "SRANDOM", "OPTIND", "HISTCMD", "BASHPID"];

/// Variables that send traffic through a proxy.
const PROXY_VARIABLES: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "ftp_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "FTP_PROXY",
    "socks_proxy",
    "SOCKS_PROXY",
];

/// An assignment `NAME=value` (a command's prefix, `env`, `export`, `printf -v`): some
/// variables change what runs, or where a client connects. `known` is false when the value
/// is only known at run time.
pub(super) fn assignment(
    policy: &Policy,
    found: &mut Findings,
    text: &str,
    known: bool,
    exported: bool,
) {
    let (name, value) = text.split_once('=').unwrap_or((text, ""));
    // An element's index is evaluated as arithmetic (`arr[x]=1` reads x's value, and
    // `a[$(cmd)]` in it runs cmd): only a plain number is read as harmless.
    if let Some((_, index)) = name.split_once('[') {
        let index = index.trim_end_matches(['+', ']']);
        if !index.chars().all(|c| c.is_ascii_digit()) {
            found.mark(
                Class::Destructive,
                format!("sets an element of {name}: its index is evaluated, and may run a command"),
            );
        }
    }
    // `x=([i]=v)`: a compound assignment's keys are evaluated as arithmetic for an indexed
    // array (`a[$(cmd)]` in one runs cmd), and its elements are expanded as words.
    let compound = value.trim_start_matches(['"', '\'']).starts_with('(');
    if compound && value.contains(['[', '$', '`']) {
        found.mark(
            Class::Destructive,
            format!(
                "sets the array {name} from keys or words bash evaluates, which may run a command"
            ),
        );
    }
    // `BASH_CMDS[cat]=…` sets an element of BASH_CMDS, and `PS4+=…` appends to PS4: the
    // variable is the name before either.
    let name = name.split('[').next().unwrap_or(name).trim_end_matches('+');
    if ARITHMETIC_VARIABLES.contains(&name) {
        found.mark(
            Class::Denied,
            format!(
                "sets {name}, whose every value bash evaluates as arithmetic (a[$(…)] in it, or the name of a variable holding one, runs a command)"
            ),
        );
        return;
    }
    // A value that holds a command substitution as text (single-quoted) runs it wherever
    // bash evaluates the variable as arithmetic (`[[ 1 -eq a ]]`, `(( a ))`).
    if known && (value.contains("$(") || value.contains('`')) {
        found.mark(
            Class::Denied,
            format!("stores a command in {name}, which arithmetic on it would run"),
        );
        return;
    }
    if walk::DANGEROUS_VARIABLES.contains(&name) {
        found.mark(
            Class::Denied,
            format!("sets {name}, which changes what runs"),
        );
        return;
    }
    if PROGRAM_VARIABLES.contains(&name)
        || name.starts_with("GIT_")
        || name.starts_with("BASH_FUNC_")
    {
        found.mark(
            Class::Destructive,
            format!("sets {name}, which makes a program run another of its choosing"),
        );
        return;
    }
    if matches!(name, "CDPATH" | "HOME" | "OLDPWD" | "PWD") {
        found.mark(
            Class::Destructive,
            format!("sets {name}, which moves where `cd` (or `~`) goes"),
        );
        return;
    }
    if name.starts_with("OPERATOR_") {
        found.mark(
            Class::Denied,
            format!("sets {name}: the agent works on its own instance only"),
        );
        return;
    }
    // The generic ones, then those of each subject's clients (redis-cli's, etcdctl's).
    let subjects = policy
        .subjects()
        .iter()
        .flat_map(|k| k.endpoint_variables().iter());
    if let Some((_, what)) = ENDPOINT_VARIABLES
        .iter()
        .chain(subjects)
        .find(|(n, _)| *n == name)
    {
        if name == "DOCKER_HOST" && known && policy.endpoints().is_docker(value) {
            return;
        }
        found.mark(
            Class::Denied,
            format!("sets {name}, which points {what} outside the instance"),
        );
        return;
    }
    if exported && !PROXY_VARIABLES.contains(&name) && !harmless_for_programs(name) {
        found.mark(
            Class::Destructive,
            format!(
                "sets {name} for the programs it runs; only a few variables are known to do nothing more than format"
            ),
        );
        return;
    }
    // The instance runs no proxy: a proxy outside it is someone else's, and one at its own
    // ports (Redis, the fault proxy's control API) takes the request's lines as commands.
    // Only clearing one (`no_proxy`, or an empty value) is harmless.
    if PROXY_VARIABLES.contains(&name)
        && !value.is_empty()
        && !name.eq_ignore_ascii_case("no_proxy")
    {
        found.mark(
            Class::Destructive,
            format!("sets {name}: traffic would go through a proxy, and the instance runs none"),
        );
    }
}

/// Variables a program may be given that only shape its output or locale (many others
/// name files it loads, programs it runs or where it connects: `OPENSSL_CONF`, `CURL_HOME`,
/// `XDG_CONFIG_HOME`, `RIPGREP_CONFIG_PATH`, `SSLKEYLOGFILE`).
fn harmless_for_programs(name: &str) -> bool {
    matches!(
        name,
        "LANG"
            | "LANGUAGE"
            | "TZ"
            | "TERM"
            | "COLUMNS"
            | "LINES"
            | "NO_COLOR"
            | "CLICOLOR"
            | "TIMEFORMAT"
            | "POSIXLY_CORRECT"
            | "ETCDCTL_API"
            | "ETCDCTL_WRITE_OUT"
            | "ETCDCTL_DIAL_TIMEOUT"
            | "ETCDCTL_COMMAND_TIMEOUT"
            | "RUST_LOG"
            | "RUST_BACKTRACE"
    ) || name.starts_with("LC_")
}

/// Name and route tools (`dig`, `host`, `nslookup`, `getent hosts`, `ping`, `traceroute`):
/// a name looked up is a message to whoever answers for its domain, so they may name only
/// the instance's own hosts, asked of the system's resolver.
pub(super) fn names(ctx: &mut Ctx, prog: &str, args: &[Arg]) {
    const RECORD_TYPES: &[&str] = &[
        "A", "AAAA", "TXT", "MX", "NS", "SOA", "SRV", "CNAME", "PTR", "ANY", "CAA",
    ];
    if super::rules::any_dyn(args) {
        ctx.mark(
            Class::Destructive,
            format!("{prog} looks up a name only known at run time (a name can carry data out)"),
        );
        return;
    }
    let l = lits(args);
    let with_value: &[&str] = match prog {
        "dig" => &["-t", "-c", "-p", "-q", "-x", "-b", "-f", "-k", "-y"],
        "host" => &["-t", "-c", "-W", "-R", "-N", "-m"],
        "ping" | "ping6" => &[
            "-c", "-i", "-W", "-w", "-s", "-t", "-I", "-p", "-Q", "-l", "-M",
        ],
        "traceroute" | "tracepath" | "mtr" => &["-m", "-q", "-w", "-p", "-c", "-i", "-s", "-f"],
        "arp" => &["-i", "-H", "-t", "-A"],
        _ => &[],
    };
    if prog.starts_with("ping") && l.iter().any(|a| a.starts_with("-p")) {
        ctx.mark(Class::Destructive, "ping -p carries data in its packets");
    }
    // `-f` floods; `-i` below a second sends faster than one a second.
    if prog.starts_with("ping")
        && l.iter().enumerate().any(|(i, a)| {
            (a.starts_with('-') && !a.starts_with("--") && a.contains('f'))
                || (*a == "-i"
                    && l.get(i + 1)
                        .is_none_or(|v| v.parse::<f64>().map_or(true, |n| n < 1.0)))
        })
    {
        ctx.mark(Class::Destructive, "ping floods (-f, or -i under a second)");
    }
    // getent's options pick the sources it asks (`-s dns`); nslookup with no name reads
    // its names from its input, where the policy does not see them.
    if prog == "getent" && l.iter().any(|a| a.starts_with('-')) {
        ctx.mark(Class::Destructive, "getent with options of its own");
    }
    if prog == "nslookup" && !l.iter().any(|a| !a.starts_with('-')) {
        ctx.mark(
            Class::Destructive,
            "nslookup reads the names to look up from its input",
        );
    }
    if prog == "dig" && l.iter().any(|a| matches!(*a, "-f" | "-k" | "-y")) {
        ctx.mark(Class::Destructive, "dig reads names or keys from a file");
    }
    // A search domain is put after the name and travels with the question; a trace asks
    // the root servers. Only options that shape the answer are read as harmless.
    const DIG_PLUS: &[&str] = &[
        "short",
        "noall",
        "answer",
        "noanswer",
        "nocmd",
        "nostats",
        "noquestion",
        "question",
        "nocomments",
        "comments",
        "multiline",
        "nomultiline",
        "tcp",
        "notcp",
        "norecurse",
        "recurse",
        "time=",
        "tries=",
        "retry=",
        "timeout=",
    ];
    let unknown_option = l.iter().find(|a| match prog {
        "dig" => a.strip_prefix('+').is_some_and(|o| {
            !DIG_PLUS.iter().any(|k| {
                if k.ends_with('=') {
                    o.starts_with(k)
                } else {
                    o == *k
                }
            })
        }),
        "nslookup" => a.strip_prefix('-').is_some_and(|o| {
            ![
                "type=", "query=", "q=", "timeout=", "retry=", "debug", "nodebug",
            ]
            .iter()
            .any(|k| {
                if k.ends_with('=') {
                    o.starts_with(k)
                } else {
                    o == *k
                }
            })
        }),
        _ => false,
    });
    if let Some(o) = unknown_option {
        ctx.mark(
            Class::Destructive,
            format!(
                "{prog} {o}: an option that may send the question elsewhere or with more in it"
            ),
        );
    }
    let mut names = Vec::new();
    let mut i = 0;
    while i < l.len() {
        let a = l[i];
        // `dig -x ADDRESS` asks for ADDRESS's name: the address is in the question.
        if prog == "dig" && matches!(a, "-x" | "-q") {
            if let Some(addr) = l.get(i + 1) {
                names.push(*addr);
            }
            i += 2;
            continue;
        }
        if with_value.contains(&a) {
            i += 2;
            continue;
        }
        if a.starts_with('-') || (prog == "dig" && a.starts_with('+')) {
            i += 1;
            continue;
        }
        if let Some(server) = a.strip_prefix('@') {
            names.push(server);
        } else if !(matches!(prog, "dig" | "host")
            && RECORD_TYPES.contains(&a.to_ascii_uppercase().as_str()))
        {
            names.push(a);
        }
        i += 1;
    }
    if prog == "getent" {
        // `getent hosts|ahosts… NAME`: the first word is the database.
        match names.split_first() {
            Some((db, rest)) if db.contains("host") || *db == "networks" => names = rest.to_vec(),
            Some((db, _)) if db.contains("shadow") => {
                ctx.mark(Class::Denied, "getent shadow prints the password hashes");
                return;
            }
            _ => return,
        }
    }
    // A server other than the system's resolver (`dig @…`, `nslookup NAME SERVER`, a port
    // of its own) may be anyone's, on any port.
    let operands = names.len();
    if l.iter().any(|a| {
        a.starts_with('@') || a.starts_with("-port") || a.starts_with("-p") && prog != "ping"
    }) || (matches!(prog, "nslookup" | "host") && operands > 1)
    {
        ctx.mark(
            Class::Destructive,
            format!("{prog} asks a name server of its own choosing"),
        );
    }
    for name in names {
        // `x.localhost` resolves to loopback, but the question may still travel: only the
        // word itself, or an address, is loopback.
        let lower = name.to_ascii_lowercase();
        let spelled = lower.trim_end_matches('.') == "localhost" || !lower.contains("localhost");
        let loopback = spelled && (canonical_host(name) == "127.0.0.1" || lower == "localhost");
        if !spelled || (!loopback && !ctx.policy.endpoints().knows_host(name)) {
            ctx.mark(
                Class::Destructive,
                format!("{prog} names {name}, not one of the instance's hosts (a lookup can carry data out)"),
            );
        }
    }
}
