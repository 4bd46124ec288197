//! What a subject tells the policy about itself: how its own programs read, its HTTP
//! routes, the URL schemes of its clients, the variables that point them elsewhere, and the
//! words of its data folders.
//!
//! The policy owns this small trait and each subject implements it; the policy is handed the
//! instance's subject (or, to judge a command with no instance, every subject) and never looks
//! one up itself.

pub use super::walk::{Arg, Split};
use super::{Class, Target};

/// A subject as the policy sees it.
pub trait SubjectWords: Send + Sync {
    /// The subject's name, for messages.
    fn name(&self) -> &'static str;
    /// The policy's word on a program of this subject (its client, e.g. `etcdctl`), given
    /// its arguments (`known` gives their text, `None` where only known at run time); `None`
    /// for a program not its own.
    fn classify_program(&self, _program: &str, _args: &[Arg]) -> Option<ProgramVerdict> {
        None
    }
    /// URL schemes of this subject's clients and their default ports (`redis://` is 6379),
    /// for the policy to read where a URL points.
    fn url_schemes(&self) -> &'static [(&'static str, u16)] {
        &[]
    }
    /// Environment variables that point its clients at another endpoint, with what they
    /// point: a command that sets one is denied.
    fn endpoint_variables(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// The routes of this subject's HTTP API, each with the class of a request to it; the
    /// first that matches a request decides. A write (any method but GET, HEAD or OPTIONS)
    /// to a route no subject declares goes to a person.
    fn http_routes(&self) -> &'static [Route] {
        &[]
    }
    /// Words in a path that say it holds this subject's data (`redis`, `etcd`): the policy
    /// guards such folders as it guards `/var/lib`.
    fn data_words(&self) -> &'static [&'static str] {
        &[]
    }
    /// Programs that add the words they read on their input to their own arguments
    /// (`pd-ctl`): given input in the line, a person decides, as the words are not seen.
    fn reads_words_from_input(&self, _program: &str) -> bool {
        false
    }
    /// Nodes that keep their data only in memory (Redis run without persistence): stopping
    /// or restarting one loses it, so a person decides.
    fn memory_nodes(&self) -> &'static [&'static str] {
        &[]
    }
    /// Nodes that do not speak HTTP (Redis): an HTTP client sent to one smuggles the node's
    /// own protocol in the request's lines, so it is refused.
    fn non_http_nodes(&self) -> &'static [&'static str] {
        &[]
    }
}

/// The arguments' text, `None` for each only known at run time: for a subject that judges
/// every such word alike.
pub fn known(args: &[Arg]) -> Vec<Option<&str>> {
    args.iter().map(Arg::lit).collect()
}

/// What a subject's policy extension says of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramVerdict {
    /// Each thing it does that is more than reading, with its class.
    pub marks: Vec<(Class, String)>,
    /// Where it connects (`None`: an address the policy cannot read).
    pub targets: Vec<Option<Target>>,
}

impl ProgramVerdict {
    /// A verdict of one class.
    pub fn one(class: Class, reason: impl Into<String>, targets: Vec<Option<Target>>) -> Self {
        Self {
            marks: vec![(class, reason.into())],
            targets,
        }
    }
}

/// What a request's body makes of a route: another class and what it does, or `None`.
pub type BodyRule = fn(Option<&serde_json::Value>) -> Option<(Class, &'static str)>;

/// One route of a subject's HTTP API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `GET` (which also matches HEAD and OPTIONS), `POST`, `PUT`, `DELETE`, or `*` for any.
    pub method: &'static str,
    /// The path as a shell glob (`/v3*/kv/range`, `/api/limits/*`), matched against the
    /// path the server routes: percent-decoded, dot segments resolved.
    pub path: &'static str,
    pub class: Class,
    /// What a request to it does, for the reason.
    pub what: &'static str,
    /// What a body makes of a request to this route, where it decides (etcd's alarm route
    /// reads with `{"action":"GET"}`): given the body sent (parsed as JSON; `None` when
    /// there is none, or it is not exactly one literal JSON text), another class and what
    /// it does, or `None` for the route's own.
    pub body: Option<BodyRule>,
}

impl Route {
    pub const fn new(
        method: &'static str,
        path: &'static str,
        class: Class,
        what: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            class,
            what,
            body: None,
        }
    }

    /// The route, with a body that may change its class.
    pub const fn with_body(self, rule: BodyRule) -> Self {
        Self {
            body: Some(rule),
            ..self
        }
    }

    /// The class and reason of a request with `body` (one literal body, if the request has
    /// exactly one) to this route.
    pub fn judge(&self, body: Option<&str>) -> (Class, &'static str) {
        let sent = body.map(serde_json::from_str::<serde_json::Value>);
        let Some(rule) = self.body else {
            return (self.class, self.what);
        };
        match sent {
            // A body that is not JSON: the route's own class, or worse.
            Some(Err(_)) => (
                self.class.max(Class::Destructive),
                "a body that is not JSON",
            ),
            Some(Ok(v)) => rule(Some(&v)).unwrap_or((self.class, self.what)),
            None => rule(None).unwrap_or((self.class, self.what)),
        }
    }

    pub fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = match self.method {
            "*" => true,
            "GET" => matches!(method, "GET" | "HEAD" | "OPTIONS"),
            m => m == method,
        };
        method_ok && super::glob_matches(self.path, path)
    }
}
