//! Choosing the runtime of an instance: the one it was started on (named in its record),
//! else the one asked for (flag, environment), else the configured default.

use std::sync::Arc;

use super::docker::DockerRuntime;
use super::local::LocalRuntime;
use super::{Runtime, RuntimeError, record};
use crate::config::{RuntimeConfig, RuntimeKind};
use crate::paths::StateDir;

/// The runtime that manages `instance`. An instance that is up keeps its runtime: asking for
/// another one is an error that says which it runs on.
pub fn open(
    state: &StateDir,
    instance: u32,
    config: &RuntimeConfig,
    wanted: Option<RuntimeKind>,
) -> Result<Arc<dyn Runtime>, RuntimeError> {
    let recorded = record::recorded_runtime(&state.instance(instance));
    let kind = match recorded.as_deref() {
        None => wanted.unwrap_or(config.kind),
        Some(r) => {
            let Some(kind) = RuntimeKind::parse(r) else {
                return Err(RuntimeError::BadRecord {
                    path: state.instance(instance).join(record::RECORD_FILE),
                    message: format!("it names an unknown runtime `{r}`"),
                });
            };
            if let Some(w) = wanted.filter(|w| *w != kind) {
                return Err(RuntimeError::OtherRuntime {
                    instance,
                    recorded: kind.as_str(),
                    wanted: w.as_str(),
                });
            }
            kind
        }
    };
    Ok(match kind {
        RuntimeKind::Local => Arc::new(LocalRuntime::new(
            state.clone(),
            instance,
            config.local.clone(),
        )),
        RuntimeKind::Docker => Arc::new(DockerRuntime::new(
            state.clone(),
            instance,
            config.docker.clone(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_keeps_the_runtime_it_was_started_on() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let cfg = RuntimeConfig::default();
        assert_eq!(open(&state, 0, &cfg, None).unwrap().kind(), "local");
        assert_eq!(
            open(&state, 0, &cfg, Some(RuntimeKind::Docker))
                .unwrap()
                .kind(),
            "docker"
        );
        std::fs::create_dir_all(state.instance(0)).unwrap();
        std::fs::write(
            state.instance(0).join(record::RECORD_FILE),
            r#"{"runtime": "docker"}"#,
        )
        .unwrap();
        assert_eq!(open(&state, 0, &cfg, None).unwrap().kind(), "docker");
        let err = open(&state, 0, &cfg, Some(RuntimeKind::Local))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("runs on the docker runtime"), "{err}");
        // Another instance is free to choose.
        assert_eq!(open(&state, 1, &cfg, None).unwrap().kind(), "local");
        std::fs::write(
            state.instance(0).join(record::RECORD_FILE),
            r#"{"runtime": "kubernetes"}"#,
        )
        .unwrap();
        let err = open(&state, 0, &cfg, None).err().unwrap().to_string();
        assert!(err.contains("unknown runtime `kubernetes`"), "{err}");
    }
}
