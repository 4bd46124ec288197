//! Which `operator` calls the sandbox's client may make, read strictly: a verb from the
//! policy's list that the socket serves, options from a short list each, and its words after a
//! `--`, so that nothing the client sends is read as an option of the operator's own
//! (`--config`, `--db`, `--instance` are global and would reach another state).

use crate::policy::Class;
use crate::policy::verb_of;

/// A call the socket will run: the words to give the operator (after its own options), and
/// the class that a command must have been allowed at to make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub argv: Vec<String>,
    pub class: Class,
}

/// Why a call is refused; the client prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("`operator {0}` is not served inside the sandbox; it serves: {SERVED}")]
    NotServed(String),
    #[error("`operator {verb}` takes no option `{option}` inside the sandbox")]
    Option { verb: String, option: String },
    #[error("`operator {verb}` wants {want}")]
    Usage { verb: String, want: &'static str },
}

/// What the socket serves, for messages.
pub const SERVED: &str = "status, node start|stop|restart|kill|pause|resume|reset|logs, tickets list|show, incidents list|show, policy check, help";

const NODE_VERBS: &[&str] = &[
    "start", "stop", "restart", "kill", "pause", "resume", "reset", "logs",
];

/// Reads a client's words (without the program's name) into the call the operator makes.
pub fn call_of(words: &[String]) -> Result<Call, Refusal> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let help = |argv: Vec<&str>| Call {
        argv: argv.into_iter().map(String::from).collect(),
        class: Class::ReadOnly,
    };
    match w.as_slice() {
        [] | ["help"] | ["--help"] | ["-h"] => Ok(help(vec!["--help"])),
        ["status", rest @ ..] => {
            let (opts, words) = options("status", rest, &["--json"], &[])?;
            no_words("status", &words, "no words")?;
            Ok(call(&["status"], opts, words))
        }
        ["node", verb, rest @ ..] if NODE_VERBS.contains(verb) => {
            let name = format!("node {verb}");
            let valued: &[&str] = if *verb == "logs" {
                &["-n", "--lines"]
            } else {
                &[]
            };
            let (opts, words) = options(&name, rest, &["--json"], valued)?;
            if words.len() != 1 || !is_node_name(&words[0]) {
                return Err(Refusal::Usage {
                    verb: name,
                    want: "one node's name (letters, digits and dashes)",
                });
            }
            Ok(call(&["node", verb], opts, words))
        }
        ["tickets", "list", rest @ ..] => this_instances("tickets", rest, &["--status", "--limit"]),
        ["tickets", "show", rest @ ..] => this_instances_one("tickets", rest, "one ticket number"),
        ["incidents", "list", rest @ ..] => this_instances("incidents", rest, &["--limit"]),
        ["incidents", "show", rest @ ..] => {
            this_instances_one("incidents", rest, "one incident number")
        }
        ["policy", "check", rest @ ..] => {
            let (opts, words) = options("policy check", rest, &["--json"], &[])?;
            Ok(call(&["policy", "check"], opts, words))
        }
        _ => Err(Refusal::NotServed(words.join(" "))),
    }
}

/// `tickets list` or `incidents list`: this instance's only.
fn this_instances(what: &str, rest: &[&str], valued: &[&str]) -> Result<Call, Refusal> {
    let verb = format!("{what} list");
    let (mut opts, words) = options(&verb, rest, &["--json", "--active"], valued)?;
    no_words(&verb, &words, "no words")?;
    opts.push("--this-instance".into());
    Ok(call(&[what, "list"], opts, words))
}

/// `tickets show N` or `incidents show N`: one number, refused if another instance's.
fn this_instances_one(what: &str, rest: &[&str], want: &'static str) -> Result<Call, Refusal> {
    let verb = format!("{what} show");
    let (mut opts, words) = options(&verb, rest, &["--json"], &[])?;
    opts.push("--this-instance".into());
    if words.len() != 1 || !words[0].bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::Usage { verb, want });
    }
    Ok(call(&[what, "show"], opts, words))
}

/// The call: its verb's class from the policy's list, its options, then `--` and its words.
fn call(verb: &[&str], opts: Vec<String>, words: Vec<String>) -> Call {
    let class = verb_of(verb).map_or(Class::Denied, |v| v.class);
    let mut argv: Vec<String> = verb.iter().map(|s| s.to_string()).collect();
    argv.extend(opts);
    if !words.is_empty() {
        argv.push("--".into());
        argv.extend(words);
    }
    Call { argv, class }
}

fn no_words(verb: &str, words: &[String], want: &'static str) -> Result<(), Refusal> {
    if words.is_empty() {
        Ok(())
    } else {
        Err(Refusal::Usage {
            verb: verb.into(),
            want,
        })
    }
}

/// Splits `rest` into options (each in the list, spelled out: `--limit=5` and `-n5` become
/// two words) and words. A word after `--` is a word however it begins.
fn options(
    verb: &str,
    rest: &[&str],
    switches: &[&str],
    valued: &[&str],
) -> Result<(Vec<String>, Vec<String>), Refusal> {
    let bad = |o: &str| Refusal::Option {
        verb: verb.into(),
        option: o.into(),
    };
    let mut opts = Vec::new();
    let mut words = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        if *a == "--" {
            words.extend(it.by_ref().map(|s| s.to_string()));
            break;
        }
        if !a.starts_with('-') || *a == "-" {
            words.push(a.to_string());
            continue;
        }
        if switches.contains(a) || *a == "--help" || *a == "-h" {
            opts.push(a.to_string());
            continue;
        }
        let (name, value) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ if !a.starts_with("--") && a.len() > 2 => (&a[..2], Some(a[2..].to_string())),
            _ => (*a, None),
        };
        if !valued.contains(&name) {
            return Err(bad(a));
        }
        let value = match value {
            Some(v) => v,
            None => it.next().map(|s| s.to_string()).ok_or_else(|| bad(a))?,
        };
        // Values here are numbers and ticket states: plain words only.
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad(a));
        }
        opts.push(name.to_string());
        opts.push(value);
    }
    Ok((opts, words))
}

fn is_node_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn served_calls_are_spelled_out_with_their_class() {
        let c = call_of(&words("node start ratelimiter-2")).unwrap();
        assert_eq!(c.argv, words("node start -- ratelimiter-2"));
        assert_eq!(c.class, Class::Mutating);
        let c = call_of(&words("node stop etcd-1 --json")).unwrap();
        assert_eq!(c.argv, words("node stop --json -- etcd-1"));
        assert_eq!(c.class, Class::Destructive);
        let c = call_of(&words("node logs redis -n20")).unwrap();
        assert_eq!(c.argv, words("node logs -n 20 -- redis"));
        assert_eq!(c.class, Class::ReadOnly);
        let c = call_of(&words("tickets list --limit=5")).unwrap();
        assert_eq!(c.argv, words("tickets list --limit 5 --this-instance"));
        let c = call_of(&words("incidents show 4 --json")).unwrap();
        assert_eq!(c.argv, words("incidents show --json --this-instance -- 4"));
        assert_eq!(c.class, Class::ReadOnly);
        let c = call_of(&words("incidents list --active")).unwrap();
        assert_eq!(c.argv, words("incidents list --active --this-instance"));
        assert!(call_of(&words("incidents show ../4")).is_err());
        assert_eq!(call_of(&[]).unwrap().class, Class::ReadOnly);
    }

    #[test]
    fn the_operators_own_options_and_other_verbs_are_refused() {
        for bad in [
            "status --config /etc/x.toml",
            "status --db=/tmp/x.db",
            "node start ratelimiter-2 --instance 3",
            "node start ratelimiter-2 --state-dir /tmp",
            "node logs redis --follow",
            "node logs redis -f",
            "node start -- --config",
            "node start a b",
            "node start ../x",
            "tickets resolve 3",
            "tickets list --status=open;x",
            "down",
            "chaos heal",
            "up ratelimiter",
            "agent",
            "status -v",
            "--config /x status",
        ] {
            assert!(call_of(&words(bad)).is_err(), "{bad} was served");
        }
    }

    #[test]
    fn a_word_that_looks_like_an_option_stays_a_word() {
        let c = call_of(&words("policy check -- --config")).unwrap();
        assert_eq!(c.argv, words("policy check -- --config"));
    }
}
