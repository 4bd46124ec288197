//! The operator's own verbs as the agent may use them: one list, by words, with each one's
//! class. The policy judges `operator …` by it; the Sandbox issue's verb socket is to serve
//! the same list.

use super::Class;

/// One verb: its leading words (a `*` word matches any one word), its class, and why.
#[derive(Debug, Clone, Copy)]
pub struct Verb {
    pub words: &'static [&'static str],
    pub class: Class,
    pub why: &'static str,
}

const fn verb(words: &'static [&'static str], class: Class, why: &'static str) -> Verb {
    Verb { words, class, why }
}

/// The verbs, most specific first; the first whose words lead the command decides. A verb
/// not listed goes to a person.
pub const VERBS: &[Verb] = &[
    verb(&[], Class::ReadOnly, "prints the usage"),
    verb(&["help"], Class::ReadOnly, "prints the usage"),
    verb(&["status"], Class::ReadOnly, "reads the cluster's state"),
    verb(&["tickets", "list"], Class::ReadOnly, "reads tickets"),
    verb(&["tickets", "show"], Class::ReadOnly, "reads a ticket"),
    verb(&["incidents", "list"], Class::ReadOnly, "reads incidents"),
    verb(&["incidents", "show"], Class::ReadOnly, "reads an incident"),
    verb(&["audit"], Class::ReadOnly, "reads the agent's record"),
    verb(&["node", "logs"], Class::ReadOnly, "reads a node's log"),
    verb(&["monitor"], Class::ReadOnly, "looks at the cluster"),
    verb(
        &["policy", "check"],
        Class::ReadOnly,
        "classifies commands without running them",
    ),
    verb(&["node", "start"], Class::Mutating, "starts a node"),
    verb(&["node", "resume"], Class::Mutating, "resumes a node"),
    verb(&["node", "restart"], Class::Mutating, "restarts a node"),
    verb(
        &["node", "stop"],
        Class::Destructive,
        "takes a node out of service",
    ),
    verb(
        &["node", "kill"],
        Class::Destructive,
        "takes a node out of service",
    ),
    verb(
        &["node", "pause"],
        Class::Destructive,
        "takes a node out of service",
    ),
    verb(
        &["node", "reset"],
        Class::Destructive,
        "re-makes a node from empty: its data is not carried over",
    ),
    verb(&["up"], Class::Mutating, "starts a cluster"),
    verb(&["load"], Class::Mutating, "sends traffic to the cluster"),
    verb(
        &["down"],
        Class::Denied,
        "operator down stops the cluster and deletes its data",
    ),
    verb(
        &["tickets"],
        Class::Denied,
        "tickets are resolved by evidence: use the resolve tool, not the CLI",
    ),
    verb(
        &["chaos"],
        Class::Denied,
        "the agent neither reads nor touches the fault ledger",
    ),
    verb(
        &["incidents"],
        Class::Denied,
        "incidents are resolved by evidence: use the resolve tool, not the CLI",
    ),
    verb(&["agent"], Class::Denied, "the agent does not start agents"),
    verb(
        &["eval"],
        Class::Denied,
        "the agent does not start evaluations",
    ),
    verb(&["tui"], Class::Denied, "the agent does not start the app"),
    verb(&["demo"], Class::Denied, "the agent does not start the app"),
];

/// The verb that `words` (the command's words without options) begins with.
pub fn verb_of(words: &[&str]) -> Option<&'static Verb> {
    VERBS.iter().find(|v| {
        if v.words.is_empty() {
            return words.is_empty();
        }
        v.words.len() <= words.len() && v.words.iter().zip(words).all(|(w, a)| *w == "*" || w == a)
    })
}
