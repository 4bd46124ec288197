//! Variants: an agent configuration (model, system prompt, tools, mode, budgets) in YAML, so
//! that evaluations can compare them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::llm::anthropic::Thinking;
use crate::config::{AgentConfig, Backend, Budgets};
use crate::policy::Mode;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub backend: Option<Backend>,
    #[serde(default)]
    pub model: Option<String>,
    /// The system prompt itself, with `{mode}`, `{executor}`, `{subject}` placeholders…
    #[serde(default)]
    pub system_prompt: Option<String>,
    /// …or a file holding it, relative to the variant file.
    #[serde(default)]
    pub system_prompt_file: Option<PathBuf>,
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Replaces the configured budgets; fields left out take their defaults.
    #[serde(default)]
    pub budgets: Option<Budgets>,
    #[serde(default)]
    pub effort: Option<String>,
    #[serde(default)]
    pub thinking: Option<Thinking>,
}

#[derive(Debug, thiserror::Error)]
pub enum VariantError {
    #[error("variant file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Variant {
    pub fn load(path: &Path) -> Result<Self, VariantError> {
        let text = std::fs::read_to_string(path).map_err(|e| VariantError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// A variant from its text; `path` names it in errors and anchors `system_prompt_file`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, VariantError> {
        let bad = |message: String| VariantError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut v: Variant = serde_norway::from_str(text).map_err(|e| bad(e.to_string()))?;
        if v.name.trim().is_empty() {
            return Err(bad("`name` is required".into()));
        }
        if let Some(file) = &v.system_prompt_file {
            let file = path.parent().unwrap_or(Path::new(".")).join(file);
            let prompt = std::fs::read_to_string(&file)
                .map_err(|e| bad(format!("system_prompt_file {}: {e}", file.display())))?;
            v.system_prompt = Some(prompt);
        }
        for t in v.tools.iter().flatten() {
            if !super::tools::NAMES.contains(&t.as_str()) {
                return Err(bad(format!(
                    "unknown tool `{t}`; tools: {}",
                    super::tools::NAMES.join(", ")
                )));
            }
        }
        Ok(v)
    }

    /// The configuration with this variant's choices on top.
    pub fn apply(&self, cfg: &AgentConfig) -> AgentConfig {
        let mut c = cfg.clone();
        if let Some(b) = self.backend {
            c.backend = b;
        }
        if let Some(m) = &self.model {
            c.model = m.clone();
        }
        if let Some(t) = &self.tools {
            c.tools = t.clone();
        }
        if let Some(m) = self.mode {
            c.mode = m;
        }
        if let Some(b) = &self.budgets {
            c.budgets = b.clone();
        }
        if let Some(e) = &self.effort {
            c.anthropic.effort = e.clone();
        }
        if let Some(t) = self.thinking {
            c.anthropic.thinking = t;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_applies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.md"), "You are terse. {subject}").unwrap();
        let f = dir.path().join("v.yaml");
        std::fs::write(
            &f,
            "name: terse\nmodel: claude-haiku-4-5\nsystem_prompt_file: p.md\ntools: [shell, escalate]\nmode: observe\nbudgets: {turns: 5}\n",
        )
        .unwrap();
        let v = Variant::load(&f).unwrap();
        assert_eq!(v.system_prompt.as_deref(), Some("You are terse. {subject}"));
        let c = v.apply(&AgentConfig::default());
        assert_eq!(
            (c.model.as_str(), c.mode, c.budgets.turns),
            ("claude-haiku-4-5", Mode::Observe, 5)
        );
        assert_eq!(c.budgets.wall_clock, Budgets::default().wall_clock);
        assert_eq!(c.tools, ["shell", "escalate"]);
        std::fs::write(&f, "name: x\ntools: [teleport]\n").unwrap();
        assert!(
            Variant::load(&f)
                .unwrap_err()
                .to_string()
                .contains("teleport")
        );
        std::fs::write(&f, "name: x\ncolour: blue\n").unwrap();
        assert!(
            Variant::load(&f)
                .unwrap_err()
                .to_string()
                .contains("colour")
        );
    }
}
