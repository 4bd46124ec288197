//! One TOML file with defaults good enough that none is needed.
//!
//! Precedence: flags over environment (`OPERATOR_*`, handled by the CLI) over this file over
//! the defaults below. An invalid file is reported with its path, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Everything Operator can be told. It stands on the ground floor: what only a subject, the
/// agent or chaos knows is checked where it is known (each subject parses its own section,
/// [`Config::section`]; the CLI checks tool and fault names when it loads the file).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// State directory; `--state-dir` / `OPERATOR_STATE_DIR` win over it.
    pub state_dir: Option<PathBuf>,
    /// Ticket DB; `--db` / `OPERATOR_DB` win over it. Default `<state dir>/operator.db`.
    pub db: Option<PathBuf>,
    pub runtime: RuntimeConfig,
    pub monitor: MonitorConfig,
    pub tickets: TicketsConfig,
    pub chaos: ChaosConfig,
    pub agent: AgentConfig,
    /// Each subject's own section (`[ratelimiter]`, `[etcd]`), as written: the subject
    /// parses and checks it. A key here that names no subject is refused when the file is
    /// loaded.
    #[serde(flatten)]
    pub sections: BTreeMap<String, toml::Value>,
    /// The file it was read from and its text, so that a later check names the line.
    #[serde(skip)]
    source: Option<(PathBuf, String)>,
}

/// A subject's section of the config, parsed and checked by the subject.
pub trait Section: DeserializeOwned + Serialize + Default {
    /// Its table's name, the subject's.
    const NAME: &'static str;
    /// Checks that types cannot express: the offending key (whole and dotted) and why.
    fn validate(&self) -> Result<(), (String, String)> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    #[default]
    Local,
    Docker,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Docker => "docker",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "local" => Some(Self::Local),
            "docker" => Some(Self::Docker),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    pub kind: RuntimeKind,
    pub local: LocalRuntimeConfig,
    pub docker: DockerRuntimeConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerRuntimeConfig {
    /// The engine's address (`unix:///var/run/docker.sock`, `tcp://…`). Unset: `DOCKER_HOST`,
    /// else the local socket.
    pub host: Option<String>,
    /// The agent's sandbox, the fault proxy and the fault helpers.
    pub toolbox_image: String,
    /// Size of each data volume (a tmpfs: a fault can fill it, never the host's disk).
    pub volume_size: String,
    /// Size of each data volume that must outlive a stop (an etcd member's): an ext4 image
    /// on a loop device, sparse, so that a fault fills it and never the engine's disk. Where
    /// that cannot be made (not root, a remote engine, no `losetup`), such a volume is on the
    /// engine's disk, unbounded, and never filled.
    pub durable_volume_size: String,
    /// How long `up` and `node start` wait for a container to become healthy.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// How long `stop` waits after SIGTERM before SIGKILL.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// Follow the engine's event stream so a dead container is seen at once.
    pub events: bool,
    /// How the operator reaches the nodes: `loopback` (the ports published on 127.0.0.1) or
    /// `network` (by name, for an operator that runs in a container on the cluster's network).
    pub reach: Reach,
}

/// A volume size as the engine's tmpfs takes it (`64m`, `1g`, `512k`, or bytes), in bytes.
pub fn size_in_bytes(size: &str) -> Option<u64> {
    let (digits, unit) = match size.as_bytes().last()? {
        b'k' => (&size[..size.len() - 1], 1 << 10),
        b'm' => (&size[..size.len() - 1], 1 << 20),
        b'g' => (&size[..size.len() - 1], 1 << 30),
        _ => (size, 1),
    };
    let n: u64 = digits.parse().ok().filter(|n| *n > 0)?;
    n.checked_mul(unit)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    #[default]
    Loopback,
    Network,
}

impl Default for DockerRuntimeConfig {
    fn default() -> Self {
        Self {
            host: None,
            toolbox_image: "operator/toolbox".into(),
            volume_size: "64m".into(),
            durable_volume_size: "512m".into(),
            startup_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(5),
            events: true,
            reach: Reach::Loopback,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalRuntimeConfig {
    /// The `operator` program run as the fault proxy; by default the running one.
    pub operator_bin: Option<PathBuf>,
    /// Fixed ports: port i of instance n is `base_port + 32*n + i`. Unset: free ports are
    /// picked.
    pub base_port: Option<u16>,
    /// How long `up` and `node start` wait for a node to become healthy.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// How long `stop` waits after SIGTERM before SIGKILL.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// Watch each node's process (a pidfd) so the monitor looks the moment one dies, instead
    /// of at its next tick.
    pub events: bool,
}

impl Default for LocalRuntimeConfig {
    fn default() -> Self {
        Self {
            operator_bin: None,
            base_port: None,
            startup_timeout: Duration::from_secs(15),
            stop_timeout: Duration::from_secs(5),
            events: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// The subject watched when none is named.
    pub subject: String,
    /// Time between observations; at least 100ms.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            // Empty: the registry's first subject, as the CLI reads it.
            subject: String::new(),
            interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// A violation that comes back within this time of its ticket's resolution reopens that
    /// ticket (and counts an occurrence) instead of opening a new one.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
    /// Related tickets (a member down, the quorum it took with it) that open within this
    /// time of an incident's last ticket join that incident; while an agent works an
    /// incident, related tickets join it however late.
    #[serde(with = "humantime_serde")]
    pub correlation_window: Duration,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self {
            flap_window: Duration::from_secs(300),
            correlation_window: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosConfig {
    /// Default durations per fault, after which it heals itself. A fault missing here does not
    /// heal itself unless `--duration` is given.
    #[serde(with = "durations")]
    pub durations: BTreeMap<String, Duration>,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            durations: [
                ("pause", 60),
                ("latency", 60),
                ("network_partition", 60),
                ("bandwidth", 60),
                ("disk_pressure", 120),
            ]
            .into_iter()
            .map(|(k, s)| (k.to_string(), Duration::from_secs(s)))
            .collect(),
        }
    }
}

mod durations {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.iter()
            .map(|(k, v)| (k.clone(), humantime::format_duration(*v).to_string()))
            .collect::<BTreeMap<_, _>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                humantime::parse_duration(&v)
                    .map(|d| (k, d))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

/// How much the agent may do without a person (the policy gates each command by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Run read-only and mutating commands; ask for destructive ones.
    #[default]
    Auto,
    /// Ask for every command that is not read-only.
    Approve,
    /// Run only read-only commands; tell the model what it would have been allowed.
    Observe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Approve => "approve",
            Self::Observe => "observe",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Auto, Self::Approve, Self::Observe]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// How a Claude model should think: `adaptive` (it decides), `disabled`, or the model's
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Thinking {
    Adaptive,
    Disabled,
    Default,
}

/// Anthropic's API, unless `agent.anthropic.base_url` or `ANTHROPIC_BASE_URL` says otherwise.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

/// Which model backend the agent talks to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// By the model's name: `claude-*` is Anthropic, another name an OpenAI-compatible
    /// server; with no model, Claude when `ANTHROPIC_API_KEY` is set, else the runbook.
    #[default]
    Auto,
    Anthropic,
    Openai,
    Runbook,
}

/// The agent: its backend, mode, budgets and command rules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    pub backend: Backend,
    /// The model; empty for the backend's default.
    pub model: String,
    /// auto, approve or observe.
    pub mode: Mode,
    /// How often an idle agent looks for an open ticket.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long the agent waits for the monitor to confirm a fix.
    #[serde(with = "humantime_serde")]
    pub verify_window: Duration,
    /// How long a claimed ticket stays the agent's without a sign of life: the running
    /// session renews it every third of that, so after it a crashed agent's ticket is claimed
    /// again. At least 1s.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Tools offered to the model.
    pub tools: Vec<String>,
    pub budgets: Budgets,
    pub anthropic: AnthropicConfig,
    pub openai: OpenAiConfig,
    pub policy: PolicyConfig,
    /// Folder of runbooks replacing the built-in ones (`<subject>.yaml`).
    pub runbooks_dir: Option<PathBuf>,
    /// Run commands in a sandbox: bubblewrap locally, the toolbox on Docker. False for an
    /// agent that itself runs in such a container (`compose/agent.yml`), or to run commands
    /// with the operator's own rights, knowingly.
    pub sandbox: bool,
    /// bubblewrap's program, where it is not `/usr/bin/bwrap` or `/bin/bwrap`.
    pub bwrap: Option<PathBuf>,
    /// Prices in USD per million tokens, by model, for cost estimates.
    pub prices: BTreeMap<String, Price>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Auto,
            model: String::new(),
            mode: Mode::Auto,
            poll_interval: Duration::from_millis(200),
            verify_window: Duration::from_secs(10),
            lease: Duration::from_secs(15),
            tools: ["shell", "observe", "resolve", "escalate"]
                .map(String::from)
                .to_vec(),
            budgets: Budgets::default(),
            anthropic: AnthropicConfig::default(),
            openai: OpenAiConfig::default(),
            policy: PolicyConfig::default(),
            runbooks_dir: None,
            sandbox: true,
            bwrap: None,
            prices: BTreeMap::new(),
        }
    }
}

/// What one session may spend before the ticket is escalated.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Budgets {
    pub turns: u32,
    #[serde(with = "humantime_serde")]
    pub wall_clock: Duration,
    /// Input plus output tokens over the whole session.
    pub tokens: u64,
    /// One command's limit; the whole process group is killed after it.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Bytes of a command's output kept at its head and at its tail.
    pub output_bytes: usize,
    /// Sessions per ticket before it is escalated.
    pub attempts: u32,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            turns: 20,
            wall_clock: Duration::from_secs(300),
            tokens: 400_000,
            command_timeout: Duration::from_secs(60),
            output_bytes: 8192,
            attempts: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnthropicConfig {
    /// `ANTHROPIC_BASE_URL` wins over it.
    pub base_url: String,
    pub max_tokens: u32,
    /// adaptive, disabled, or default (the model's own).
    pub thinking: Thinking,
    /// low, medium, high, xhigh, max; empty for the API's default.
    pub effort: String,
    /// One turn, streaming included, must finish within this.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_retries: u32,
}

impl Default for AnthropicConfig {
    fn default() -> Self {
        Self {
            base_url: ANTHROPIC_BASE_URL.into(),
            max_tokens: 8192,
            thinking: Thinking::Adaptive,
            effort: "medium".into(),
            timeout: Duration::from_secs(180),
            max_retries: 4,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiConfig {
    /// E.g. Ollama at `http://127.0.0.1:11434/v1`; `OPENAI_BASE_URL` wins over it.
    pub base_url: String,
    /// The model used when `agent.model` is empty.
    pub model: String,
    /// The environment variable holding the key, if the server wants one.
    pub api_key_env: String,
    pub max_tokens: u32,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_retries: u32,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: "llama3.1".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            max_tokens: 4096,
            timeout: Duration::from_secs(300),
            max_retries: 2,
        }
    }
}

/// Command prefixes (words, e.g. `operator node restart`) that skip the person, or are
/// always denied, on top of the built-in policy.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    #[serde(default)]
    pub cache_write: f64,
    #[serde(default)]
    pub cache_read: f64,
}

/// What went wrong reading a config file, with where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, line {line}, key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("config file {path}, line {line}: {message}: `{text}`")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
        /// The offending line.
        text: String,
    },
}

impl Config {
    /// The file used when neither `--config` nor `OPERATOR_CONFIG` names one; it may be absent.
    pub fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("operator").join("config.toml"))
    }

    /// Reads `explicit` (which must exist), else the default file if it exists, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        match explicit {
            Some(path) => Self::from_file(path),
            None => match Self::default_path().filter(|p| p.exists()) {
                Some(path) => Self::from_file(&path),
                None => Ok(Self::default()),
            },
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let syntax = |e: toml::de::Error| {
            let line = e.span().map_or(1, |s| line_at(text, s.start));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                message: e.message().trim().to_string(),
                text: text
                    .lines()
                    .nth(line - 1)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            }
        };
        let de = toml::Deserializer::parse(text).map_err(syntax)?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|s| line_at(text, s.start))
                .or_else(|| line_of_key(text, &key))
                .unwrap_or(1);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                key,
                message: inner.message().to_string(),
            }
        })?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of_key(text, &key).unwrap_or(1),
                key,
                message,
            })?;
        config.source = Some((path.to_path_buf(), text.to_string()));
        Ok(config)
    }

    /// An error about `key` (dotted, whole), naming the file and the line that sets it.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let (path, line) = match &self.source {
            Some((path, text)) => (path.clone(), line_of_key(text, key).unwrap_or(1)),
            None => (PathBuf::from("(defaults)"), 1),
        };
        ConfigError::Invalid {
            path,
            line,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// A subject's section: as the file writes it (errors name the file, line and key), else
    /// its defaults; checked by [`Section::validate`].
    pub fn section<T: Section>(&self) -> Result<T, ConfigError> {
        let Some(value) = self.sections.get(T::NAME) else {
            return Ok(T::default());
        };
        let section: T = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let mut key = format!("{}.{}", T::NAME, e.path());
            let message = e.into_inner().to_string();
            if let Some(field) = message
                .strip_prefix("unknown field `")
                .and_then(|m| m.split('`').next())
            {
                key = format!("{}.{field}", key.trim_end_matches(".."));
            }
            self.invalid(key.trim_end_matches('.'), message)
        })?;
        section
            .validate()
            .map_err(|(key, message)| self.invalid(&key, message))?;
        Ok(section)
    }

    /// Sets a subject's section, for a config made in code (tests, benchmarks).
    pub fn set_section<T: Section>(&mut self, section: &T) -> Result<(), String> {
        let value = toml::Value::try_from(section).map_err(|e| e.to_string())?;
        self.sections.insert(T::NAME.to_string(), value);
        Ok(())
    }
    /// Checks that cannot be expressed in types. Returns the offending key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        if self.monitor.interval < Duration::from_millis(100) {
            return bad(
                "monitor.interval",
                format!(
                    "{} is too short: the monitor observes at most every 100ms",
                    humantime::format_duration(self.monitor.interval)
                ),
            );
        }
        let d = &self.runtime.docker;
        for (key, size) in [
            ("runtime.docker.volume_size", &d.volume_size),
            ("runtime.docker.durable_volume_size", &d.durable_volume_size),
        ] {
            if size_in_bytes(size).is_none() {
                return bad(key, format!("`{size}` is not a size; write e.g. 64m or 1g"));
            }
        }
        let a = &self.agent;
        if a.budgets.turns == 0 || a.budgets.attempts == 0 {
            return bad(
                "agent.budgets",
                "turns and attempts must be at least 1".into(),
            );
        }
        if a.budgets.output_bytes < 256 {
            return bad(
                "agent.budgets.output_bytes",
                "keep at least 256 bytes".into(),
            );
        }
        Ok(())
    }
}

/// Adds `prefix` to `agent.policy.allow` in the config file at `path` (created if absent),
/// keeping the file's comments and layout: where "always allow this prefix" is kept.
pub fn remember_allowed(path: &Path, prefix: &str) -> Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let edited = with_allowed(&text, prefix).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, edited).map_err(|e| format!("{}: {e}", path.display()))
}

/// `text` (a config file) with `prefix` in `agent.policy.allow`, all else as it was.
pub fn with_allowed(text: &str, prefix: &str) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let agent = doc
        .entry("agent")
        .or_insert(toml_edit::table())
        .as_table_mut()
        .ok_or("`agent` is not a table")?;
    let policy = agent
        .entry("policy")
        .or_insert(toml_edit::table())
        .as_table_mut()
        .ok_or("`agent.policy` is not a table")?;
    let allow = policy
        .entry("allow")
        .or_insert(toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or("`agent.policy.allow` is not a list")?;
    if !allow.iter().any(|v| v.as_str() == Some(prefix)) {
        allow.push(prefix);
    }
    Ok(doc.to_string())
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Finds the line that sets a dotted key such as `ratelimiter.thresholds.drift_tolerance`,
/// following `[table]` headers. Good enough for the files people write by hand.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let mut table = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = header.trim().to_string();
            if table == dotted {
                return Some(i + 1);
            }
            continue;
        }
        if let Some((k, _)) = line.split_once('=') {
            let k = k.trim().trim_matches('"');
            let full = if table.is_empty() {
                k.to_string()
            } else {
                format!("{table}.{k}")
            };
            if full == dotted || dotted.starts_with(&format!("{full}.")) {
                return Some(i + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("operator.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.monitor.interval, Duration::from_secs(1));
        assert!(c.sections.is_empty());
        assert_eq!(c.tickets.flap_window, Duration::from_secs(300));
    }

    #[test]
    fn the_example_file_is_valid_and_matches_the_defaults() {
        let text = include_str!("../operator.example.toml");
        let mut c = parse(text).unwrap();
        // The subjects' sections are theirs to check (subjects::registry's tests).
        c.sections.clear();
        let d = Config::default();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::to_value(&d).unwrap(),
            "operator.example.toml should document the defaults"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[monitor]\ninterval = \"2s\"\nintervall = \"3s\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("operator.toml"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("intervall"), "{msg}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = parse("[monitor]\ninterval = \n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
        let err = parse("a = 1\nstate_dir = \"x\"\nstate_dir = \"y\"\n").unwrap_err();
        assert!(
            err.to_string().contains("line 3") && err.to_string().contains("state_dir = \"y\""),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_values_are_refused_with_their_line() {
        let err = parse("[monitor]\n\ninterval = \"10ms\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("line 3") && msg.contains("monitor.interval"),
            "{msg}"
        );
    }

    #[test]
    fn allowed_prefixes_are_kept_in_the_file_with_its_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "# mine\n[monitor]\ninterval = \"2s\"\n").unwrap();
        remember_allowed(&p, "operator node restart").unwrap();
        remember_allowed(&p, "operator node restart").unwrap();
        remember_allowed(&p, "redis-cli -p 6379 DEL").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("# mine"), "{text}");
        let c = Config::from_file(&p).unwrap();
        assert_eq!(
            c.agent.policy.allow,
            ["operator node restart", "redis-cli -p 6379 DEL"]
        );
        assert_eq!(c.monitor.interval, Duration::from_secs(2));
        let fresh = dir.path().join("new").join("c.toml");
        remember_allowed(&fresh, "x y").unwrap();
        assert_eq!(
            Config::from_file(&fresh).unwrap().agent.policy.allow,
            ["x y"]
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/operator.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/operator.toml"));
    }
}
