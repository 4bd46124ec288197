//! What must hold for any input at the edges where untrusted bytes come in: a model's
//! stream, an agent's command, a request to the Docker API proxy, a file a person wrote.
//! Each function takes arbitrary input and panics only when a property is broken, so the
//! fuzz targets (`fuzz/`, run by `scripts/fuzz.sh`) and the bounded property tests
//! (`tests/properties.rs`) check the same thing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use crate::agent::llm::{anthropic, openai};
use crate::policy::{Class, Endpoints, Policy, Protected, Verdict};
use crate::runtime::docker::api_proxy::{body, rules};

/// A recording cut into pieces of `step` bytes.
fn chunks(data: &[u8], step: usize) -> Vec<&[u8]> {
    data.chunks(step.max(1)).collect()
}

/// A streamed answer decodes without a panic, and to the same turn (or the same error)
/// however the network cuts it: the first byte picks the cut.
pub fn model_stream(data: &[u8]) {
    let (step, data) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s % 17) + 1, rest),
        None => (1, data),
    };
    let whole = [data];
    for decode in [anthropic::decode_recorded, openai::decode_recorded] {
        let once = decode(&whole);
        let cut = decode(&chunks(data, step));
        assert_eq!(
            format!("{once:?}"),
            format!("{cut:?}"),
            "cut every {step} bytes"
        );
    }
}

/// The instance the policy corpus describes: limiters on 127.0.0.1:8001–8003 and Redis on
/// :6379 (local), or `ratelimiter-N:8000` and `redis:6379` on the containers' network, with
/// the agent's Docker API proxy as the docker endpoint.
pub fn corpus_endpoints() -> Endpoints {
    let node = |n: &str, h: &str, p: u16| (n.to_string(), h.to_string(), p);
    let mut nodes = vec![
        node("redis", "127.0.0.1", 6379),
        node("redis", "redis", 6379),
    ];
    for n in 1..=3u16 {
        let limiter = format!("ratelimiter-{n}");
        let member = format!("etcd-{n}");
        nodes.push(node(&limiter, "127.0.0.1", 8000 + n));
        nodes.push(node(&limiter, &limiter, 8000));
        nodes.push(node(&member, "127.0.0.1", 23790 + n));
        nodes.push(node(&member, &member, 2379));
        // TiKV's PD members and stores' status ports.
        let (pd, store) = (format!("pd-{n}"), format!("tikv-{n}"));
        nodes.push(node(&pd, "127.0.0.1", 2488 + n));
        nodes.push(node(&pd, &pd, 2379));
        nodes.push(node(&store, "127.0.0.1", 20180 + n));
        nodes.push(node(&store, &store, 20180));
    }
    Endpoints::of_nodes(nodes, Some("unix:///run/operator/agent.sock".into()))
}

/// The policy the corpus is judged by: no allow or deny rules, the corpus's state dir, every
/// subject's words (the corpus holds both subjects' commands).
pub fn corpus_policy() -> Policy {
    Policy::new(
        &[],
        &[],
        Protected {
            state_dir: "/state".into(),
            db: "/state/operator.db".into(),
            cwd: "/state/instances/0".into(),
            config_dir: "/home/op/.config/operator".into(),
            home: "/home/op".into(),
            config_file: Some("/etc/op/config.toml".into()),
        },
        crate::subjects::registry::every_subjects_words(),
    )
    .with_endpoints(corpus_endpoints())
}

/// The corpus instance's verdict on `command`.
pub fn classify(command: &str) -> Verdict {
    corpus_policy().classify(command)
}

/// Commands the policy must deny wherever they appear.
pub const DENIED: &[&str] = &[
    "redis-cli -p 6379 FLUSHALL",
    "operator down",
    "docker rm -f ratelimiter-2",
    "rm -rf /state",
    "iptables -F",
    "sqlite3 /state/operator.db 'DELETE FROM tickets'",
    "curl -s http://10.0.0.9:2375/containers/json",
];

/// Whether running `class` could happen without a person (read-only or mutating).
pub fn runs_unasked(class: Class) -> bool {
    matches!(class, Class::ReadOnly | Class::Mutating)
}

/// Any command is classified without a panic, the same way twice; and a command made only
/// of words and `; | &` operators (no quote, comment, bracket or here-document that could
/// swallow what follows) that would run unasked stops doing so once a denied command follows
/// it with `&&`, `;` or `|`.
pub fn policy_command(command: &str) {
    let p = corpus_policy();
    let v = p.classify(command);
    assert_eq!(v, p.classify(command), "{command:?} classified twice");
    let plain = command
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " -_./:=;|&".contains(c));
    if !plain || !runs_unasked(v.class) {
        return;
    }
    for d in DENIED {
        for op in ["&&", ";", "|", "||"] {
            let joined = format!("{command} {op} {d}");
            let w = p.classify(&joined);
            assert!(
                !runs_unasked(w.class),
                "{joined:?} would run unasked: {}",
                w.reason()
            );
        }
    }
}

/// Any request line routes without a panic; a route names a container only by a reference
/// that is one path segment.
pub fn proxy_route(method: u8, path: &str) {
    let methods = [
        hyper::Method::GET,
        hyper::Method::POST,
        hyper::Method::PUT,
        hyper::Method::DELETE,
        hyper::Method::HEAD,
    ];
    let m = &methods[usize::from(method) % methods.len()];
    let _ = rules::version(path);
    let bare = rules::unversioned(path);
    assert_eq!(rules::unversioned(bare), rules::unversioned(bare));
    if let rules::Route::Container { reference, .. } = rules::route(m, path) {
        assert!(
            !reference.is_empty() && !reference.contains('/'),
            "{path:?} names container {reference:?}"
        );
    }
    let _ = rules::narrow_filters(Some(path), &["operator.instance=0".into()]);
}

/// Any body parses without a panic; what is let through is never privileged nor another
/// user's, and reads back as itself (what we forward says what we checked).
pub fn proxy_body(data: &[u8]) {
    if let Ok(exec) = body::ExecCreate::parse(data) {
        assert!(!exec.privileged && exec.user.is_empty());
        let forwarded = serde_json::to_vec(&exec).unwrap();
        assert_eq!(body::ExecCreate::parse(&forwarded).as_ref(), Ok(&exec));
    }
    if let Ok(start) = body::ExecStart::parse(data) {
        let forwarded = serde_json::to_vec(&start).unwrap();
        assert_eq!(body::ExecStart::parse(&forwarded).as_ref(), Ok(&start));
    }
    if let Some(shown) = body::hide_env(data) {
        let v: serde_json::Value = serde_json::from_slice(&shown).unwrap();
        for e in v
            .pointer("/Config/Env")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(s) = e.as_str() {
                assert!(s.ends_with(body::HIDDEN), "{s:?} shown");
            }
        }
    }
}

/// Any config text loads or fails with an error, never a panic; remembering an allowed
/// prefix in a config that loads leaves one that loads and allows it.
pub fn config_text(text: &str) {
    let path = Path::new("operator.toml");
    let loaded = crate::config::Config::parse(text, path);
    if let Ok(c) = &loaded {
        let _ = c.validate();
    }
    let prefix = "operator node start";
    if let (Ok(_), Ok(edited)) = (&loaded, crate::config::with_allowed(text, prefix)) {
        let again = crate::config::Config::parse(&edited, path)
            .unwrap_or_else(|e| panic!("the edited config does not load: {e}\n{edited}"));
        assert!(again.agent.policy.allow.iter().any(|a| a == prefix));
    }
}

/// Any runbook, variant or campaign text loads or fails with an error, never a panic; a
/// campaign that loads also plans without one.
pub fn yaml_text(text: &str) {
    let _ = crate::agent::llm::runbook::Runbook::parse(text, "fuzz");
    let _ = crate::agent::variant::Variant::parse(text, Path::new("/nonexistent/variant.yaml"));
    if let Ok(c) = crate::eval::Campaign::parse(text, Path::new("/nonexistent/campaign.yaml")) {
        // A huge trials_per_combination is the file's to ask for; keep the fuzzer's plans small.
        if c.trials_per_combination <= 50 {
            let _ = c.plan();
        }
    }
}
