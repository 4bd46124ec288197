//! Campaign files: which subjects, which faults with which parameters, how many trials, which
//! agents, and the seed the whole plan is drawn from. A campaign is validated completely
//! (every subject, fault, parameter and variant) before any trial starts, and its plan is a
//! pure function of the file: two campaigns with one seed meet the same problems in the same
//! order, trial by trial.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::agent::variant::Variant;
use crate::chaos::{Fault, FaultKind};
use crate::config::{AgentConfig, RuntimeKind};
use crate::store::eval::NewTrial;
use crate::subjects;

/// The variant name of the agent `operator agent` would run.
pub const DEFAULT_VARIANT: &str = "default";
/// The variant name recorded for trials that run without an agent.
pub const NO_AGENT: &str = "none";

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("campaign file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("campaign file {path}, line {line}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// The longest wait for the steady-state gate.
    #[serde(with = "humantime_serde")]
    pub healthy: Duration,
    /// The longest wait, from injection, for the monitor's first ticket.
    #[serde(with = "humantime_serde")]
    pub detect: Duration,
    /// The longest wait, from injection, for every ticket to be resolved and to hold.
    #[serde(with = "humantime_serde")]
    pub resolve: Duration,
    /// How long the gate's check must hold after the last ticket resolved.
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
    /// The resolve timeout of baseline trials (no agent), when shorter: a subject that heals
    /// itself does so soon.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub baseline_resolve: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            healthy: Duration::from_secs(30),
            detect: Duration::from_secs(30),
            resolve: Duration::from_secs(300),
            hold: Duration::from_secs(5),
            baseline_resolve: None,
        }
    }
}

/// The monitor each slot runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSettings {
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Also observe at once when the runtime reports a node's death or pause.
    pub events: bool,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            events: true,
        }
    }
}

/// A parameter's value, or a list of values one is drawn from for each trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Choice {
    Many(Vec<Value>),
    One(Value),
}

impl Choice {
    fn options(&self) -> Vec<Value> {
        match self {
            Self::Many(v) => v.clone(),
            Self::One(v) => vec![v.clone()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChaosEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    params: std::collections::BTreeMap<String, Choice>,
    /// A fixed target; otherwise each trial's is drawn from the seed.
    #[serde(default)]
    target: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignFile {
    name: String,
    #[serde(default)]
    description: Option<String>,
    subjects: Vec<String>,
    #[serde(default)]
    chaos_types: Vec<ChaosEntry>,
    #[serde(default = "one")]
    trials_per_combination: u32,
    #[serde(default = "one")]
    parallel: u32,
    #[serde(default)]
    cooldown_seconds: f64,
    #[serde(default)]
    include_baseline: bool,
    #[serde(default)]
    include_control: bool,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    variants: Option<Vec<String>>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    timeouts: Timeouts,
    #[serde(default)]
    runtime: Option<String>,
    #[serde(default)]
    monitor: MonitorSettings,
}

fn one() -> u32 {
    1
}

/// One fault of the campaign, with the values each parameter may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultChoice {
    pub kind: FaultKind,
    pub params: std::collections::BTreeMap<String, Vec<Value>>,
    pub target: Option<String>,
}

/// An agent a campaign runs: the default one, or a variant file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantRef {
    pub name: String,
    /// The file, resolved against the campaign file's folder.
    pub file: Option<PathBuf>,
    /// The file's text, for provenance.
    pub text: Option<String>,
}

impl VariantRef {
    pub fn default_agent() -> Self {
        Self {
            name: DEFAULT_VARIANT.into(),
            file: None,
            text: None,
        }
    }

    /// The variant itself (`None` for the default agent).
    pub fn load(&self) -> Result<Option<Variant>, String> {
        match (&self.file, &self.text) {
            (Some(f), Some(t)) => Variant::parse(t, f).map(Some).map_err(|e| e.to_string()),
            _ => Ok(None),
        }
    }

    /// The agent configuration this variant runs with.
    pub fn agent_config(&self, base: &AgentConfig) -> Result<AgentConfig, String> {
        Ok(match self.load()? {
            Some(v) => v.apply(base),
            None => base.clone(),
        })
    }
}

/// A validated campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Campaign {
    pub name: String,
    pub description: Option<String>,
    /// The file it came from, and its text, for provenance.
    pub file: Option<PathBuf>,
    pub text: String,
    pub subjects: Vec<String>,
    pub faults: Vec<FaultChoice>,
    pub trials_per_combination: u32,
    pub parallel: u32,
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    pub include_baseline: bool,
    pub include_control: bool,
    /// Whether the variants run at all: `eval run --baseline` runs the baseline alone.
    pub include_agents: bool,
    pub variants: Vec<VariantRef>,
    pub seed: u64,
    pub timeouts: Timeouts,
    pub runtime: Option<RuntimeKind>,
    pub monitor: MonitorSettings,
}

/// The most trial slots a campaign may run at once.
pub const MAX_PARALLEL: u32 = 16;

/// The first line (comments aside) where `needle` stands as a word of its own: `pause` is not
/// found inside `pauses`, nor a subject inside another's name.
fn line_at(text: &str, needle: &str) -> Option<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let stands = |l: &str| {
        l.match_indices(needle).any(|(i, _)| {
            let before = l[..i].chars().next_back().is_none_or(|c| !word(c));
            let after = l[i + needle.len()..]
                .chars()
                .next()
                .is_none_or(|c| !word(c));
            before && after
        })
    };
    text.lines()
        .position(|l| stands(l.split('#').next().unwrap_or_default()))
        .map(|i| i + 1)
}

impl Campaign {
    pub fn load(path: &Path) -> Result<Self, CampaignError> {
        let text = std::fs::read_to_string(path).map_err(|source| CampaignError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` names the file in errors and anchors variant files.
    pub fn parse(text: &str, path: &Path) -> Result<Self, CampaignError> {
        let invalid = |line: Option<usize>, key: &str, message: String| CampaignError::Invalid {
            path: path.to_path_buf(),
            line: line.unwrap_or(1),
            key: key.to_string(),
            message,
        };
        let de = serde_norway::Deserializer::from_str(text);
        let raw: CampaignFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.location().map(|l| l.line());
            let message = inner.to_string();
            // The location is in the message too; say it once.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            invalid(line, if key == "." { "(top)" } else { &key }, message)
        })?;
        let at = |needle: &str| line_at(text, needle);
        if raw.name.trim().is_empty() {
            return Err(invalid(at("name:"), "name", "must not be empty".into()));
        }
        if raw.subjects.is_empty() {
            return Err(invalid(
                at("subjects"),
                "subjects",
                format!(
                    "name at least one subject; known subjects: {}",
                    subjects::registry::names().join(", ")
                ),
            ));
        }
        for s in &raw.subjects {
            if !subjects::registry::is_known(s) {
                return Err(invalid(
                    at(s),
                    "subjects",
                    format!(
                        "unknown subject `{s}`; known subjects: {}",
                        subjects::registry::names().join(", ")
                    ),
                ));
            }
        }
        // The campaign's subjects' faults, for messages; a fault is read against every
        // subject's catalogue, so that one of another subject is named as such below.
        let every = subjects::registry::every_subjects_faults();
        let own: Vec<&dyn crate::chaos::SubjectFaults> = every
            .iter()
            .copied()
            .filter(|k| raw.subjects.iter().any(|s| s == k.name()))
            .collect();
        let fault_names = FaultKind::names_for(&own).join(", ");
        if raw.chaos_types.is_empty() && !raw.include_control {
            return Err(invalid(
                at("chaos_types"),
                "chaos_types",
                format!(
                    "name at least one fault (or set include_control); known faults: {fault_names}",
                ),
            ));
        }
        let mut faults = Vec::new();
        for (i, entry) in raw.chaos_types.iter().enumerate() {
            let key = format!("chaos_types[{i}]");
            let kind = every
                .iter()
                .find_map(|k| FaultKind::parse_for(&entry.kind, *k))
                .ok_or_else(|| {
                    invalid(
                        at(&entry.kind),
                        &format!("{key}.type"),
                        format!(
                            "unknown fault `{}`; known faults: {fault_names}",
                            entry.kind
                        ),
                    )
                })?;
            if let Some(owner) = kind.subject() {
                if let Some(other) = raw.subjects.iter().find(|s| s.as_str() != owner) {
                    return Err(invalid(
                        at(&entry.kind),
                        &format!("{key}.type"),
                        format!(
                            "{kind} is a fault of {owner} only, and this campaign also runs {other}; give it a campaign of its own"
                        ),
                    ));
                }
            }
            let mut params = std::collections::BTreeMap::new();
            for (name, choice) in &entry.params {
                let options = choice.options();
                if options.is_empty() {
                    return Err(invalid(
                        at(name),
                        &format!("{key}.params.{name}"),
                        "an empty list: give at least one value".into(),
                    ));
                }
                for v in &options {
                    let one: Map<String, Value> = [(name.clone(), v.clone())].into_iter().collect();
                    Fault::with_params(kind, &one).map_err(|e| {
                        invalid(at(name), &format!("{key}.params.{name}"), e.to_string())
                    })?;
                }
                params.insert(name.clone(), options);
            }
            // A delay range: every low end at most every high end, and not beside a fixed
            // delay (each value alone was checked above).
            if let (Some(lows), Some(highs)) = (params.get("min_ms"), params.get("max_ms")) {
                let both: Vec<Map<String, Value>> = lows
                    .iter()
                    .flat_map(|lo| {
                        highs.iter().map(move |hi| {
                            [
                                ("min_ms".to_string(), lo.clone()),
                                ("max_ms".to_string(), hi.clone()),
                            ]
                            .into_iter()
                            .collect()
                        })
                    })
                    .collect();
                for one in &both {
                    Fault::with_params(kind, one).map_err(|e| {
                        invalid(at("min_ms"), &format!("{key}.params.min_ms"), e.to_string())
                    })?;
                }
            }
            if ["min_ms", "max_ms"].iter().any(|n| params.contains_key(*n))
                && ["delay_ms", "jitter_ms"]
                    .iter()
                    .any(|n| params.contains_key(*n))
            {
                return Err(invalid(
                    at("min_ms"),
                    &format!("{key}.params"),
                    "a range (min_ms, max_ms) is drawn from once per trial; give it or delay_ms and jitter_ms, not both".into(),
                ));
            }
            faults.push(FaultChoice {
                kind,
                params,
                target: entry.target.clone(),
            });
        }
        let positive = |n: u32, key: &str| {
            if n == 0 {
                Err(invalid(at(key), key, "must be at least 1".into()))
            } else {
                Ok(n)
            }
        };
        let trials = positive(raw.trials_per_combination, "trials_per_combination")?;
        let parallel = positive(raw.parallel, "parallel")?;
        if parallel > MAX_PARALLEL {
            return Err(invalid(
                at("parallel"),
                "parallel",
                format!("at most {MAX_PARALLEL} slots run at once"),
            ));
        }
        if !(raw.cooldown_seconds.is_finite() && raw.cooldown_seconds >= 0.0) {
            return Err(invalid(
                at("cooldown_seconds"),
                "cooldown_seconds",
                "must be a number of seconds, 0 or more".into(),
            ));
        }
        let t = raw.timeouts;
        for (name, d) in [
            ("healthy", t.healthy),
            ("detect", t.detect),
            ("resolve", t.resolve),
        ] {
            if d.is_zero() {
                return Err(invalid(
                    at(&format!("{name}:")),
                    &format!("timeouts.{name}"),
                    "must be longer than 0".into(),
                ));
            }
        }
        if t.detect > t.resolve {
            return Err(invalid(
                at("detect:"),
                "timeouts.detect",
                "must not be longer than timeouts.resolve".into(),
            ));
        }
        if raw.monitor.interval < crate::monitor::MIN_INTERVAL {
            return Err(invalid(
                at("interval:"),
                "monitor.interval",
                "the monitor observes at most every 100ms".into(),
            ));
        }
        let runtime = match &raw.runtime {
            None => None,
            Some(r) => Some(RuntimeKind::parse(r).ok_or_else(|| {
                invalid(
                    at("runtime:"),
                    "runtime",
                    format!("unknown runtime `{r}`; use local or docker"),
                )
            })?),
        };
        let names: Vec<String> = match (&raw.variant, &raw.variants) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    at("variants:"),
                    "variants",
                    "give `variant` or `variants`, not both".into(),
                ));
            }
            (Some(v), None) => vec![v.clone()],
            (None, Some(v)) if v.is_empty() => {
                return Err(invalid(
                    at("variants:"),
                    "variants",
                    "name at least one variant (`default` is the usual agent)".into(),
                ));
            }
            (None, Some(v)) => v.clone(),
            (None, None) => vec![DEFAULT_VARIANT.into()],
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut variants = Vec::new();
        let mut seen = BTreeSet::new();
        for n in &names {
            let v = if n == DEFAULT_VARIANT {
                VariantRef::default_agent()
            } else {
                let file = base.join(n);
                let vtext = std::fs::read_to_string(&file).map_err(|e| {
                    invalid(
                        at(n),
                        "variant",
                        format!("variant file {}: {e}", file.display()),
                    )
                })?;
                let parsed = Variant::parse(&vtext, &file)
                    .map_err(|e| invalid(at(n), "variant", e.to_string()))?;
                VariantRef {
                    name: parsed.name,
                    file: Some(file),
                    text: Some(vtext),
                }
            };
            if v.name == NO_AGENT || !seen.insert(v.name.clone()) {
                return Err(invalid(
                    at(n),
                    "variants",
                    format!("two variants are named `{}`; names must differ", v.name),
                ));
            }
            variants.push(v);
        }
        let seed = raw.seed.unwrap_or_else(|| {
            // No seed given: draw one, and keep it with the campaign so it can be rerun.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ u64::from(std::process::id())
        });
        Ok(Self {
            name: raw.name,
            description: raw.description,
            file: Some(path.to_path_buf()),
            text: text.to_string(),
            subjects: raw.subjects,
            faults,
            trials_per_combination: trials,
            parallel,
            cooldown: Duration::from_secs_f64(raw.cooldown_seconds),
            include_baseline: raw.include_baseline,
            include_control: raw.include_control,
            include_agents: true,
            variants,
            seed,
            timeouts: t,
            runtime,
            monitor: raw.monitor,
        })
    }

    /// Every trial of the campaign, in the order they start.
    ///
    /// The problems (subject, fault, its drawn parameters and target) are drawn in a fixed
    /// order from the seed and then shuffled by it; each problem is then met by every variant
    /// in turn, and by the baseline. So variants of one campaign meet the same problems, and
    /// two campaigns with one seed and one fault list meet them in the same order.
    pub fn plan(&self) -> Vec<PlannedTrial> {
        let mut rng = SplitMix64(self.seed);
        let mut problems = Vec::new();
        for subject in &self.subjects {
            for f in &self.faults {
                for _ in 0..self.trials_per_combination {
                    let mut params = Map::new();
                    for (name, options) in &f.params {
                        let i = rng.below(options.len());
                        params.insert(name.clone(), options[i].clone());
                    }
                    if params.contains_key("min_ms") || params.contains_key("max_ms") {
                        Fault::draw_delay(&mut params, rng.next_u64());
                    }
                    let fault = Fault::with_params(f.kind, &params).unwrap_or(f.kind.into());
                    problems.push(Problem {
                        subject: subject.clone(),
                        fault: Some(fault),
                        target: f.target.clone(),
                        pick: rng.next_u64(),
                    });
                }
            }
            if self.include_control {
                for _ in 0..self.trials_per_combination {
                    problems.push(Problem {
                        subject: subject.clone(),
                        fault: None,
                        target: None,
                        pick: rng.next_u64(),
                    });
                }
            }
        }
        // Fisher–Yates, from the seed.
        for i in (1..problems.len()).rev() {
            let j = rng.below(i + 1);
            problems.swap(i, j);
        }
        let mut out = Vec::new();
        for (p, problem) in problems.into_iter().enumerate() {
            let control = problem.fault.is_none();
            let agents = if self.include_agents {
                self.variants.as_slice()
            } else {
                &[]
            };
            let planned = |seq: usize, variant: &str, baseline: bool| PlannedTrial {
                seq: seq as u32,
                problem: p as u32,
                subject: problem.subject.clone(),
                fault: problem.fault,
                target: problem.target.clone(),
                pick: problem.pick,
                variant: variant.into(),
                baseline,
                control,
            };
            for v in agents {
                out.push(planned(out.len(), &v.name, false));
            }
            if self.include_baseline && !control {
                out.push(planned(out.len(), NO_AGENT, true));
            }
        }
        out
    }

    /// The variant named `name`.
    pub fn variant(&self, name: &str) -> Option<&VariantRef> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// The resolve timeout of a trial.
    pub fn resolve_timeout(&self, baseline: bool) -> Duration {
        match (baseline, self.timeouts.baseline_resolve) {
            (true, Some(b)) => b,
            _ => self.timeouts.resolve,
        }
    }
}

struct Problem {
    subject: String,
    fault: Option<Fault>,
    target: Option<String>,
    pick: u64,
}

/// One trial as planned: what it meets and which agent meets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTrial {
    /// Its place in the campaign's order.
    pub seq: u32,
    /// The problem it is one attempt at: trials of one problem differ only in the agent.
    pub problem: u32,
    pub subject: String,
    /// `None` for a control trial.
    pub fault: Option<Fault>,
    /// A fixed target, else `pick` chooses one of the fault's candidates.
    pub target: Option<String>,
    pub pick: u64,
    pub variant: String,
    pub baseline: bool,
    pub control: bool,
}

impl PlannedTrial {
    /// The row the store keeps: the fault by name and its parameters as columns, and the
    /// whole plan as JSON, read back by `from_row`.
    pub fn to_row(&self) -> Result<NewTrial, serde_json::Error> {
        Ok(NewTrial {
            seq: self.seq,
            problem: self.problem,
            subject: self.subject.clone(),
            fault: self.fault.map(|f| f.kind().as_str().to_string()),
            params: self
                .fault
                .map(|f| serde_json::Value::Object(f.params()))
                .unwrap_or_else(|| serde_json::json!({})),
            plan: serde_json::to_value(self)?,
            target: self.target.clone(),
            pick: self.pick,
            variant: self.variant.clone(),
            baseline: self.baseline,
            control: self.control,
        })
    }

    /// A plan as the store gave it back.
    pub fn from_row(plan: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(plan)
    }
}

/// A small generator whose sequence never changes with a dependency's version: a plan drawn
/// from a seed today is the same plan next year.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Campaign, String> {
        Campaign::parse(text, Path::new("/nonexistent/c.yaml")).map_err(|e| e.to_string())
    }

    const SMALL: &str = "name: small
subjects: [ratelimiter]
chaos_types:
  - type: node_kill
  - type: latency
    params: {delay_ms: [100, 200, 300]}
trials_per_combination: 3
include_baseline: true
include_control: true
seed: 7
timeouts: {detect: 10s, resolve: 1m, baseline_resolve: 20s}
";

    #[test]
    fn parses_and_plans_reproducibly() {
        let c = parse(SMALL).unwrap();
        assert_eq!(c.timeouts.detect, Duration::from_secs(10));
        assert_eq!(c.timeouts.hold, Duration::from_secs(5));
        assert_eq!(c.resolve_timeout(true), Duration::from_secs(20));
        assert_eq!(c.resolve_timeout(false), Duration::from_secs(60));
        let plan = c.plan();
        // 2 faults × 3 trials × (agent + baseline) + 3 controls.
        assert_eq!(plan.len(), 15);
        assert_eq!(plan.iter().filter(|t| t.baseline).count(), 6);
        assert_eq!(plan.iter().filter(|t| t.control).count(), 3);
        assert!(plan.iter().enumerate().all(|(i, t)| t.seq as usize == i));
        assert_eq!(c.plan(), plan, "one seed, one plan");
        let mut other = SMALL.replace("seed: 7", "seed: 8");
        let reordered = parse(&other).unwrap().plan();
        assert_ne!(reordered, plan, "another seed, another order");
        // The same problems with another agent: the same plan but for the variant's name.
        other = SMALL.to_string();
        other.push_str("variant: default\n");
        assert_eq!(parse(&other).unwrap().plan(), plan);
        // Drawn parameters stay among the choices.
        for t in &plan {
            if let Some(Fault::Impair(crate::runtime::Impairment::Latency { delay_ms, .. })) =
                t.fault
            {
                assert!([100, 200, 300].contains(&delay_ms));
            }
        }
    }

    /// The seed's form: a delay drawn from `min_ms..=max_ms` once per trial, stored as the
    /// trial's steady `delay_ms`, not a delay ± jitter; one seed, the same draws.
    #[test]
    fn a_latency_range_is_drawn_once_per_trial_and_stored_as_its_delay() {
        let text = "name: x\nsubjects: [ratelimiter]\nchaos_types:\n  - type: latency\n    params: {min_ms: 50, max_ms: 150}\ntrials_per_combination: 40\nseed: 3\n";
        let plan = parse(text).unwrap().plan();
        let mut delays = std::collections::BTreeSet::new();
        for t in &plan {
            let Some(Fault::Impair(crate::runtime::Impairment::Latency {
                delay_ms,
                jitter_ms,
            })) = t.fault
            else {
                continue;
            };
            assert!((50..=150).contains(&delay_ms), "{delay_ms}");
            assert_eq!(jitter_ms, 0);
            let row = t.to_row().unwrap();
            assert_eq!(row.params["delay_ms"], delay_ms, "{:?}", row.params);
            assert!(row.params.get("min_ms").is_none(), "{:?}", row.params);
            delays.insert(delay_ms);
        }
        assert!(delays.len() > 10, "drawn, not fixed: {delays:?}");
        assert_eq!(
            parse(text).unwrap().plan(),
            plan,
            "one seed, the same draws"
        );
        for (bad, says) in [
            ("{min_ms: 150, max_ms: 50}", "150 is above max_ms 50"),
            ("{min_ms: 50, max_ms: 150, delay_ms: 70}", "not both"),
            ("{min_ms: 0}", "outside 1..=600000"),
        ] {
            let text = text.replace("{min_ms: 50, max_ms: 150}", bad);
            let e = parse(&text).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("line 5"), "{bad}: {e}");
        }
    }

    #[test]
    fn refuses_bad_input_with_line_and_key() {
        let cases = [
            (
                "name: x\nsubjects: [ratelimiter]\ncolour: blue\nchaos_types: [{type: pause}]\n",
                "line 3",
                "colour",
            ),
            (
                "name: x\nsubjects: [tikv2]\nchaos_types: [{type: pause}]\n",
                "line 2",
                "unknown subject `tikv2`; known subjects: ratelimiter",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types:\n  - type: meltdown\n",
                "line 4",
                "known faults: node_kill",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types:\n  - type: latency\n    params: {delay: 5}\n",
                "line 5",
                "takes delay_ms, jitter_ms, min_ms, max_ms",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types:\n  - type: disk_pressure\n    params:\n      percent: [50, 150]\n",
                "line 6",
                "outside 1..=100",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types: [{type: pause}]\ntrials_per_combination: 0\n",
                "line 4",
                "at least 1",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types: [{type: pause}]\ntrials_per_combination: many\n",
                "line 4",
                "trials_per_combination",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types: [{type: pause}]\nvariant: nowhere.yaml\n",
                "line 4",
                "nowhere.yaml",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types: [{type: pause}]\nruntime: k8s\n",
                "line 4",
                "unknown runtime",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types: [{type: pause}]\ntimeouts:\n  detect: 10m\n",
                "line 5",
                "timeouts.detect",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\nchaos_types: [{type: pause}]\ntimeouts: {detect: soon}\n",
                "line 4",
                "timeouts.detect",
            ),
            (
                "name: x\nsubjects: [ratelimiter]\n",
                "line 1",
                "chaos_types",
            ),
        ];
        for (text, line, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains("/nonexistent/c.yaml"), "{err}");
            assert!(err.contains(line), "{line} in: {err}");
            assert!(err.contains(want), "{want} in: {err}");
        }
    }

    #[test]
    fn a_bad_value_is_found_on_its_own_line() {
        let text = "name: pauses\n# pause here is a comment\nsubjects: [ratelimiter]\nchaos_types:\n  - type: node_kill\n  - type: pause\n    params: {mode: x}\n";
        assert_eq!(line_at(text, "pause"), Some(6));
        assert_eq!(line_at(text, "mode"), Some(7));
        let err = parse(text).unwrap_err();
        assert!(
            err.contains("line 7") && err.contains("takes none"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_campaigns_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                let c = Campaign::load(&p).unwrap_or_else(|e| panic!("{e}"));
                assert!(!c.plan().is_empty(), "{}", p.display());
                n += 1;
            }
        }
        assert!(n >= 4, "smoke, ratelimiter, ratelimiter-docker, tikv");
        // The seed's own example, as given.
        let seed = Campaign::load(&dir.join("tikv.yaml")).unwrap();
        assert_eq!(seed.subjects, ["tikv"]);
        assert_eq!(seed.trials_per_combination, 5);
        assert!(seed.include_baseline);
        let docker = Campaign::load(&dir.join("ratelimiter-docker.yaml")).unwrap();
        assert_eq!(docker.runtime, Some(RuntimeKind::Docker));
        assert!(
            docker
                .faults
                .iter()
                .any(|f| f.kind == FaultKind::DiskPressure)
        );
        let local = Campaign::load(&dir.join("ratelimiter.yaml")).unwrap();
        assert_eq!(local.resolve_timeout(true), Duration::from_secs(60));
        assert_eq!(local.trials_per_combination, 3);
        for v in std::fs::read_dir(dir.join("variants")).unwrap() {
            let p = v.unwrap().path();
            Variant::load(&p).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn variant_files_are_read_beside_the_campaign() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("watch.yaml"),
            "name: watcher\nmode: observe\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("twin.yaml"), "name: watcher\n").unwrap();
        let file = dir.path().join("c.yaml");
        let text = "name: ab\nsubjects: [ratelimiter]\nchaos_types: [{type: node_kill}]\nvariants: [default, watch.yaml]\ntrials_per_combination: 2\n";
        let c = Campaign::parse(text, &file).unwrap();
        let names: Vec<_> = c.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["default", "watcher"]);
        let plan = c.plan();
        assert_eq!(plan.len(), 4);
        // Both variants meet each problem, one after the other.
        assert_eq!(plan[0].problem, plan[1].problem);
        assert_eq!(plan[0].pick, plan[1].pick);
        let cfg = c
            .variant("watcher")
            .unwrap()
            .agent_config(&AgentConfig::default())
            .unwrap();
        assert_eq!(cfg.mode, crate::policy::Mode::Observe);
        let dup = text.replace("[default, watch.yaml]", "[watch.yaml, twin.yaml]");
        let err = Campaign::parse(&dup, &file).unwrap_err().to_string();
        assert!(err.contains("two variants are named `watcher`"), "{err}");
    }
}
