//! HTTP clients (`curl`, `wget`): a subject's HTTP API is its CLI by another door, so a
//! request is judged by the route it reaches, as each subject declares its routes. Only
//! `http://` and `https://` are spoken; only options known to do nothing more than send the
//! request and print the answer are read; anything else goes to a person.

use super::Class;
use super::reach::outside;
use super::rules::{Ctx, any_dyn, lits, redirect_target};
use super::walk::Arg;

/// What one request does, as far as its options say.
#[derive(Debug, Default)]
struct Request {
    method: Option<String>,
    body: bool,
    /// The bodies given literally (`-d '{…}'`), for routes whose class depends on the body.
    bodies: Vec<String>,
    /// `-G`: the data goes in the query of a GET.
    get: bool,
    head: bool,
    upload: bool,
    globoff: bool,
    urls: Vec<String>,
    via_socket: bool,
}

impl Request {
    fn method(&self) -> String {
        match &self.method {
            Some(m) => m.clone(),
            None if self.upload => "PUT".into(),
            None if self.body && !self.get => "POST".into(),
            None if self.head => "HEAD".into(),
            None => "GET".into(),
        }
    }
}

/// curl's short options that take a value; the rest of the word, or the next word.
const CURL_SHORT_VALUE: &str = "XHdFTouAebcwmxUrYyzECDKQt";
/// curl's short options that only shape how the request is sent or its answer printed.
const CURL_SHORT_PLAIN: &str = "sSfLviIkgGN46#Rjq0123Vh";

/// curl's long options that only shape the request or its output, by whether they take a
/// value. Every other option goes to a person.
const CURL_LONG_PLAIN: &[&str] = &[
    "--silent",
    "--show-error",
    "--fail",
    "--fail-with-body",
    "--fail-early",
    "--location",
    "--verbose",
    "--include",
    "--head",
    "--insecure",
    "--globoff",
    "--get",
    "--no-buffer",
    "--compressed",
    "--http1.0",
    "--http1.1",
    "--http2",
    "--http2-prior-knowledge",
    "--ipv4",
    "--ipv6",
    "--no-progress-meter",
    "--progress-bar",
    "--raw",
    "--no-keepalive",
    "--tcp-nodelay",
    "--remote-time",
    "--version",
    "--help",
    "--retry-connrefused",
    "--retry-all-errors",
    "--tlsv1.2",
    "--tlsv1.3",
    "--styled-output",
    "--no-styled-output",
];
const CURL_LONG_VALUE: &[&str] = &[
    "--request",
    "--header",
    "--data",
    "--data-raw",
    "--data-binary",
    "--data-urlencode",
    "--data-ascii",
    "--json",
    "--form",
    "--form-string",
    "--upload-file",
    "--output",
    "--user",
    "--user-agent",
    "--referer",
    "--cookie",
    "--cookie-jar",
    "--write-out",
    "--max-time",
    "--connect-timeout",
    "--proxy",
    "--preproxy",
    "--socks4",
    "--socks4a",
    "--socks5",
    "--socks5-hostname",
    "--proxy-user",
    "--range",
    "--speed-limit",
    "--speed-time",
    "--retry",
    "--retry-delay",
    "--retry-max-time",
    "--limit-rate",
    "--url",
    "--max-filesize",
    "--max-redirs",
    "--unix-socket",
    "--abstract-unix-socket",
    "--dump-header",
    "--cacert",
    "--capath",
    "--cert",
    "--key",
    "--output-dir",
    "--oauth2-bearer",
    "--noproxy",
    "--interface",
    "--local-port",
    "--parallel-max",
    "--time-cond",
    "--continue-at",
];

/// A word holding a line break or another control character: in a header, an agent, a
/// cookie or a method it ends the request line early, and what follows is a second request
/// on the same connection, whose route nobody judged.
fn line_breaks(ctx: &mut Ctx, prog: &str, words: &[&str]) {
    if words
        .iter()
        .any(|w| w.chars().any(|c| c.is_control() && c != '\t'))
    {
        ctx.mark(
            Class::Destructive,
            format!(
                "{prog} is given a word holding a line break, which may carry a second request"
            ),
        );
    }
}

/// curl: every option read, each URL judged by its scheme, its address and its route.
pub(super) fn curl(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    line_breaks(ctx, "curl", &l);
    let mut r = Request::default();
    let mut i = 0;
    let mut rest: Vec<&str> = Vec::new();
    while i < l.len() {
        let a = l[i];
        if a == "--" {
            rest.extend(&l[i + 1..]);
            break;
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v)),
                None => (a.to_string(), None),
            };
            if CURL_LONG_VALUE.contains(&name.as_str()) {
                let value = inline.or_else(|| l.get(i + 1).copied());
                if inline.is_none() {
                    i += 1;
                }
                curl_option(ctx, &mut r, &name, value);
            } else if CURL_LONG_PLAIN.contains(&name.as_str()) && inline.is_none() {
                curl_option(ctx, &mut r, &name, None);
            } else {
                ctx.mark(
                    Class::Destructive,
                    format!("curl {name} is an option the policy does not read"),
                );
            }
        } else if a.starts_with('-') && a.len() > 1 {
            // A bundle of short options: `-sSf`, `-XPOST`, `-o/dev/null`, `-K-`.
            let chars: Vec<char> = a[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                if CURL_SHORT_VALUE.contains(c) {
                    let attached: String = chars[k + 1..].iter().collect();
                    let value = if attached.is_empty() {
                        i += 1;
                        l.get(i).copied().map(str::to_string)
                    } else {
                        Some(attached)
                    };
                    curl_option(ctx, &mut r, &format!("-{c}"), value.as_deref());
                    break;
                } else if CURL_SHORT_PLAIN.contains(c) {
                    curl_option(ctx, &mut r, &format!("-{c}"), None);
                } else {
                    ctx.mark(
                        Class::Destructive,
                        format!("curl -{c} is an option the policy does not read"),
                    );
                }
                k += 1;
            }
        } else {
            r.urls.push(a.to_string());
        }
        i += 1;
    }
    r.urls.extend(rest.into_iter().map(str::to_string));
    judge_urls(ctx, "curl", &r);
    if any_dyn(args) {
        ctx.mark(
            Class::Destructive,
            "curl with arguments only known at run time",
        );
    }
}

/// One curl option and its value.
fn curl_option(ctx: &mut Ctx, r: &mut Request, opt: &str, value: Option<&str>) {
    let value_or_unknown = value.unwrap_or("?");
    match opt {
        "-X" | "--request" => r.method = value.map(str::to_ascii_uppercase),
        "-d" | "--data" | "--data-binary" | "--data-urlencode" | "--data-ascii" | "--json" => {
            r.body = true;
            // `@file` (and `@-`, standard input): a body the policy cannot read.
            let from_file = value.is_some_and(|v| {
                v.starts_with('@') || (opt == "--data-urlencode" && v.contains('@'))
            });
            if from_file {
                ctx.mark(
                    Class::Destructive,
                    format!("curl sends a body read from {value_or_unknown}, which the policy cannot read"),
                );
            } else if matches!(
                opt,
                "-d" | "--data" | "--data-binary" | "--data-ascii" | "--json"
            ) {
                r.bodies.push(value.unwrap_or_default().to_string());
            }
        }
        "--data-raw" => {
            r.body = true;
            r.bodies.push(value.unwrap_or_default().to_string());
        }
        "-F" | "--form" | "--form-string" => {
            r.body = true;
            if opt != "--form-string" && value.is_some_and(|v| v.contains("=@") || v.contains("=<"))
            {
                ctx.mark(Class::Destructive, "curl uploads a file in a form");
            }
        }
        "-T" | "--upload-file" => {
            r.upload = true;
            ctx.mark(
                Class::Destructive,
                format!("curl uploads {value_or_unknown}"),
            );
        }
        "-G" | "--get" => r.get = true,
        "-I" | "--head" => r.head = true,
        "-g" | "--globoff" => r.globoff = true,
        "-o" | "--output" | "-D" | "--dump-header" | "-c" | "--cookie-jar" | "--output-dir" => {
            if let Some(f) = value.filter(|f| !matches!(*f, "/dev/null" | "-" | "/dev/stdout")) {
                redirect_target(ctx.policy, &Arg::Lit(f.to_string()), true, ctx.found);
                ctx.mark(Class::Mutating, "curl saves a file");
            }
        }
        "-w" | "--write-out"
            if value.is_none_or(|v| {
                v.starts_with('@') || v.contains("%output{") || v.contains("%{stderr}")
            }) =>
        {
            ctx.mark(
                Class::Destructive,
                "curl's --write-out reads a file or writes one",
            );
        }
        "-b" | "--cookie" if value.is_none_or(|v| !v.contains('=')) => {
            ctx.mark(Class::Destructive, "curl reads cookies from a file");
        }
        "-K" | "--config" | "-Q" | "--quote" | "-t" => ctx.mark(
            Class::Destructive,
            format!("curl {opt} takes commands or options the policy cannot read"),
        ),
        "-x" | "--proxy" | "--preproxy" | "--socks4" | "--socks4a" | "--socks5"
        | "--socks5-hostname" => {
            let target = value.and_then(|v| ctx.policy.url_target(v));
            if outside(ctx, "curl's proxy", target) {
                // The instance runs no proxy: its own ports (Redis, the fault proxy's control
                // API) would take the request's lines as their own commands.
                ctx.mark(
                    Class::Destructive,
                    "curl through a proxy at the instance's own port, which is no proxy",
                );
            }
        }
        "--unix-socket" | "--abstract-unix-socket" => {
            let target = value.map(|v| super::Target::Unix(v.to_string()));
            r.via_socket = target
                .as_ref()
                .is_some_and(|t| ctx.policy.endpoints().reaches(t));
            if !r.via_socket {
                ctx.mark(
                    Class::Denied,
                    format!(
                        "curl {opt} {value_or_unknown} talks to a socket outside the instance (an engine's, say)"
                    ),
                );
            }
        }
        "--url" => r.urls.push(value.unwrap_or_default().to_string()),
        "--retry" if value.is_none_or(|v| v.parse::<u8>().map_or(true, |n| n > 5)) => ctx.mark(
            Class::Destructive,
            "curl retries more than five times, a flood against a failing node",
        ),
        "-E" | "--cert" | "--key" | "--cacert" | "--capath" => {
            if let Some(v) = value {
                redirect_target(ctx.policy, &Arg::Lit(v.to_string()), false, ctx.found);
            }
        }
        _ => {}
    }
}

/// The body a request sends, as the routes judge it.
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    Read(&'a str),
    Unread,
}

/// Judges each URL of a request: its scheme, its address, and the route it reaches.
fn judge_urls(ctx: &mut Ctx, client: &str, r: &Request) {
    let method = r.method();
    // One body sent as written; with `-G` it goes in the query instead. Several (curl
    // joins them with `&`, and a server may read only the first JSON value) or one the
    // policy did not keep (`--data-urlencode`) cannot be read.
    let body = match r.bodies.as_slice() {
        [one] if !r.get => Body::Read(one.as_str()),
        _ if r.body && !r.get => Body::Unread,
        _ => Body::None,
    };
    for url in &r.urls {
        if url.is_empty() {
            ctx.mark(
                Class::Destructive,
                format!("{client}: a URL the policy cannot read"),
            );
            continue;
        }
        if let Some((scheme, _)) = url.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            if !matches!(scheme.as_str(), "http" | "https") {
                ctx.mark(
                    Class::Destructive,
                    format!("{client} speaks {scheme}://; only http and https requests are read"),
                );
                continue;
            }
        } else if let Some(guess) = [
            "ftp.", "dict.", "ldap.", "imap.", "pop3.", "smtp.", "gopher.",
        ]
        .iter()
        .find(|p| url.to_ascii_lowercase().starts_with(*p))
        {
            ctx.mark(
                Class::Destructive,
                format!("{client} guesses another protocol than HTTP from `{guess}`"),
            );
            continue;
        }
        let path = url_path(url);
        // curl expands `{a,b}` and `[1-9]` anywhere after the host (an IPv6 host's brackets
        // aside), the query too.
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let after_host = match after_scheme.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map_or("", |(_, r)| r),
            None => after_scheme,
        };
        if !r.globoff && after_host.contains(['{', '[']) && client == "curl" {
            ctx.mark(
                Class::Destructive,
                "curl expands {…} and […] in a URL into several requests",
            );
            continue;
        }
        if r.via_socket {
            route(ctx, &method, &path, body);
            continue;
        }
        let target = ctx.policy.url_target(url);
        // The fault proxy's control API shows and changes the faults: refused.
        if let Some(node) = target
            .as_ref()
            .and_then(|t| ctx.policy.endpoints().node_at(t))
            .filter(|n| *n == crate::runtime::FAULTPROXY)
        {
            ctx.mark(
                Class::Denied,
                format!("{client} reaches the {node}, whose API holds the faults under test"),
            );
            continue;
        }
        if let Some(node) = target
            .as_ref()
            .and_then(|t| ctx.policy.endpoints().node_at(t))
            .filter(|n| {
                ctx.policy
                    .subjects()
                    .iter()
                    .any(|k| k.non_http_nodes().contains(n))
            })
        {
            ctx.mark(
                Class::Denied,
                format!("{client} speaks HTTP to {node}, which would read the request's lines as its own commands"),
            );
            continue;
        }
        let inside = outside(ctx, client, target);
        if inside {
            route(ctx, &method, &path, body);
        } else if !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            ctx.mark(
                Class::Destructive,
                format!("{client} sends an HTTP {method}"),
            );
        }
    }
}

/// The path of a URL as the server routes it: percent-decoded, dot segments resolved,
/// repeated slashes folded, without query or fragment.
pub(super) fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let after_host = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "/",
    };
    let raw = after_host.split(['?', '#']).next().unwrap_or("/");
    let decoded = percent_decode(raw);
    let mut parts: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Decoded twice over would be another request; once is what a server does.
    String::from_utf8_lossy(&out).into_owned()
}

/// The class of `method path` on the instance, as the subject's first matching route says;
/// a write no subject declares goes to a person.
fn route(ctx: &mut Ctx, method: &str, path: &str, body: Body) {
    // Each subject's first matching route; of several subjects (a check with no
    // instance), the worst.
    let declared = ctx
        .policy
        .subjects()
        .iter()
        .filter_map(|k| k.http_routes().iter().find(|r| r.matches(method, path)))
        .map(|r| match body {
            // A route whose class depends on its body, sent one the policy cannot read.
            Body::Unread if r.body.is_some() => (
                Class::Destructive,
                "a body the policy cannot read as one JSON value",
            ),
            Body::Read(b) => r.judge(Some(b)),
            _ => r.judge(None),
        })
        .max_by_key(|(class, _)| *class);
    match declared {
        Some((class, what)) if class > Class::ReadOnly => {
            ctx.mark(class, format!("{method} {path}: {what}"))
        }
        Some(_) => {}
        None if matches!(method, "GET" | "HEAD" | "OPTIONS") => {}
        None => ctx.mark(
            Class::Destructive,
            format!("{method} {path}: a write to a route no subject declares"),
        ),
    }
}

/// wget's options that take a value, and those that only shape how it fetches and prints.
const WGET_VALUE: &[&str] = &[
    "-O",
    "--output-document",
    "-t",
    "--tries",
    "-T",
    "--timeout",
    "--connect-timeout",
    "--read-timeout",
    "-w",
    "--wait",
    "-U",
    "--user-agent",
    "--header",
    "--post-data",
    "--post-file",
    "--body-data",
    "--body-file",
    "--method",
    "--max-redirect",
    "--limit-rate",
    "--user",
    "--password",
];
const WGET_PLAIN: &[&str] = &[
    "-q",
    "--quiet",
    "-S",
    "--server-response",
    "--spider",
    "-nv",
    "--no-verbose",
    "-v",
    "--verbose",
    "--no-check-certificate",
    "--no-proxy",
    "-4",
    "-6",
    "--inet4-only",
    "--inet6-only",
    "--version",
    "--help",
    "-qO-",
    "-O-",
    "--content-on-error",
    "--no-cache",
];

pub(super) fn wget(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    line_breaks(ctx, "wget", &l);
    let mut r = Request::default();
    let mut to_stdout = l.contains(&"--spider");
    let mut i = 0;
    while i < l.len() {
        let a = l[i];
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (a, None),
        };
        if matches!(a, "-qO-" | "-O-" | "--output-document=-") {
            to_stdout = true;
        } else if a == "-qO" {
            // `-qO FILE`: quiet, and the answer saved to FILE.
            match l.get(i + 1) {
                Some(&"-") => to_stdout = true,
                Some(f) => redirect_target(ctx.policy, &Arg::Lit(f.to_string()), true, ctx.found),
                None => {}
            }
            i += 1;
        } else if WGET_VALUE.contains(&name) {
            let value = inline.or_else(|| l.get(i + 1).copied());
            if inline.is_none() {
                i += 1;
            }
            match name {
                "-O" | "--output-document" => {
                    if value == Some("-") {
                        to_stdout = true;
                    } else if let Some(f) = value {
                        redirect_target(ctx.policy, &Arg::Lit(f.to_string()), true, ctx.found);
                    }
                }
                "--post-data" | "--body-data" => {
                    r.body = true;
                    r.bodies.push(value.unwrap_or_default().to_string());
                }
                "--post-file" | "--body-file" => {
                    r.body = true;
                    ctx.mark(
                        Class::Destructive,
                        "wget sends a body read from a file the policy cannot read",
                    );
                }
                "--method" => r.method = value.map(str::to_ascii_uppercase),
                _ => {}
            }
        } else if WGET_PLAIN.contains(&name) {
        } else if a.starts_with('-') && a.len() > 1 {
            ctx.mark(
                Class::Destructive,
                format!("wget {name} is an option the policy does not read"),
            );
        } else {
            r.urls.push(a.to_string());
        }
        i += 1;
    }
    // `-O FILE` is judged as the write it is; without it wget picks the name (from the URL,
    // a redirect or the server) in the folder it runs in, which may be the instance's own.
    let named = l.iter().enumerate().any(|(i, a)| {
        matches!(*a, "-O" | "-qO" | "--output-document") && l.get(i + 1).is_some()
            || a.starts_with("--output-document=")
    });
    if !to_stdout && named {
        ctx.mark(Class::Mutating, "wget saves a file");
    } else if !to_stdout {
        ctx.mark(
            Class::Destructive,
            "wget saves a file under a name it picks, in the folder it runs in",
        );
    }
    judge_urls(ctx, "wget", &r);
    if any_dyn(args) {
        ctx.mark(
            Class::Destructive,
            "wget with arguments only known at run time",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_as_the_server_routes_them() {
        assert_eq!(
            url_path("http://h:1/v3/kv/%64eleterange"),
            "/v3/kv/deleterange"
        );
        assert_eq!(
            url_path("http://h:1/v3/kv/range/../deleterange"),
            "/v3/kv/deleterange"
        );
        assert_eq!(url_path("h:1//v3/./kv/range?x=1#y"), "/v3/kv/range");
        assert_eq!(url_path("http://h:1"), "/");
    }
}
