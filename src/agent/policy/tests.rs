use super::*;

fn policy() -> Policy {
    Policy::new(
        &[],
        &[],
        Protected {
            state_dir: "/state".into(),
            db: "/state/operator.db".into(),
            cwd: "/state/instances/0".into(),
        },
    )
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
    let p = Policy::new(&[], &["operator node restart".into()], Protected::default());
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
