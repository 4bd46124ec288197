//! Secrets out of everything the agent stores or shows: the API keys this process knows,
//! and whatever looks like a key, token, password or private key.

use std::sync::LazyLock;

use regex::Regex;

const MARK: &str = "[REDACTED]";

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // Anthropic and OpenAI-style keys.
        (r"sk-ant-[A-Za-z0-9_\-]{8,}", MARK),
        (r"\bsk-[A-Za-z0-9_\-]{20,}", MARK),
        // AWS access key ids and GitHub tokens.
        (r"\bAKIA[0-9A-Z]{16}\b", MARK),
        (r"\bgh[pousr]_[A-Za-z0-9]{20,}\b", MARK),
        // `Authorization: Bearer …` and friends.
        (r"(?i)(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*", "${1}[REDACTED]"),
        // key=value and "key": "value" where the key names a secret.
        (
            r#"(?i)((?:api[_-]?key|secret|token|password|passwd|pwd|x-api-key|auth)["']?\s*[:=]\s*["']?)[^\s"',}]{4,}"#,
            "${1}[REDACTED]",
        ),
        // redis-cli -a PASSWORD
        (r"(\bredis-cli\b[^\n]*?\s-a\s+)\S+", "${1}[REDACTED]"),
        // PEM private keys.
        (
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
            MARK,
        ),
    ]
    .into_iter()
    .filter_map(|(p, r)| Regex::new(p).ok().map(|re| (re, r)))
    .collect()
});

/// Values of these variables are secrets wherever they turn up.
const SECRET_VARIABLES: &[&str] = &["ANTHROPIC_API_KEY", "OPENAI_API_KEY"];

/// Redacts known secret values and secret-looking text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// Knows the secret values in this process's environment.
    pub fn from_env() -> Self {
        let mut r = Self::default();
        for v in SECRET_VARIABLES {
            if let Ok(val) = std::env::var(v) {
                r.add(&val);
            }
        }
        r
    }

    pub fn add(&mut self, secret: &str) {
        let s = secret.trim();
        // Very short values would redact ordinary words.
        if s.len() >= 8 && !self.values.iter().any(|v| v == s) {
            self.values.push(s.to_string());
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MARK);
            }
        }
        for (re, with) in PATTERNS.iter() {
            if re.is_match(&out) {
                out = re.replace_all(&out, *with).into_owned();
            }
        }
        out
    }

    pub fn redact_json(&self, v: &serde_json::Value) -> serde_json::Value {
        match serde_json::from_str(&self.redact(&v.to_string())) {
            Ok(v) => v,
            Err(_) => serde_json::Value::String(self.redact(&v.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_patterns_are_redacted() {
        let mut r = Redactor::default();
        r.add("hunter2hunter2");
        let cases = [
            (
                "the key is sk-ant-api03-abcdefghijklmnop",
                "the key is [REDACTED]",
            ),
            (
                "Authorization: Bearer abc.def.ghijklmn",
                "Authorization: Bearer [REDACTED]",
            ),
            ("password=hunter2hunter2 done", "password=[REDACTED] done"),
            (
                r#"{"api_key": "abcd1234efgh"}"#,
                r#"{"api_key": "[REDACTED]"}"#,
            ),
            (
                "redis-cli -p 6379 -a s3cretpw PING",
                "redis-cli -p 6379 -a [REDACTED] PING",
            ),
            ("AKIAABCDEFGHIJKLMNOP", "[REDACTED]"),
            ("my pass is hunter2hunter2", "my pass is [REDACTED]"),
            ("nothing to hide here", "nothing to hide here"),
        ];
        for (input, want) in cases {
            assert_eq!(r.redact(input), want, "{input}");
        }
        let pem = "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\ny";
        assert_eq!(r.redact(pem), "x\n[REDACTED]\ny");
    }

    #[test]
    fn json_stays_json() {
        let r = Redactor::default();
        let v =
            serde_json::json!({ "command": "curl -H 'x-api-key: sk-ant-abcdefghijkl' http://x" });
        let out = r.redact_json(&v);
        assert!(out["command"].as_str().unwrap().contains("[REDACTED]"));
        assert!(!out.to_string().contains("abcdefghijkl"));
    }
}
