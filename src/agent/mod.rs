//! The agent: claims an incident (the tickets of one cause) with a lease, talks to a model,
//! runs every tool call through one policy and one executor (asking a person where the mode
//! says so), and leaves a full record. A ticket is resolved when the monitor sees the
//! violation gone, never on the model's word.

pub mod approval;
pub mod audit;
pub mod cost;
pub mod executor;
pub mod lease;
pub mod llm;
pub mod local;
pub mod output;
pub mod prompt;
pub mod redact;
pub mod sandbox;
pub mod session;
pub mod toolbox;
pub mod tools;
pub mod variant;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::llm::anthropic::{Anthropic, AnthropicSettings};
use self::llm::openai::{OpenAi, OpenAiSettings};
use self::llm::retry::RetryPolicy;
use self::llm::runbook::{Runbook, RunbookModel};
use self::llm::{Model, ModelError};
use self::session::{Deps, Outcome, Settings};
use crate::config::{AgentConfig, Backend};
use crate::subjects::{Subject, SubjectKind};

/// The model an agent configuration asks for. Without an API key, `auto` is the runbook;
/// a Claude model without a key is an error that names the variable.
pub fn build_model(
    cfg: &AgentConfig,
    subject: &dyn SubjectKind,
) -> Result<Arc<dyn Model>, ModelError> {
    let wants_claude = cfg.model.starts_with("claude");
    let key = llm::anthropic::Anthropic::key_from_env();
    let backend = match cfg.backend {
        Backend::Auto if wants_claude => Backend::Anthropic,
        Backend::Auto if key.is_ok() && cfg.model.is_empty() => Backend::Anthropic,
        Backend::Auto if cfg.model.is_empty() || cfg.model == "runbook" => Backend::Runbook,
        Backend::Auto => Backend::Openai,
        b => b,
    };
    let a = &cfg.anthropic;
    let o = &cfg.openai;
    Ok(match backend {
        Backend::Anthropic => {
            let key = key?;
            let base_url = std::env::var("ANTHROPIC_BASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| a.base_url.clone());
            Arc::new(Anthropic::new(
                AnthropicSettings {
                    base_url,
                    model: if cfg.model.is_empty() {
                        llm::anthropic::DEFAULT_MODEL.into()
                    } else {
                        cfg.model.clone()
                    },
                    max_tokens: a.max_tokens,
                    thinking: a.thinking,
                    effort: Some(a.effort.clone()).filter(|e| !e.is_empty()),
                    retry: RetryPolicy {
                        max_retries: a.max_retries,
                        ..RetryPolicy::default()
                    },
                    timeout: a.timeout,
                },
                key,
            ))
        }
        Backend::Openai => {
            let base_url = std::env::var("OPENAI_BASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| o.base_url.clone());
            let key = std::env::var(&o.api_key_env)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .map(|k| llm::anthropic::ApiKey::new(k.trim().to_string()));
            Arc::new(OpenAi::new(
                OpenAiSettings {
                    base_url,
                    model: if cfg.model.is_empty() {
                        o.model.clone()
                    } else {
                        cfg.model.clone()
                    },
                    max_tokens: o.max_tokens,
                    retry: RetryPolicy {
                        max_retries: o.max_retries,
                        ..RetryPolicy::default()
                    },
                    timeout: o.timeout,
                },
                key,
            ))
        }
        Backend::Runbook | Backend::Auto => Arc::new(RunbookModel::new(Runbook::load(
            subject.name(),
            subject.runbook(),
            cfg.runbooks_dir.as_deref(),
        )?)),
    })
}

/// An agent working on one subject instance's tickets.
pub struct Agent {
    pub deps: Deps,
    pub settings: Settings,
    pub subject: Box<dyn Subject>,
    pub poll: Duration,
    /// The instance's runtime: its topology gives the policy the endpoints of each session.
    pub runtime: Arc<dyn crate::runtime::Runtime>,
    /// Where commands' `docker` goes (see [`local::docker_endpoint`]).
    pub docker: Option<String>,
}

/// Gives the policy the instance's endpoints as they are now (the topology is a file).
async fn refresh_endpoints(
    runtime: Arc<dyn crate::runtime::Runtime>,
    docker: Option<String>,
    policy: Arc<tokio::sync::Mutex<crate::policy::Policy>>,
) {
    let endpoints = tokio::task::spawn_blocking(move || local::endpoints(runtime.as_ref(), docker))
        .await
        .unwrap_or_default();
    policy.lock().await.set_endpoints(endpoints);
}

impl Agent {
    /// Claims and works incidents until `stop`; with `once`, after the first session. Each
    /// outcome is named by the incident's lead ticket.
    pub async fn run(&mut self, stop: CancellationToken, once: bool) -> Vec<(i64, Outcome)> {
        let scope = (self.subject.name().to_string(), self.subject.instance());
        let mut done = Vec::new();
        loop {
            if stop.is_cancelled() {
                break;
            }
            let store = self.deps.store.clone();
            let (agent, lease, attempts) = (
                self.settings.agent_id.clone(),
                self.settings.lease,
                self.settings.budgets.attempts,
            );
            let s = scope.clone();
            let claimed = store
                .call(move |db| db.claim_next(&agent, lease, Some((&s.0, s.1)), attempts))
                .await;
            match claimed {
                Ok(Some(claimed)) => {
                    let id = claimed.lead().id;
                    info!(
                        incident = claimed.incident.id,
                        tickets = claimed.tickets.len(),
                        ticket = id,
                        invariant = %claimed.lead().invariant,
                        entity = %claimed.lead().entity,
                        "claimed"
                    );
                    refresh_endpoints(
                        self.runtime.clone(),
                        self.docker.clone(),
                        self.deps.policy.clone(),
                    )
                    .await;
                    // Stopped mid-session, the session lets go of the ticket itself.
                    let outcome = session::run(
                        &self.deps,
                        &self.settings,
                        self.subject.as_mut(),
                        claimed,
                        &stop,
                    )
                    .await;
                    done.push((id, outcome));
                    if once {
                        break;
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(self.poll) => {}
                    }
                }
                Err(e) => {
                    warn!(error = %e, "cannot claim a ticket");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(self.poll.max(Duration::from_secs(1))) => {}
                    }
                }
            }
        }
        done
    }
}
