//! The policy's word on TiKV: PD's and a store's HTTP routes with their classes, and
//! `pd-ctl`, `tikv-ctl` and the servers themselves. Reading is read-only; removing a
//! scheduler left behind (the runbook's repair) is mutating; whatever moves data, changes
//! membership, stores or settings, or can lose writes (`unsafe remove-failed-stores`, a
//! store deleted, `tikv-ctl unsafe-recover`) goes to a person.

use crate::policy::{Class, ProgramVerdict, Route, Target, url_target};

/// PD's API (`/pd/api/v1/…`, tikv/pd `server/api/router.go`) and a store's status port
/// (tikv `src/server/status_server`). The first route that matches decides.
pub const ROUTES: [Route; 13] = [
    Route::new("GET", "/pd/api/v1/*", Class::ReadOnly, "reads PD's view"),
    Route::new("GET", "/pd/health", Class::ReadOnly, "PD's health"),
    Route::new("GET", "/pd/ping", Class::ReadOnly, "PD's ping"),
    Route::new("GET", "/status", Class::ReadOnly, "a store's liveness"),
    Route::new("GET", "/metrics", Class::ReadOnly, "metrics"),
    Route::new("GET", "/config", Class::ReadOnly, "a store's settings"),
    Route::new("GET", "/engine_type", Class::ReadOnly, "a store's engine"),
    Route::new(
        "GET",
        "/region/*",
        Class::ReadOnly,
        "a region's state on a store",
    ),
    // The runbook's repair of a leftover evict-leader scheduler: the scheduler goes, the
    // store keeps its data and takes leaders again.
    Route::new(
        "DELETE",
        "/pd/api/v1/schedulers/evict-leader-scheduler*",
        Class::Mutating,
        "removes an evict-leader scheduler",
    ),
    Route::new(
        "DELETE",
        "/pd/api/v1/scheduler-config/evict-leader-scheduler/delete/*",
        Class::Mutating,
        "removes a store from the evict-leader scheduler",
    ),
    Route::new(
        "*",
        "/pd/api/v1/admin/unsafe/*",
        Class::Denied,
        "Online Unsafe Recovery: regions forget the failed stores' peers, and writes only they held are lost",
    ),
    Route::new(
        "DELETE",
        "/pd/api/v1/gc/safepoint/*",
        Class::Destructive,
        "drops a service's GC safepoint: history it still needs may be purged",
    ),
    Route::new(
        "*",
        "/pd/*",
        Class::Destructive,
        "changes PD: schedulers, settings, stores, members, operators, regions",
    ),
    // A write to a store's status port (its settings, log level, a pause of its gRPC) is
    // declared by no route, so it goes to a person as every undeclared write does; a
    // catch-all here would take other subjects' reads too.
];

/// pd-ctl's commands that only read, by their first words.
const PD_CTL_READS: &[&[&str]] = &[
    &["store"],
    &["stores"],
    &["member"],
    &["member", "leader", "show"],
    &["health"],
    &["region"],
    &["region", "check"],
    &["scheduler", "show"],
    &["scheduler", "config"],
    &["config", "show"],
    &["cluster"],
    &["ping"],
    &["tso"],
    &["hot", "read"],
    &["hot", "write"],
    &["hot", "store"],
    &["label"],
    &["operator", "show"],
];

/// `pd-ctl [-u URL] COMMAND…`: read-only for its reading commands, mutating for removing a
/// scheduler, a person for anything else; it connects to `-u`/`--pd` (by default
/// 127.0.0.1:2379).
pub fn pd_ctl(args: &[Option<&str>]) -> ProgramVerdict {
    let mut targets = Vec::new();
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let Some(a) = args[i] else {
            return ProgramVerdict::one(
                Class::Destructive,
                "pd-ctl is given a word known only when it runs, which may be any command",
                targets,
            );
        };
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v)),
            _ => (a, None),
        };
        match flag {
            "-u" | "--pd" => {
                let value = match inline {
                    Some(v) => Some(v),
                    None => {
                        i += 1;
                        args.get(i).copied().flatten()
                    }
                };
                // A list, split at commas: pd-ctl tries the next when one fails.
                match value {
                    Some(list) => targets.extend(list.split(',').map(|v| {
                        let v = v.trim();
                        if v.contains("://") {
                            url_target(v, &[])
                        } else {
                            url_target(&format!("http://{v}"), &[])
                        }
                    })),
                    None => targets.push(None),
                }
            }
            // `--jq` runs a jq program on the answer, as jq would.
            f if f.starts_with('-') && !matches!(f, "-h" | "--help" | "-V" | "--version") => {
                return ProgramVerdict::one(
                    Class::Destructive,
                    format!("pd-ctl {f} is an option the policy does not read"),
                    targets,
                );
            }
            _ if a.starts_with('-') => {}
            _ => words.push(a),
        }
        i += 1;
    }
    if targets.is_empty() {
        targets.push(Some(Target::Tcp {
            host: "127.0.0.1".into(),
            port: 2379,
        }));
    }
    // Without a command, pd-ctl reads commands from its input.
    if words.is_empty()
        && !args
            .iter()
            .any(|a| matches!(a, Some("-h" | "--help" | "-V" | "--version")))
    {
        return ProgramVerdict::one(
            Class::Destructive,
            "pd-ctl without a command reads commands from its input",
            targets,
        );
    }
    let reads = words.is_empty()
        || PD_CTL_READS.iter().any(|r| {
            words.len() >= r.len() && words[..r.len()] == **r
                // `store delete 1` starts with `store`: only a store id, or nothing, after it.
                && words[r.len()..]
                    .iter()
                    .all(|w| w.chars().all(|c| c.is_ascii_digit()) || r.len() > 1 && r[0] == "region")
        });
    let (class, why) = match words.as_slice() {
        _ if reads => (Class::ReadOnly, "reads PD's view".to_string()),
        ["scheduler", "remove", name] if name.starts_with("evict-leader-scheduler") => (
            Class::Mutating,
            "removes an evict-leader scheduler".to_string(),
        ),
        ["unsafe", ..] => (
            Class::Denied,
            "pd-ctl unsafe remove-failed-stores: writes only the failed stores held are lost"
                .to_string(),
        ),
        _ => (
            Class::Destructive,
            format!(
                "pd-ctl {}: changes PD's stores, members, schedulers or settings",
                words.join(" ")
            ),
        ),
    };
    ProgramVerdict::one(class, why, targets)
}

/// `tikv-ctl`: it reads and repairs a store's files or its status port; its repairs can lose
/// data (`unsafe-recover`, `tombstone`, `recreate-region`, `reset-to-version`), and its
/// reads of a stopped store's files are for a person too.
pub fn tikv_ctl(args: &[Option<&str>]) -> ProgramVerdict {
    let prints = !args.is_empty()
        && args
            .iter()
            .all(|a| matches!(a, Some("--version" | "-V" | "--help" | "-h")));
    if prints {
        return ProgramVerdict::one(
            Class::ReadOnly,
            "prints tikv-ctl's version or usage",
            Vec::new(),
        );
    }
    let loses = args.iter().flatten().any(|a| {
        [
            "unsafe-recover",
            "tombstone",
            "recreate-region",
            "reset-to-version",
            "recover-mvcc",
            "flashback",
            "remove-fail-stores",
        ]
        .contains(a)
    });
    if loses {
        ProgramVerdict::one(
            Class::Denied,
            "tikv-ctl's recovery commands can lose a store's writes",
            Vec::new(),
        )
    } else {
        ProgramVerdict::one(
            Class::Destructive,
            "tikv-ctl reads or changes a store's files directly",
            Vec::new(),
        )
    }
}

/// `pd-server`, `tikv-server`: their version or usage reads; starting one by hand is for a
/// person (the operator starts nodes: `operator node start`).
pub fn server(program: &str, args: &[Option<&str>]) -> ProgramVerdict {
    let prints = !args.is_empty()
        && args
            .iter()
            .all(|a| matches!(a, Some("--version" | "-V" | "--help" | "-h")));
    if prints {
        ProgramVerdict::one(
            Class::ReadOnly,
            format!("prints {program}'s version or usage"),
            Vec::new(),
        )
    } else {
        ProgramVerdict::one(
            Class::Destructive,
            format!("starts {program} by hand (the operator starts nodes: `operator node start`)"),
            Vec::new(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(args: &[&str]) -> Class {
        let a: Vec<Option<&str>> = args.iter().map(|a| Some(*a)).collect();
        pd_ctl(&a).marks[0].0
    }

    #[test]
    fn pd_ctl_reads_repairs_and_asks() {
        assert_eq!(
            class(&["-u", "http://127.0.0.1:2379", "store"]),
            Class::ReadOnly
        );
        assert_eq!(
            class(&["-u", "http://127.0.0.1:2379", "store", "4"]),
            Class::ReadOnly
        );
        assert_eq!(class(&["region", "check", "miss-peer"]), Class::ReadOnly);
        assert_eq!(class(&["scheduler", "show"]), Class::ReadOnly);
        assert_eq!(
            class(&["scheduler", "remove", "evict-leader-scheduler-1"]),
            Class::Mutating
        );
        for asks in [
            &["store", "delete", "1"][..],
            &["member", "delete", "name", "pd-2"],
            &["scheduler", "add", "evict-leader-scheduler", "1"],
            &["config", "set", "max-replicas", "1"],
            &["operator", "add", "remove-peer", "2", "1"],
            &["--jq", ".", "store"],
            &[],
        ] {
            assert_eq!(class(asks), Class::Destructive, "{asks:?}");
        }
        assert_eq!(
            class(&["unsafe", "remove-failed-stores", "1"]),
            Class::Denied
        );
        let a = [Some("-u"), Some("http://10.0.0.5:2379"), Some("store")];
        assert_eq!(
            pd_ctl(&a).targets,
            [Some(Target::Tcp {
                host: "10.0.0.5".into(),
                port: 2379
            })]
        );
    }

    #[test]
    fn tikv_ctl_recovery_is_denied_and_the_rest_asked() {
        let v = tikv_ctl(&[
            Some("--data-dir"),
            Some("/d"),
            Some("unsafe-recover"),
            Some("remove-fail-stores"),
        ]);
        assert_eq!(v.marks[0].0, Class::Denied);
        assert_eq!(
            tikv_ctl(&[Some("--host"), Some("127.0.0.1:20160"), Some("metrics")]).marks[0].0,
            Class::Destructive
        );
        assert_eq!(tikv_ctl(&[Some("--version")]).marks[0].0, Class::ReadOnly);
    }

    #[test]
    fn routes_class_reads_repairs_and_the_rest() {
        let first = |m: &str, p: &str| {
            ROUTES
                .iter()
                .find(|r| {
                    (r.method == "*" || r.method == m) && crate::policy::glob_matches(r.path, p)
                })
                .map(|r| r.class)
        };
        assert_eq!(first("GET", "/pd/api/v1/stores"), Some(Class::ReadOnly));
        assert_eq!(first("GET", "/status"), Some(Class::ReadOnly));
        assert_eq!(
            first("DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-1"),
            Some(Class::Mutating)
        );
        assert_eq!(
            first("DELETE", "/pd/api/v1/store/1"),
            Some(Class::Destructive)
        );
        assert_eq!(first("POST", "/pd/api/v1/config"), Some(Class::Destructive));
        assert_eq!(
            first("POST", "/pd/api/v1/admin/unsafe/remove-failed-stores"),
            Some(Class::Denied)
        );
        // A store's writes are declared by no route: the policy sends them to a person as
        // it does every undeclared write, and other subjects' reads stay theirs.
        assert_eq!(first("PUT", "/pause_grpc"), None);
        assert_eq!(first("GET", "/health"), None);
    }
}
