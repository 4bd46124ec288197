//! What each program does to a cluster and its host, by its arguments.
//!
//! Unknown programs go to a person (destructive); programs that only read are read-only;
//! anything that loses data, flushes state, leaves the project's network, escalates
//! privileges, reads credentials or the environment, or touches the operator's own state is
//! denied.

use std::path::Path;

use super::endpoints::Target;
use super::environment::{glob_matches, process_dir, reads_environment, reads_recursively};
use super::http::{curl, wget};
use super::reach::{assignment, docker_engine, names, outside};
use super::walk::{self, Arg, Findings, Invocation};
use super::{Class, Policy};

/// The program's name as run: `/usr/bin/rm` is `rm`.
pub fn program_name(arg0: &str) -> String {
    arg0.rsplit('/').next().unwrap_or(arg0).to_string()
}

/// Programs that fetch from the network, for "download piped into a shell".
pub fn is_download(program: &str) -> bool {
    matches!(program, "curl" | "wget")
}

const SHELLS: &[&str] = &["sh", "bash", "dash", "zsh", "ksh", "ash", "busybox", "fish"];
pub(super) const INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "php",
    "lua",
    "tclsh",
    "osascript",
    "pwsh",
];

/// Only reads: any arguments, no effect (credential and state checks still apply).
const READ_ONLY: &[&str] = &[
    "ls",
    "cat",
    "head",
    "tail",
    "less",
    "more",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "wc",
    "sort",
    "uniq",
    "cut",
    "tr",
    "column",
    "jq",
    "yq",
    "echo",
    "printf",
    "date",
    "uptime",
    "whoami",
    "id",
    "hostname",
    "uname",
    "ps",
    "pgrep",
    "pidof",
    "free",
    "df",
    "du",
    "ss",
    "netstat",
    "lsof",
    "test",
    "[",
    "true",
    "false",
    "sleep",
    "which",
    "type",
    "stat",
    "file",
    "diff",
    "cmp",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "tree",
    "basename",
    "dirname",
    "realpath",
    "readlink",
    "seq",
    "nproc",
    "vmstat",
    "iostat",
    "mpstat",
    "top",
    "pwd",
    "cd",
    "zcat",
    "zgrep",
    "strings",
    "od",
    "xxd",
    "hexdump",
    "base64",
    "nl",
    "tac",
    "rev",
    "fold",
    "fmt",
    "paste",
    "join",
    "comm",
    "expand",
    "locale",
    "tty",
    "lscpu",
    "lsblk",
    "lsmem",
    "dmesg",
    "getconf",
    "man",
    "bc",
    "expr",
    ":",
    "exit",
    "return",
    "trap",
    "unset",
    "wait",
    "jobs",
    "whereis",
    "timedatectl",
    "hostnamectl",
    "yes",
    "look",
    "cksum",
    "sum",
    "tput",
    "clear",
    "who",
    "pidstat",
];

/// Destroy a device or the host: never.
const DENIED: &[(&str, &str)] = &[
    ("mkfs", "formats a file system"),
    ("mke2fs", "formats a file system"),
    ("mkswap", "formats a device"),
    ("fdisk", "partitions a disk"),
    ("sfdisk", "partitions a disk"),
    ("parted", "partitions a disk"),
    ("wipefs", "wipes a device"),
    ("blkdiscard", "discards a device"),
    ("shutdown", "shuts the host down"),
    ("reboot", "reboots the host"),
    ("halt", "halts the host"),
    ("poweroff", "powers the host off"),
    ("telinit", "changes the run level"),
    ("sudo", "escalates privileges"),
    ("doas", "escalates privileges"),
    ("su", "switches user"),
    ("runuser", "switches user"),
    ("pkexec", "escalates privileges"),
    ("printenv", "dumps the environment"),
    ("history", "dumps the shell history"),
    ("alias", "redefines commands"),
    (
        "sqlite3",
        "opens a SQLite database (the operator's DB is off limits)",
    ),
    ("passwd", "changes passwords"),
    ("chpasswd", "changes passwords"),
    ("visudo", "edits privileges"),
    ("insmod", "loads kernel modules"),
    ("rmmod", "unloads kernel modules"),
    ("modprobe", "loads kernel modules"),
    ("kexec", "replaces the running kernel"),
];

pub(super) struct Ctx<'a> {
    pub policy: &'a Policy,
    pub depth: u32,
    pub found: &'a mut Findings,
}

impl Ctx<'_> {
    pub fn mark(&mut self, class: Class, reason: impl Into<String>) {
        self.found.mark(class, reason);
    }

    /// Classifies a command that another one runs (`xargs rm`, `docker exec c ls`).
    fn nested(&mut self, argv: Vec<Arg>, after_download: bool) {
        if argv.is_empty() {
            return;
        }
        if self.depth >= 6 {
            self.mark(Class::Denied, "nested too deeply to check");
            return;
        }
        let inv = Invocation {
            argv,
            after_download,
        };
        classify(self.policy, &inv, self.depth + 1, self.found);
        self.found.invocations.push(inv);
    }

    /// Classifies shell source that a program runs (`sh -c`, `eval`, `watch`).
    pub(super) fn source(&mut self, arg: Option<&Arg>, what: &str) {
        match arg {
            Some(Arg::Lit(src)) => walk::walk_source(self.policy, src, self.depth + 1, self.found),
            Some(Arg::Dyn(_)) => self.mark(
                Class::Denied,
                format!("{what} runs a command only known at run time"),
            ),
            None => self.mark(Class::Denied, format!("{what} without a command reads commands from its input, which cannot be checked")),
        }
    }
}

/// Classifies one program invocation into `found`.
pub fn classify(policy: &Policy, inv: &Invocation, depth: u32, found: &mut Findings) {
    let mut ctx = Ctx {
        policy,
        depth,
        found,
    };
    let Some(arg0) = inv.argv.first().and_then(Arg::lit) else {
        ctx.mark(Class::Denied, "cannot tell what program runs");
        return;
    };
    let prog = program_name(arg0);
    let spelled = super::options::spell_out(&prog, &inv.argv[1..]);
    if let Some(why) = spelled.as_ref().and_then(|s| s.doubt.clone()) {
        ctx.mark(Class::Destructive, why);
    }
    let args = spelled
        .as_ref()
        .map_or(&inv.argv[1..], |s| s.args.as_slice());
    if arg0.contains('/') && !system_program(arg0) {
        ctx.mark(
            Class::Destructive,
            format!(
                "runs {arg0}: a program named by a path outside the system's folders may be any program, whatever its name"
            ),
        );
        return;
    }
    if prog != "operator" {
        // `docker exec C …`: the paths after the container's name are that container's.
        let exec = prog == "docker" && args.first().and_then(Arg::lit) == Some("exec");
        let was = ctx.found.in_container;
        ctx.found.in_container |= exec;
        check_paths(&mut ctx, args);
        ctx.found.in_container = was;
    }
    if inv.after_download
        && (SHELLS.contains(&prog.as_str()) || INTERPRETERS.contains(&prog.as_str()))
        && !json_tool(&prog, args)
    {
        ctx.mark(Class::Denied, "pipes a download into a shell");
        return;
    }
    program(&mut ctx, &prog, args, inv);
}

/// `python3 -m json.tool [options]`: the standard library's pretty-printer, which reads
/// JSON from its input and runs nothing of it.
fn json_tool(prog: &str, args: &[Arg]) -> bool {
    let l = lits(args);
    matches!(prog, "python3" | "python")
        && l.len() == args.len()
        && l.starts_with(&["-m", "json.tool"])
        && l[2..].iter().filter(|a| !a.starts_with('-')).count() <= 1
        && l[2..].iter().all(|a| {
            !a.starts_with('-')
                || matches!(
                    *a,
                    "--sort-keys"
                        | "--compact"
                        | "--no-ensure-ascii"
                        | "--json-lines"
                        | "--tab"
                        | "--no-indent"
                        | "--indent"
                )
                || a.parse::<u8>().is_ok()
        })
}

/// The folders whose programs are what their names say: the system's own.
const SYSTEM_DIRS: &[&str] = &[
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

/// Whether a program named by its path is the system's program of that name, or the
/// operator's own binary (the one running this policy).
fn system_program(path: &str) -> bool {
    let p = std::path::Path::new(path);
    if !p.is_absolute() {
        return false;
    }
    let p = super::normalize(p);
    if p.parent()
        .and_then(|d| d.to_str())
        .is_some_and(|d| SYSTEM_DIRS.contains(&d))
    {
        return true;
    }
    std::env::current_exe().is_ok_and(|exe| exe == p)
}

pub(super) fn lits(args: &[Arg]) -> Vec<&str> {
    args.iter().filter_map(Arg::lit).collect()
}

/// The words a program takes as its operands (files, folders): every word that is not an
/// option, a lone `-` among them, and every word after `--`, however it begins (`tee --
/// -/../x` writes `-/../x`).
pub(super) fn operands(args: &[Arg]) -> Vec<&Arg> {
    let mut out = Vec::new();
    let mut ended = false;
    for a in args {
        match a.lit() {
            Some("--") if !ended => ended = true,
            Some(l) if !ended && l.starts_with('-') && l != "-" => {}
            _ => out.push(a),
        }
    }
    out
}

/// [`operands`] that are written out.
pub(super) fn operand_lits(args: &[Arg]) -> Vec<&str> {
    operands(args).into_iter().filter_map(Arg::lit).collect()
}

pub(super) fn has(args: &[Arg], flags: &[&str]) -> bool {
    args.iter().filter_map(Arg::lit).any(|a| flags.contains(&a))
}

/// Short flags may be bundled: `-rf` holds `r`.
pub(super) fn has_short(args: &[Arg], letter: char) -> bool {
    args.iter()
        .filter_map(Arg::lit)
        .any(|a| a.starts_with('-') && !a.starts_with("--") && a[1..].contains(letter))
}

pub(super) fn any_dyn(args: &[Arg]) -> bool {
    args.iter().any(Arg::is_dyn)
}

/// Credentials, the environment, and the operator's DB: checked on every argument.
fn check_paths(ctx: &mut Ctx, args: &[Arg]) {
    for a in lits(args) {
        // `--data @file`, `-F x=@file`, `key=value`: look at the path part too.
        let candidates = [
            a,
            a.trim_start_matches('@'),
            a.rsplit(['=', '@']).next().unwrap_or(a),
        ];
        for (i, c) in candidates.into_iter().enumerate() {
            // Most words are one path, the same three times: judged once. `/dev/fd/N` is
            // the pipe of a process substitution (`diff <(…) <(…)`).
            if candidates[..i].contains(&c)
                || c.strip_prefix("/dev/fd/")
                    .is_some_and(|n| n.parse::<u32>().is_ok())
                || matches!(c, "/dev/stdin" | "/dev/stdout" | "/dev/stderr")
            {
                continue;
            }
            let globbed = ctx.found.globs.contains(a);
            // As written, and as the kernel will see it (`/etc//shadow`, `/etc/./shadow`).
            let resolved = ctx.policy.resolve(c.trim_matches(['\'', '"']));
            let as_seen = resolved.to_string_lossy();
            // The instance's own folder and the state are judged below, not as the home
            // folder they may sit in (a state dir under /root).
            let own = [
                &ctx.policy.protected().cwd,
                &ctx.policy.protected().state_dir,
            ]
            .iter()
            .any(|d| !d.as_os_str().is_empty() && resolved.starts_with(d));
            if let Some(why) = credential(c)
                .or_else(|| (!own).then(|| credential(&as_seen)).flatten())
                .or_else(|| globbed.then(|| system_secret(&resolved, own)).flatten())
                // Inside the instance's own container, its data folder is the instance's.
                .filter(|why| !(ctx.found.in_container && *why == HOST_DATA))
            {
                ctx.mark(Class::Denied, format!("reads credentials ({why}: {c})"));
                return;
            }
            // Before `..` is resolved too: `/proc/1/root/../etc/shadow` goes through the door.
            let raw = Path::new(c.trim_matches(['\'', '"']));
            if let Some(door) = proc_door(&resolved, globbed)
                .or_else(|| raw.is_absolute().then(|| proc_door(raw, globbed)).flatten())
            {
                ctx.mark(
                    Class::Denied,
                    format!("reaches files through /proc/…/{door}, another door to any file or process ({c})"),
                );
                return;
            }
            if touches_db(ctx.policy, c, globbed) {
                ctx.mark(
                    Class::Denied,
                    format!("touches the operator's own DB ({c}); use `operator tickets …`"),
                );
                return;
            }
            if let Some(why) = operator_private(ctx.policy, c, globbed) {
                ctx.mark(Class::Denied, format!("{why} ({c})"));
                return;
            }
        }
    }
}

/// Why a read of the host's own etcd or Redis data is refused (the instance's are in its
/// folder, or in its containers).
const HOST_DATA: &str = "the data of the host's own etcd or Redis, not the instance's";

fn credential(path: &str) -> Option<&'static str> {
    let p = path.trim_matches(['\'', '"']);
    let base = p.rsplit('/').next().unwrap_or(p);
    let checks: [(bool, &'static str); 19] = [
        (
            p.starts_with("/dev/tty") || p.starts_with("/dev/pts/") || p == "/dev/console",
            "the person's terminal (what they type, what they see)",
        ),
        (
            p.contains(".ssh/")
                || p.ends_with(".ssh")
                || base.starts_with("id_rsa")
                || base.starts_with("id_ed25519")
                || base.starts_with("id_ecdsa"),
            "SSH keys",
        ),
        (
            base.ends_with(".pem")
                || base.ends_with(".key")
                || base.ends_with(".p12")
                || base.ends_with(".pfx"),
            "a private key",
        ),
        (
            p.contains(".aws/") || base == "credentials" || p.contains(".gnupg"),
            "cloud or GPG credentials",
        ),
        (
            base == ".netrc"
                || base == ".pgpass"
                || base == ".git-credentials"
                || base == ".npmrc"
                || base == ".pypirc",
            "stored passwords",
        ),
        (
            p.contains(".kube/config") || p.contains(".docker/config.json"),
            "cluster or registry credentials",
        ),
        (
            [
                "/run/credentials/",
                "/etc/credstore/",
                "/etc/credstore.encrypted/",
            ]
            .iter()
            .any(|d| p.starts_with(d)),
            "a service's credentials",
        ),
        (
            p.starts_with("/var/lib/etcd/") || p.starts_with("/var/lib/redis/"),
            HOST_DATA,
        ),
        (
            p.starts_with("/etc/") && (base.starts_with("shadow") || base.starts_with("gshadow"))
                || p.starts_with("/etc/sudoers")
                || p.starts_with("/var/backups/")
                    && (base.contains("shadow") || base.contains("passwd"))
                || p == "/etc/security/opasswd",
            "system passwords",
        ),
        (
            p.starts_with("/etc/ssh/") && base.contains("key") && !base.ends_with(".pub")
                || base.ends_with(".keytab"),
            "the host's private keys",
        ),
        (
            matches!(p, "/proc/kcore" | "/dev/mem" | "/dev/kmem" | "/dev/port")
                || base.starts_with("swap") && !p.starts_with("/proc/"),
            "memory, where every secret is",
        ),
        (
            [
                "/dev/sd",
                "/dev/vd",
                "/dev/xvd",
                "/dev/nvme",
                "/dev/hd",
                "/dev/mmcblk",
                "/dev/dm-",
                "/dev/mapper/",
                "/dev/disk/",
                "/dev/loop",
                "/dev/md",
                "/dev/sr",
            ]
            .iter()
            .any(|d| p.starts_with(d)),
            "a disk, where every file is",
        ),
        (
            // A glob names `environ` only in a folder that may be /proc's: `logs/*` and a
            // lone `*` (Redis's KEYS) do not.
            (glob_matches(base, "environ")
                && (base == "environ"
                    || p.rsplit_once('/')
                        .is_some_and(|(dir, _)| dir.split('/').any(|c| glob_matches(c, "proc")))))
                || p == "/etc/environment",
            "a process's environment",
        ),
        (
            base == ".env" || base.ends_with(".env") && !base.contains('/'),
            "an environment file",
        ),
        (
            p.contains("/var/run/secrets") || p.contains("/run/secrets"),
            "mounted secrets",
        ),
        (
            base.ends_with("_history")
                || base.ends_with("histfile")
                || base == ".lesshst"
                || base == ".my.cnf"
                || base == ".s3cfg"
                || base == "rclone.conf"
                || base == "auth.json"
                || base == "user-data",
            "a history of commands typed, passwords among them",
        ),
        (
            [
                ".claude/",
                ".cargo/credentials",
                ".config/gh/",
                ".config/gcloud/",
                ".local/share/keyrings",
                ".password-store",
                "/etc/mysql/debian.cnf",
                "/etc/NetworkManager/system-connections",
                "/etc/wpa_supplicant",
                "/etc/ppp/chap-secrets",
                "/etc/ppp/pap-secrets",
                "/etc/ssl/private",
                "/etc/letsencrypt",
                "/etc/docker/",
                "/etc/kubernetes",
                "/etc/wireguard",
                "/etc/ceph",
                "/etc/apt/auth.conf",
                "/etc/redis/",
                "/var/lib/cloud",
            ]
            .iter()
            .any(|d| p.contains(d) || p.ends_with(d.trim_end_matches('/'))),
            "stored credentials",
        ),
        (
            base.contains("api_key") || base.contains("apikey") || base.contains("token"),
            "a token file",
        ),
        (p.starts_with("/root/"), "the root user's files"),
    ];
    checks.into_iter().find(|(hit, _)| *hit).map(|(_, why)| why)
}

/// The system's secrets a glob could name (`/etc/shado?`, `/etc/sudoers*`,
/// `/etc/ssh/ssh_host_*`), and other users' files (`/home/*/.ss?/id_*`) unless the glob is
/// in the instance's own folder (`own`), which may sit under a home folder.
fn system_secret(pattern: &Path, own: bool) -> Option<&'static str> {
    let homes: &[(&str, bool, &str)] = if own {
        &[]
    } else {
        &[
            ("/root", true, "the root user's files"),
            ("/home", true, "the users' files, their keys among them"),
        ]
    };
    homes
        .iter()
        .copied()
        .chain([
            ("/etc/ssh", true, "the host's private keys"),
            ("/etc/ssl/private", true, "the host's private keys"),
            ("/etc/shadow", false, "system passwords"),
            ("/etc/gshadow", false, "system passwords"),
            ("/etc/sudoers", false, "system passwords"),
            ("/etc/sudoers.d", true, "system passwords"),
            ("/etc/environment", false, "a process's environment"),
            ("/run/secrets", true, "mounted secrets"),
            ("/var/run/secrets", true, "mounted secrets"),
            ("/run/credentials", true, "a service's credentials"),
            ("/etc/credstore", true, "a service's credentials"),
            ("/etc/credstore.encrypted", true, "a service's credentials"),
            // The host's own etcd and Redis, not the instance's: their whole data.
            ("/var/lib/etcd", true, "another etcd's data"),
            ("/var/lib/redis", true, "another Redis's data"),
        ])
        .find(|(target, inside, _)| could_name(pattern, Path::new(target), *inside, true))
        .map(|(_, _, why)| why)
}

/// A path through /proc that reaches another process's files or memory, or the whole file
/// system again: `/proc/PID/root/…`, `…/cwd/…`, `…/fd/N`, `…/map_files/…`, `…/mem`, also
/// under `task/TID/`. Listing `/proc/PID/fd` itself (counting open files) is no such door.
fn proc_door(path: &Path, globbed: bool) -> Option<&'static str> {
    let names: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let is = |pattern: &str, name: &str| {
        if globbed {
            glob_matches(pattern, name)
        } else {
            pattern == name
        }
    };
    if !names.first().is_some_and(|n| is(n, "proc")) {
        return None;
    }
    let mut i = 2;
    if names.get(i).is_some_and(|n| is(n, "task")) && names.len() > 4 {
        i = 4;
    }
    let entry = names.get(i)?;
    let deeper = names.len() > i + 1;
    ["root", "cwd", "map_files", "mem", "fd"]
        .into_iter()
        .find(|door| is(entry, door) && (deeper || *door != "fd"))
}

fn touches_db(policy: &Policy, path: &str, globbed: bool) -> bool {
    let db = &policy.protected().db;
    if db.as_os_str().is_empty() {
        return false;
    }
    let name = db
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("operator.db");
    let base = path.rsplit('/').next().unwrap_or(path);
    let resolved = policy.resolve(path);
    base.starts_with(name)
        || resolved.starts_with(db)
        || (globbed
            && ["", "-wal", "-shm", "-journal"].iter().any(|suffix| {
                let mut file = db.as_os_str().to_owned();
                file.push(suffix);
                could_name(&resolved, Path::new(&file), false, true)
            }))
}

/// The operator's own files the agent must not read or change by hand: its configuration
/// (the allow list, model settings), its state outside this instance's folder (its log,
/// other instances), and the SSH and cloud credentials in the home folder, also when a glob
/// could name them.
fn operator_private(policy: &Policy, path: &str, globbed: bool) -> Option<&'static str> {
    let p = path.trim_matches(['\'', '"']);
    let prot = policy.protected();
    let resolved = policy.resolve(p);
    // By name too: wherever `~` or a copy of the home puts it.
    if could_name(&resolved, &prot.config_dir, true, globbed)
        || p.contains(".config/operator")
        || prot
            .config_file
            .as_ref()
            .is_some_and(|f| could_name(&resolved, f, false, globbed))
    {
        return Some("the operator's configuration is changed and read by a person only");
    }
    if could_name(&resolved, &prot.state_dir, true, globbed)
        && !prot.cwd.as_os_str().is_empty()
        && !resolved.starts_with(&prot.cwd)
    {
        return Some("the operator's state outside this instance's folder is off limits");
    }
    if globbed {
        for (dir, why) in [
            (".ssh", "SSH keys"),
            (".aws", "cloud credentials"),
            (".kube", "cluster credentials"),
            (".docker", "registry credentials"),
            (".gnupg", "GPG keys"),
            (".netrc", "stored passwords"),
            (".git-credentials", "stored passwords"),
        ] {
            // The operator's user's home, root's, and the commands' own HOME (their folder).
            if [prot.home.as_path(), Path::new("/root"), prot.cwd.as_path()]
                .iter()
                .any(|home| could_name(&resolved, &home.join(dir), true, true))
            {
                return Some(why);
            }
        }
        if could_name(&resolved, &prot.cwd.join("faultproxy.token"), false, true) {
            return Some("the fault proxy's token");
        }
    }
    None
}

/// Whether a path (already resolved) could name `target`, or with `inside` anything under
/// it: compared folder by folder, each name as a glob when the shell expands it (`globbed`),
/// else as written.
fn could_name(pattern: &Path, target: &Path, inside: bool, globbed: bool) -> bool {
    if target.as_os_str().is_empty() {
        return false;
    }
    if !globbed {
        return if inside {
            pattern.starts_with(target)
        } else {
            pattern == target
        };
    }
    let names = |p: &Path| -> Vec<String> {
        p.components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect()
    };
    let (p, t) = (names(pattern), names(target));
    let fits = if inside {
        p.len() >= t.len()
    } else {
        p.len() == t.len()
    };
    fits && p
        .iter()
        .zip(&t)
        .all(|(g, n)| if globbed { glob_matches(g, n) } else { g == n })
}

/// A file or folder of the home folder whose name starts with a dot (`~/.bashrc`,
/// `~/.config/…`), or of root's.
fn home_dotfile(policy: &Policy, path: &str) -> bool {
    let resolved = policy.resolve(path);
    let home = &policy.protected().home;
    [home.as_path(), Path::new("/root")].iter().any(|h| {
        !h.as_os_str().is_empty()
            && resolved
                .strip_prefix(h)
                .ok()
                .and_then(|rest| rest.components().next())
                .is_some_and(|c| c.as_os_str().to_string_lossy().starts_with('.'))
    })
}

/// Under the operator's user's home folder (where the commands' own HOME is not).
fn in_home(policy: &Policy, path: &str) -> bool {
    let home = &policy.protected().home;
    !home.as_os_str().is_empty() && policy.resolve(path).starts_with(home)
}

/// True when writing `path` would change the operator's own state (records, node data).
fn in_state(policy: &Policy, path: &str) -> bool {
    let state = &policy.protected().state_dir;
    !state.as_os_str().is_empty() && policy.resolve(path).starts_with(state)
}

/// A path that must not be removed recursively.
fn precious(policy: &Policy, path: &str) -> Option<&'static str> {
    let p = path.trim_end_matches('/');
    let resolved = policy.resolve(path);
    let depth = resolved.components().count();
    if matches!(
        p,
        "" | "/" | "/*" | "*" | "." | ".." | "~" | "~/" | "~/*" | "./*" | "../*"
    ) {
        return Some("everything under it");
    }
    if depth <= 2 {
        return Some("a top-level system folder");
    }
    if in_state(policy, path) {
        return Some("the operator's state (instance records and node data)");
    }
    let lower = p.to_ascii_lowercase();
    if lower.contains("/var/lib")
        || lower.contains("volume")
        || lower.contains("data")
        || lower.contains("backup")
        || policy
            .subjects()
            .iter()
            .flat_map(|k| k.data_words())
            .any(|w| lower.contains(w))
    {
        return Some("a data directory");
    }
    None
}

/// `> file`, `>> file`, `< file`, `&> file`.
pub fn redirect_target(policy: &Policy, target: &Arg, write: bool, found: &mut Findings) {
    let Some(path) = target.lit() else {
        if write {
            found.mark(
                Class::Destructive,
                "writes to a file only known at run time",
            );
        } else {
            found.mark(
                Class::Destructive,
                "reads a file only known at run time (it could hold secrets)",
            );
        }
        return;
    };
    // After a `cd`, a relative path is relative to where the shell went (`cd /etc;
    // x=$(<shadow)`), which a redirect with no program to judge does not say.
    let relative = !path.starts_with('/') && !path.starts_with('~');
    match found.moved {
        walk::Moved::Away if relative => found.mark(
            Class::Destructive,
            format!("{} {path} after a `cd` out of the instance's folder, where its paths cannot be judged", if write { "writes" } else { "reads" }),
        ),
        walk::Moved::Inside if path.contains("..") => found.mark(
            Class::Destructive,
            format!("climbs out (`..`) of the folder an earlier `cd` went to ({path})"),
        ),
        _ => {}
    }
    let resolved = policy.resolve(path);
    let globbed = found.globs.contains(path);
    let cwd = &policy.protected().cwd;
    let own = !cwd.as_os_str().is_empty() && resolved.starts_with(cwd);
    if let Some(why) = credential(path)
        .or_else(|| credential(&resolved.to_string_lossy()))
        .or_else(|| globbed.then(|| system_secret(&resolved, own)).flatten())
    {
        found.mark(Class::Denied, format!("reads credentials ({why}: {path})"));
        return;
    }
    // bash opens a connection for these names, whichever way they are redirected.
    if path.starts_with("/dev/tcp/") || path.starts_with("/dev/udp/") {
        found.mark(
            Class::Denied,
            format!("opens a network connection through the shell ({path})"),
        );
        return;
    }
    if let Some(door) = proc_door(&resolved, globbed) {
        found.mark(
            Class::Denied,
            format!(
                "reaches files through /proc/…/{door}, another door to any file or process ({path})"
            ),
        );
        return;
    }
    if touches_db(policy, path, globbed) {
        found.mark(
            Class::Denied,
            format!("touches the operator's own DB ({path})"),
        );
        return;
    }
    if let Some(why) = operator_private(policy, path, globbed) {
        found.mark(Class::Denied, format!("{why} ({path})"));
        return;
    }
    if !write && endless(&resolved) {
        found.mark(
            Class::Destructive,
            format!("reads {path}, a device (endless, or one that acts when opened)"),
        );
    }
    if !write
        || matches!(
            path,
            "/dev/null" | "/dev/stdout" | "/dev/stderr" | "/dev/tty"
        )
        || path
            .strip_prefix("/dev/fd/")
            .is_some_and(|n| n.parse::<u32>().is_ok())
    {
        return;
    }
    if globbed {
        found.mark(
            Class::Destructive,
            format!("writes to a path a glob chooses ({path})"),
        );
    }
    written_file(policy, path, found);
}

/// A file the command writes: refused where the operator's state, the system or the shells'
/// settings live, a change anywhere else.
fn written_file(policy: &Policy, path: &str, found: &mut Findings) {
    let resolved = policy.resolve(path);
    if path.starts_with("/dev/") || resolved.starts_with("/dev") {
        found.mark(Class::Denied, format!("writes to a device ({path})"));
    } else if path.starts_with("/proc/")
        || path.starts_with("/sys/")
        || resolved.starts_with("/proc")
        || resolved.starts_with("/sys")
    {
        found.mark(Class::Denied, format!("writes a kernel setting ({path})"));
    } else if in_scratch(policy, &resolved) && scratch_dotfile(policy, &resolved) {
        found.mark(
            Class::Destructive,
            format!("writes {path}, a dot-file of the commands' HOME: curl, wget, dig, python, less and jq read their settings and code there"),
        );
    } else if in_scratch(policy, &resolved) {
        found.mark(Class::Mutating, format!("writes {path}"));
    } else if in_state(policy, path) {
        found.mark(
            Class::Denied,
            format!("writes into the operator's state ({path})"),
        );
    } else if home_dotfile(policy, path) {
        found.mark(
            Class::Denied,
            format!(
                "writes a file of the home folder's settings ({path}): shells and tools run it"
            ),
        );
    } else if in_home(policy, path) {
        found.mark(
            Class::Denied,
            format!(
                "writes into the home folder of the user who runs the operator ({path}): its bin folders are on that user's PATH"
            ),
        );
    } else if SYSTEM_WRITE_DIRS
        .iter()
        .any(|d| policy.resolve(path).starts_with(d))
    {
        found.mark(Class::Denied, format!("overwrites a system file ({path})"));
    } else if resolved == Path::new("/") {
        found.mark(
            Class::Denied,
            format!("writes over the root folder ({path})"),
        );
    } else if policy
        .exe_dir()
        .is_some_and(|dir| resolved.starts_with(dir))
    {
        found.mark(
            Class::Denied,
            format!("writes beside the operator's binary, whose folder is first on the commands' PATH ({path})"),
        );
    } else if scratch(policy, &resolved) {
        found.mark(Class::Mutating, format!("writes {path}"));
    } else {
        found.mark(
            Class::Destructive,
            format!("writes {path}, outside the instance's folder and /tmp"),
        );
    }
}

/// A device other than the few every shell uses: `/dev/zero` and `/dev/urandom` never end,
/// `/dev/watchdog` arms the host's watchdog when opened, input devices hold keystrokes.
fn endless(resolved: &Path) -> bool {
    // /proc's files as large as the address space or memory (`pagemap` streams 256 GiB).
    let huge = resolved.starts_with("/proc")
        && resolved.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            matches!(n.as_ref(), "pagemap" | "kcore" | "mem" | "kmsg") || n.starts_with("kpage")
        });
    huge || resolved.starts_with("/dev")
        && ![
            "/dev/null",
            "/dev/stdin",
            "/dev/stdout",
            "/dev/stderr",
            "/dev/tty",
        ]
        .iter()
        .any(|d| resolved == Path::new(d))
        && !resolved.starts_with("/dev/fd")
        && !resolved.starts_with("/dev/pts")
}

/// Where a command may write without a person: the instance's folder (the commands' HOME)
/// and the temporary folders.
/// A name under the scratch folder (the commands' HOME in the sandbox) that begins with a
/// dot: `.curlrc`, `.local/lib/python3/site-packages/x.pth`, `.lesskey`, `.jq`.
fn scratch_dotfile(policy: &Policy, resolved: &Path) -> bool {
    let scratch = policy.protected().cwd.join(super::SCRATCH);
    resolved.strip_prefix(&scratch).is_ok_and(|rest| {
        rest.components().any(|c| {
            // A glob's name may match dot-files too (with dotglob, which GLOBIGNORE or a
            // shell's options turn on): `cp /tmp/d/* scratch/`.
            let c = c.as_os_str().to_string_lossy();
            c.starts_with('.') || c.contains(['*', '?', '['])
        })
    })
}

/// The instance's scratch folder, the one place of the state commands may write.
fn in_scratch(policy: &Policy, resolved: &Path) -> bool {
    let cwd = &policy.protected().cwd;
    !cwd.as_os_str().is_empty() && resolved.starts_with(cwd.join(super::SCRATCH))
}

fn scratch(policy: &Policy, resolved: &Path) -> bool {
    let cwd = &policy.protected().cwd;
    (!cwd.as_os_str().is_empty() && resolved.starts_with(cwd)) || resolved.starts_with("/tmp")
}

/// Folders where the system keeps credentials (keys, password hashes, tokens): read or
/// copied whole only with a person's yes.
const CREDENTIAL_DIRS: &[&str] = &[
    "/etc",
    "/root",
    "/home",
    "/var/lib",
    "/var/backups",
    "/run",
    "/proc",
    "/srv",
];

/// Folders the system's programs, settings, logs and users live in: never written.
const SYSTEM_WRITE_DIRS: &[&str] = &[
    "/etc",
    "/boot",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/lib32",
    "/opt",
    "/var/spool",
    "/var/lib",
    "/var/log",
    "/var/backups",
    "/var/mail",
    "/root",
    "/home",
    "/run",
    "/var/run",
    "/srv",
    "/mnt",
    "/media",
];

/// Read-only programs whose words known only at run time name no file they print: names,
/// numbers, patterns, metadata.
const DYN_SAFE: &[&str] = &[
    "echo", "true", "false", ":", "sleep", "basename", "dirname", "expr", "ls", "stat", "df",
    "realpath", "readlink", "id", "whoami", "uname", "pidof", "pgrep", "exit", "return", "nproc",
    "cd", "which", "type",
];

/// Programs whose own rules judge the words only known at run time that they are given
/// (the wrappers hand them to the program they run; a shell or eval given one is refused by
/// its rule). A subject's own clients judge theirs too (see `program`).
const DYN_JUDGED: &[&str] = &[
    "xargs", "env", "timeout", "nice", "ionice", "nohup", "stdbuf", "exec", "builtin", "command",
    "time", "setsid", "sh", "bash", "dash", "zsh", "ksh", "ash", "eval", "curl", "wget",
    "operator",
];

fn program(ctx: &mut Ctx, prog: &str, args: &[Arg], inv: &Invocation) {
    if let Some(why) = floods(prog, args) {
        ctx.mark(Class::Destructive, why);
    }
    if ctx.found.fed
        && ctx
            .policy
            .subjects()
            .iter()
            .any(|s| s.reads_words_from_input(prog))
    {
        ctx.mark(
            Class::Destructive,
            format!(
                "{prog} adds the words of its input to its command, which the policy does not see"
            ),
        );
    }
    // gawk opens `/inet/tcp/…` and `/inet/udp/…` (also `/inet4`, `/inet6`) as network
    // connections, as operands or in its program: the name alone leaves the machine.
    if matches!(prog, "awk" | "gawk" | "mawk" | "nawk" | "original-awk")
        && lits(args).iter().any(|a| a.contains("/inet"))
    {
        ctx.mark(
            Class::Denied,
            format!("{prog} opens a network connection by a /inet file name"),
        );
    }
    // A file named inside an option word (`date -f/etc/shadow`, `file -m…`) is read as
    // the option says, and escapes the path checks, which judge whole words.
    if matches!(prog, "date" | "file")
        && lits(args).iter().any(|a| {
            (a.len() > 2 && (a.starts_with("-f") || a.starts_with("-m")))
                || a.starts_with("--file=")
                || a.starts_with("--files-from")
                || a.starts_with("--magic-file")
        })
    {
        ctx.mark(
            Class::Destructive,
            format!("{prog} reads a file named inside an option"),
        );
    }
    // Programs that read their settings or code from the folder they run in (a git
    // repository's config, rust-toolchain.toml, a python package beside it) after a `cd`
    // into a folder the agent may have written.
    if ctx.found.moved != walk::Moved::No
        && (matches!(
            prog,
            "git" | "cargo" | "rustc" | "pip" | "pip3" | "npm" | "make"
        ) || INTERPRETERS
            .iter()
            .any(|i| prog == *i || prog.starts_with(&format!("{i}."))))
    {
        ctx.mark(
            Class::Destructive,
            format!("{prog} after a cd reads settings or code from that folder"),
        );
    }
    // Recursive readers that follow links below a folder.
    if matches!(prog, "gzip" | "gunzip" | "zcat" | "diff" | "bzip2" | "xz")
        && (has_short(args, 'r') || has(args, &["--recursive"]))
    {
        let sources = operands(args);
        tree_links(ctx, prog, &sources);
    }
    // Links followed below the top folder reach what the path rules never saw
    // (`/usr/lib/ssl/private` is `/etc/ssl/private`).
    if matches!(prog, "grep" | "egrep" | "fgrep" | "rg")
        && lits(args).iter().any(|a| {
            a.starts_with("--dereference-recursive")
                || a.starts_with("--follow")
                || (a.starts_with('-')
                    && !a.starts_with("--")
                    && a.contains(['R', 'L'])
                    && prog == "grep")
        })
    {
        ctx.mark(
            Class::Destructive,
            format!("{prog} follows every link below the folder, to files the policy never sees"),
        );
    }
    // `test -v 'a[x]'`, `printf -v 'a[x]'`: the element's index is evaluated as arithmetic.
    if matches!(prog, "test" | "[" | "printf")
        && lits(args)
            .windows(2)
            .any(|w| w[0] == "-v" && w[1].contains('['))
    {
        ctx.mark(
            Class::Destructive,
            format!(
                "{prog} -v names an array element, whose index is evaluated and may run a command"
            ),
        );
    }
    // A word only known at run time may be any option (`$(echo -delete)`, `-s KILL`,
    // `--output=…`) or any file: only programs that do nothing more with any word, and
    // those whose rules judge such words themselves, are given one without a person.
    let subjects_own = || {
        ctx.policy
            .subjects()
            .iter()
            .any(|s| s.classify_program(prog, &[]).is_some())
    };
    if any_dyn(args) && !(DYN_SAFE.contains(&prog) || DYN_JUDGED.contains(&prog) || subjects_own())
    {
        ctx.mark(
            Class::Destructive,
            format!(
                "{prog} is given words only known at run time, which may be any option or file (secrets among them)"
            ),
        );
    }
    // Devices that never end: a reader of one runs (and fills memory or a disk) until its
    // time limit; `head -c N` takes a bounded piece.
    let bounded = prog == "head"
        && lits(args)
            .windows(2)
            .any(|w| w[0] == "-c" && w[1].parse::<u64>().is_ok_and(|n| n <= 1 << 20));
    // A word reaches /dev only from the root or by climbing.
    if !bounded
        && lits(args)
            .iter()
            .filter(|a| a.starts_with('/') || a.contains(".."))
            .any(|a| endless(&ctx.policy.resolve(a)))
    {
        ctx.mark(
            Class::Destructive,
            format!("{prog} opens a device (endless, or one that acts when opened)"),
        );
    }
    if let Some((_, why)) = DENIED
        .iter()
        .find(|(p, _)| *p == prog || (p == &"mkfs" && prog.starts_with("mkfs.")))
    {
        ctx.mark(Class::Denied, format!("{prog} {why}"));
        return;
    }
    if prog.starts_with("mkfs.") {
        ctx.mark(Class::Denied, format!("{prog} formats a file system"));
        return;
    }
    if let Some(why) = reads_environment(prog, args) {
        ctx.mark(Class::Denied, why);
        return;
    }
    if reads_recursively(prog, args) {
        if let Some(dir) = lits(args).into_iter().find(|a| process_dir(a)) {
            ctx.mark(
                Class::Denied,
                format!("{prog} reads {dir} recursively, a process's environment with it"),
            );
            return;
        }
    }
    if reads_recursively(prog, args) {
        let prot = ctx.policy.protected();
        let none = std::path::PathBuf::new();
        // The fault proxy's token in the instance's own folder, which a recursive read of
        // that folder (`grep -r . .`, `tar -cf - .`) prints with the rest.
        let token = if prot.cwd.as_os_str().is_empty() {
            none.clone()
        } else {
            prot.cwd.join("faultproxy.token")
        };
        let guarded = [
            &prot.state_dir,
            &prot.config_dir,
            &prot.home,
            prot.config_file.as_ref().unwrap_or(&none),
            &token,
        ];
        if let Some(dir) = operand_lits(args).into_iter().find(|a| {
            let r = ctx.policy.resolve(a);
            guarded
                .iter()
                .any(|g| !g.as_os_str().is_empty() && g.starts_with(&r))
        }) {
            ctx.mark(
                Class::Denied,
                format!("{prog} reads {dir} recursively, the operator's state, configuration or home with it"),
            );
            return;
        }
    }
    // `diff FILE DIR` and `cmp` read DIR/FILE's name: judged as that path.
    if matches!(prog, "diff" | "cmp") {
        if let [a, b] = operand_lits(args).as_slice() {
            for (file, dir) in [(a, b), (b, a)] {
                let d = ctx.policy.resolve(dir);
                if dir.ends_with('/') || d.is_dir() {
                    if let Some(name) = Path::new(file).file_name() {
                        let implied = d.join(name).to_string_lossy().into_owned();
                        check_paths(ctx, &[Arg::Lit(implied)]);
                    }
                }
            }
        }
    }
    if reads_recursively(prog, args) {
        if let Some(dir) = operand_lits(args).into_iter().find(|a| {
            // Above one of those folders or in it; the instance's own folder (which may
            // sit under a home folder) is the instance's.
            let r = ctx.policy.resolve(a);
            let cwd = &ctx.policy.protected().cwd;
            let own = !cwd.as_os_str().is_empty() && r.starts_with(cwd);
            CREDENTIAL_DIRS
                .iter()
                .any(|d| Path::new(d).starts_with(&r) || (!own && r.starts_with(d)))
        }) {
            ctx.mark(
                Class::Destructive,
                format!(
                    "{prog} reads {dir} recursively, and the credentials the system keeps there"
                ),
            );
        }
    }
    if matches!(prog, "cd" | "pushd") && lits(args).iter().any(|a| a.starts_with("/proc")) {
        ctx.mark(
            Class::Denied,
            "moves into /proc, where relative paths read processes' files (their environments)",
        );
        return;
    }
    // A subject's own programs (redis-cli, etcdctl, …), as their subject judges them; one
    // run by a path may be any program of that name: it is judged below as unknown.
    if let Some(v) = ctx
        .policy
        .subjects()
        .iter()
        .filter(|_| !arg0_is_path(inv))
        .find_map(|k| k.classify_program(prog, args))
    {
        for (class, reason) in v.marks {
            if class != Class::ReadOnly {
                ctx.mark(class, reason);
            }
        }
        for t in v.targets {
            outside(ctx, prog, t);
        }
        return;
    }
    if matches!(
        prog,
        "test"
            | "["
            | "let"
            | "unset"
            | "printf"
            | "declare"
            | "typeset"
            | "local"
            | "export"
            | "readonly"
            | "kill"
            | "wait"
            | "exit"
            | "return"
            | "shift"
    ) && lits(args).iter().any(|a| {
        a.contains('[')
            && super::walk::runs_in_arithmetic(a)
            && (a.contains("$(") || a.contains('`'))
    }) {
        ctx.mark(
            Class::Denied,
            format!("{prog} evaluates an array index that runs a command"),
        );
        return;
    }
    // A host name in a filter is looked up in the DNS, which can carry data out.
    if matches!(prog, "ss" | "lsof")
        && lits(args).iter().enumerate().any(|(i, a)| {
            let host = if prog == "lsof" {
                a.split_once('@').map(|(_, h)| h)
            } else {
                (i > 0 && matches!(lits(args)[i - 1], "dst" | "src")).then_some(*a)
            };
            host.is_some_and(|h| {
                let h = h.split(':').next().unwrap_or(h);
                h.chars().any(|c| c.is_ascii_alphabetic()) && h != "localhost"
            })
        })
    {
        ctx.mark(
            Class::Destructive,
            format!("{prog} looks a host name up (a lookup can carry data out)"),
        );
    }
    if super::readers::reader(ctx, prog, args) {
        return;
    }
    match prog {
        "printf"
            if lits(args)
                .iter()
                .take_while(|a| a.starts_with('-'))
                .any(|a| a.starts_with("-v") && a.len() > 2) =>
        {
            // `printf -vNAME …`: the name attached.
            let name = lits(args)
                .into_iter()
                .find(|a| a.starts_with("-v") && a.len() > 2)
                .map(|a| a[2..].to_string())
                .unwrap_or_default();
            assignment(ctx.policy, ctx.found, &format!("{name}="), false, false);
            ctx.mark(
                Class::Destructive,
                format!("printf -v{name} sets a variable of the shell"),
            );
        }
        "printf" => {
            // `printf -v NAME …` assigns NAME.
            if let Some(i) = args.iter().position(|a| a.lit() == Some("-v")) {
                match args.get(i + 1).and_then(Arg::lit) {
                    Some(name) => {
                        assignment(ctx.policy, ctx.found, &format!("{name}="), false, false)
                    }
                    None => ctx.mark(
                        Class::Denied,
                        "printf -v sets a variable only known at run time",
                    ),
                }
            }
        }
        "let" => {
            for a in lits(args) {
                walk::arithmetic_assignments(ctx.policy, a, ctx.found);
                walk::arithmetic_reads_variables(a, ctx.found);
            }
            if any_dyn(args) {
                ctx.mark(
                    Class::Destructive,
                    "let evaluates words known only when it runs",
                );
            }
        }
        // Unsetting a variable the executor set (OPERATOR_INSTANCE) changes what follows.
        "unset" => {
            for a in lits(args).into_iter().filter(|a| !a.starts_with('-')) {
                assignment(ctx.policy, ctx.found, &format!("{a}="), true, false);
            }
        }
        "yes" => ctx.mark(
            Class::Destructive,
            "yes prints without end (a redirect fills the disk)",
        ),
        // `jobs -x CMD` runs CMD (its job specs replaced by process groups).
        "jobs"
            if !args.is_empty()
                && lits(args)
                    .iter()
                    .any(|a| a.starts_with('-') && a.contains('x')) =>
        {
            ctx.mark(Class::Destructive, "jobs -x runs the command it is given");
        }
        // `wait -p NAME` assigns NAME (PATH, HOME…).
        "wait"
            if lits(args)
                .iter()
                .any(|a| a.starts_with('-') && a.contains('p')) =>
        {
            ctx.mark(Class::Destructive, "wait -p sets a variable of the shell");
        }
        p if READ_ONLY.contains(&p) => {}
        // A temporary file or folder in /tmp, named by mktemp; a template or folder of its
        // own may be anywhere.
        "mktemp" => {
            let plain = lits(args).iter().all(|a| {
                matches!(
                    *a,
                    "-d" | "-q" | "-u" | "-dq" | "-qd" | "--directory" | "--quiet" | "--dry-run"
                )
            }) && !any_dyn(args);
            if plain {
                ctx.mark(Class::Mutating, "makes a temporary file in /tmp");
            } else {
                ctx.mark(
                    Class::Destructive,
                    "mktemp with a template or folder of its own may write anywhere",
                );
            }
        }
        "env" => wrap_env(ctx, args, inv),
        "setsid" => {
            ctx.mark(
                Class::Destructive,
                "setsid starts a process in a session of its own, which outlives the command and its time limit",
            );
            wrap(ctx, prog, args, inv)
        }
        "nice" | "ionice" | "nohup" | "stdbuf" | "exec" | "builtin" | "chrt" | "time"
        | "taskset" => {
            // `exec -l`: the program runs as a login shell would, reading profile files.
            if prog == "exec"
                && lits(args)
                    .iter()
                    .take_while(|a| a.starts_with('-'))
                    .any(|a| a.contains('l'))
            {
                ctx.mark(
                    Class::Destructive,
                    "exec -l runs its program as a login shell, which reads profile files",
                );
            }
            wrap(ctx, prog, args, inv)
        }
        "timeout" => wrap(ctx, prog, args, inv),
        "command" => {
            // Only options before the program are command's own: `command PROG … -v` runs
            // PROG.
            if lits(args)
                .iter()
                .take_while(|a| a.starts_with('-'))
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains(['v', 'V']))
            {
                return;
            }
            wrap(ctx, prog, args, inv)
        }
        "xargs" => xargs(ctx, args, inv),
        "watch" => {
            // More than once a second is a flood of whatever it repeats.
            let l = lits(args);
            // `-n 0.1`, `-n0.1`, `--interval=0.1`, or `n` in a bundle (`-tn0`).
            let mut intervals = l.iter().enumerate().filter_map(|(i, a)| match *a {
                "--interval" => l.get(i + 1).copied(),
                a if a.starts_with("--interval=") => Some(&a["--interval=".len()..]),
                a if a.starts_with('-') && !a.starts_with("--") => {
                    let at = a.find('n')?;
                    let attached = &a[at + 1..];
                    if attached.is_empty() {
                        l.get(i + 1).copied()
                    } else {
                        Some(attached)
                    }
                }
                _ => None,
            });
            if intervals.any(|v| v.parse::<f64>().map_or(true, |n| n.is_nan() || n < 1.0)) {
                ctx.mark(
                    Class::Destructive,
                    "watch repeats its command more than once a second",
                );
            }
            let after = skip_options(args, &["-n", "--interval", "-q", "--equexit"]);
            let options = &args[..args.len() - after.len()];
            if options.iter().any(|a| a.lit().is_none()) {
                ctx.mark(
                    Class::Destructive,
                    "watch is given an option known only when it runs, which may be several words",
                );
            }
            let rest: Vec<&str> = after.iter().filter_map(|a| a.lit()).collect();
            // With `-x` the words are the command's own (no shell joins them): each is
            // quoted, so that the command judged is the one that runs. Any of its options
            // may say so, before or after an option's value.
            let exec = options.iter().filter_map(Arg::lit).any(|a| {
                a == "--exec" || (a.starts_with('-') && !a.starts_with("--") && a.contains('x'))
            });
            let src = if exec {
                rest.iter()
                    .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                rest.join(" ")
            };
            let before = ctx.found.marks.len();
            ctx.source(Some(&Arg::Lit(src)), "watch");
            // What it repeats, it repeats every interval for as long as it runs.
            if ctx.found.marks[before..]
                .iter()
                .any(|(c, _)| *c >= Class::Mutating)
            {
                ctx.mark(
                    Class::Destructive,
                    "watch repeats a change every interval, for as long as it runs",
                );
            }
        }
        "eval" => {
            if any_dyn(args) {
                ctx.mark(Class::Denied, "eval runs a command only known at run time");
            } else {
                let src = lits(args).join(" ");
                ctx.source(Some(&Arg::Lit(src)), "eval");
            }
        }
        p if SHELLS.contains(&p) => shell(ctx, p, args),
        p if INTERPRETERS
            .iter()
            .any(|i| p == *i || p.starts_with(&format!("{i}."))) =>
        {
            // `-m` imports from the folder it runs in first: only the instance's own, which
            // the agent cannot write, not one a `cd` reached (`cd scratch`, holding json/).
            if has(args, &["--version", "-V"]) && args.len() == 1
                || json_tool(p, args) && ctx.found.moved == walk::Moved::No
            {
                return;
            }
            ctx.mark(
                Class::Destructive,
                format!("{p} runs code the policy cannot read"),
            );
        }
        "source" | "." => ctx.mark(Class::Destructive, "runs a script the policy cannot read"),
        "set" => {
            if args.is_empty() {
                ctx.mark(Class::Denied, "set without arguments dumps the environment");
            }
            // Job control puts background jobs in process groups of their own, which the
            // executor's kill at the end of the command does not reach.
            if has_short(args, 'k') || lits(args).contains(&"keyword") {
                ctx.mark(
                    Class::Destructive,
                    "set -k makes NAME=value words anywhere on a line variables of the program",
                );
            }
            if has_short(args, 'a') || lits(args).contains(&"allexport") {
                ctx.mark(
                    Class::Destructive,
                    "set -a hands every variable set after it to the programs that run",
                );
            }
            // History expansion turns `!!` and `!word` of later lines into text the
            // policy never sees.
            if has_short(args, 'H')
                || lits(args)
                    .iter()
                    .any(|a| matches!(*a, "histexpand" | "history"))
            {
                ctx.mark(
                    Class::Destructive,
                    "set -H turns on history expansion: `!…` then stands for text the policy does not see",
                );
            }
            if any_dyn(args) {
                ctx.mark(
                    Class::Destructive,
                    "set is given words known only when it runs, which may be any option",
                );
            }
            if has_short(args, 'm') || lits(args).contains(&"monitor") {
                ctx.mark(
                    Class::Destructive,
                    "set -m gives background jobs process groups that outlive the command",
                );
            }
        }
        "export" | "declare" | "typeset" | "local" | "readonly" => {
            // `-i`: every value given to the name is evaluated as arithmetic.
            if lits(args)
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('i'))
            {
                ctx.mark(
                    Class::Destructive,
                    format!("{prog} -i evaluates the values it is given as arithmetic, which may run a command"),
                );
            }
            if any_dyn(args) {
                ctx.mark(
                    Class::Destructive,
                    format!("{prog} is given words known only when it runs, which may set any variable (PATH, BASH_ENV, …)"),
                );
            }
            let names = lits(args)
                .into_iter()
                .filter(|a| !a.starts_with('-'))
                .count();
            let prints = lits(args)
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('p'));
            if names == 0 || prints {
                ctx.mark(
                    Class::Denied,
                    format!("{prog} without a value, or with -p, prints the environment"),
                );
            }
            if lits(args)
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('n'))
                && prog != "export"
            {
                ctx.mark(
                    Class::Destructive,
                    format!("{prog} -n makes a name another variable's (PATH, HOME, …)"),
                );
            }
            let exported = prog == "export"
                || lits(args)
                    .iter()
                    .any(|a| a.starts_with('-') && a.contains('x'));
            for a in lits(args).into_iter().filter(|a| !a.starts_with('-')) {
                // declare reads a value that looks like `( … )` once expanded as an array's
                // elements, and expands them again (`x=$'(\x24(cmd))'` runs cmd): only a
                // value of plain text is given to it.
                let value = a.split_once('=').map_or("", |(_, v)| v);
                if value.contains(['$', '\\', '(', ')', '`']) {
                    ctx.mark(
                        Class::Destructive,
                        format!("{prog} re-reads a value like {value} as an array's elements, which may run a command"),
                    );
                }
                if a.contains('=') {
                    assignment(ctx.policy, ctx.found, a, true, exported);
                } else if exported {
                    // `X=…; export X`: X reaches the programs that follow, whatever it holds.
                    assignment(ctx.policy, ctx.found, &format!("{a}="), true, true);
                }
            }
        }
        "compgen" => {
            if lits(args).iter().any(|a| {
                matches!(*a, "-v" | "-e" | "variable" | "export")
                    || (a.starts_with('-')
                        && !a.starts_with("--")
                        && (a.contains('v') || a.contains('e')))
            }) {
                ctx.mark(Class::Denied, "compgen lists the environment's variables");
            } else {
                ctx.mark(
                    Class::Destructive,
                    "compgen is not a command the policy knows",
                );
            }
        }
        "dig" | "host" | "nslookup" | "getent" | "ping" | "ping6" | "traceroute" | "tracepath"
        | "mtr" | "arping" | "arp" => names(ctx, prog, args),
        "find" => find(ctx, args, inv),
        // Limits of the shell the command runs in, and of nothing else.
        "ulimit" => {
            if lits(args).iter().any(|a| !a.starts_with('-')) || any_dyn(args) {
                ctx.mark(Class::Mutating, "ulimit changes this shell's limits");
            }
        }
        "tee" => {
            for a in operands(args) {
                if let Some(p) = a.lit() {
                    let target = Arg::Lit(p.to_string());
                    redirect_target(ctx.policy, &target, true, ctx.found);
                } else if a.is_dyn() {
                    ctx.mark(
                        Class::Destructive,
                        "tee writes to a file only known at run time",
                    );
                }
            }
        }
        "curl" => curl(ctx, args),
        "wget" => wget(ctx, args),
        "nc" | "ncat" | "netcat" => {
            // Only a port probe: `-z`, with `-v`, `-n`, `-4`, `-6` and a `-w` time; any other
            // option (a proxy with -x, a program with -e, a source with -s) goes to a person.
            let l = lits(args);
            let mut words: Vec<&str> = Vec::new();
            let mut probe = false;
            let mut other = any_dyn(args);
            let mut i = 0;
            while i < l.len() {
                let a = l[i];
                if let Some(letters) = a.strip_prefix('-').filter(|b| !b.is_empty()) {
                    for (k, c) in letters.char_indices() {
                        match c {
                            'z' => probe = true,
                            'v' | 'n' | '4' | '6' => {}
                            'w' => {
                                let attached = &letters[k + 1..];
                                let value = if attached.is_empty() {
                                    i += 1;
                                    l.get(i).copied()
                                } else {
                                    Some(attached)
                                };
                                other |= value.and_then(|v| v.parse::<u32>().ok()).is_none();
                                break;
                            }
                            _ => other = true,
                        }
                    }
                } else {
                    words.push(a);
                }
                i += 1;
            }
            if !probe || other {
                ctx.mark(Class::Destructive, "opens a raw network connection");
                return;
            }
            let target = match words.as_slice() {
                [host, port] => port.parse().ok().map(|port| Target::Tcp {
                    host: (*host).to_string(),
                    port,
                }),
                _ => None,
            };
            outside(ctx, prog, target);
        }
        "telnet" | "socat" => ctx.mark(Class::Destructive, "opens a raw network connection"),
        "ssh" | "scp" | "sftp" | "rsync"
            if prog != "rsync" || lits(args).iter().any(|a| a.contains(':')) =>
        {
            ctx.mark(Class::Destructive, "reaches another host");
        }
        "operator" => operator(ctx, args),
        "docker" | "podman" => docker(ctx, prog, args, inv),
        "kubectl" => {
            if lits(args).iter().any(|a| {
                let a = a.to_ascii_lowercase();
                a.split([',', '/', '=']).any(|w| w.starts_with("secret")) || a.starts_with("--raw")
            }) {
                ctx.mark(Class::Denied, "kubectl reads the cluster's secrets");
            }
            kubectl(ctx, args)
        }
        "systemctl" | "service" => systemctl(ctx, prog, args),
        "journalctl" => {
            if lits(args).iter().any(|a| {
                [
                    "--vacuum",
                    "--rotate",
                    "--flush",
                    "--sync",
                    "--relinquish-var",
                    "--smart-relinquish-var",
                    "--cursor-file",
                    "--setup-keys",
                    "--update-catalog",
                ]
                .iter()
                .any(|o| a.starts_with(o))
            }) {
                ctx.mark(
                    Class::Destructive,
                    "removes, rotates or moves system logs, or writes a file",
                );
            }
        }
        "kill" | "pkill" | "killall" => {
            // `kill -l` lists signals; `kill -0 PID…` only asks whether they live (and
            // nothing else may follow: `-s KILL` would send).
            let l = lits(args);
            // A substituted word (`$(pidof redis-server)`) is harmless after `-0` too: bash's
            // kill reads options only before the first process, and signal 0 is never sent.
            let probe = l.first() == Some(&"-0")
                && args.first().and_then(Arg::lit) == Some("-0")
                && l[1..].iter().all(|a| a.parse::<i64>().is_ok_and(|n| n > 0));
            if prog == "kill" && (probe || matches!(l.as_slice(), ["-l" | "-L", ..])) {
                return;
            }
            ctx.mark(Class::Destructive, format!("{prog} stops processes"));
        }
        "rm" | "rmdir" | "unlink" | "shred" | "truncate" => remove(ctx, prog, args),
        "rsync" => ctx.mark(
            Class::Destructive,
            "rsync copies, deletes and logs wherever its options say",
        ),
        "install"
            if lits(args)
                .iter()
                .any(|a| a.starts_with("--strip-program") || a.starts_with("--strip-p")) =>
        {
            ctx.mark(
                Class::Destructive,
                "install --strip-program runs the program it names on each file",
            );
        }
        "mv" | "cp" | "ln" | "mkdir" | "touch" | "chmod" | "chown" | "chgrp" | "install"
        | "mkfifo" => write_paths(ctx, prog, args),
        "tar" | "zip" => {
            if prog == "tar"
                && lits(args).iter().any(|a| {
                    a.starts_with("--dereference")
                        || (!a.starts_with("--")
                            && a.contains('h')
                            && (a.starts_with('-') || a.chars().all(|c| c.is_ascii_alphabetic())))
                })
            {
                ctx.mark(
                    Class::Destructive,
                    "tar -h follows every link below the folder, to files the policy never sees",
                );
            }
            // zip follows the links below a folder it archives (unless -y keeps them as
            // links, which unzip -p then prints as names only).
            if prog == "zip"
                && (has_short(args, 'r') || has(args, &["--recurse-paths"]))
                && !has_short(args, 'y')
                && !has(args, &["--symlinks"])
            {
                let sources: Vec<&Arg> = operands(args).into_iter().skip(1).collect();
                tree_links(ctx, prog, &sources);
            }
            // What an archiver writes is its archive; what it archives it only reads.
            match archive(prog, args) {
                Some(Arg::Lit(a)) if a == "-" => {}
                Some(a) => {
                    redirect_target(ctx.policy, &a, true, ctx.found);
                    ctx.mark(Class::Mutating, format!("{prog} writes an archive"));
                }
                None => {}
            }
            // zip takes any beginning of a long option's name (`--unzip-c`).
            if prog == "zip"
                && lits(args).iter().any(|a| {
                    a.starts_with("-TT")
                        || *a == "--tt"
                        || a.strip_prefix("--").is_some_and(|l| {
                            let name = l.split('=').next().unwrap_or(l);
                            name.len() >= 2 && "unzip-command".starts_with(name)
                        })
                })
            {
                ctx.mark(Class::Destructive, "zip -TT runs the command it is given");
            }
            // `-m` deletes what it archived; `-O`/`--out` writes somewhere the archive's
            // name does not say.
            if prog == "zip"
                && lits(args).iter().any(|a| {
                    (a.starts_with('-') && !a.starts_with("--") && a.contains(['m', 'O', '@']))
                        || a.starts_with("--mo")
                        || a.starts_with("--ou")
                        // A log written where it says (`-lf FILE`, `-la`, `--logfile-path`).
                        || a.starts_with("-lf")
                        || a.starts_with("-la")
                        || a.starts_with("--logf")
                        || a.starts_with("--log-")
                })
            {
                ctx.mark(
                    Class::Destructive,
                    "zip -m deletes the files it archives; -O, and -lf its log, write elsewhere than its archive",
                );
            }
        }
        "unzip" => {
            // Only listing, testing or printing: every option one of those (or quiet), and
            // at least one of them; any other (`-o`, `-d`, `-:`) extracts as it says.
            let opts: Vec<&str> = lits(args)
                .into_iter()
                .filter(|a| a.starts_with('-') && a.len() > 1)
                .collect();
            let lists = !opts.is_empty()
                && opts
                    .iter()
                    .all(|a| a[1..].chars().all(|c| "lvtZpqz".contains(c)))
                && opts
                    .iter()
                    .any(|a| a[1..].contains(['l', 'v', 't', 'Z', 'p', 'z']));
            if !lists {
                ctx.mark(
                    Class::Destructive,
                    "unzip writes the files its archive names, over what is there",
                );
            }
        }
        "gzip" | "gunzip" | "xz" | "bzip2" | "zstd" | "lz4"
            if lits(args)
                .iter()
                .any(|a| a.starts_with("--files") || a.starts_with("--filelist")) =>
        {
            ctx.mark(
                Class::Destructive,
                format!("{prog} --files reads the names of the files it compresses (and deletes) from a file"),
            );
        }
        // `-N`: decompressing restores the name the archive stored, any name (`.curlrc`).
        "gzip" | "gunzip" | "zcat"
            if lits(args).iter().any(|a| {
                a.starts_with("--name")
                    || (a.starts_with('-') && !a.starts_with("--") && a.contains('N'))
            }) && !lits(args).iter().any(|a| {
                matches!(*a, "--stdout" | "--to-stdout")
                    || (a.starts_with('-') && !a.starts_with("--") && a.contains('c'))
            }) =>
        {
            ctx.mark(
                Class::Destructive,
                format!("{prog} -N writes the file under the name its archive stored"),
            );
        }
        "gzip" | "gunzip" | "xz" | "bzip2"
            if lits(args).iter().any(|a| {
                a.starts_with("--suffix")
                    || (a.starts_with('-') && !a.starts_with("--") && a.contains('S'))
            }) =>
        {
            ctx.mark(
                Class::Destructive,
                format!("{prog} -S renames the files it is given"),
            );
        }
        "gzip" | "gunzip" | "xz" | "bzip2" => {
            // The last mode given wins (`-t -z` compresses): listing or testing counts only
            // with no compressing or decompressing mode anywhere.
            let words = lits(args);
            let short = |c: char| {
                words
                    .iter()
                    .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains(c))
            };
            let writes_mode = short('z')
                || short('d')
                || words.iter().any(|a| {
                    [
                        "--compress",
                        "--decompress",
                        "--uncompress",
                        "--format",
                        "-F",
                    ]
                    .iter()
                    .any(|m| a.starts_with(m))
                });
            let to_stdout = words
                .iter()
                .any(|a| matches!(*a, "--stdout" | "--to-stdout"))
                || short('c')
                || (!writes_mode
                    && (short('l')
                        || short('t')
                        || words.iter().any(|a| matches!(*a, "--list" | "--test"))));
            if !to_stdout {
                write_paths(ctx, prog, args);
            }
        }
        "dd" => {
            if lits(args).iter().any(|a| a.starts_with("of=/dev/")) {
                ctx.mark(Class::Denied, "dd writes to a device");
            } else {
                ctx.mark(Class::Destructive, "dd copies raw data");
            }
        }
        "mount" => {
            if !args.is_empty() {
                ctx.mark(Class::Destructive, "mounts a file system");
            }
        }
        "umount" => ctx.mark(Class::Destructive, "unmounts a file system"),
        "init" => {
            if lits(args)
                .iter()
                .any(|a| ["0", "6", "1", "s", "S"].contains(a))
            {
                ctx.mark(Class::Denied, "changes the run level (halt, reboot)");
            } else {
                ctx.mark(Class::Destructive, "talks to init");
            }
        }
        "iptables" | "ip6tables" | "iptables-legacy" | "iptables-nft" | "ip6tables-legacy"
        | "ip6tables-nft" => iptables(ctx, args),
        "iptables-save" | "ip6tables-save" => {
            let l = lits(args);
            let plain = l.iter().enumerate().all(|(i, a)| {
                matches!(*a, "-c" | "--counters" | "-t" | "--table")
                    || i > 0 && matches!(l[i - 1], "-t" | "--table") && !a.starts_with('-')
            });
            if !plain || any_dyn(args) {
                ctx.mark(
                    Class::Destructive,
                    "iptables-save with options other than -c and -t (it writes files with -f)",
                );
            }
        }
        "iptables-restore" | "ip6tables-restore" => {
            ctx.mark(Class::Destructive, "replaces every firewall rule")
        }
        "nft" => {
            // Only `nft [-a -n -s -j -t] list …`, one command of plain words: nft runs
            // several commands split by `;`, and reads more from files (-f).
            let l = lits(args);
            let (plain_options, words) = options_then_words(
                &l,
                &[
                    "-a",
                    "-n",
                    "-nn",
                    "-nnn",
                    "-s",
                    "-j",
                    "-t",
                    "-y",
                    "--handle",
                    "--numeric",
                    "--stateless",
                    "--json",
                    "--terse",
                ],
            );
            let plain_words = words.iter().all(|w| {
                w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            });
            if plain_options && plain_words && !any_dyn(args) && words.first() == Some(&"list") {
                return;
            }
            if l.iter().any(|a| a.contains("flush")) {
                ctx.mark(Class::Denied, "flushes the firewall");
            } else {
                ctx.mark(Class::Destructive, "changes the firewall");
            }
        }
        "ufw" => {
            if lits(args).iter().any(|a| ["disable", "reset"].contains(a)) {
                ctx.mark(Class::Denied, "turns the firewall off");
            } else if !has(args, &["status"]) {
                ctx.mark(Class::Destructive, "changes the firewall");
            }
        }
        "tc" => {
            // Only `tc [-s -d -j -p] qdisc|class|filter [show|list|ls] [dev IF]`: tc takes
            // any beginning of a verb (`ad`, `de`) and runs batch files (-b).
            let l = lits(args);
            let (plain_options, words) = options_then_words(
                &l,
                &[
                    "-s",
                    "-d",
                    "-j",
                    "-p",
                    "-stats",
                    "-statistics",
                    "-details",
                    "-json",
                    "-pretty",
                ],
            );
            let shows = match words.as_slice() {
                [object, rest @ ..] if matches!(*object, "qdisc" | "class" | "filter") => {
                    match rest {
                        [] | ["show" | "list" | "ls"] => true,
                        ["show" | "list" | "ls", "dev", iface] | ["dev", iface] => {
                            !iface.starts_with('-')
                        }
                        _ => false,
                    }
                }
                _ => false,
            };
            if !(plain_options && shows) || any_dyn(args) {
                ctx.mark(
                    Class::Destructive,
                    "changes traffic control (latency, loss), or runs a batch of tc commands",
                );
            }
        }
        "ip" => ip(ctx, args, inv),
        "sysctl" => {
            if has(args, &["-w", "--write", "-p", "--load", "-f", "--system"])
                || lits(args).iter().any(|a| {
                    a.starts_with("--load=")
                        || (a.starts_with('-')
                            && !a.starts_with("--")
                            && a.contains(['p', 'w', 'f']))
                })
                || lits(args).iter().any(|a| a.contains('='))
            {
                ctx.mark(Class::Destructive, "changes kernel settings");
            }
        }
        "crontab" => {
            if has(args, &["-r"]) {
                ctx.mark(Class::Denied, "removes every scheduled job");
            } else if !has(args, &["-l"]) {
                ctx.mark(Class::Destructive, "changes scheduled jobs");
            }
        }
        "apt" | "apt-get" | "dpkg" | "yum" | "dnf" | "apk" | "pip" | "pip3" | "npm" | "cargo"
        | "gem" | "snap" => {
            let l = lits(args);
            // pip, npm, cargo, gem and snap ask their indexes, whose addresses options can
            // change: only their version is read. dpkg and apt read the host's own lists.
            let local = matches!(prog, "apt" | "apt-get" | "dpkg" | "yum" | "dnf" | "apk");
            // After the verb, only options that shape a listing: any other may name a
            // configuration (`-o Dir::Bin::dpkg=/bin/sh`, `-c FILE`, `--setopt`), a
            // repository elsewhere, or simulate only until told not to.
            const LISTING: &[&str] = &[
                "--installed",
                "--upgradable",
                "-a",
                "--all-versions",
                "--full",
                "--names-only",
                "-q",
                "--quiet",
            ];
            let plain = l.iter().all(|a| !a.contains("://"))
                && l.iter()
                    .skip(1)
                    .all(|a| !a.starts_with('-') || LISTING.contains(a));
            let reading = local
                && plain
                && l.first().is_some_and(|a| {
                    [
                        "-L",
                        "--listfiles",
                        "-S",
                        "--search",
                        "-s",
                        "--status",
                        "list",
                        "show",
                        "search",
                        "-l",
                        "--list",
                        "info",
                        "policy",
                        "--version",
                        "version",
                    ]
                    .contains(a)
                })
                || (!local && l.as_slice() == ["--version"]);
            if !reading {
                ctx.mark(
                    Class::Destructive,
                    format!("{prog} installs or removes software"),
                );
            }
        }
        "useradd" | "userdel" | "usermod" | "groupadd" | "groupdel" | "chattr" | "setfacl"
        | "setcap" => ctx.mark(
            Class::Destructive,
            format!("{prog} changes who may do what"),
        ),
        "vi" | "vim" | "nvim" | "nano" | "emacs" | "ed" | "pico" => ctx.mark(
            Class::Destructive,
            format!("{prog} is interactive and edits files"),
        ),
        other if other.contains('/') || arg0_is_path(inv) => ctx.mark(
            Class::Destructive,
            format!("runs the program {other}, which the policy does not know"),
        ),
        other => ctx.mark(
            Class::Destructive,
            format!("`{other}` is not a command the policy knows; a person decides"),
        ),
    }
}

fn arg0_is_path(inv: &Invocation) -> bool {
    inv.argv
        .first()
        .and_then(Arg::lit)
        .is_some_and(|a| a.contains('/'))
}

/// Drops leading options (and the values of those in `with_value`).
fn skip_options<'a>(args: &'a [Arg], with_value: &[&str]) -> &'a [Arg] {
    let mut i = 0;
    while i < args.len() {
        match args[i].lit() {
            Some("--") => return &args[i + 1..],
            Some(a) if a.starts_with('-') && a.len() > 1 => {
                i += if with_value.contains(&a) { 2 } else { 1 };
            }
            _ => break,
        }
    }
    &args[i.min(args.len())..]
}

/// How long a command may run before the executor stops it, by default.
const COMMAND_SECONDS: f64 = 60.0;

/// A duration as `timeout` and `sleep` read it: a number with `s`, `m`, `h` or `d`.
pub(super) fn seconds(word: &str) -> Option<f64> {
    let (number, unit) = match word.char_indices().last()? {
        (i, 's') => (&word[..i], 1.0),
        (i, 'm') => (&word[..i], 60.0),
        (i, 'h') => (&word[..i], 3600.0),
        (i, 'd') => (&word[..i], 86400.0),
        _ => (word, 1.0),
    };
    let n: f64 = number.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n * unit)
}

fn wrap(ctx: &mut Ctx, prog: &str, args: &[Arg], inv: &Invocation) {
    if prog == "exec"
        && lits(args)
            .iter()
            .take_while(|a| a.starts_with('-'))
            .any(|a| a.contains('c'))
    {
        ctx.mark(
            Class::Destructive,
            "exec -c drops the variables that keep programs on this instance",
        );
    }
    // Some programs act by the name they are run as (pgrep as `pkill`, pidof as
    // `killall5`, systemctl as `reboot`).
    if prog == "exec"
        && lits(args)
            .iter()
            .any(|a| a.starts_with("-a") || a.starts_with("-ca") || a.starts_with("-la"))
    {
        ctx.mark(
            Class::Destructive,
            "exec -a runs a program under another name, which some programs act on",
        );
    }
    let with_value: &[&str] = match prog {
        "nice" => &["-n", "--adjustment"],
        "ionice" => &["-c", "-n", "-p", "--class", "--classdata"],
        "timeout" => &["-s", "--signal", "-k", "--kill-after"],
        "stdbuf" => &["-i", "-o", "-e"],
        "chrt" | "taskset" => &["-p"],
        // `exec -a NAME prog`: prog runs, whatever it is called.
        "exec" => &["-a"],
        _ => &[],
    };
    let mut rest = skip_options(args, with_value);
    let opts = &args[..args.len() - rest.len()];
    // Unquoted, such a word splits into several: an option's value and then a command.
    if any_dyn(opts) {
        ctx.mark(
            Class::Destructive,
            format!("{prog} is given an option known only when it runs, which may be several words, a command among them"),
        );
    }
    // ionice -p/-P/-u with a class changes other processes' priority (the nodes' among
    // them); without one it prints theirs.
    let short = |a: &str, letters: &[char]| {
        a.starts_with('-') && !a.starts_with("--") && a.contains(letters)
    };
    if prog == "ionice"
        && lits(opts).iter().any(|a| {
            short(a, &['p', 'P', 'u'])
                || a.starts_with("--pid")
                || a.starts_with("--pgid")
                || a.starts_with("--uid")
        })
        && lits(opts).iter().any(|a| {
            short(a, &['c', 'n']) || a.starts_with("--class") || a.starts_with("--classdata")
        })
    {
        ctx.mark(
            Class::Destructive,
            "ionice changes the disk priority of processes already running",
        );
    }
    if prog == "timeout" && !rest.is_empty() {
        // timeout puts itself in a process group of its own (unless --foreground), which
        // the executor's kill at the command's time limit does not reach: it may run only as
        // long as a command may.
        let limit = rest[0].lit().and_then(seconds);
        // A signal that may not end the command (CONT, 0, one a trap ignores) leaves it
        // running in timeout's group: only the ones that end a process by default.
        let l = lits(opts);
        let mut signals = l.iter().enumerate().filter_map(|(i, a)| match *a {
            "-s" | "--signal" => Some(l.get(i + 1).copied().unwrap_or("")),
            a => a
                .strip_prefix("--signal=")
                .or(a.strip_prefix("-s").filter(|v| !v.is_empty())),
        });
        if signals.any(|s| {
            let s = s.to_ascii_uppercase();
            !matches!(
                s.trim_start_matches("SIG"),
                "TERM" | "KILL" | "INT" | "HUP" | "QUIT" | "9" | "15" | "2" | "1" | "3"
            )
        }) {
            ctx.mark(
                Class::Destructive,
                "timeout sends a signal that may not end its command",
            );
        }
        // Its command must end when it does: not a shell (which may leave a job behind or
        // trap the signal), nor another wrapper; `0` is no limit at all.
        let command = rest.get(1).and_then(Arg::lit).map(program_name);
        // A subject's own client is one process too.
        let leaf = command.as_deref().is_some_and(|c| {
            (READ_ONLY.contains(&c) && c != "trap")
                || matches!(c, "curl" | "wget" | "operator")
                || ctx
                    .policy
                    .subjects()
                    .iter()
                    .any(|s| s.classify_program(c, &[]).is_some())
        });
        if !leaf && !has(opts, &["--foreground"]) {
            ctx.mark(
                Class::Destructive,
                "timeout runs a shell or wrapper in a process group of its own, where what it leaves behind outlives the command",
            );
        }
        if !has(opts, &["--foreground"]) && limit.is_none_or(|s| s > COMMAND_SECONDS || s == 0.0) {
            ctx.mark(
                Class::Destructive,
                "timeout runs its command in a process group of its own for longer than a command may run",
            );
        }
        rest = &rest[1..]; // the duration
    }
    if prog == "nice" {
        let raises = lits(opts).iter().enumerate().any(|(i, a)| {
            let value = match *a {
                "-n" | "--adjustment" => lits(opts).get(i + 1).copied(),
                a => a.strip_prefix("--adjustment=").or(a.strip_prefix("-n")),
            };
            value.is_some_and(|v| v.parse::<i32>().map_or(true, |n| n < 0))
        });
        if raises || any_dyn(opts) {
            ctx.mark(
                Class::Destructive,
                "nice raises a command's priority over the host's other work",
            );
        }
    }
    if prog == "chrt"
        && !lits(opts).iter().any(|a| {
            matches!(
                *a,
                "-b" | "--batch" | "-i" | "--idle" | "-o" | "--other" | "-p" | "--pid"
            )
        })
    {
        ctx.mark(
            Class::Destructive,
            "chrt without -b, -i or -o runs a command in real time (its default)",
        );
    }
    if prog == "chrt"
        && lits(opts).iter().any(|a| {
            a.starts_with('-')
                && !matches!(
                    *a,
                    "-b" | "--batch"
                        | "-i"
                        | "--idle"
                        | "-o"
                        | "--other"
                        | "-v"
                        | "--verbose"
                        | "-m"
                        | "--max"
                        | "-p"
                        | "--pid"
                )
        })
    {
        ctx.mark(
            Class::Destructive,
            "chrt runs a command in real time, ahead of everything else on the host",
        );
    }
    if prog == "ionice"
        && lits(opts).iter().enumerate().any(|(i, a)| {
            let class = match *a {
                "-c" | "--class" => lits(opts).get(i + 1).copied(),
                a if a.starts_with("--class=") => Some(&a["--class=".len()..]),
                // `-c1`, `-c01`, `-tc1`.
                a if a.starts_with('-') && !a.starts_with("--") => a.find('c').map(|at| {
                    let v = &a[at + 1..];
                    if v.is_empty() {
                        lits(opts).get(i + 1).copied().unwrap_or("")
                    } else {
                        v
                    }
                }),
                _ => None,
            };
            class.is_some_and(|c| c.parse::<u32>().is_ok_and(|n| n == 1) || c == "realtime")
        })
    {
        ctx.mark(
            Class::Destructive,
            "ionice gives a command real-time disk access, ahead of the host's other work",
        );
    }
    if prog == "time"
        && lits(opts)
            .iter()
            .any(|a| !matches!(*a, "-p" | "--portability"))
    {
        ctx.mark(
            Class::Destructive,
            "time with options other than -p writes or appends to files",
        );
    }
    // With `-p`, on a running process: showing its policy or mask is a read, setting it a
    // change (`chrt -p 99 PID`, `taskset -p MASK PID`, `ionice -c 3 -p PID`).
    if matches!(prog, "chrt" | "taskset" | "ionice")
        && (has_short(opts, 'p')
            || has(opts, &["--pid"])
            || lits(opts).iter().any(|a| a.starts_with("--pid=")))
    {
        let sets = match prog {
            "ionice" => {
                has(args, &["-c", "-n", "--class", "--classdata", "-t"])
                    || lits(args)
                        .iter()
                        .any(|a| a.starts_with("-c") || a.starts_with("-n"))
            }
            _ => lits(args).iter().filter(|a| !a.starts_with('-')).count() > 1 || any_dyn(args),
        };
        if sets {
            ctx.mark(
                Class::Destructive,
                format!("{prog} -p changes how a running process is scheduled"),
            );
        }
        return;
    }
    if matches!(prog, "chrt" | "taskset") && !rest.is_empty() {
        rest = &rest[1..]; // the priority or mask
    }
    if rest.is_empty() {
        return;
    }
    ctx.nested(rest.to_vec(), inv.after_download);
}

fn wrap_env(ctx: &mut Ctx, args: &[Arg], inv: &Invocation) {
    // A cleared or thinned environment drops what keeps the operator on this instance
    // (`OPERATOR_INSTANCE`, its state folder): `env -i operator node restart redis` acts on
    // another.
    if lits(args)
        .iter()
        .take_while(|a| a.starts_with('-'))
        .any(|a| {
            *a == "-"
                || a.starts_with("--ignore-environment")
                || a.starts_with("--unset")
                || (!a.starts_with("--") && a.contains(['i', 'u']))
        })
    {
        ctx.mark(
            Class::Destructive,
            "env -i or -u drops the variables that keep programs on this instance",
        );
    }
    // Signals blocked or ignored outlive the command's time limit.
    if lits(args).iter().any(|a| {
        ["--ignore-signal", "--block-signal", "--default-signal"]
            .iter()
            .any(|o| a.starts_with(o))
    }) {
        ctx.mark(
            Class::Destructive,
            "env changes how its program takes signals, so it may outlive its time limit",
        );
    }
    // `-S LINE` (or `-SLINE`, `--split-string=LINE`): LINE and the words after it are the
    // command, split as a shell would.
    let split = |ctx: &mut Ctx, first: Option<Arg>, rest: &[Arg]| {
        let words: Vec<Arg> = first.into_iter().chain(rest.iter().cloned()).collect();
        if words.is_empty() || any_dyn(&words) {
            ctx.mark(
                Class::Denied,
                "env -S runs a command only known at run time",
            );
            return;
        }
        // env splits LINE by its own rules (`\_`, `\c`, `${VAR}`, quotes, `#`), not a
        // shell's: judged only when LINE holds none of them, split at spaces; the words
        // after it stay words of their own.
        let line = lits(&words[..1]).join("");
        let plain = line
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " \t._/=:,+-@%".contains(c));
        if !plain {
            ctx.mark(
                Class::Destructive,
                "env -S splits its string by its own rules (escapes, variables, quotes, comments)",
            );
            return;
        }
        let quote = |w: &str| format!("'{}'", w.replace('\'', "'\\''"));
        let argv: Vec<String> = line
            .split_whitespace()
            .map(quote)
            .chain(lits(&words[1..]).into_iter().map(quote))
            .collect();
        ctx.source(Some(&Arg::Lit(argv.join(" "))), "env -S");
    };
    let mut i = 0;
    while i < args.len() {
        match args[i].lit() {
            Some("--") => {
                i += 1;
                break;
            }
            // `-C DIR`: the command's relative paths then name files elsewhere, which the
            // checks made against this folder did not judge.
            Some(a) if a == "--chdir" || a.starts_with("--chdir=") => {
                ctx.mark(
                    Class::Destructive,
                    "env -C runs its command in another folder, where its paths name other files",
                );
                return;
            }
            Some("--split-string") => return split(ctx, None, &args[i + 1..]),
            Some(a) if a.starts_with("--split-string=") => {
                let line = Arg::Lit(a["--split-string=".len()..].to_string());
                return split(ctx, Some(line), &args[i + 1..]);
            }
            // `-a NAME` (argv0): the program runs under another name; it is judged as what
            // it is.
            Some("--argv0") => {
                ctx.mark(
                    Class::Destructive,
                    "env -a runs a program under another name, which some programs act on",
                );
                i += 2;
            }
            // Unsetting a variable the executor set (OPERATOR_INSTANCE) changes it too.
            Some("--unset") => {
                if let Some(name) = args.get(i + 1).and_then(Arg::lit) {
                    assignment(ctx.policy, ctx.found, &format!("{name}="), true, true);
                }
                i += 2;
            }
            Some(a) if a.starts_with("--") => i += 1,
            Some(a) if a.starts_with('-') && a.len() > 1 => {
                // A bundle: `-i`, `-0`, `-v`, then perhaps one letter that takes a value,
                // attached or in the next word.
                let letters = &a[1..];
                match letters.find(['u', 'a', 'C', 'S']) {
                    None => i += 1,
                    Some(at) => {
                        let value = &letters[at + 1..];
                        let value = (!value.is_empty()).then(|| Arg::Lit(value.to_string()));
                        let next = if value.is_none() { i + 2 } else { i + 1 };
                        match letters.as_bytes()[at] {
                            b'C' => {
                                ctx.mark(
                                    Class::Destructive,
                                    "env -C runs its command in another folder, where its paths name other files",
                                );
                                return;
                            }
                            b'S' => return split(ctx, value, args.get(i + 1..).unwrap_or(&[])),
                            b'a' => {
                                ctx.mark(
                                    Class::Destructive,
                                    "env -a runs a program under another name, which some programs act on",
                                );
                                i = next;
                            }
                            _ => {
                                let name = value
                                    .as_ref()
                                    .and_then(Arg::lit)
                                    .or_else(|| args.get(i + 1).and_then(Arg::lit));
                                if let Some(name) = name {
                                    assignment(
                                        ctx.policy,
                                        ctx.found,
                                        &format!("{name}="),
                                        true,
                                        true,
                                    );
                                }
                                i = next;
                            }
                        }
                    }
                }
            }
            Some(a) if a.contains('=') => {
                assignment(ctx.policy, ctx.found, a, true, true);
                i += 1;
            }
            _ => break,
        }
    }
    if i >= args.len() {
        ctx.mark(Class::Denied, "env without a command dumps the environment");
        return;
    }
    ctx.nested(args[i..].to_vec(), inv.after_download);
}

fn xargs(ctx: &mut Ctx, args: &[Arg], inv: &Invocation) {
    // `--process-slot-var=PATH` (or BASH_ENV, LD_PRELOAD) sets a variable of the command
    // it runs to a number: a file of that name in the folder then runs.
    if lits(args)
        .iter()
        .take_while(|a| a.starts_with('-'))
        .any(|a| a.starts_with("--process-slot-var") || a.starts_with("--pr"))
    {
        ctx.mark(
            Class::Destructive,
            "xargs --process-slot-var sets a variable of the command it runs (PATH, BASH_ENV)",
        );
    }
    // `… | xargs -I R CMD` over lines known from the words before it: CMD once per line, R
    // replaced, each judged as it will run.
    if let Some(lines) = ctx.found.piped.take() {
        let mut i = 0;
        let mut replace = None;
        while let Some(a) = args.get(i).and_then(Arg::lit) {
            match a {
                "-I" => {
                    replace = args.get(i + 1).and_then(Arg::lit).map(str::to_string);
                    i += 2;
                }
                "-r" | "--no-run-if-empty" | "-t" | "--verbose" => i += 1,
                a if a.starts_with("-I") => {
                    replace = Some(a[2..].to_string());
                    i += 1;
                }
                a if a.starts_with("--replace=") => {
                    replace = Some(a["--replace=".len()..].to_string());
                    i += 1;
                }
                _ => break,
            }
        }
        let command = args.get(i..).unwrap_or(&[]);
        if let Some(r) = replace.filter(|r| !r.is_empty())
            && !command.is_empty()
        {
            for line in lines {
                let argv = command
                    .iter()
                    .map(|a| match a {
                        Arg::Lit(w) => Arg::Lit(w.replace(&r, &line)),
                        Arg::Dyn(_) => Arg::UNKNOWN,
                    })
                    .collect();
                ctx.nested(argv, inv.after_download);
            }
            return;
        }
    }
    let l = lits(args);
    // Every `-P` (the last one wins).
    let mut procs = l.iter().enumerate().filter_map(|(i, a)| match *a {
        "--max-procs" => Some(l.get(i + 1).copied().unwrap_or("")),
        a if a.starts_with("--max-procs=") => Some(&a["--max-procs=".len()..]),
        // `-P N`, `-PN`, or in a bundle (`-rP0`).
        a if a.starts_with('-') && !a.starts_with("--") => {
            let at = a.find('P')?;
            let attached = &a[at + 1..];
            Some(if attached.is_empty() {
                l.get(i + 1).copied().unwrap_or("")
            } else {
                attached
            })
        }
        _ => None,
    });
    if procs.any(|p| p.parse::<u32>().map_or(true, |n| n == 0 || n > 4)) {
        ctx.mark(
            Class::Destructive,
            "xargs -P runs many commands at once (0 is as many as it can)",
        );
    }
    // `-a FILE`, `-aFILE`, `--arg-file=FILE`: a file read that the path rules do not see.
    if l.iter().any(|a| {
        a.starts_with("--arg-file")
            || (a.starts_with('-') && !a.starts_with("--") && a.contains('a'))
    }) {
        ctx.mark(
            Class::Destructive,
            "xargs -a reads its arguments from a file, which the policy does not judge",
        );
    }
    let rest = skip_options(
        args,
        &[
            "-n",
            "-I",
            "-P",
            "-d",
            "-L",
            "-s",
            "-E",
            "-a",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
        ],
    );
    // Unquoted, such a word splits into several: an option's value and then a command.
    if any_dyn(&args[..args.len() - rest.len()]) {
        ctx.mark(
            Class::Destructive,
            "xargs is given an option known only when it runs, which may be several words, a command among them",
        );
    }
    // A word holding the replace string (`-I{}`: `sh -c 'echo {}'`, `/{}`) is only known
    // at run time, and so is whatever a shell makes of it.
    let replace = l.iter().enumerate().find_map(|(i, a)| match *a {
        "-I" | "--replace" => l.get(i + 1).copied(),
        "-i" => Some("{}"),
        a => a
            .strip_prefix("--replace=")
            .or(a.strip_prefix("-I").filter(|v| !v.is_empty()))
            .or(a.strip_prefix("-i").filter(|v| !v.is_empty())),
    });
    let mut argv: Vec<Arg> = if rest.is_empty() {
        vec![Arg::Lit("echo".into())]
    } else {
        rest.iter()
            .map(|a| match (a, replace) {
                (Arg::Lit(w), Some(r)) if !r.is_empty() && w.contains(r) => Arg::UNKNOWN,
                _ => a.clone(),
            })
            .collect()
    };
    argv.push(Arg::UNKNOWN);
    // Once per line of input it does not know: a change repeated that many times is a flood.
    let mut each = Findings {
        in_container: ctx.found.in_container,
        globs: ctx.found.globs.clone(),
        ..Findings::default()
    };
    let mut inner = Ctx {
        policy: ctx.policy,
        depth: ctx.depth,
        found: &mut each,
    };
    inner.nested(argv, inv.after_download);
    if each.marks.iter().any(|(c, _)| *c >= Class::Mutating) {
        ctx.mark(
            Class::Destructive,
            "xargs repeats a change once per line of an input the policy does not know",
        );
    }
    ctx.found.marks.append(&mut each.marks);
    ctx.found.invocations.append(&mut each.invocations);
}

fn shell(ctx: &mut Ctx, prog: &str, args: &[Arg]) {
    if prog == "busybox" {
        if let Some(Arg::Lit(applet)) = args.first() {
            let applet = applet.clone();
            return program(
                ctx,
                &applet,
                &args[1..],
                &Invocation {
                    argv: args.to_vec(),
                    after_download: false,
                },
            );
        }
    }
    // A login or interactive shell, or one given an rc file, runs the profile and rc files
    // (the commands' HOME is their own folder, which they may write).
    if let Some(a) = lits(args).into_iter().find(|a| {
        a.starts_with("--") && !matches!(*a, "--norc" | "--noprofile" | "--posix")
            || (a.starts_with('-') && !a.starts_with("--") && a.contains(['i', 'l', 's', 'O', 'H']))
            || a.starts_with('+')
            // `-o history`: history expansion, `!…` standing for text the policy never sees.
            || matches!(*a, "history" | "histexpand")
    }) {
        ctx.mark(
            Class::Destructive,
            format!("{prog} {a} runs profile or rc files, or reads commands the policy cannot see"),
        );
    }
    // `-c` may be bundled with other flags (`-ec`, `-lc`).
    let c = args.iter().position(|a| {
        a.lit().is_some_and(|a| {
            a == "-c" || (a.starts_with('-') && !a.starts_with("--") && a.contains('c'))
        })
    });
    match c {
        Some(i) => ctx.source(args.get(i + 1), &format!("{prog} -c")),
        None if args
            .iter()
            .any(|a| a.lit().is_some_and(|a| !a.starts_with('-'))) =>
        {
            ctx.mark(
                Class::Destructive,
                format!("{prog} runs a script the policy cannot read"),
            )
        }
        None => ctx.mark(
            Class::Denied,
            format!("{prog} reading commands from its input cannot be checked"),
        ),
    }
}

fn find(ctx: &mut Ctx, args: &[Arg], inv: &Invocation) {
    let mut i = 0;
    while i < args.len() {
        match args[i].lit() {
            Some("-delete") => ctx.mark(Class::Destructive, "find deletes what it finds"),
            Some("-fprint" | "-fprint0" | "-fprintf" | "-fls") => {
                let target = args.get(i + 1).cloned().unwrap_or(Arg::UNKNOWN);
                redirect_target(ctx.policy, &target, true, ctx.found);
                ctx.mark(Class::Mutating, "find writes a file")
            }
            Some("-execdir" | "-okdir") => {
                ctx.mark(
                    Class::Destructive,
                    "find -execdir runs its command in each found file's folder, where its paths name other files",
                );
                return;
            }
            Some("-exec" | "-ok") => {
                // `;` ends it; `+` only right after `{}` (elsewhere it is a word).
                let end = (i + 1..args.len())
                    .find(|&j| match args[j].lit() {
                        Some(";" | "\\;") => true,
                        Some("+") => args[j - 1].lit() == Some("{}"),
                        _ => false,
                    })
                    .unwrap_or(args.len());
                let argv: Vec<Arg> = args[i + 1..end]
                    .iter()
                    .map(|a| {
                        if a.lit().is_some_and(|w| w.contains("{}")) {
                            Arg::UNKNOWN
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                ctx.nested(argv, inv.after_download);
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
}

fn remove(ctx: &mut Ctx, prog: &str, args: &[Arg]) {
    let recursive = prog == "rm"
        && (has_short(args, 'r') || has_short(args, 'R') || has(args, &["--recursive"]));
    // truncate's `-s SIZE` and `-r FILE` take the next word.
    let mut targets: Vec<&Arg> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].lit() {
            Some("-s" | "--size" | "-r" | "--reference") if prog == "truncate" => i += 1,
            Some(l) if l.starts_with('-') => {}
            _ => targets.push(&args[i]),
        }
        i += 1;
    }
    for t in &targets {
        match t.lit() {
            None => {
                ctx.mark(
                    Class::Destructive,
                    format!("{prog} of files only known at run time"),
                );
            }
            Some(p) => {
                if in_state(ctx.policy, p) {
                    ctx.mark(
                        Class::Denied,
                        format!("{prog} of the operator's state ({p})"),
                    );
                } else if recursive {
                    if let Some(why) = precious(ctx.policy, p) {
                        ctx.mark(Class::Denied, format!("deletes {why} ({p})"));
                    }
                } else if p.starts_with("/etc/")
                    || p.starts_with("/usr/")
                    || p.starts_with("/boot/")
                    || p.starts_with("/bin/")
                    || p.starts_with("/lib")
                {
                    ctx.mark(Class::Denied, format!("deletes a system file ({p})"));
                }
            }
        }
    }
    ctx.mark(Class::Destructive, format!("{prog} deletes files"));
}

/// A recursive copy or archive of a folder holding links goes to a person (see
/// [`super::links`]): the copy is a new door to what they point at, or a read of it.
fn tree_links(ctx: &mut Ctx, prog: &str, sources: &[&Arg]) {
    use super::links::{Below, below};
    for source in sources.iter().filter_map(|a| a.lit()) {
        match below(&ctx.policy.resolve(source)) {
            Below::Plain => {}
            Below::Link(link) => {
                ctx.mark(
                    Class::Destructive,
                    format!(
                        "{prog} copies a folder holding a link ({}): the copy reaches what it points at",
                        link.display()
                    ),
                );
                return;
            }
            Below::TooMany => {
                ctx.mark(
                    Class::Destructive,
                    format!(
                        "{prog} copies a folder too large to look through for links ({source})"
                    ),
                );
                return;
            }
        }
    }
}

fn write_paths(ctx: &mut Ctx, prog: &str, args: &[Arg]) {
    if any_dyn(args) {
        ctx.mark(
            Class::Destructive,
            format!(
                "{prog} of files only known at run time (they could be secrets, or the system's)"
            ),
        );
    }
    // `-a`/`--archive` copies recursively too (cp, rsync).
    let recursive = has_short(args, 'R')
        || has_short(args, 'r')
        || has_short(args, 'a')
        || has(args, &["--recursive", "--archive"])
        // By any beginning of its name, as GNU getopt reads it (`--arch`).
        || lits(args).iter().any(|a| {
            a.len() > 3 && ("--archive".starts_with(a) || "--recursive".starts_with(a))
        });
    let paths: Vec<&Arg> = operands(args);
    // `-t DIR`, `-tDIR`, in a bundle (`-vt DIR`), or `--target-directory`.
    // `--target-directory=DIR` or `--target-directory DIR`, by any beginning of its name as
    // GNU getopt reads it (`--t=DIR`): DIR, where it is written.
    let long_target: Option<Option<String>> = args.iter().enumerate().find_map(|(i, a)| {
        let w = a.lit()?.strip_prefix("--")?;
        let (name, value) = match w.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (w, None),
        };
        (!name.is_empty() && "target-directory".starts_with(name))
            .then(|| value.or_else(|| args.get(i + 1).and_then(Arg::lit).map(str::to_string)))
    });
    let target_dir = matches!(prog, "cp" | "mv" | "ln" | "install")
        && (long_target.is_some()
            || lits(args)
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('t')));
    // A copy of a system program runs, by its new name, what the name does not say.
    if matches!(prog, "cp" | "install" | "ln" | "mv")
        && paths.iter().filter_map(|a| a.lit()).any(|p| {
            let r = ctx.policy.resolve(p);
            r.parent()
                .and_then(|d| d.to_str())
                .is_some_and(|d| SYSTEM_DIRS.contains(&d))
        })
    {
        ctx.mark(
            Class::Destructive,
            format!("{prog} copies a system program, which may then run under another name"),
        );
    }
    // A copy that keeps links as links (`-d`, `-P`, `-a`, and `-r` for the sources it is
    // given) makes a new door to what a link points at (`cp -d /var/run /tmp/vr; cat
    // /tmp/vr/../etc/shadow`): a source that is a link here goes to a person.
    let keeps_links = prog == "cp"
        && (recursive
            || lits(args).iter().any(|a| {
                (a.starts_with('-') && !a.starts_with("--") && a.contains(['d', 'P', 'a']))
                    || a.starts_with("--no-dereference")
                    || a.starts_with("--archive")
                    || a.starts_with("--preserve=links")
            }));
    if keeps_links
        && paths[..paths.len().saturating_sub(1)]
            .iter()
            .filter_map(|a| a.lit())
            .any(|p| {
                // The source as written (its last name not followed): is it a link?
                let written = ctx.policy.protected().cwd.join(p.trim_end_matches('/'));
                let r = ctx.policy.resolve(p);
                std::fs::symlink_metadata(&written).is_ok_and(|m| m.file_type().is_symlink())
                    || r.starts_with("/proc")
                    || r.starts_with("/dev")
            })
    {
        ctx.mark(
            Class::Destructive,
            "cp copies a link as a link: a new door to what it points at",
        );
    }
    // A recursive copy takes the links below its sources along, kept or followed.
    let archive = lits(args).iter().any(|a| {
        (a.starts_with('-') && !a.starts_with("--") && a.contains('a'))
            || a.starts_with("--archive")
    });
    if prog == "cp" && (recursive || archive) {
        let sources = if target_dir {
            &paths[..]
        } else {
            &paths[..paths.len().saturating_sub(1)]
        };
        tree_links(ctx, prog, sources);
    }
    // `-vt/etc`: the folder attached to `t` in a bundle is written too.
    let attached: Vec<Arg> = lits(args)
        .iter()
        .filter(|a| a.starts_with('-') && !a.starts_with("--") && target_dir)
        .filter_map(|a| a.find('t').map(|at| &a[at + 1..]))
        .filter(|v| !v.is_empty())
        .map(|v| Arg::Lit(v.to_string()))
        .collect();
    let mut paths = paths;
    paths.extend(attached.iter());
    // cp, ln and install only write their last path (the destination), or, with `-t`, every
    // path is judged as written; mv empties its sources too.
    let written: &[&Arg] = match prog {
        "cp" | "ln" | "install" | "rsync" | "tar" | "zip" if !target_dir => {
            &paths[paths.len().saturating_sub(1)..]
        }
        // The first word is the mode (`644`, `u+x`) or the owner (`user:group`).
        "chmod" | "chown" | "chgrp" if !lits(args).iter().any(|a| a.starts_with("--reference")) => {
            paths.get(1..).unwrap_or(&[])
        }
        _ => &paths,
    };
    if matches!(prog, "cp" | "ln" | "install" | "mv") {
        // What lands in the destination: the destination itself, or each source's name in it
        // (`cp evil .bashrc ~`), or `--target-directory=DIR`'s.
        let mut dests: Vec<String> = Vec::new();
        // `-t DIR` (or `-tDIR`, `-vt DIR`, `--target-directory DIR`): DIR is where they land,
        // every other path a source.
        let short_t = lits(args)
            .iter()
            .position(|a| a.starts_with('-') && !a.starts_with("--") && a.ends_with('t'));
        let t_dir = long_target
            .clone()
            .flatten()
            .or_else(|| short_t.and_then(|i| lits(args).get(i + 1).map(|d| d.to_string())));
        if let Some(d) = &t_dir {
            dests.push(d.clone());
        } else if let Some(Arg::Lit(d)) = paths.last() {
            dests.push(d.clone());
        }
        let sources: Vec<&Arg> = match &t_dir {
            Some(d) => paths
                .iter()
                .copied()
                .filter(|a| a.lit() != Some(d.as_str()))
                .collect(),
            None => paths[..paths.len().saturating_sub(1)].to_vec(),
        };
        let sources = &sources[..];
        // A folder's files copied into the commands' HOME (`cp -rT DIR scratch`): its
        // dot-files then configure the programs that run there.
        let home = ctx.policy.resolve(super::SCRATCH);
        if (recursive || has_short(args, 'T') || has(args, &["--no-target-directory"]))
            && dests.iter().any(|d| ctx.policy.resolve(d) == home)
        {
            ctx.mark(
                Class::Destructive,
                format!("{prog} copies a folder's files into the commands' HOME, where dot-files configure programs"),
            );
        }
        for d in &dests {
            let mut landed = vec![d.clone()];
            landed.extend(sources.iter().filter_map(|s| s.lit()).filter_map(|s| {
                let name = s.trim_end_matches('/').rsplit('/').next()?;
                Some(format!("{}/{name}", d.trim_end_matches('/')))
            }));
            for l in landed {
                let mut f = Findings::default();
                written_file(ctx.policy, &l, &mut f);
                // What lands is judged as if written there: a dot-file landing in the
                // commands' HOME (`cp /tmp/.curlrc scratch/`) as much as a denied name.
                for (class, why) in f
                    .marks
                    .into_iter()
                    .filter(|(c, _)| *c >= Class::Destructive)
                {
                    ctx.mark(class, format!("{prog}: {why}"));
                }
            }
        }
    }
    if prog == "ln"
        || (prog == "cp" && (has_short(args, 's') || has_short(args, 'l')))
        || has(args, &["--symbolic-link", "--link"])
    {
        ctx.mark(
            Class::Destructive,
            format!(
                "{prog} links a name to another file, which later reads would judge by the name"
            ),
        );
    }
    // Permissions that run as the file's owner (setuid, setgid).
    if matches!(prog, "chmod" | "install")
        && lits(args).iter().any(|a| {
            let mode = a
                .strip_prefix("--mode=")
                .or_else(|| {
                    // `-m MODE` attached, or in a bundle (`-Dm4755`).
                    a.strip_prefix('-')
                        .filter(|b| !b.starts_with('-'))
                        .and_then(|b| b.find('m').map(|at| &b[at + 1..]))
                })
                .unwrap_or(a);
            let mode = mode.trim_start_matches(['=', '+']);
            u32::from_str_radix(mode, 8).is_ok_and(|m| m & 0o7000 != 0)
                || (!mode.starts_with('/')
                    && mode.contains(['s', 't'])
                    && mode.contains(['+', '=']))
        })
    {
        ctx.mark(
            Class::Destructive,
            format!("{prog} gives a file setuid or setgid rights"),
        );
    }
    for a in written {
        match a.lit() {
            Some(p) => {
                if recursive
                    && matches!(prog, "chmod" | "chown" | "chgrp")
                    && precious(ctx.policy, p).is_some()
                {
                    ctx.mark(Class::Denied, format!("{prog} -R of {p}"));
                }
                // Who may do what with a folder outside the instance's (`chmod 000 /tmp`) is
                // the host's to decide.
                let resolved = ctx.policy.resolve(p);
                if matches!(prog, "chmod" | "chown" | "chgrp")
                    && !ctx.policy.protected().cwd.as_os_str().is_empty()
                    && !resolved.starts_with(ctx.policy.resolve("."))
                    && (resolved.is_dir() || recursive)
                {
                    ctx.mark(
                        Class::Destructive,
                        format!("{prog} of {p}, outside the instance's folder"),
                    );
                }
                let mut f = Findings::default();
                written_file(ctx.policy, p, &mut f);
                for (class, why) in f.marks.into_iter().filter(|(c, _)| *c != Class::Mutating) {
                    ctx.mark(class, format!("{prog}: {why}"));
                }
            }
            None => ctx.mark(
                Class::Destructive,
                format!("{prog} with paths only known at run time"),
            ),
        }
    }
    ctx.mark(Class::Mutating, format!("{prog} changes files"));
}

/// A command line's leading options and the words after them; whether every option is one
/// of `allowed`.
fn options_then_words<'a>(l: &[&'a str], allowed: &[&str]) -> (bool, Vec<&'a str>) {
    let n = l.iter().take_while(|a| a.starts_with('-')).count();
    (l[..n].iter().all(|a| allowed.contains(a)), l[n..].to_vec())
}

/// The archive tar or zip writes: tar's `-f` value when it creates, appends or updates
/// (`tar czf X …`, `--file=X`), zip's first word; `None` when it writes none (listing,
/// extracting, which tar's own rule judges, or a tar without `-f`, which writes to its
/// output).
fn archive(prog: &str, args: &[Arg]) -> Option<Arg> {
    if prog == "zip" {
        return args
            .iter()
            .find(|a| a.lit().is_none_or(|w| !w.starts_with('-')))
            .cloned();
    }
    let words: Vec<&Arg> = args.iter().collect();
    let mut creates = false;
    let mut file: Option<Arg> = None;
    let mut i = 0;
    while i < words.len() {
        let Some(w) = words[i].lit() else {
            i += 1;
            continue;
        };
        if let Some(long) = w.strip_prefix("--") {
            match long.split_once('=') {
                Some(("file", v)) => file = Some(Arg::Lit(v.to_string())),
                None if long == "file" => {
                    file = words.get(i + 1).map(|a| (*a).clone());
                    i += 1;
                }
                _ => {}
            }
            creates |= matches!(
                long,
                "create" | "append" | "update" | "catenate" | "concatenate"
            );
        } else if let Some(bundle) = w
            .strip_prefix('-')
            .or((i == 0 && !w.contains(['/', '.'])).then_some(w))
        {
            creates |= bundle.contains(['c', 'r', 'u', 'A']);
            if let Some(at) = bundle.find('f') {
                let attached = &bundle[at + 1..];
                if attached.is_empty() || !w.starts_with('-') {
                    // `-f X`, or old style `czf X`: the next word.
                    file = words.get(i + 1).map(|a| (*a).clone());
                    i += 1;
                } else {
                    file = Some(Arg::Lit(attached.to_string()));
                }
            }
        }
        i += 1;
    }
    if creates { file } else { None }
}

/// Whether iptables lists: `-L`, `-S` or their long names, alone or in a bundle (`-nvL`).
fn has_list(l: &[&str], list: &[&str]) -> bool {
    l.iter().any(|a| {
        list.contains(a) || (!a.starts_with("--") && a.starts_with('-') && a.contains(['L', 'S']))
    })
}

fn iptables(ctx: &mut Ctx, args: &[Arg]) {
    const FLUSH: &[&str] = &[
        "-F",
        "--flush",
        "-X",
        "--delete-chain",
        "-P",
        "--policy",
        "-Z",
        "--zero",
    ];
    const LIST: &[&str] = &[
        "-L",
        "--list",
        "-S",
        "--list-rules",
        "-C",
        "--check",
        "--version",
        "-V",
    ];
    // Only the options that list, spelt in full: iptables takes any beginning of a long
    // option (`--zer` is `--zero`).
    let l = lits(args);
    let unread = l.iter().enumerate().any(|(i, a)| {
        let value = i > 0 && matches!(l[i - 1], "-t" | "--table" | "-w" | "--wait");
        !value
            && a.starts_with('-')
            && !matches!(
                *a,
                "-L" | "--list"
                    | "-S"
                    | "--list-rules"
                    | "-n"
                    | "--numeric"
                    | "-v"
                    | "--verbose"
                    | "-x"
                    | "--exact"
                    | "--line-numbers"
                    | "-t"
                    | "--table"
                    | "-w"
                    | "--wait"
                    | "--version"
                    | "-V"
                    | "-h"
                    | "--help"
            )
            && (a.len() <= 2 || a.starts_with("--") || !a[1..].chars().all(|c| "LSnvx".contains(c)))
    });
    if has(args, FLUSH) {
        ctx.mark(Class::Denied, "flushes or rewrites the firewall");
    } else if unread
        || any_dyn(args)
        || !has_list(&l, LIST)
        || has(
            args,
            &[
                "-A",
                "--append",
                "-I",
                "--insert",
                "-D",
                "--delete",
                "-R",
                "--replace",
                "-N",
                "-E",
            ],
        )
    {
        ctx.mark(Class::Destructive, "changes firewall rules");
    }
}

fn ip(ctx: &mut Ctx, args: &[Arg], inv: &Invocation) {
    // Options that take a value; a value left in place would be read as the object (`ip -f
    // inet addr del …`).
    const WITH_VALUE: &[&str] = &[
        "-f", "-family", "-n", "-netns", "-l", "-loops", "-rc", "-rcvbuf",
    ];
    const FLAGS: &[&str] = &[
        "-s",
        "-stats",
        "-statistics",
        "-d",
        "-details",
        "-j",
        "-json",
        "-p",
        "-pretty",
        "-4",
        "-6",
        "-0",
        "-o",
        "-oneline",
        "-r",
        "-resolve",
        "-br",
        "-brief",
        "-c",
        "-color",
        "-h",
        "-human",
        "-human-readable",
        "-t",
        "-timestamp",
        "-ts",
        "-tshort",
        "-a",
        "-all",
        "-V",
        "-Version",
    ];
    let mut l: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let Some(a) = args[i].lit() else {
            ctx.mark(Class::Destructive, "ip with words only known at run time");
            return;
        };
        i += 1;
        if !l.is_empty() || !a.starts_with('-') {
            l.push(a);
        } else if WITH_VALUE.contains(&a) {
            i += 1;
        } else if matches!(a, "-b" | "-batch" | "-force") {
            ctx.mark(Class::Destructive, "ip -batch runs the commands of a file");
            return;
        } else if !FLAGS.contains(&a) && !a.starts_with("-color=") && !a.starts_with("-c=") {
            ctx.mark(
                Class::Destructive,
                format!("ip {a}: an option the policy does not know"),
            );
            return;
        }
    }
    if l.len() >= 4 && l[0] == "netns" && l[1] == "exec" {
        let pos = args
            .iter()
            .position(|a| a.lit() == Some(l[2]))
            .map_or(args.len(), |p| p + 1);
        // Another namespace's loopback holds other services than the instance's own.
        ctx.mark(
            Class::Destructive,
            "runs a command in another network namespace",
        );
        ctx.nested(args[pos..].to_vec(), inv.after_download);
        return;
    }
    // Only the verbs that read; `ip OBJECT` alone shows.
    let verb = l.get(1).copied().unwrap_or("show");
    if ![
        "show", "list", "lst", "ls", "sh", "get", "save", "monitor", "help",
    ]
    .contains(&verb)
    {
        ctx.mark(Class::Destructive, "changes the network configuration");
    }
}

fn operator(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    for flag in ["--db", "--state-dir", "--instance", "--config"] {
        if l.iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
        {
            ctx.mark(
                Class::Denied,
                format!("operator {flag}: the agent works on its own instance only"),
            );
            return;
        }
    }
    if any_dyn(args) {
        ctx.mark(
            Class::Destructive,
            "operator with arguments only known at run time",
        );
    }
    // `--help` prints the usage of any verb and does nothing else.
    if l.iter()
        .take_while(|a| **a != "--")
        .any(|a| matches!(*a, "--help" | "-h"))
    {
        return;
    }
    let words: Vec<&str> = l.iter().copied().filter(|a| !a.starts_with('-')).collect();
    // `load --verify` only checks what an earlier load wrote.
    if words.first() == Some(&"load") && l.contains(&"--verify") {
        return;
    }
    if words.first() == Some(&"load") {
        let value = |flag: &str| {
            l.iter().enumerate().find_map(|(i, a)| {
                if *a == flag {
                    l.get(i + 1).copied()
                } else {
                    a.strip_prefix(flag).and_then(|r| r.strip_prefix('='))
                }
            })
        };
        let rate = value("--rate").map(|r| r.parse::<u32>().ok());
        let duration = value("--duration").map(seconds);
        if rate.is_some_and(|r| r.is_none_or(|r| r > 500))
            || duration.is_some_and(|d| d.is_none_or(|d| d > COMMAND_SECONDS))
        {
            ctx.mark(
                Class::Destructive,
                "operator load at more than 500 requests a second, or for longer than a command may run, floods the cluster",
            );
        }
    }
    // The rig is not the subject: the fault proxy holds the faults injected and every
    // link in its memory, so starting or restarting it lifts them (and drops connections).
    // Every word after the verb may be the node: an option's value is a word too
    // (`node restart --lines 5 redis`), and which word clap takes is not the policy's guess.
    let named = |node: &str| words.len() > 2 && words[2..].contains(&node);
    if words.first() == Some(&"node")
        && words.get(1) != Some(&"logs")
        && named(crate::runtime::FAULTPROXY)
    {
        ctx.mark(
            Class::Destructive,
            "the fault proxy holds the faults and links in memory: acting on it lifts them",
        );
    }
    // Several loads in one command (in the background, or piped into each other) run at
    // once: one flood.
    let loads = ctx
        .found
        .invocations
        .iter()
        .filter(|inv| {
            let w = inv.words();
            w.first().is_some_and(|p| program_name(p) == "operator")
                && w.contains(&"load".to_string())
        })
        .count();
    if words.first() == Some(&"load") && loads >= 1 {
        ctx.mark(
            Class::Destructive,
            "several operator loads at once flood the cluster",
        );
    }
    if let ["node", "restart" | "stop" | "kill" | "reset", ..] = words.as_slice()
        && let Some(node) = ctx
            .policy
            .subjects()
            .iter()
            .flat_map(|s| s.memory_nodes().iter())
            .find(|n| named(n))
    {
        ctx.mark(
            Class::Destructive,
            format!(
                "{node} keeps its data only in memory: stopping or restarting it loses the data"
            ),
        );
    }
    match super::verbs::verb_of(&words) {
        Some(v) if v.class > Class::ReadOnly => ctx.mark(v.class, v.why),
        Some(_) => {}
        None => ctx.mark(
            Class::Destructive,
            format!(
                "operator {} is not a command the policy knows",
                words.first().unwrap_or(&"?")
            ),
        ),
    }
}

fn docker(ctx: &mut Ctx, prog: &str, args: &[Arg], inv: &Invocation) {
    if !docker_engine(ctx, prog, args) {
        return;
    }
    let rest = skip_options(
        args,
        &[
            "-H",
            "--host",
            "--context",
            "-c",
            "--config",
            "-l",
            "--log-level",
        ],
    );
    let l = lits(rest);
    let (group, verb) = match l.first().copied() {
        Some(
            g @ ("container" | "image" | "volume" | "network" | "system" | "compose" | "builder"
            | "buildx"),
        ) => (g, l.get(1).copied().unwrap_or("")),
        Some(v) => ("", v),
        None => ("", ""),
    };
    let read = [
        "ps", "ls", "logs", "inspect", "stats", "top", "images", "version", "info", "port", "diff",
        "events", "history", "df", "config",
    ];
    match (group, verb) {
        (_, "exec") => {
            let sub = if group.is_empty() {
                &rest[1..]
            } else {
                &rest[2.min(rest.len())..]
            };
            let after = skip_options(
                sub,
                &[
                    "-e",
                    "--env",
                    "-u",
                    "--user",
                    "-w",
                    "--workdir",
                    "--env-file",
                ],
            );
            if after.len() < 2 {
                ctx.mark(Class::Destructive, "an interactive shell in a container");
                return;
            }
            if has(sub, &["-u", "--user"]) && lits(sub).contains(&"root") {
                ctx.mark(Class::Destructive, "runs as root in a container");
            }
            // In there, loopback is that container.
            let was = std::mem::replace(&mut ctx.found.in_container, true);
            ctx.nested(after[1..].to_vec(), inv.after_download);
            ctx.found.in_container = was;
        }
        ("volume", "rm" | "prune")
        | ("system", "prune")
        | ("image" | "builder" | "network" | "container", "prune")
        | ("", "rm" | "rmi")
        | ("container" | "image" | "network", "rm") => ctx.mark(
            Class::Denied,
            format!(
                "{prog} {} deletes containers, images, networks or volumes",
                l.join(" ")
            ),
        ),
        ("compose", "down") if has(rest, &["-v", "--volumes"]) => {
            ctx.mark(Class::Denied, "deletes the project's volumes")
        }
        ("compose", "down" | "stop" | "kill" | "rm") => {
            ctx.mark(Class::Destructive, "stops the project's containers")
        }
        ("compose", "ps" | "logs" | "config" | "ls" | "top" | "images") => {}
        ("compose", "start" | "restart" | "unpause" | "up") => {
            ctx.mark(Class::Mutating, "starts the project's containers")
        }
        (_, "inspect") if l.iter().any(|a| a.contains("Env")) => ctx.mark(
            Class::Denied,
            "docker inspect of a container's environment (the proxy hides its values anyway)",
        ),
        (_, v) if read.contains(&v) => {}
        // A restart stops first: a node that keeps its data only in memory loses it (by its
        // name, or its container's `…-NAME`), and a name known only at run time may be one.
        (_, "restart")
            if any_dyn(rest)
                || l.iter().any(|a| {
                    ctx.policy.subjects().iter().any(|s| {
                        s.memory_nodes()
                            .iter()
                            .any(|n| a == n || a.ends_with(&format!("-{n}")))
                    })
                }) =>
        {
            ctx.mark(
                Class::Destructive,
                "restarts a node that keeps its data only in memory: the data is lost",
            )
        }
        (_, "start" | "restart" | "unpause") => ctx.mark(Class::Mutating, "starts a container"),
        (_, "stop" | "kill" | "pause") => {
            ctx.mark(Class::Destructive, "takes a container out of service")
        }
        (
            _,
            "run" | "create" | "build" | "pull" | "push" | "commit" | "cp" | "update" | "rename"
            | "login" | "tag" | "load" | "import" | "save" | "export",
        ) => ctx.mark(
            Class::Destructive,
            format!("{prog} {v} changes what runs on the host", v = verb),
        ),
        _ => ctx.mark(
            Class::Destructive,
            format!("{prog} {} is not a command the policy knows", l.join(" ")),
        ),
    }
}

fn kubectl(ctx: &mut Ctx, args: &[Arg]) {
    // Options that choose the cluster or the credentials may point anywhere.
    if let Some(a) = lits(args).into_iter().find(|a| {
        a.starts_with("-s")
            || [
                "--server",
                "--kubeconfig",
                "--context",
                "--cluster",
                "--token",
                "--as",
                "--user",
                "--insecure-skip-tls-verify",
                "--certificate-authority",
                "--client-certificate",
                "--client-key",
                "--username",
                "--password",
                "--tls-server-name",
            ]
            .iter()
            .any(|o| a.starts_with(o))
    }) {
        ctx.mark(
            Class::Destructive,
            format!("kubectl {a} chooses which cluster it talks to, or as whom"),
        );
    }
    let rest = skip_options(
        args,
        &[
            "-n",
            "--namespace",
            "--context",
            "--kubeconfig",
            "-l",
            "--selector",
        ],
    );
    if lits(args).iter().any(|a| a.contains("://")) {
        ctx.mark(
            Class::Destructive,
            "kubectl fetches a file from an address (-f URL)",
        );
    }
    let verb = rest.first().and_then(Arg::lit).unwrap_or("");
    match verb {
        "get" | "describe" | "logs" | "top" | "explain" | "version" | "api-resources"
        | "cluster-info" | "events" => {}
        "rollout" if rest.get(1).and_then(Arg::lit) == Some("status") => {}
        // No instance runs on Kubernetes: a change there is to someone else's cluster.
        "rollout" | "annotate" | "label" | "apply" | "patch" => ctx.mark(
            Class::Destructive,
            format!("kubectl {verb} changes a Kubernetes cluster, which is not the instance's"),
        ),
        "delete" | "drain" | "cordon" | "scale" | "edit" | "replace" | "exec" | "cp" | "run"
        | "taint" => ctx.mark(Class::Destructive, format!("kubectl {verb}")),
        _ => ctx.mark(
            Class::Destructive,
            format!("kubectl {verb} is not a command the policy knows"),
        ),
    }
}

fn systemctl(ctx: &mut Ctx, prog: &str, args: &[Arg]) {
    // The verb is the first word that is no option nor an option's value (`-p status
    // reboot` reboots). Options are read from a list; any other goes to a person.
    const FLAGS: &[&str] = &[
        "--no-pager",
        "--all",
        "-a",
        "--full",
        "-l",
        "--plain",
        "--no-legend",
        "-q",
        "--quiet",
        "--failed",
        "--value",
        "--status-all",
    ];
    const VALUES: &[&str] = &[
        "-p",
        "--property",
        "-P",
        "-t",
        "--type",
        "--state",
        "-n",
        "--lines",
        "-o",
        "--output",
    ];
    let words = lits(args);
    let mut l: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let a = words[i];
        if VALUES.contains(&a) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            let known = FLAGS.contains(&a)
                || VALUES
                    .iter()
                    .any(|v| v.starts_with("--") && a.starts_with(&format!("{v}=")))
                || ["-p", "-P", "-t", "-n", "-o"]
                    .iter()
                    .any(|v| a.starts_with(v) && a.len() > 2);
            if !known || (prog == "service" && a != "--status-all") {
                ctx.mark(
                    Class::Destructive,
                    format!("{prog} {a}: an option the policy does not know"),
                );
            }
        } else {
            l.push(a);
        }
        i += 1;
    }
    if lits(args).iter().any(|a| {
        ["--host", "--machine"].iter().any(|o| a.starts_with(o))
            || (a.starts_with('-') && !a.starts_with("--") && a.contains(['H', 'M']))
    }) {
        ctx.mark(
            Class::Destructive,
            format!("{prog} -H/-M reaches another host or machine"),
        );
    }
    let verb = if prog == "service" {
        l.get(1).copied().unwrap_or("status")
    } else {
        l.first().copied().unwrap_or("status")
    };
    match verb {
        "status" | "is-active" | "is-enabled" | "is-failed" | "list-units" | "list-timers"
        | "list-unit-files" => {}
        // One property by name (`-p ActiveState`), not the environment.
        "show"
            if lits(args).iter().enumerate().any(|(i, a)| {
                let property = match *a {
                    "-p" | "--property" => lits(args).get(i + 1).copied(),
                    a => a
                        .strip_prefix("--property=")
                        .or(a.strip_prefix("-p").filter(|v| !v.is_empty())),
                };
                property.is_some_and(|p| !p.to_ascii_lowercase().contains("env"))
            }) && !lits(args)
                .iter()
                .any(|a| a.to_ascii_lowercase().contains("env")) => {}
        "show" | "cat" => ctx.mark(
            Class::Destructive,
            format!("{prog} {verb} prints the units' settings, their secrets among them"),
        ),
        // The instance's nodes are not the host's services: starting or restarting one of
        // those (a target, sshd, the engine, the journal) changes the host.
        "start" | "restart" | "reload" | "try-restart" | "reload-or-restart" => ctx.mark(
            Class::Destructive,
            format!("{prog} {verb} changes the host's services"),
        ),
        "reboot" | "poweroff" | "halt" | "kexec" | "suspend" | "hibernate" | "emergency"
        | "rescue" => ctx.mark(Class::Denied, format!("{prog} {verb} takes the host down")),
        _ => ctx.mark(Class::Destructive, format!("{prog} {verb}")),
    }
}

/// The largest count or width a reader may be asked for before it fills memory or a disk:
/// `seq inf`, `printf '%*s' 2000000000`.
const MAX_COUNT: f64 = 1_000_000.0;

/// Readers asked to run without end or to build something huge: memory and `/tmp` (RAM)
/// are the host's. `None` when the program is not one of them or is asked for little.
fn floods(prog: &str, args: &[Arg]) -> Option<String> {
    let l = lits(args);
    let numbers: Vec<f64> = l.iter().filter_map(|a| a.parse::<f64>().ok()).collect();
    let huge = |a: &str| {
        let a = a.trim_start_matches(['-', '+']).to_ascii_lowercase();
        a.starts_with("inf")
            || a == "nan"
            || a.parse::<f64>()
                .is_ok_and(|n| n.is_nan() || n.abs() > MAX_COUNT)
    };
    match prog {
        "seq" if any_dyn(args) || l.iter().any(|a| huge(a)) => {
            Some("seq counts past a million (or without end)".into())
        }
        // `seq FIRST STEP LAST`: as many numbers as the step fits in the range.
        "seq"
            if numbers.len() == 3
                && (numbers[1] == 0.0
                    || ((numbers[2] - numbers[0]) / numbers[1]).abs() > MAX_COUNT) =>
        {
            Some("seq counts past a million".into())
        }
        "shuf"
            if l.iter().any(|a| {
                (a.starts_with('-') && !a.starts_with("--") && a.contains('r'))
                    || a.starts_with("--repeat")
            }) || l.iter().any(|a| {
                a.split_once('-')
                    .and_then(|(lo, hi)| Some((lo.parse::<f64>().ok()?, hi.parse::<f64>().ok()?)))
                    .is_some_and(|(lo, hi)| hi - lo > MAX_COUNT)
            }) =>
        {
            Some("shuf repeats without end, or over a range past a million".into())
        }
        "bc" | "dc" => Some(format!(
            "{prog} computes what its input says, as large as it says"
        )),
        "printf" if any_dyn(args) && l.first().is_some_and(|f| f.contains('*')) => {
            Some("printf with a width only known at run time".into())
        }
        "printf" if l.iter().skip(1).any(|a| huge(a)) || l.first().is_some_and(|f| wide(f)) => {
            Some("printf pads to a width past a million".into())
        }
        "jq" | "yq" | "gojq"
            if l.iter().any(|a| {
                ["range(", "repeat", "until(", "while(", "limit(", "recurse("]
                    .iter()
                    .any(|k| a.replace(' ', "").contains(k))
                    || big_number(a)
            }) =>
        {
            Some(format!(
                "{prog} loops (range, repeat, until, while), which may fill memory"
            ))
        }
        "awk" | "gawk" | "mawk" | "nawk"
            if l.iter().any(|a| {
                let a = a.replace(' ', "");
                a.contains("while(") || a.contains("do{") || a.contains(";;") || big_number(&a)
            }) =>
        {
            Some(format!(
                "{prog} loops (while, do, for(;;)), which may run without end"
            ))
        }
        "sed" | "gsed" if l.iter().any(|a| sed_label(a)) => {
            Some("sed branches to a label, a loop that may run without end".into())
        }
        _ => None,
    }
}

/// A printf format with a literal width or precision past a million (`%2000000000s`,
/// `%.2000000000f`).
fn wide(format: &str) -> bool {
    format.split('%').skip(1).any(|spec| {
        let spec = spec.trim_start_matches(['-', '+', ' ', '#', '0']);
        let width: String = spec.chars().take_while(|c| c.is_ascii_digit()).collect();
        let precision: String = spec[width.len()..]
            .strip_prefix('.')
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        width.len() > 6 || precision.len() > 6
    })
}

/// A program text holding a number past a million (`.[1000000000] = 1`, `"x" * 1e9`).
fn big_number(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .filter_map(|w| w.parse::<f64>().ok())
        .any(|n| n.abs() > MAX_COUNT)
}

/// Whether a sed script defines a label (`:a`), the start of a loop.
fn sed_label(script: &str) -> bool {
    script
        .split(['\n', ';'])
        .any(|cmd| cmd.trim_start().starts_with(':'))
}
