//! Where a client points: `curl`, `wget`, `nc`, `redis-cli`'s target and `docker`'s engine
//! are judged against the instance's endpoints, and so are the variables that redirect them
//! (`DOCKER_HOST`, `https_proxy`, …). Anything not the instance's is outside it.

use super::endpoints::{Target, canonical_host};
use super::rules::{Ctx, any_dyn, lits, redirect_target};
use super::walk::{self, Arg, Findings};
use super::{Class, Policy};

/// curl's options that take a value (the next word), so that every other word is a URL.
const CURL_WITH_VALUE: &[&str] = &[
    "-X",
    "--request",
    "-H",
    "--header",
    "-d",
    "--data",
    "--data-raw",
    "--data-binary",
    "--data-urlencode",
    "--data-ascii",
    "--json",
    "-F",
    "--form",
    "--form-string",
    "-T",
    "--upload-file",
    "-o",
    "--output",
    "-u",
    "--user",
    "-A",
    "--user-agent",
    "-e",
    "--referer",
    "-b",
    "--cookie",
    "-c",
    "--cookie-jar",
    "-w",
    "--write-out",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-x",
    "--proxy",
    "--preproxy",
    "--socks4",
    "--socks4a",
    "--socks5",
    "--socks5-hostname",
    "-U",
    "--proxy-user",
    "-K",
    "--config",
    "-r",
    "--range",
    "-Y",
    "--speed-limit",
    "-y",
    "--speed-time",
    "-z",
    "--time-cond",
    "-E",
    "--cert",
    "--key",
    "--cacert",
    "--capath",
    "--resolve",
    "--connect-to",
    "--unix-socket",
    "--abstract-unix-socket",
    "--interface",
    "--retry",
    "--retry-delay",
    "--retry-max-time",
    "-C",
    "--continue-at",
    "--limit-rate",
    "--url",
    "--max-filesize",
    "--max-redirs",
    "--output-dir",
    "-D",
    "--dump-header",
    "--trace",
    "--trace-ascii",
    "--stderr",
    "-Q",
    "--quote",
    "--dns-servers",
    "--doh-url",
    "--local-port",
    "--noproxy",
    "--oauth2-bearer",
    "--variable",
    "--expand-url",
];

pub(super) fn curl(ctx: &mut Ctx, args: &[Arg]) {
    let l = lits(args);
    let mut method: Option<String> = None;
    let mut writes_body = false;
    let mut output_file = false;
    let mut urls: Vec<&str> = Vec::new();
    // Through one of the instance's sockets, the URL's host is only a name for it.
    let mut via_socket = false;
    let mut i = 0;
    while i < l.len() {
        let a = l[i];
        // `--opt=value` is one word; `-Xvalue` too for short options.
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v)),
            _ => (a, None),
        };
        let value = || inline.or_else(|| l.get(i + 1).copied());
        let takes = CURL_WITH_VALUE.contains(&opt);
        match opt {
            "-X" | "--request" => method = value().map(str::to_ascii_uppercase),
            _ if opt.starts_with("-X") && opt.len() > 2 && !opt.starts_with("--") => {
                method = Some(opt[2..].to_ascii_uppercase())
            }
            "-d" | "--data" | "--data-raw" | "--data-binary" | "--data-urlencode"
            | "--data-ascii" | "--json" | "-F" | "--form" | "--form-string" | "-T"
            | "--upload-file" => writes_body = true,
            "-o" | "--output" => {
                if let Some(f) = value().filter(|f| *f != "/dev/null" && *f != "-") {
                    output_file = true;
                    redirect_target(ctx.policy, &Arg::Lit(f.to_string()), true, ctx.found);
                }
            }
            "-O" | "--remote-name" | "--remote-name-all" | "-J" | "--remote-header-name" => {
                output_file = true
            }
            "-K" | "--config" => ctx.mark(Class::Destructive, "curl reads its options from a file"),
            "-x" | "--proxy" | "--preproxy" | "--socks4" | "--socks4a" | "--socks5"
            | "--socks5-hostname" => {
                if let Some(v) = value() {
                    let target = ctx.policy.url_target(v);
                    outside(ctx, "curl's proxy", target);
                }
            }
            "--resolve" | "--connect-to" | "--dns-servers" | "--doh-url" => ctx.mark(
                Class::Destructive,
                format!("curl {opt} sends a request to another address than its URL names"),
            ),
            "--unix-socket" | "--abstract-unix-socket" => {
                let target = value().map(|v| Target::Unix(v.to_string()));
                via_socket = target
                    .as_ref()
                    .is_some_and(|t| ctx.policy.endpoints().reaches(t));
                if !via_socket {
                    ctx.mark(
                        Class::Denied,
                        format!(
                            "curl {opt} {} talks to a socket outside the instance (an engine's, say)",
                            value().unwrap_or("?")
                        ),
                    );
                }
            }
            "--url" => urls.extend(value()),
            _ if a.starts_with('-') && a.len() > 1 => {}
            _ => urls.push(a),
        }
        i += if takes && inline.is_none() { 2 } else { 1 };
    }
    for url in urls.into_iter().filter(|_| !via_socket) {
        let target = ctx.policy.url_target(url);
        outside(ctx, "curl", target);
    }
    match method.as_deref() {
        Some("DELETE") => ctx.mark(Class::Destructive, "sends an HTTP DELETE"),
        Some("GET" | "HEAD" | "OPTIONS") | None if !writes_body => {}
        Some(m) => ctx.mark(Class::Mutating, format!("sends an HTTP {m}")),
        None => ctx.mark(Class::Mutating, "sends an HTTP POST"),
    }
    if output_file {
        ctx.mark(Class::Mutating, "curl saves a file");
    }
    if any_dyn(args) {
        ctx.mark(
            Class::Destructive,
            "curl with arguments only known at run time",
        );
    }
}

/// Marks a client's target that is not one of the instance's endpoints. Inside one of the
/// instance's containers (`docker exec NODE …`), loopback is that node.
pub(super) fn outside(ctx: &mut Ctx, what: &str, target: Option<Target>) {
    let Some(target) = target else {
        ctx.mark(
            Class::Destructive,
            format!("{what}: an address the policy cannot read"),
        );
        return;
    };
    let loopback =
        matches!(&target, Target::Tcp { host, .. } if canonical_host(host) == "127.0.0.1");
    if (ctx.found.in_container && loopback) || ctx.policy.endpoints().reaches(&target) {
        return;
    }
    ctx.mark(
        Class::Destructive,
        format!("{what} reaches {target}, outside the instance"),
    );
}

pub(super) fn wget(ctx: &mut Ctx, args: &[Arg]) {
    const WITH_VALUE: &[&str] = &[
        "-O",
        "--output-document",
        "-o",
        "--output-file",
        "-a",
        "--append-output",
        "-t",
        "--tries",
        "-T",
        "--timeout",
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
        "-P",
        "--directory-prefix",
        "--user",
        "--password",
        "-Q",
        "--quota",
        "--limit-rate",
        "--bind-address",
        "--ca-certificate",
        "--certificate",
        "--private-key",
    ];
    let l = lits(args);
    let to_stdout = l
        .windows(2)
        .any(|w| matches!(w[0], "-O" | "--output-document") && w[1] == "-")
        || l.iter()
            .any(|a| *a == "-qO-" || *a == "-O-" || *a == "--output-document=-");
    if l.iter()
        .any(|a| a.starts_with("--post") || a.starts_with("--method"))
    {
        ctx.mark(Class::Mutating, "sends an HTTP POST");
    }
    if !to_stdout && !l.contains(&"--spider") {
        ctx.mark(Class::Mutating, "wget saves a file");
    }
    let mut i = 0;
    while i < l.len() {
        let a = l[i];
        match a {
            "-e" | "--execute" | "-i" | "--input-file" | "--config" => {
                ctx.mark(
                    Class::Destructive,
                    format!("wget {a} takes settings or URLs the policy cannot read"),
                );
                i += 1;
            }
            _ if a.starts_with("-e") && !a.starts_with("--") && a.len() > 2 => ctx.mark(
                Class::Destructive,
                "wget -e takes settings the policy cannot read",
            ),
            _ if WITH_VALUE.contains(&a) => i += 1,
            _ if a.starts_with('-') => {}
            url => {
                let target = ctx.policy.url_target(url);
                outside(ctx, "wget", target)
            }
        }
        i += 1;
    }
    if any_dyn(args) {
        ctx.mark(
            Class::Destructive,
            "wget with arguments only known at run time",
        );
    }
}

/// Whether the docker client reaches the instance's engine endpoint (the one its commands
/// are given): another host (`-H`), context (`--context`, `-c`) or config folder is another
/// engine, and where the instance runs no containers every engine is someone else's.
pub(super) fn docker_engine(ctx: &mut Ctx, prog: &str, args: &[Arg]) -> bool {
    let endpoints = ctx.policy.endpoints();
    if endpoints.docker().is_none() {
        ctx.mark(
            Class::Denied,
            format!(
                "this instance's nodes are not containers: {prog} would reach an engine outside the instance"
            ),
        );
        return false;
    }
    let l = lits(args);
    let mut i = 0;
    while i < l.len() {
        let a = l[i];
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v)),
            _ if a.starts_with("-H") && a.len() > 2 => ("-H", Some(&a[2..])),
            _ if a.starts_with("-c") && a.len() > 2 && !a.starts_with("--") => {
                ("-c", Some(&a[2..]))
            }
            _ => (a, None),
        };
        let value = inline.or_else(|| l.get(i + 1).copied());
        let elsewhere = match opt {
            "-H" | "--host" => !value.is_some_and(|v| endpoints.is_docker(v)),
            "-c" | "--context" | "--config" | "--tlscacert" | "--tlscert" | "--tlskey" => true,
            _ if !a.starts_with('-') => break,
            _ => false,
        };
        if elsewhere {
            let shown = if matches!(opt, "-H" | "--host") {
                format!(" {}", value.unwrap_or("?"))
            } else {
                String::new()
            };
            ctx.mark(
                Class::Denied,
                format!(
                    "{prog} {opt}{shown} points the client at another engine than the instance's"
                ),
            );
            return false;
        }
        i += if inline.is_none()
            && matches!(
                opt,
                "-H" | "--host"
                    | "-c"
                    | "--context"
                    | "--config"
                    | "-l"
                    | "--log-level"
                    | "--tlscacert"
                    | "--tlscert"
                    | "--tlskey"
            ) {
            2
        } else {
            1
        };
    }
    true
}

/// Variables that point a client at another endpoint, or at a configuration that can.
const ENDPOINT_VARIABLES: &[(&str, &str)] = &[
    ("DOCKER_HOST", "the docker client's engine"),
    ("DOCKER_CONTEXT", "the docker client's engine"),
    (
        "DOCKER_CONFIG",
        "the docker client's configuration (and contexts)",
    ),
    ("DOCKER_CERT_PATH", "the docker client's TLS identity"),
    ("DOCKER_TLS_VERIFY", "the docker client's TLS"),
    ("KUBECONFIG", "the Kubernetes cluster"),
    ("CURL_HOME", "curl's configuration"),
    ("WGETRC", "wget's configuration"),
];

/// Variables that send traffic through a proxy.
const PROXY_VARIABLES: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "ftp_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "FTP_PROXY",
    "socks_proxy",
    "SOCKS_PROXY",
];

/// An assignment `NAME=value` (a command's prefix, `env`, `export`, `printf -v`): some
/// variables change what runs, or where a client connects. `known` is false when the value
/// is only known at run time.
pub(super) fn assignment(policy: &Policy, found: &mut Findings, text: &str, known: bool) {
    let (name, value) = text.split_once('=').unwrap_or((text, ""));
    if walk::DANGEROUS_VARIABLES.contains(&name) {
        found.mark(
            Class::Denied,
            format!("sets {name}, which changes what runs"),
        );
        return;
    }
    if name.starts_with("OPERATOR_") {
        found.mark(
            Class::Denied,
            format!("sets {name}: the agent works on its own instance only"),
        );
        return;
    }
    // The generic ones, then those of each subject's clients (redis-cli's, etcdctl's).
    let subjects = policy
        .subjects()
        .iter()
        .flat_map(|k| k.endpoint_variables().iter());
    if let Some((_, what)) = ENDPOINT_VARIABLES
        .iter()
        .chain(subjects)
        .find(|(n, _)| *n == name)
    {
        if name == "DOCKER_HOST" && known && policy.endpoints().is_docker(value) {
            return;
        }
        found.mark(
            Class::Denied,
            format!("sets {name}, which points {what} outside the instance"),
        );
        return;
    }
    if PROXY_VARIABLES.contains(&name) {
        let ours = known
            && policy
                .url_target(value)
                .is_some_and(|t| policy.endpoints().reaches(&t));
        if !ours && !value.is_empty() {
            found.mark(
                Class::Destructive,
                format!("sets {name}: traffic would go through a proxy outside the instance"),
            );
        }
    }
}
