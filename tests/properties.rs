//! Bounded property tests of the entry points untrusted input reaches: the same properties
//! the fuzz targets check (src/properties.rs), here on a few hundred generated inputs per
//! run, so the normal suite catches a regression the fuzzers once found.

use operator::properties::{self, DENIED, runs_unasked};
use proptest::prelude::*;

/// 256 cases a test, or `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces of real streams from both APIs, to be put together in any order and cut anywhere:
/// random bytes alone seldom get past the first JSON parse.
const STREAM_PIECES: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"run\"}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"ré\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\": \\\"ls\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"}\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"c2ln\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":40}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n",
    "data: {\"choices\":[{\"delta\":{\"content\":\"hé\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"run\",\"arguments\":\"{\\\"command\\\":\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"ls\\\"}\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hm\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n",
    "data: [DONE]\n\n",
    ": a comment\n\n",
    "retry: 10\n",
    "\r\n",
    "data: {\"choices\":[",
];

fn stream() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(STREAM_PIECES).prop_map(|s| s.as_bytes().to_vec()),
                1 => prop::collection::vec(any::<u8>(), 0..12),
            ],
            0..16,
        ),
    )
        .prop_map(|(cut, parts)| {
            let mut out = vec![cut];
            out.extend(parts.concat());
            out
        })
}

/// Words commands are made of, the instance's and others'.
const WORDS: &[&str] = &[
    "operator",
    "status",
    "node",
    "logs",
    "start",
    "ratelimiter-2",
    "redis-cli",
    "-p",
    "6379",
    "-h",
    "10.0.0.9",
    "PING",
    "FLUSHALL",
    "curl",
    "-s",
    "http://127.0.0.1:8001/health",
    "cat",
    "/state/operator.db",
    "/proc/1/environ",
    "env",
    "docker",
    "-H",
    "tcp://10.0.0.9:2375",
    "ps",
    "rm",
    "-rf",
    "/",
    "ls",
    "echo",
    "$HOME",
    "$(id)",
    "`id`",
    "'",
    "\"",
    "\\",
    "#",
    "<<",
    "EOF",
    ">",
    "/etc/passwd",
    "|",
    ";",
    "&&",
    "||",
    "&",
    "(",
    ")",
    "{",
    "}",
    "sh",
    "-c",
    "bash",
    "xargs",
    "timeout",
    "5",
    "nohup",
    "sudo",
    "kill",
    "-9",
    "jq",
    "awk",
    "ENVIRON",
    "python3",
    "base64",
    "-d",
    "=",
    "DOCKER_HOST=tcp://10.0.0.9:2375",
];

fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(WORDS), 0..10).prop_map(|w| w.join(" ")),
        1 => ".{0,60}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_model_stream_never_panics_and_decodes_alike_however_it_is_cut(data in stream()) {
        properties::model_stream(&data);
    }

    #[test]
    fn any_command_is_classified_the_same_twice_without_a_panic(c in command()) {
        properties::policy_command(&c);
    }

    #[test]
    fn any_request_line_routes_without_a_panic(m in any::<u8>(), path in "(/v1\\.[0-9]{1,2})?(/[a-z_.%0-9-]{0,12}){0,5}(\\?[a-z=&%0-9]{0,20})?|.{0,40}") {
        properties::proxy_route(m, &path);
    }

    #[test]
    fn no_exec_body_lets_through_more_than_it_checked(data in exec_body()) {
        properties::proxy_body(&data);
    }

    #[test]
    fn any_config_loads_or_is_refused_without_a_panic(text in config_text()) {
        properties::config_text(&text);
    }

    #[test]
    fn any_runbook_or_variant_loads_or_is_refused_without_a_panic(text in yaml_text()) {
        properties::yaml_text(&text);
    }
}

/// Bodies built from the keys the engine reads, spelled every way Go folds them.
fn exec_body() -> impl Strategy<Value = Vec<u8>> {
    let key = prop::sample::select(
        &[
            "Cmd",
            "cmd",
            "CMD",
            "Privileged",
            "privileged",
            "PRIVILEGED",
            "User",
            "uSeR",
            "Uſer",
            "Tty",
            "Detach",
            "ConsoleSize",
            "Env",
            "WorkingDir",
            "AttachStdin",
            "HostConfig",
            "Config",
            "DetachKeys",
            "\\u0055ser",
            "Us\\u0065r",
        ][..],
    );
    let value = prop::sample::select(
        &[
            "true",
            "false",
            "\"root\"",
            "\"\"",
            "\"0\"",
            "[\"id\"]",
            "[]",
            "[80,24]",
            "null",
            "{\"Env\":[\"A=b\"]}",
            "[\"A=secret\"]",
            "1",
            "[1,2,3]",
        ][..],
    );
    prop_oneof![
        4 => prop::collection::vec((key, value), 0..6).prop_map(|kv| {
            let fields: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", fields.join(",")).into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

fn config_text() -> impl Strategy<Value = String> {
    let line = prop::sample::select(
        &[
            "[agent]",
            "[agent.policy]",
            "allow = [\"operator status\"]",
            "allow = 3",
            "agent.policy.allow = []",
            "lease = \"15s\"",
            "lease = \"0s\"",
            "lease = 5",
            "[ratelimiter]",
            "nodes = 3",
            "nodes = -1",
            "probe_timeout = \"300ms\"",
            "[runtime.local]",
            "events = true",
            "monitor.interval = \"1s\"",
            "x = ",
            "[[a]]",
            "\"é\" = 1",
            "agent = 1",
            "[agent.policy.allow]",
            "deny = [\"rm\"]",
            "# note",
            "mode = \"auto\"",
            "mode = \"sideways\"",
        ][..],
    );
    prop_oneof![
        4 => prop::collection::vec(line, 0..8).prop_map(|l| l.join("\n")),
        1 => ".{0,80}",
    ]
}

fn yaml_text() -> impl Strategy<Value = String> {
    let line = prop::sample::select(
        &[
            "name: v1",
            "name: ''",
            "tools: [run, observe]",
            "tools: [fly]",
            "steps:",
            "- run: ls",
            "  - observe",
            "system_prompt_file: ../../etc/passwd",
            "node_down:",
            "  steps: []",
            "&a [*a]",
            "? x",
            ": y",
            "!!binary AAAA",
            "'",
            "  -",
            "{",
            "x: *b",
        ][..],
    );
    prop_oneof![
        4 => prop::collection::vec(line, 0..8).prop_map(|l| l.join("\n")),
        1 => ".{0,80}",
    ]
}

/// Inputs the fuzzers found, kept as they were found.
#[test]
fn what_the_fuzzers_found_stays_fixed() {
    // brush-parser panicked on a file descriptor number past u32 (policy target).
    properties::policy_command("2222222222222222222222222222222<2222:222pkill[ ratel[ i");
    assert!(!runs_unasked(
        properties::classify("ls 99999999999>/tmp/x").class
    ));
    // Exponential time (policy target): many `*` in a path matched against `environ` (the
    // old matcher took minutes on this one), and parentheses nested deep (denied unparsed).
    let stars = format!("cat /proc/1/{}x", "*".repeat(60));
    let t = std::time::Instant::now();
    properties::policy_command(&stars);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    let parens =
        "((((((((((((((((docke\0H-H unx/:/i/run/olua((((((((((r/`%```%`emacs`/`\x17]c,`loaps";
    properties::policy_command(parens);
    let v = properties::classify(parens);
    assert!(v.reason().contains("nested too deeply"), "{}", v.reason());
    // An empty container reference (proxy_route target).
    properties::proxy_route(b'[', "containers//exec");
}

/// A denied command inside any wrapper around any read-only command of the corpus is never
/// run without a person: every way the shell would still run it.
#[test]
fn a_denied_command_inside_a_wrapper_never_runs_unasked() {
    let read_only: Vec<&str> = include_str!("../src/policy/corpus.txt")
        .lines()
        .filter_map(|l| l.split_once('|'))
        .filter(|(class, _)| class.trim() == "read_only")
        .map(|(_, c)| c.trim())
        .collect();
    assert!(read_only.len() > 50);
    let wrappers: &[fn(&str, &str) -> String] = &[
        |x, d| format!("{x}; {d}"),
        |x, d| format!("{x} && {d}"),
        |x, d| format!("{x} || {d}"),
        |x, d| format!("{x} | {d}"),
        |x, d| format!("{x}\n{d}"),
        |x, d| format!("{x} & {d}"),
        |x, d| format!("{x} $({d})"),
        |x, d| format!("{x} `{d}`"),
        |x, d| format!("({d}); {x}"),
        |x, d| format!("{{ {d}; }}; {x}"),
        |x, d| format!("if {x}; then {d}; fi"),
        |x, d| format!("for i in 1; do {d}; done; {x}"),
        |x, d| format!("while false; do :; done; {d}; {x}"),
        |x, d| format!("{x} <({d})"),
        |x, d| format!("bash -c \"{}\"; {x}", d.replace('"', "\\\"")),
        |x, d| format!("sh -c '{}' && {x}", d.replace('\'', "'\\''")),
        |x, d| format!("timeout 5 {d}; {x}"),
        |x, d| format!("env {d}; {x}"),
        |x, d| format!("nohup {d} & {x}"),
        |x, d| format!("echo {x:?} | xargs -I{{}} {d}"),
        |x, d| format!("f() {{ {d}; }}; f; {x}"),
        |x, d| format!("A=1 {d}; {x}"),
    ];
    let mut tried = 0;
    let mut ran = Vec::new();
    // Every wrapper and every denied command, each read-only command in turn.
    for (i, w) in wrappers.iter().enumerate() {
        for (j, d) in DENIED.iter().enumerate() {
            let x = read_only[(i * DENIED.len() + j) % read_only.len()];
            let cmd = w(x, d);
            tried += 1;
            let v = properties::classify(&cmd);
            if runs_unasked(v.class) {
                ran.push(format!("{cmd}\n    {} ({})", v.class, v.reason()));
            }
        }
    }
    assert!(
        ran.is_empty(),
        "{} of {tried} would run unasked:\n{}",
        ran.len(),
        ran.join("\n")
    );
}
