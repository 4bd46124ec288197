//! The policy's word on `etcdctl`: what each of its commands does to the cluster, and where
//! it connects. Reading is read-only; the routine repairs of a full backend (compact,
//! defragment, disarm) and writes are mutating; whatever loses data or changes membership
//! is destructive, so that a person approves it in auto mode.

use crate::policy::ProgramVerdict;
use crate::policy::{Arg, Class, Route, Split, Target, known, url_target};

/// etcd's HTTP gateway (grpc-gateway; every call a POST, `/v3beta/` and `/v3alpha/` aliases
/// of `/v3/`) and its plain endpoints. The method cannot tell a read from a write here: the
/// path does. Reads are read-only; a put is what `etcdctl put` is; everything else under
/// `/v3` (deletes, transactions, compaction, members, auth, leases, alarms, defragment,
/// snapshots) goes to a person, and what no route names is refused a write.
pub const ROUTES: [Route; 11] = [
    Route::new("GET", "/health", Class::ReadOnly, "etcd's health"),
    Route::new("GET", "/metrics", Class::ReadOnly, "etcd's metrics"),
    Route::new("GET", "/version", Class::ReadOnly, "etcd's version"),
    Route::new("*", "/v3*/kv/range", Class::ReadOnly, "reads keys"),
    Route::new(
        "*",
        "/v3*/maintenance/status",
        Class::ReadOnly,
        "a member's status",
    ),
    Route::new(
        "*",
        "/v3*/cluster/member/list",
        Class::ReadOnly,
        "lists members",
    ),
    Route::new("*", "/v3*/kv/put", Class::Mutating, "writes a key").with_body(plain_put),
    Route::new(
        "*",
        "/v3*/maintenance/defragment",
        Class::Mutating,
        "rewrites a member's backend file (as `etcdctl defrag`)",
    ),
    Route::new(
        "*",
        "/v3*/kv/compaction",
        Class::Mutating,
        "compacts the history (as `etcdctl compact`)",
    ),
    // `etcdctl alarm list` and `alarm disarm` by the gateway; raising an alarm, or a body
    // the policy does not know, goes to a person.
    Route::new(
        "*",
        "/v3*/maintenance/alarm",
        Class::Destructive,
        "raises or clears an alarm",
    )
    .with_body(alarm),
    Route::new(
        "*",
        "/v3*",
        Class::Destructive,
        "etcd's API beyond reads and puts: deletes, transactions, members, auth, leases, alarms",
    ),
];

/// A put by the gateway is what `etcdctl put` is only with a key and a value: a lease (which
/// deletes the key when it ends) or any other field goes to a person.
fn plain_put(body: Option<&serde_json::Value>) -> Option<(Class, &'static str)> {
    let plain = body.is_none_or(|b| {
        b.as_object()
            .is_some_and(|o| o.keys().all(|k| k == "key" || k == "value"))
    });
    (!plain).then_some((
        Class::Destructive,
        "writes a key with a lease or options the policy does not read",
    ))
}

/// etcd's alarm route reads with `{"action":"GET"}` and disarms one member's out-of-space
/// alarm with `{"action":"DEACTIVATE","memberID":"7","alarm":"NOSPACE"}` (the member that
/// raised it, in decimal; `0` names none); raising one, disarming any other (CORRUPT: a
/// member's data found to differ), or a body the policy does not read, goes to a person.
fn alarm(body: Option<&serde_json::Value>) -> Option<(Class, &'static str)> {
    let o = body?.as_object()?;
    let action = o.get("action")?;
    if (action == "GET" || action == 0) && o.len() == 1 {
        return Some((Class::ReadOnly, "lists the alarms"));
    }
    // A member id as the gateway reads a uint64: a decimal string or number.
    let member = o.get("memberID").is_none_or(|m| {
        m.as_u64().is_some()
            || m.as_str().is_some_and(|s| {
                !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
            })
    });
    (action == "DEACTIVATE"
        && o.get("alarm").is_some_and(|a| a == "NOSPACE")
        && member
        && o.len() <= 3)
        .then_some((
            Class::Mutating,
            "disarms a member's out-of-space alarm, and no other",
        ))
}

/// The root command's flags that take a value (as the next word, when not written
/// `--flag=value`). cobra finds the command by skipping the root's flags, and reads any other
/// flag before it as taking the next word (`etcdctl --prefix get del x` runs `del`).
const GLOBAL_WITH_VALUE: &[&str] = &[
    "--endpoints",
    "--dial-timeout",
    "--command-timeout",
    "--keepalive-time",
    "--keepalive-timeout",
    "--cacert",
    "--cert",
    "--key",
    "--user",
    "--password",
    "-w",
    "--write-out",
    "--discovery-srv",
    "-d",
    "--discovery-srv-name",
];

/// The root command's flags that take no value.
const GLOBAL_SWITCHES: &[&str] = &[
    "--insecure-transport",
    "--insecure-skip-tls-verify",
    "--insecure-discovery",
    "--debug",
    "--hex",
    "--version",
    "--help",
    "-h",
];

/// The commands' own flags that take a value.
const COMMAND_WITH_VALUE: &[&str] = &[
    "--prefix-range-end",
    "--rev",
    "--limit",
    "--sort-by",
    "--order",
    "--lease",
    "--ttl",
    "--peer-urls",
    "--dest-prefix",
    "--dest-cacert",
    "--dest-cert",
    "--dest-key",
    "--dest-insecure-transport",
    "--data-dir",
    "--name",
    "--initial-cluster",
    "--initial-cluster-token",
    "--initial-advertise-peer-urls",
    "--load",
];

/// etcdctl's commands that hold commands of their own.
const GROUPS: &[&str] = &[
    "member",
    "user",
    "role",
    "alarm",
    "lease",
    "auth",
    "snapshot",
    "endpoint",
    "check",
    "downgrade",
];

fn takes_value(flag: &str) -> bool {
    GLOBAL_WITH_VALUE.contains(&flag) || COMMAND_WITH_VALUE.contains(&flag)
}

pub fn classify(given: &[Arg]) -> ProgramVerdict {
    let args = &known(given);
    let mut endpoints: Option<Vec<Option<Target>>> = None;
    let mut unread: Option<String> = None;
    let mut words: Vec<Option<&str>> = Vec::new();
    let mut flags: Vec<&str> = Vec::new();
    // `watch … -- CMD` runs CMD on every change.
    let mut runs = false;
    let mut i = 0;
    while i < args.len() {
        if args[i] == Some("--") {
            runs = args.len() > i + 1;
            break;
        }
        let Some(a) = args[i] else {
            // compact's revision, one word whatever its text (`compact "$rev"`), followed
            // by nothing but flags that take no separate value: were it a flag (or `--`),
            // compact would have no revision or a flag for one, which etcdctl refuses before
            // it makes a client.
            let only_switches_after = args[i + 1..].iter().all(|w| {
                w.is_some_and(|w| {
                    w.starts_with('-') && w != "--" && (w.contains('=') || !takes_value(w))
                })
            });
            if given[i] == Arg::Dyn(Split::One)
                && only_switches_after
                && matches!(words.as_slice(), [Some("compact" | "compaction")])
            {
                words.push(None);
                i += 1;
                continue;
            }
            // A word known only when the command runs may turn out a flag (`--`,
            // `--endpoints=…`, `--lease=…`), which would change what etcdctl does.
            unread.get_or_insert(
                "etcdctl is given a word known only when it runs, which may be any flag".into(),
            );
            words.push(None);
            i += 1;
            continue;
        };
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v)),
            _ => (a, None),
        };
        if flag.starts_with('-') && flag.len() > 1 {
            flags.push(flag);
            if words.is_empty()
                && !GLOBAL_WITH_VALUE.contains(&flag)
                && !GLOBAL_SWITCHES.contains(&flag)
            {
                unread.get_or_insert(format!(
                    "etcdctl {flag} before its command: etcdctl would take the next word as its value"
                ));
            }
            // Between a command group and its command (`member --learner list add`), etcdctl
            // may take the next word as the flag's value and run the command after it.
            if words.len() == 1
                && words[0].is_some_and(|w| GROUPS.contains(&w))
                && !GLOBAL_WITH_VALUE.contains(&flag)
                && !GLOBAL_SWITCHES.contains(&flag)
            {
                unread.get_or_insert(format!(
                    "etcdctl {flag} between a command group and its command: etcdctl may take the next word as its value"
                ));
            }
            if !flag.starts_with("--") && flag.len() > 2 {
                unread.get_or_insert(format!(
                    "etcdctl {flag}: a short flag with a value attached, which the policy does not read"
                ));
            }
            let value = match inline {
                Some(v) => Some(Some(v)),
                None if takes_value(flag) => {
                    i += 1;
                    Some(args.get(i).copied().flatten())
                }
                None => None,
            };
            // Each `--endpoints` adds to the list.
            if flag == "--endpoints" {
                let list = endpoints.get_or_insert_with(Vec::new);
                match value.flatten() {
                    Some(l) => list.extend(l.split(',').map(endpoint)),
                    None => list.push(None),
                }
            }
            i += 1;
            continue;
        }
        words.push(Some(a));
        i += 1;
    }
    // Without --endpoints, etcdctl asks 127.0.0.1:2379: not this instance's unless it is.
    let targets = endpoints.unwrap_or_else(|| {
        vec![Some(Target::Tcp {
            host: "127.0.0.1".into(),
            port: 2379,
        })]
    });
    // `version`, `help`, `--version` and `--help` print without reaching any endpoint.
    let offline = matches!(words.first(), None | Some(Some("version" | "help")))
        // As flags, not as another flag's value (`--password -h`).
        || flags
            .iter()
            .any(|f| matches!(*f, "--version" | "--help" | "-h"));
    let targets = if offline { Vec::new() } else { targets };
    let (class, reason) = if runs {
        (
            Class::Destructive,
            "etcdctl watch -- runs a command on every change".into(),
        )
    } else if flags
        .iter()
        .any(|f| matches!(*f, "--discovery-srv" | "-d" | "--discovery-srv-name"))
    {
        (
            Class::Denied,
            "etcdctl --discovery-srv finds its endpoints by DNS, outside the instance".into(),
        )
    } else if let Some(why) = unread {
        match command(&words) {
            denied @ (Class::Denied, _) => denied,
            _ => (Class::Destructive, why),
        }
    } else if words.first() == Some(&Some("watch"))
        && flags.iter().any(|f| matches!(*f, "-i" | "--interactive"))
    {
        (
            Class::Destructive,
            "etcdctl watch -i reads commands from its input, which may run programs".into(),
        )
    } else if flags.contains(&"--data-dir") && !matches!(command(&words).0, Class::Denied) {
        // `defrag --data-dir DIR` rewrites a stopped member's backend file in place, outside
        // any member's consent, as `etcdutl defrag` does.
        (
            Class::Destructive,
            "etcdctl --data-dir works on a member's files directly, not through a member".into(),
        )
    } else if flags.contains(&"--lease") && words.first() == Some(&Some("put")) {
        (
            Class::Destructive,
            "etcdctl put --lease ties a key to a lease, which deletes it when it ends".into(),
        )
    } else {
        command(&words)
    };
    ProgramVerdict::one(class, reason, targets)
}

/// `etcd` itself: printing its version or usage reads; starting a member by hand is for a
/// person (the operator starts members: `operator node start`).
pub fn server(args: &[Option<&str>]) -> ProgramVerdict {
    let prints = !args.is_empty()
        && args
            .iter()
            .all(|a| matches!(a, Some("--version" | "--help" | "-h")));
    if prints {
        ProgramVerdict::one(
            Class::ReadOnly,
            "prints etcd's version or usage",
            Vec::new(),
        )
    } else {
        ProgramVerdict::one(
            Class::Destructive,
            "starts an etcd member by hand (the operator starts members: `operator node start`)",
            Vec::new(),
        )
    }
}

fn endpoint(url: &str) -> Option<Target> {
    let url = url.trim();
    if url.contains("://") {
        url_target(url, &[])
    } else {
        url_target(&format!("http://{url}"), &[])
    }
}

fn command(words: &[Option<&str>]) -> (Class, String) {
    let Some(first) = words.first() else {
        return (Class::ReadOnly, "etcdctl's help".into());
    };
    let Some(cmd) = first else {
        return (
            Class::Denied,
            "an etcdctl command only known at run time".into(),
        );
    };
    let sub = words.get(1).copied().flatten().unwrap_or_default();
    let why = |c: Class, s: &str| (c, format!("etcdctl {s}"));
    match (*cmd, sub) {
        ("get" | "watch" | "version" | "help", _)
        | ("endpoint", "status" | "health" | "hashkv")
        | ("member", "list")
        | ("alarm", "list")
        | ("snapshot", "status")
        | ("lease", "list" | "timetolive")
        | ("user" | "role", "get" | "list")
        | ("auth", "status") => why(Class::ReadOnly, "reads the cluster's state"),
        // Without the value as a word, put reads it from its input: any size, unseen.
        ("put", _) if words.len() < 3 => why(
            Class::Destructive,
            "put reads its value from its input, which the policy cannot see",
        ),
        ("put", _) => why(Class::Mutating, "put writes a key"),
        ("compaction" | "compact", _) => why(
            Class::Mutating,
            "compact drops history older than a revision (the routine repair of a full backend)",
        ),
        ("defrag", _) => why(Class::Mutating, "defrag rewrites a member's backend file"),
        // It disarms every alarm raised, CORRUPT too: a member found holding data that
        // differs from its peers' would serve again. The out-of-space alarm alone is
        // disarmed member by member through the gateway's alarm route.
        ("alarm", "disarm") => why(
            Class::Destructive,
            "alarm disarm clears every alarm, CORRUPT (a member's data found to differ) too; disarm NOSPACE alone through /v3/maintenance/alarm",
        ),
        ("lease", "grant" | "keep-alive") => why(Class::Mutating, "lease grants a lease"),
        ("check", _) => why(
            Class::Destructive,
            "check puts heavy test load on the cluster (and can fill it)",
        ),
        ("snapshot", "save") => why(
            Class::Destructive,
            "snapshot save writes a file wherever it is told (over a member's own)",
        ),
        ("move-leader", _) => why(Class::Mutating, "move-leader hands leadership over"),
        ("del", _) => why(Class::Destructive, "del deletes keys"),
        ("member", "remove" | "add" | "update" | "promote") => why(
            Class::Destructive,
            "member changes the cluster's membership",
        ),
        ("snapshot", "restore") => why(Class::Destructive, "snapshot restore makes a data dir"),
        ("lease", "revoke") => why(Class::Destructive, "lease revoke deletes the lease's keys"),
        ("user" | "role" | "auth", _) => why(Class::Destructive, "changes who may do what"),
        ("txn", _) => why(
            Class::Denied,
            "txn reads its operations from the input, which cannot be checked",
        ),
        ("make-mirror", _) => why(
            Class::Destructive,
            "make-mirror copies the keys into another cluster",
        ),
        (other, _) => (
            Class::Destructive,
            format!("etcdctl {other} is not a command the policy knows; a person decides"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(line: &str) -> Class {
        let args: Vec<Arg> = line
            .split_whitespace()
            .map(|w| Arg::Lit(w.into()))
            .collect();
        classify(&args).marks[0].0
    }

    /// `compact "$rev"`: one word, whatever it holds, as compact's last and only word is a
    /// revision or nothing (etcdctl then refuses before connecting); anywhere else, or a word
    /// the shell may split, may be a flag that changes what etcdctl does.
    #[test]
    fn a_quoted_revision_compacts_and_other_unknown_words_go_to_a_person() {
        let lit = |w: &str| Arg::Lit(w.into());
        let e = lit("--endpoints=http://127.0.0.1:1");
        let one = Arg::Dyn(Split::One);
        let class = |args: &[Arg]| classify(args).marks[0].0;
        assert_eq!(
            class(&[e.clone(), lit("compact"), one.clone()]),
            Class::Mutating
        );
        assert_eq!(
            class(&[e.clone(), lit("compaction"), one.clone()]),
            Class::Mutating
        );
        for args in [
            vec![e.clone(), lit("compact"), Arg::UNKNOWN],
            vec![
                e.clone(),
                lit("compact"),
                one.clone(),
                lit("-w"),
                lit("json"),
            ],
            vec![
                e.clone(),
                lit("compact"),
                one.clone(),
                lit("--"),
                lit("--physical"),
            ],
            vec![e.clone(), lit("compact"), lit("5"), one.clone()],
            vec![e.clone(), one.clone(), lit("compact"), lit("5")],
            vec![e.clone(), lit("get"), one.clone()],
            vec![e.clone(), lit("member"), lit("remove"), one.clone()],
        ] {
            assert!(class(&args) >= Class::Destructive, "{args:?}");
        }
        // As a flag's value it is that value: an endpoint the policy cannot read.
        let v = classify(&[lit("--endpoints"), one, lit("compact"), lit("5")]);
        assert!(v.targets.contains(&None), "{v:?}");
    }

    #[test]
    fn reading_is_read_only_and_repairing_a_full_backend_needs_no_person() {
        let e = "--endpoints=http://127.0.0.1:1,http://127.0.0.1:2";
        for line in [
            "endpoint status -w table",
            "member list -w json",
            "alarm list",
            "get /a --prefix --keys-only",
            "--write-out table endpoint health",
        ] {
            assert_eq!(class(&format!("{e} {line}")), Class::ReadOnly, "{line}");
        }
        for line in ["compact 27", "defrag", "put /a b"] {
            assert_eq!(class(&format!("{e} {line}")), Class::Mutating, "{line}");
        }
        for line in [
            "del /a",
            "del '' --from-key",
            "member remove 8e9e05c52164694d",
            "member add m4 --peer-urls=http://x:2380",
            "snapshot restore s.db --data-dir /tmp/x",
            "auth enable",
            "user add root",
            "lease revoke 1",
            "frobnicate",
        ] {
            assert_eq!(class(&format!("{e} {line}")), Class::Destructive, "{line}");
        }
        assert_eq!(class(&format!("{e} txn -i")), Class::Denied);
    }
}
