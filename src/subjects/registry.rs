//! The registry of subjects: the one place a subject is found by its name.
//!
//! Only the top floors read it (the CLI, the app, the harness, the monitor's entry): they look
//! a subject up once and hand it down, so nothing below them knows which subjects exist.

use std::sync::Arc;

use super::{Subject, SubjectKind, etcd, ratelimiter, tikv};
use crate::config::Config;
use crate::runtime::Runtime;

/// The one registry of subjects: everything else finds a subject through it.
pub static REGISTRY: &[&dyn SubjectKind] = &[&ratelimiter::RateLimiter, &etcd::Etcd, &tikv::Tikv];

/// The subject called `name`, or the list of known ones.
pub fn kind(name: &str) -> Result<&'static dyn SubjectKind, String> {
    REGISTRY
        .iter()
        .copied()
        .find(|k| k.name() == name)
        .ok_or_else(|| unknown_subject(name))
}

/// The subject called `name`, observing the instance `runtime` manages.
pub fn build(
    name: &str,
    runtime: Arc<dyn Runtime>,
    config: &Config,
) -> Result<Box<dyn Subject>, String> {
    kind(name)?
        .build(runtime, config)
        .map_err(|e| e.to_string())
}

/// What the top floor checks when it loads the config: every section names a subject, and
/// each subject's section is valid.
pub fn check_config(config: &Config) -> Result<(), crate::config::ConfigError> {
    for name in config.sections.keys() {
        if !is_known(name) {
            return Err(config.invalid(
                name,
                format!(
                    "unknown section or key; known subjects: {}",
                    names().join(", ")
                ),
            ));
        }
    }
    for k in REGISTRY {
        k.check_config(config)?;
    }
    let every = every_subjects_faults();
    for fault in config.chaos.durations.keys() {
        if !every
            .iter()
            .any(|k| crate::chaos::FaultKind::parse_for(fault, *k).is_some())
        {
            return Err(config.invalid(
                &format!("chaos.durations.{fault}"),
                format!(
                    "unknown fault; known faults: {}",
                    crate::chaos::FaultKind::names_for(&every).join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Every subject's own faults, told to chaos once at start so that their names read back
/// from the ledger and from stored plans.
pub fn teach_chaos() {
    crate::chaos::faults::know(
        REGISTRY
            .iter()
            .flat_map(|k| k.faults().own().iter())
            .collect(),
    );
}

/// Every subject as chaos sees it, for messages that list every fault.
pub fn every_subjects_faults() -> Vec<&'static dyn crate::chaos::SubjectFaults> {
    REGISTRY.iter().map(|k| k.faults()).collect()
}

/// The names of the known subjects, in the registry's order.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|k| k.name()).collect()
}

pub fn is_known(name: &str) -> bool {
    REGISTRY.iter().any(|k| k.name() == name)
}

/// Every subject's words, for judging a command with no instance (`operator policy check`).
pub fn every_subjects_words() -> Vec<&'static dyn crate::policy::SubjectWords> {
    REGISTRY.iter().map(|k| k.words()).collect()
}

/// An unknown subject name, with the known ones.
pub fn unknown_subject(name: &str) -> String {
    format!(
        "unknown subject `{name}`; known subjects: {}",
        names().join(", ")
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, Section};
    use crate::subjects::etcd::config::EtcdConfig;
    use crate::subjects::ratelimiter::config::RateLimiterConfig;
    use crate::subjects::tikv::config::TikvConfig;

    /// A config file read as the CLI reads it: parsed, then checked by the subjects.
    fn load(text: &str) -> Result<Config, ConfigError> {
        let c = Config::parse(text, Path::new("operator.toml"))?;
        check_config(&c)?;
        Ok(c)
    }

    fn same<T: Section>(c: &Config) {
        assert_eq!(
            serde_json::to_value(c.section::<T>().unwrap()).unwrap(),
            serde_json::to_value(T::default()).unwrap(),
            "operator.example.toml should document [{}]'s defaults",
            T::NAME
        );
    }

    #[test]
    fn the_example_file_documents_each_subjects_defaults() {
        let c = load(include_str!("../../operator.example.toml")).unwrap();
        same::<RateLimiterConfig>(&c);
        same::<EtcdConfig>(&c);
        same::<TikvConfig>(&c);
        let empty = load("").unwrap();
        assert_eq!(empty.section::<RateLimiterConfig>().unwrap().nodes, 3);
    }

    #[test]
    fn a_wrong_type_in_a_section_names_its_line_and_key() {
        let msg = load("[ratelimiter]\nnodes = \"three\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("operator.toml"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("ratelimiter.nodes"), "{msg}");
    }

    #[test]
    fn a_bad_duration_in_a_section_names_its_line_and_key() {
        let msg = load("\n[ratelimiter.invariants.node_down]\ngrace = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(
            msg.contains("ratelimiter.invariants.node_down.grace"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_sections_keys_and_faults_are_refused_with_their_line() {
        let msg = load("[monitor]\ninterval = \"2s\"\n[etcdd]\nmembers = 3\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 3") && msg.contains("etcdd"), "{msg}");
        let msg = load("state_dirr = \"x\"\n").unwrap_err().to_string();
        assert!(
            msg.contains("line 1") && msg.contains("state_dirr"),
            "{msg}"
        );
        let msg = load("[etcd]\n\nmembrs = 3\n").unwrap_err().to_string();
        assert!(
            msg.contains("line 3") && msg.contains("etcd.membrs"),
            "{msg}"
        );
        let msg = load("[etcd]\nmembers = 4\n").unwrap_err().to_string();
        assert!(
            msg.contains("line 2") && msg.contains("etcd.members"),
            "{msg}"
        );
        let msg = load("[chaos.durations]\nmeltdown = \"1s\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("node_kill") && msg.contains("nospace"),
            "{msg}"
        );
        load("[chaos.durations]\nnospace = \"1s\"\n").unwrap();
    }
}
