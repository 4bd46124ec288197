//! The request bodies the proxy lets through, as typed requests with only the fields we
//! allow. The engine decodes JSON with Go's `encoding/json`, which matches an object's keys to
//! its fields without regard to case (with Unicode's simple folding: `Uſer` is `User`) and
//! keeps the last of duplicate keys; a check of the keys as written is therefore no check. So
//! a body is parsed here key by key, each key matched the way Go matches it, unknown and
//! duplicate keys refused, and what goes on to the engine is the body *we* serialize from the
//! typed request, never the client's bytes.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest body read.
pub const MAX_BODY: usize = 64 << 10;

/// `POST /containers/{id}/exec`: what the docker CLI sends, and only that. An exec may not be
/// privileged and runs as the container's own user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecCreate {
    pub cmd: Vec<String>,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub detach: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
    pub detach_keys: String,
    pub env: Vec<String>,
    pub working_dir: String,
    /// Always false: written so that the engine's default is not what we rely on.
    pub privileged: bool,
    /// Always empty: the container's own user.
    pub user: String,
}

/// `POST /exec/{id}/start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecStart {
    pub detach: bool,
    pub tty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u32; 2]>,
}

const EXEC_CREATE_FIELDS: &[&str] = &[
    "Cmd",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "Detach",
    "ConsoleSize",
    "DetachKeys",
    "Env",
    "WorkingDir",
    "Privileged",
    "User",
];

const EXEC_START_FIELDS: &[&str] = &["Detach", "Tty", "ConsoleSize"];

impl ExecCreate {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let mut f = Fields::parse(body, "the exec configuration", EXEC_CREATE_FIELDS)?;
        if f.bool("Privileged")? {
            return Err("a privileged exec is not allowed to the agent".into());
        }
        if !f.string("User")?.is_empty() {
            return Err(
                "an exec as another user is not allowed to the agent: it runs as the container's own"
                    .into(),
            );
        }
        let cmd = f.strings("Cmd")?;
        if cmd.is_empty() {
            return Err("the exec configuration has no `Cmd`".into());
        }
        Ok(Self {
            cmd,
            attach_stdin: f.bool("AttachStdin")?,
            attach_stdout: f.bool("AttachStdout")?,
            attach_stderr: f.bool("AttachStderr")?,
            tty: f.bool("Tty")?,
            detach: f.bool("Detach")?,
            console_size: f.console_size()?,
            detach_keys: f.string("DetachKeys")?,
            env: f.strings("Env")?,
            working_dir: f.string("WorkingDir")?,
            privileged: false,
            user: String::new(),
        })
    }
}

impl ExecStart {
    /// An empty body is an attached start with no terminal, as the engine reads it.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self {
                detach: false,
                tty: false,
                console_size: None,
            });
        }
        let mut f = Fields::parse(body, "the exec start", EXEC_START_FIELDS)?;
        Ok(Self {
            detach: f.bool("Detach")?,
            tty: f.bool("Tty")?,
            console_size: f.console_size()?,
        })
    }
}

/// A container's inspection with the values of its environment hidden (`NAME=<hidden>`): a
/// container's environment is where secrets are usually passed, and the agent reads names,
/// not values.
pub fn hide_env(inspected: &[u8]) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(inspected).ok()?;
    if let Some(env) = v.pointer_mut("/Config/Env").and_then(Value::as_array_mut) {
        for e in env.iter_mut() {
            if let Some(text) = e.as_str() {
                let name = text.split('=').next().unwrap_or(text);
                *e = Value::String(format!("{name}={HIDDEN}"));
            }
        }
    }
    serde_json::to_vec(&v).ok()
}

/// What stands for a hidden value.
pub const HIDDEN: &str = "<hidden by the operator's proxy>";

/// A key as Go's `encoding/json` folds it to find a field: ASCII letters upper-cased, and
/// the two non-ASCII runes whose simple case folding reaches an ASCII letter (`ſ` U+017F to
/// S, the Kelvin sign U+212A to K) mapped to it. Every other non-ASCII rune is kept, so a key
/// holding one matches none of our (ASCII) field names and is refused as unknown: where this
/// table were short, the cost is a refusal, never a field the engine reads and we did not.
pub fn fold(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '\u{017F}' => 'S',
            '\u{212A}' => 'K',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// An object's members in order, duplicates kept (serde_json's map would keep only one).
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The members of a body, each under the field name it matches.
struct Fields {
    what: &'static str,
    by_field: HashMap<&'static str, Value>,
}

impl Fields {
    fn parse(body: &[u8], what: &'static str, allowed: &[&'static str]) -> Result<Self, String> {
        let Members(members) = serde_json::from_slice(body)
            .map_err(|e| format!("{what} is not a JSON object: {e}"))?;
        let mut by_field = HashMap::new();
        for (key, value) in members {
            let folded = fold(&key);
            let Some(field) = allowed.iter().copied().find(|f| fold(f) == folded) else {
                return Err(format!(
                    "{what} has the key {key:?}, which the agent may not set (allowed: {})",
                    allowed.join(", ")
                ));
            };
            if by_field.insert(field, value).is_some() {
                return Err(format!(
                    "{what} sets `{field}` more than once (as {key:?} among others)"
                ));
            }
        }
        Ok(Self { what, by_field })
    }

    /// The field's value; absent and `null` both mean the engine's default.
    fn take(&mut self, field: &str) -> Option<Value> {
        self.by_field.remove(field).filter(|v| !v.is_null())
    }

    fn wrong(&self, field: &str, wanted: &str, got: &Value) -> String {
        format!("{}: `{field}` must be {wanted}, not {got}", self.what)
    }

    fn bool(&mut self, field: &str) -> Result<bool, String> {
        match self.take(field) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(v) => Err(self.wrong(field, "true or false", &v)),
        }
    }

    fn string(&mut self, field: &str) -> Result<String, String> {
        match self.take(field) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s),
            Some(v) => Err(self.wrong(field, "a string", &v)),
        }
    }

    fn strings(&mut self, field: &str) -> Result<Vec<String>, String> {
        match self.take(field) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    v => Err(self.wrong(field, "a list of strings", &v)),
                })
                .collect(),
            Some(v) => Err(self.wrong(field, "a list of strings", &v)),
        }
    }

    fn console_size(&mut self) -> Result<Option<[u32; 2]>, String> {
        let Some(v) = self.take("ConsoleSize") else {
            return Ok(None);
        };
        let size = v.as_array().filter(|a| a.len() == 2).and_then(|a| {
            let h = u32::try_from(a[0].as_u64()?).ok()?;
            let w = u32::try_from(a[1].as_u64()?).ok()?;
            Some([h, w])
        });
        size.map(Some)
            .ok_or_else(|| self.wrong("ConsoleSize", "[height, width]", &v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: &str) -> String {
        ExecCreate::parse(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn what_the_docker_cli_sends_is_taken_and_written_back_canonically() {
        let cli = r#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["redis-cli","PING"]}"#;
        let e = ExecCreate::parse(cli.as_bytes()).unwrap();
        assert_eq!(e.cmd, ["redis-cli", "PING"]);
        assert!(e.attach_stdout && e.attach_stderr && !e.attach_stdin);
        let back: Value = serde_json::to_value(&e).unwrap();
        assert_eq!(back["Privileged"], false);
        assert_eq!(back["User"], "");
        assert!(back.get("ConsoleSize").is_none());
        let tty = ExecCreate::parse(br#"{"Cmd":["sh"],"Tty":true,"ConsoleSize":[24,80]}"#).unwrap();
        assert_eq!(tty.console_size, Some([24, 80]));
        assert_eq!(
            ExecStart::parse(br#"{"Detach":false,"Tty":true,"ConsoleSize":[24,80]}"#).unwrap(),
            ExecStart {
                detach: false,
                tty: true,
                console_size: Some([24, 80])
            }
        );
        assert!(!ExecStart::parse(b"").unwrap().tty);
    }

    #[test]
    fn every_spelling_of_a_forbidden_field_is_refused() {
        for body in [
            r#"{"Cmd":["id"],"Privileged":true}"#,
            r#"{"Cmd":["id"],"privileged":true}"#,
            r#"{"Cmd":["id"],"PRIVILEGED":true}"#,
            r#"{"Cmd":["id"],"pRiViLeGeD":true}"#,
            r#"{"Cmd":["id"],"Privileged":false,"privileged":true}"#,
            r#"{"Cmd":["id"],"\u0050rivileged":true}"#,
        ] {
            let why = refused(body);
            assert!(
                why.contains("privileged") || why.contains("more than once"),
                "{body}: {why}"
            );
        }
        for body in [
            r#"{"Cmd":["id"],"User":"root"}"#,
            r#"{"Cmd":["id"],"user":"root"}"#,
            r#"{"Cmd":["id"],"uSeR":"0"}"#,
            r#"{"Cmd":["id"],"Uſer":"0"}"#,
            r#"{"Cmd":["id"],"U\u017fer":"0"}"#,
            r#"{"Cmd":["id"],"User":"","USER":"root"}"#,
        ] {
            let why = refused(body);
            assert!(
                why.contains("another user") || why.contains("more than once"),
                "{body}: {why}"
            );
        }
    }

    #[test]
    fn unknown_keys_wrong_types_and_garbage_are_refused() {
        for (body, why) in [
            (
                r#"{"Cmd":["id"],"HostConfig":{"Privileged":true}}"#,
                "may not set",
            ),
            (r#"{"Cmd":["id"],"Us\u00e9r":"root"}"#, "may not set"),
            (r#"{"Cmd":["id"],"Privileged":"true"}"#, "true or false"),
            (r#"{"Cmd":["id"],"Privileged":1}"#, "true or false"),
            (r#"{"Cmd":"id"}"#, "list of strings"),
            (r#"{"Cmd":[]}"#, "no `Cmd`"),
            (r#"{"Tty":true}"#, "no `Cmd`"),
            (r#"{"Cmd":["id"],"ConsoleSize":[1]}"#, "[height, width]"),
            (r#"["Cmd"]"#, "not a JSON object"),
            ("not json", "not a JSON object"),
            (r#"{"Cmd":["id"],"User":"\u0000"}"#, "another user"),
            ("{\"Cmd\":[\"id\"],\"User\":\"\u{0}\"}", "not a JSON object"),
        ] {
            let got = refused(body);
            assert!(got.contains(why), "{body}: {got}");
        }
        assert!(ExecCreate::parse(b"{\"Cmd\":[\"id\"],\"User\":\"\xff\"}").is_err());
        assert!(ExecStart::parse(br#"{"Detach":false,"Privileged":true}"#).is_err());
    }

    #[test]
    fn an_inspection_keeps_the_environments_names_not_its_values() {
        let out =
            hide_env(br#"{"Id":"x","Config":{"Env":["A=secret","B=","PATH=/bin"],"Image":"i"}}"#)
                .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Config"]["Env"][0], format!("A={HIDDEN}"));
        assert_eq!(v["Config"]["Env"][2], format!("PATH={HIDDEN}"));
        assert_eq!(v["Config"]["Image"], "i");
        assert!(!String::from_utf8(out).unwrap().contains("secret"));
        assert!(hide_env(b"not json").is_none());
    }

    #[test]
    fn keys_fold_as_go_folds_them() {
        assert_eq!(fold("uSeR"), "USER");
        assert_eq!(fold("U\u{017F}er"), "USER");
        assert_eq!(fold("\u{212A}ey"), "KEY");
        assert_ne!(fold("Us\u{00E9}r"), "USER");
    }
}
