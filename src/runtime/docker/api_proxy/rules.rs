//! What the agent may ask of the Docker engine, decided from the request line alone: a few
//! calls on the containers of its own instance, and nothing else. Which container a name
//! means, and whether it belongs to the instance, is settled afterwards against the engine.

use hyper::Method;

/// What a call does to the container it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// inspect, logs, stats, top: allowed on every container of the instance.
    Read,
    /// start, stop, restart, kill, pause, unpause: the subject's containers only.
    Change,
    /// exec: the subject's containers only.
    Exec,
}

/// Where a request goes, once allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `_ping` and `version`: what every client asks first; they touch nothing.
    Plain,
    /// `GET /containers/json` or `GET /events`, narrowed to the instance's things.
    List,
    /// A call on one container: its reference as given, and the rest of the path after it.
    Container {
        reference: String,
        access: Access,
        rest: String,
    },
    /// A call on an exec instance (start, inspect, resize): allowed when its container is.
    Exec { id: String, rest: String },
    /// Refused, and why, in words the model reads.
    Refuse(String),
}

/// What is allowed, for refusals to quote.
pub const ALLOWED: &str = "inspect, logs, stats, top, start, stop, restart, kill, pause, unpause and exec on this instance's containers, and `docker ps` and `docker events` about them";

/// The path without its API version prefix (`/v1.41/containers/json` → `/containers/json`).
pub fn unversioned(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(i) = rest.find('/') {
            if rest[..i].chars().all(|c| c.is_ascii_digit() || c == '.') {
                return &rest[i..];
            }
        }
    }
    path
}

fn refuse(method: &Method, path: &str, what: &str) -> Route {
    Route::Refuse(format!(
        "the operator's Docker API proxy refuses `{method} {path}`: {what}. The agent may use only {ALLOWED}"
    ))
}

/// The API version a path asks for (`/v1.41/…` → 1.41), if it names one.
pub fn version(path: &str) -> Option<(u32, u32)> {
    let rest = path.strip_prefix("/v")?;
    let v = &rest[..rest.find('/')?];
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The oldest API version let through: older ones read host settings from a start's body.
pub const OLDEST_VERSION: (u32, u32) = (1, 24);

pub fn route(method: &Method, path: &str) -> Route {
    if version(path).is_some_and(|v| v < OLDEST_VERSION) {
        return refuse(
            method,
            path,
            &format!(
                "API versions before {}.{} are not allowed",
                OLDEST_VERSION.0, OLDEST_VERSION.1
            ),
        );
    }
    let p = unversioned(path);
    let parts: Vec<&str> = p.trim_start_matches('/').split('/').collect();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    match parts.as_slice() {
        ["_ping"] if get => Route::Plain,
        ["version"] if get => Route::Plain,
        ["containers", "json"] if get => Route::List,
        ["events"] if get => Route::List,
        ["containers", "create"] => refuse(method, p, "creating containers is not allowed"),
        ["containers", "prune"] => refuse(method, p, "removing containers is not allowed"),
        ["containers", reference] if method == Method::DELETE => {
            let _ = reference;
            refuse(method, p, "removing containers is not allowed")
        }
        ["containers", "", ..] | ["exec", "", ..] => {
            refuse(method, p, "a container or exec must be named")
        }
        ["containers", reference, action] => {
            let access = match *action {
                "json" | "logs" | "stats" | "top" if get => Access::Read,
                "start" | "stop" | "restart" | "kill" | "pause" | "unpause" if post => {
                    Access::Change
                }
                "exec" if post => Access::Exec,
                _ => {
                    return refuse(
                        method,
                        p,
                        &format!("`{action}` on a container is not among the allowed calls"),
                    );
                }
            };
            Route::Container {
                reference: (*reference).to_string(),
                access,
                rest: format!("/{action}"),
            }
        }
        ["exec", id, action @ ("start" | "resize")] if post => Route::Exec {
            id: (*id).to_string(),
            rest: format!("/{action}"),
        },
        ["exec", id, "json"] if get => Route::Exec {
            id: (*id).to_string(),
            rest: "/json".into(),
        },
        ["volumes", ..] => refuse(method, p, "volumes are not the agent's to touch"),
        ["networks", ..] => refuse(method, p, "networks are not the agent's to touch"),
        ["images", ..] | ["build"] | ["commit"] => {
            refuse(method, p, "images are not the agent's to touch")
        }
        ["system", ..] | ["info"] | ["events"] => {
            refuse(method, p, "the engine's system calls are not allowed")
        }
        ["swarm", ..]
        | ["services", ..]
        | ["nodes", ..]
        | ["secrets", ..]
        | ["configs", ..]
        | ["plugins", ..]
        | ["session"]
        | ["distribution", ..]
        | ["tasks", ..] => refuse(
            method,
            p,
            "this part of the engine is not the agent's to touch",
        ),
        _ => refuse(method, p, "not among the allowed calls"),
    }
}

/// A `filters` query value (JSON, either `{"label":["a=b"]}` or `{"label":{"a=b":true}}`)
/// with `labels` added, so that a listing shows only what carries all of them.
pub fn narrow_filters(filters: Option<&str>, labels: &[String]) -> String {
    let mut obj = match filters.and_then(|f| serde_json::from_str(f).ok()) {
        Some(serde_json::Value::Object(o)) => o,
        _ => serde_json::Map::new(),
    };
    let entry = obj.entry("label").or_insert_with(|| serde_json::json!({}));
    match entry {
        serde_json::Value::Array(a) => {
            a.extend(labels.iter().map(|l| serde_json::Value::String(l.clone())));
        }
        serde_json::Value::Object(o) => {
            for l in labels {
                o.insert(l.clone(), serde_json::Value::Bool(true));
            }
        }
        other => {
            *other = serde_json::Value::Array(
                labels
                    .iter()
                    .map(|l| serde_json::Value::String(l.clone()))
                    .collect(),
            );
        }
    }
    serde_json::Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> Route {
        route(&method, path)
    }

    #[test]
    fn the_allowed_calls_on_containers() {
        for (m, action, access) in [
            (Method::GET, "json", Access::Read),
            (Method::GET, "logs", Access::Read),
            (Method::GET, "stats", Access::Read),
            (Method::GET, "top", Access::Read),
            (Method::POST, "start", Access::Change),
            (Method::POST, "stop", Access::Change),
            (Method::POST, "restart", Access::Change),
            (Method::POST, "kill", Access::Change),
            (Method::POST, "pause", Access::Change),
            (Method::POST, "unpause", Access::Change),
            (Method::POST, "exec", Access::Exec),
        ] {
            assert_eq!(
                r(m.clone(), &format!("/v1.41/containers/redis/{action}")),
                Route::Container {
                    reference: "redis".into(),
                    access,
                    rest: format!("/{action}"),
                },
                "{m} {action}"
            );
        }
        assert_eq!(r(Method::GET, "/v1.41/containers/json"), Route::List);
        assert_eq!(r(Method::GET, "/v1.41/events"), Route::List);
        assert_eq!(r(Method::HEAD, "/_ping"), Route::Plain);
        assert_eq!(r(Method::GET, "/v1.43/version"), Route::Plain);
        assert_eq!(
            r(Method::POST, "/v1.41/exec/abc/start"),
            Route::Exec {
                id: "abc".into(),
                rest: "/start".into()
            }
        );
    }

    #[test]
    fn everything_else_is_refused_with_its_reason() {
        for (m, path, why) in [
            (
                Method::POST,
                "/v1.41/containers/create",
                "creating containers",
            ),
            (
                Method::DELETE,
                "/v1.41/containers/redis",
                "removing containers",
            ),
            (Method::POST, "/containers/prune", "removing containers"),
            (Method::POST, "/v1.41/containers/redis/attach", "`attach`"),
            (Method::POST, "/v1.41/containers/redis/update", "`update`"),
            (Method::PUT, "/v1.41/containers/redis/archive", "`archive`"),
            (Method::GET, "/v1.41/containers/redis/export", "`export`"),
            (Method::GET, "/v1.41/volumes", "volumes"),
            (Method::DELETE, "/v1.41/volumes/data", "volumes"),
            (Method::POST, "/v1.41/networks/create", "networks"),
            (Method::POST, "/v1.41/networks/x/disconnect", "networks"),
            (Method::POST, "/v1.41/images/create", "images"),
            (Method::POST, "/build", "images"),
            (Method::GET, "/v1.41/info", "system calls"),
            (Method::POST, "/v1.41/system/prune", "system calls"),
            (Method::GET, "/v1.41/system/df", "system calls"),
            (Method::POST, "/events", "system calls"),
            (Method::POST, "/swarm/init", "not the agent's"),
            (
                Method::POST,
                "/v1.41/containers/redis/start/extra",
                "not among",
            ),
            (Method::GET, "/v1.41/containers/redis/start", "`start`"),
        ] {
            match r(m.clone(), path) {
                Route::Refuse(msg) => {
                    assert!(msg.contains(why), "{m} {path}: {msg}");
                    assert!(msg.contains("may use only"), "{msg}");
                }
                other => panic!("{m} {path} was allowed: {other:?}"),
            }
        }
    }

    #[test]
    fn old_api_versions_are_refused() {
        assert!(
            matches!(r(Method::POST, "/v1.23/containers/redis/start"), Route::Refuse(m) if m.contains("before 1.24"))
        );
        assert!(matches!(
            r(Method::POST, "/v1.24/containers/redis/start"),
            Route::Container { .. }
        ));
        assert_eq!(version("/v1.41/containers/json"), Some((1, 41)));
        assert_eq!(version("/containers/json"), None);
    }

    #[test]
    fn version_prefixes_come_off_but_nothing_else() {
        assert_eq!(unversioned("/v1.41/containers/json"), "/containers/json");
        assert_eq!(unversioned("/containers/json"), "/containers/json");
        assert_eq!(unversioned("/volumes/v1/x"), "/volumes/v1/x");
        assert_eq!(unversioned("/vx/containers"), "/vx/containers");
    }

    #[test]
    fn listings_carry_the_instance_labels_whatever_the_client_asked() {
        let ours = vec![
            "operator.instance=3".to_string(),
            "operator.owner=ab".into(),
        ];
        let v: serde_json::Value = serde_json::from_str(&narrow_filters(None, &ours)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"label": {"operator.instance=3": true, "operator.owner=ab": true}})
        );
        let v: serde_json::Value = serde_json::from_str(&narrow_filters(
            Some(r#"{"label":["app=x"],"status":["running"]}"#),
            &ours,
        ))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"label": ["app=x", "operator.instance=3", "operator.owner=ab"], "status": ["running"]})
        );
        let v: serde_json::Value =
            serde_json::from_str(&narrow_filters(Some(r#"{"label":{"a":true}}"#), &ours)).unwrap();
        assert_eq!(v["label"].as_object().unwrap().len(), 3);
        // Garbage is replaced, not passed on.
        let v: serde_json::Value =
            serde_json::from_str(&narrow_filters(Some("not json"), &ours)).unwrap();
        assert_eq!(v["label"].as_object().unwrap().len(), 2);
    }
}
