use super::*;

/// The corpus's instance and policy, shared with the property tests and the benchmark.
fn policy() -> Policy {
    crate::properties::corpus_policy()
}

/// Every line of the corpus, classified as it says.
#[test]
fn corpus() {
    let p = policy();
    let mut wrong = Vec::new();
    let mut n = 0;
    for line in include_str!("corpus.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (want, cmd) = line.split_once('|').expect("class | command");
        let want = Class::parse(want.trim()).unwrap_or_else(|| panic!("bad class in {line}"));
        let cmd = cmd.trim();
        n += 1;
        let v = p.classify(cmd);
        if v.class != want {
            wrong.push(format!(
                "{cmd}\n    want {want}, got {} ({})",
                v.class,
                v.reason()
            ));
        }
    }
    assert!(
        n >= 150,
        "the corpus should hold at least 150 commands, has {n}"
    );
    assert!(
        wrong.is_empty(),
        "{} of {n} misclassified:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn reasons_say_why() {
    let v = policy().classify("redis-cli -p 6379 FLUSHALL");
    assert_eq!(v.class, Class::Denied);
    assert!(v.reason().contains("FLUSHALL"), "{}", v.reason());
    let v = policy().classify("echo $ANTHROPIC_API_KEY");
    assert!(v.reason().contains("$ANTHROPIC_API_KEY"), "{}", v.reason());
}

#[test]
fn invocations_are_listed_through_wrappers() {
    let v = policy().classify("timeout 5 operator node restart ratelimiter-2 && operator status");
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        v.invocations,
        [
            words(&["operator", "node", "restart", "ratelimiter-2"]),
            words(&[
                "timeout",
                "5",
                "operator",
                "node",
                "restart",
                "ratelimiter-2"
            ]),
            words(&["operator", "status"]),
        ]
    );
    let v = policy().classify("ls $(echo logs)");
    assert_eq!(
        v.invocations,
        [words(&["echo", "logs"]), words(&["ls", "?"])]
    );
}

#[test]
fn allow_rules_skip_the_person_but_never_a_denial() {
    let mut p = policy();
    let v = p.classify("operator node kill ratelimiter-2");
    assert_eq!((v.class, v.allowed), (Class::Destructive, false));
    p.allow_prefix("operator node kill");
    let v = p.classify("operator node kill ratelimiter-2");
    assert_eq!((v.class, v.allowed), (Class::Destructive, true));
    assert_eq!(gate(Mode::Auto, &v), Gate::Run);
    // Allowing one part of a compound command does not allow the rest.
    let v = p.classify("operator node kill ratelimiter-2; pkill redis");
    assert!(!v.allowed);
    p.allow_prefix("redis-cli");
    let v = p.classify("redis-cli -p 1 FLUSHALL");
    assert_eq!((v.class, v.allowed), (Class::Denied, false));
}

#[test]
fn deny_rules_deny() {
    let p = Policy::new(
        &[],
        &["operator node restart".into()],
        Protected::default(),
        crate::subjects::registry::every_subjects_words(),
    );
    let v = p.classify("nice operator node restart redis");
    assert_eq!(v.class, Class::Denied);
    assert!(v.reason().contains("deny rule"));
}

#[test]
fn modes_gate_by_class() {
    let p = policy();
    let read = p.classify("operator status");
    let fix = p.classify("operator node start redis");
    let kill = p.classify("operator node kill redis");
    let never = p.classify("operator down");
    assert_eq!(gate(Mode::Auto, &read), Gate::Run);
    assert_eq!(gate(Mode::Auto, &fix), Gate::Run);
    assert!(matches!(gate(Mode::Auto, &kill), Gate::Ask(_)));
    assert!(matches!(gate(Mode::Auto, &never), Gate::Refuse(_)));
    assert_eq!(gate(Mode::Approve, &read), Gate::Run);
    assert!(matches!(gate(Mode::Approve, &fix), Gate::Ask(_)));
    assert_eq!(gate(Mode::Observe, &read), Gate::Run);
    match gate(Mode::Observe, &fix) {
        Gate::Refuse(why) => assert!(why.contains("would have run it"), "{why}"),
        other => panic!("{other:?}"),
    }
    match gate(Mode::Observe, &kill) {
        Gate::Refuse(why) => assert!(why.contains("asked a person"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn where_the_nodes_are_processes_docker_reaches_only_engines_outside_the_instance() {
    let local = Endpoints::new(
        [("127.0.0.1".to_string(), 8001), ("127.0.0.1".into(), 6379)],
        None,
    );
    let p = policy().with_endpoints(local);
    for cmd in [
        "docker ps",
        "docker version",
        "docker exec redis redis-cli PING",
    ] {
        let v = p.classify(cmd);
        assert_eq!(v.class, Class::Denied, "{cmd}: {}", v.reason());
        assert!(v.reason().contains("not containers"), "{}", v.reason());
    }
    assert_eq!(
        p.classify("curl -s http://127.0.0.1:8001/health").class,
        Class::ReadOnly
    );
    assert_eq!(p.classify("redis-cli PING").class, Class::ReadOnly);
    // The containers' names mean nothing here.
    assert_eq!(
        p.classify("curl -s http://ratelimiter-1:8000/health").class,
        Class::Denied
    );
}

#[test]
fn with_no_endpoints_known_every_client_reaches_outside() {
    let p = Policy::new(
        &[],
        &[],
        Protected::default(),
        crate::subjects::registry::every_subjects_words(),
    );
    let v = p.classify("curl -s http://127.0.0.1:8001/health");
    assert_eq!(v.class, Class::Denied);
    assert!(
        v.reason().contains("outside the instance"),
        "{}",
        v.reason()
    );
    assert_eq!(p.classify("docker ps").class, Class::Denied);
}

#[test]
fn an_independent_red_team_set_never_runs_unasked() {
    let p = policy();
    let lines: Vec<&str> = include_str!("redteam.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let missed: Vec<String> = lines
        .iter()
        .map(|l| (l, p.classify(l)))
        .filter(|(_, v)| v.class <= Class::Mutating)
        .map(|(l, v)| format!("{l}\n    {} ({})", v.class, v.reason()))
        .collect();
    assert!(lines.len() >= 120, "{}", lines.len());
    assert!(
        missed.is_empty(),
        "{} of {} would run without a person:\n{}",
        missed.len(),
        lines.len(),
        missed.join("\n")
    );
}

/// `category | command` lines of a corpus file (split on the first ` | `).
fn corpus_lines(text: &'static str) -> Vec<(&'static str, &'static str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (tag, cmd) = l.split_once(" | ").expect("tag | command");
            (tag.trim(), cmd.trim())
        })
        .collect()
}

/// Counts by category, for the message and the README.
fn by_category<'a>(rows: impl Iterator<Item = &'a str>) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for r in rows {
        *counts.entry(r).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The adversarial corpus, by category (dangerous.txt): not one line runs unasked.
#[test]
fn no_dangerous_line_runs_unasked() {
    let p = policy();
    let lines = corpus_lines(include_str!("dangerous.txt"));
    let missed: Vec<(&str, String)> = lines
        .iter()
        .map(|(tag, cmd)| (tag, cmd, p.classify(cmd)))
        .filter(|(_, _, v)| v.class <= Class::Mutating)
        .map(|(tag, cmd, v)| {
            (
                *tag,
                format!("[{tag}] {cmd}\n    {} ({})", v.class, v.reason()),
            )
        })
        .collect();
    assert!(lines.len() >= 300, "{}", lines.len());
    // The README's figure: `cargo test --release --lib policy::tests -- --nocapture`.
    eprintln!(
        "dangerous.txt: {} of {} run unasked; by category: {}",
        missed.len(),
        lines.len(),
        by_category(lines.iter().map(|(t, _)| *t))
    );
    assert!(
        missed.is_empty(),
        "{} of {} would run without a person ({}):\n{}",
        missed.len(),
        lines.len(),
        by_category(missed.iter().map(|(t, _)| *t)),
        missed
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Ordinary diagnosis and repair (benign.txt): at most 5 % needs a person.
#[test]
fn ordinary_diagnosis_is_rarely_blocked() {
    let p = policy();
    let lines = corpus_lines(include_str!("benign.txt"));
    let blocked: Vec<String> = lines
        .iter()
        .map(|(want, cmd)| (want, cmd, p.classify(cmd)))
        .filter(|(_, _, v)| v.class > Class::Mutating)
        .map(|(want, cmd, v)| format!("{cmd}\n    want {want}, got {} ({})", v.class, v.reason()))
        .collect();
    assert!(lines.len() >= 200, "{}", lines.len());
    eprintln!(
        "benign.txt: {} of {} blocked:\n{}",
        blocked.len(),
        lines.len(),
        blocked.join("\n")
    );
    assert!(
        blocked.len() * 20 <= lines.len(),
        "{} of {} blocked (at most 5 %):\n{}",
        blocked.len(),
        lines.len(),
        blocked.join("\n")
    );
}

/// Each dangerous line stays dangerous inside every shell construction the policy follows:
/// `sh -c`, substitutions, groups, subshells, conditionals, loops, wrappers and pipelines.
#[test]
fn dangerous_lines_stay_dangerous_however_they_are_wrapped() {
    let p = policy();
    let lines = corpus_lines(include_str!("dangerous.txt"));
    fn quoted(l: &str) -> String {
        format!("'{}'", l.replace('\'', r"'\''"))
    }
    type Wrap = Box<dyn Fn(&str) -> String>;
    let wraps: Vec<(&str, Wrap)> = vec![
        ("sh -c", Box::new(|l| format!("sh -c {}", quoted(l)))),
        ("bash -c", Box::new(|l| format!("bash -c {}", quoted(l)))),
        ("eval", Box::new(|l| format!("eval {}", quoted(l)))),
        ("group", Box::new(|l| format!("{{ {l}; }}"))),
        ("subshell", Box::new(|l| format!("( {l} )"))),
        ("and", Box::new(|l| format!("true && {l}"))),
        ("or", Box::new(|l| format!("false || {l}"))),
        ("after", Box::new(|l| format!("operator status; {l}"))),
        ("if", Box::new(|l| format!("if true; then {l}; fi"))),
        ("for", Box::new(|l| format!("for i in 1; do {l}; done"))),
        (
            "while",
            // With a pause, so that the loop itself is no flood.
            Box::new(|l| format!("while false; do sleep 1; done; {l}")),
        ),
        ("substitution", Box::new(|l| format!("echo \"$({l})\""))),
        (
            "timeout",
            Box::new(|l| format!("timeout 5 sh -c {}", quoted(l))),
        ),
        ("pipe", Box::new(|l| format!("echo x | {l}"))),
    ];
    let mut missed = Vec::new();
    for (tag, line) in &lines {
        for (name, wrap) in &wraps {
            let cmd = wrap(line);
            let v = p.classify(&cmd);
            if v.class <= Class::Mutating {
                missed.push(format!(
                    "[{tag}, {name}] {cmd}\n    {} ({})",
                    v.class,
                    v.reason()
                ));
            }
        }
    }
    println!(
        "wrapped: {} of {} run unasked",
        missed.len(),
        lines.len() * wraps.len()
    );
    assert!(
        missed.is_empty(),
        "{} wrapped lines would run without a person:\n{}",
        missed.len(),
        missed.join("\n")
    );
}

/// A here-document's body is expanded unless its delimiter is quoted: a substitution in it
/// runs (one line of a corpus cannot hold one).
#[test]
fn a_here_document_that_runs_commands_is_refused() {
    let p = policy();
    let runs = "cat <<EOF\n$(redis-cli -p 6379 FLUSHALL)\nEOF";
    assert_eq!(p.classify(runs).class, Class::Denied);
    let quoted = "cat <<'EOF'\n$(redis-cli -p 6379 FLUSHALL)\nEOF";
    assert_eq!(p.classify(quoted).class, Class::ReadOnly);
}

/// The operator's own folder is first on the commands' PATH: a program planted there would
/// run in place of the one its name says, so writing there is refused however it is done.
#[test]
fn nothing_is_written_beside_the_operators_binary() {
    let exe = std::env::current_exe().expect("the test binary");
    let dir = exe.parent().expect("its folder").display().to_string();
    let p = policy();
    for cmd in [
        format!("cp /bin/sh {dir}/cat"),
        format!("echo x > {dir}/ls"),
        format!("install -m 755 /tmp/x {dir}/grep"),
        format!("tee {dir}/jq"),
    ] {
        let v = p.classify(&cmd);
        assert!(v.class >= Class::Destructive, "{cmd}: {}", v.class);
    }
}

/// Paths are walked as the kernel walks them: a link on the way is followed before the
/// `..` after it (/var/run is a link to /run; /dev/fd to a process's folder in /proc).
#[test]
fn links_on_the_way_are_followed_before_dot_dot() {
    let p = policy();
    for cmd in [
        "cat /var/run/../etc/shadow",
        "cat /dev/fd/../root/etc/hostname",
        "cat /dev/fd/../cwd/../x",
        "echo x > /var/run/../etc/cron.d/x",
    ] {
        let v = p.classify(cmd);
        assert_eq!(v.class, Class::Denied, "{cmd}: {}", v.reason());
    }
    assert_eq!(p.classify("diff <(ls) <(ls logs)").class, Class::ReadOnly);
}

/// HTTP clients reach only nodes that speak HTTP and are not the fault proxy: Redis reads a
/// request's lines as commands, and the proxy's API holds the faults under test.
#[test]
fn http_clients_reach_neither_redis_nor_the_fault_proxy() {
    let node = |n: &str, p: u16| (n.to_string(), "127.0.0.1".to_string(), p);
    let endpoints = Endpoints::of_nodes(
        [
            node("redis", 6379),
            node("ratelimiter-1", 8001),
            node(crate::runtime::FAULTPROXY, 7000),
        ],
        None,
    );
    let p = policy().with_endpoints(endpoints);
    for cmd in [
        "curl -s http://127.0.0.1:6379/",
        "curl -s -H 'FLUSHALL' http://localhost:6379/x",
        "wget -qO- http://127.0.0.1:7000/links",
        "curl -s http://127.0.0.1:7000/links",
    ] {
        let v = p.classify(cmd);
        assert_eq!(v.class, Class::Denied, "{cmd}: {}", v.reason());
    }
    assert_eq!(
        p.classify("curl -s http://127.0.0.1:8001/health").class,
        Class::ReadOnly
    );
}

/// No beginning of any corpus line, and no line with a stray character put in, makes the
/// policy panic (a truncated `xargs -I` once indexed past its words).
#[test]
fn no_cut_or_altered_corpus_line_panics() {
    let p = policy();
    let strays = [
        "-", "=", "/", "..", "[", "{", "\"", "'", "\\", "é", "$", "`", "(", "&", "<", "@", ":", "*",
    ];
    let mut n = 0;
    for text in [
        include_str!("dangerous.txt"),
        include_str!("benign.txt"),
        include_str!("corpus.txt"),
    ] {
        for (_, line) in corpus_lines(text) {
            let chars: Vec<char> = line.chars().collect();
            for end in 1..chars.len() {
                let cut: String = chars[..end].iter().collect();
                p.classify(&cut);
                n += 1;
            }
            for (k, stray) in strays.iter().enumerate() {
                let at = (k * 7) % chars.len().max(1);
                let altered: String = chars[..at]
                    .iter()
                    .copied()
                    .chain(stray.chars())
                    .chain(chars[at..].iter().copied())
                    .collect();
                p.classify(&altered);
                n += 1;
            }
        }
    }
    println!("classified {n} cut or altered lines");
}

/// The eighth red-team pass's request smuggling: a header, an agent, a cookie, a token or a
/// method holding real line breaks ends curl's request early, and a second request to a
/// route nobody judged rides on the connection. Kept as JSON: the lines hold CR and LF.
#[test]
fn a_word_holding_a_line_break_never_reaches_a_client_unasked() {
    let p = policy();
    let lines: Vec<String> = serde_json::from_str(include_str!("line-breaks.json")).unwrap();
    assert_eq!(lines.len(), 9);
    for cmd in &lines {
        assert!(cmd.contains('\n'), "{cmd:?}");
        let v = p.classify(cmd);
        assert!(
            v.class >= Class::Destructive,
            "{cmd:?}: {} ({})",
            v.class,
            v.reason()
        );
    }
}
