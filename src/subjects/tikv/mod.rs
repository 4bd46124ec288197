//! TiKV: three PD members and three TiKV stores (v8.5), watched through PD's HTTP API and
//! each store's status port. Its programs come from TiUP locally, its pinned images on
//! Docker; where neither is, `up` changes nothing and says how to get them.

pub mod check;
pub mod client;
pub mod config;
pub mod context;
pub mod demo;
pub mod faults;
pub mod observe;
pub mod pd;
pub mod policy;
pub mod programs;
pub mod topology;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use self::client::Client;
use self::config::TikvConfig;
use self::observe::{Observer, TikvObservation};
use self::topology::{ROLE_PD, ROLE_STORE};
use crate::config::{Config, ConfigError};
use crate::runtime::local::LocalRuntime;
use crate::runtime::{ClusterPlan, Runtime, RuntimeError};
use crate::subjects::{
    InvariantInfo, NodeObservation, Observation, Snapshot, Subject, SubjectContext, SubjectKind,
};

/// The registry's entry.
pub struct Tikv;

#[async_trait]
impl SubjectKind for Tikv {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn about(&self) -> &'static str {
        "a TiKV cluster: three PD members and three stores (v8.5), from TiUP or pinned images"
    }

    fn build(
        &self,
        runtime: Arc<dyn Runtime>,
        config: &Config,
    ) -> Result<Box<dyn Subject>, ConfigError> {
        let cfg: TikvConfig = config.section()?;
        Ok(Box::new(TikvSubject::new(runtime, cfg)))
    }

    fn check_config(&self, config: &Config) -> Result<(), ConfigError> {
        config.section::<TikvConfig>().map(drop)
    }

    fn plan(&self, runtime: &dyn Runtime, config: &Config) -> Result<ClusterPlan, RuntimeError> {
        let cfg: &TikvConfig = &config.section()?;
        Ok(match runtime.kind() {
            "docker" => topology::plan_docker(
                cfg,
                &config.runtime.docker.toolbox_image,
                &programs::pull_hint,
            ),
            _ => {
                let names = topology::port_names(cfg);
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let ports = runtime.allocate_ports(&refs)?;
                topology::plan(
                    cfg,
                    &config.runtime.local,
                    LocalRuntime::host(),
                    &ports,
                    programs::find(cfg),
                )
            }
        })
    }

    /// PD serves once a majority has elected a leader, and the cluster once every store has
    /// joined it: wait for both.
    async fn settle(&self, runtime: &dyn Runtime, config: &Config) -> Result<(), String> {
        let cfg: TikvConfig = config.section().map_err(|e| e.to_string())?;
        let t = runtime.topology().map_err(|e| e.to_string())?;
        let mut observer = Observer::new(cfg);
        let settling = crate::subjects::launch::Settling::new(runtime, "TiKV");
        loop {
            if let Some(over) = settling.over(&waiting_for(&observer.observe(&t).await)) {
                return over;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn demo(&self) -> &'static crate::subjects::DemoScript {
        &demo::SCRIPT
    }

    fn runbook(&self) -> &'static str {
        include_str!("../../../assets/runbooks/tikv.yaml")
    }

    fn consequences(&self) -> &'static [crate::invariant::Consequence] {
        check::CONSEQUENCES
    }

    fn words(&self) -> &'static dyn crate::policy::SubjectWords {
        &Tikv
    }

    fn faults(&self) -> &'static dyn crate::chaos::SubjectFaults {
        &Tikv
    }

    fn install_hint(&self, program: &str) -> Option<String> {
        programs::install_hint(program)
    }
}

/// What still keeps a cluster from serving: a PD without a leader, a store that does not
/// answer or that PD does not list as Up.
fn waiting_for(obs: &TikvObservation) -> Vec<String> {
    let mut waiting = Vec::new();
    if let Some(e) = &obs.error {
        waiting.push(e.clone());
    }
    if obs.leader.is_none() {
        waiting.push(format!(
            "PD has no leader yet ({})",
            obs.leader_error.as_deref().unwrap_or("none named")
        ));
    } else if let Some(e) = &obs.views_error {
        waiting.push(e.clone());
    }
    for s in &obs.stores {
        match (&s.detail, &s.pd) {
            (Some(d), _) => waiting.push(format!("{}: {d}", s.name)),
            (None, Some(p)) if p.state_name == "Up" => {}
            (None, Some(p)) => waiting.push(format!("PD calls {} {}", s.name, p.state_name)),
            (None, None) if obs.has_views() => {
                waiting.push(format!("{} has not joined PD yet", s.name));
            }
            (None, None) => {}
        }
    }
    waiting
}

/// What chaos is told of TiKV: its own faults; any PD member or store may be drawn.
impl crate::chaos::SubjectFaults for Tikv {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn own(&self) -> &'static [crate::chaos::faults::SubjectFault] {
        &faults::FAULTS
    }
}

/// What the policy is told of TiKV: pd-ctl, tikv-ctl and the servers, PD's and the stores'
/// routes, and folders named after them.
impl crate::policy::SubjectWords for Tikv {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn classify_program(
        &self,
        program: &str,
        args: &[crate::policy::Arg],
    ) -> Option<crate::policy::ProgramVerdict> {
        let args = &crate::policy::known(args);
        match program {
            "pd-ctl" => Some(policy::pd_ctl(args)),
            "tikv-ctl" => Some(policy::tikv_ctl(args)),
            "pd-server" | "tikv-server" | "pd-recover" => Some(policy::server(program, args)),
            _ => None,
        }
    }

    fn data_words(&self) -> &'static [&'static str] {
        &["tikv", "pd-"]
    }

    /// pd-ctl reads its input whenever it is not a terminal and appends its words to the
    /// command (`echo delete 1 | pd-ctl store` deletes store 1).
    fn reads_words_from_input(&self, program: &str) -> bool {
        program == "pd-ctl"
    }

    fn http_routes(&self) -> &'static [crate::policy::Route] {
        &policy::ROUTES
    }

    fn endpoint_variables(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

pub struct TikvSubject {
    runtime: Arc<dyn Runtime>,
    cfg: TikvConfig,
    rules: Vec<InvariantInfo>,
    observer: Observer,
}

impl TikvSubject {
    pub fn new(runtime: Arc<dyn Runtime>, cfg: TikvConfig) -> Self {
        Self {
            rules: check::catalogue(&cfg),
            observer: Observer::new(cfg.clone()),
            runtime,
            cfg,
        }
    }

    async fn look(&mut self) -> TikvObservation {
        match self.runtime.topology() {
            Ok(t) if t.subject != topology::SUBJECT => TikvObservation::failed(format!(
                "instance {} runs `{}`, not TiKV",
                t.instance, t.subject
            )),
            Ok(t) => self.observer.observe(&t).await,
            Err(e) => TikvObservation::failed(e.to_string()),
        }
    }
}

#[async_trait]
impl Subject for TikvSubject {
    fn name(&self) -> &str {
        topology::SUBJECT
    }

    fn kind(&self) -> &'static dyn SubjectKind {
        &Tikv
    }

    fn instance(&self) -> u32 {
        self.runtime.instance()
    }

    fn invariants(&self) -> &[InvariantInfo] {
        &self.rules
    }

    fn context(&self) -> Result<SubjectContext, String> {
        let t = self.runtime.topology().map_err(|e| e.to_string())?;
        Ok(context::describe(&t, &self.rules))
    }

    /// A store's latency is judged only under traffic, and TiKV takes no load of the
    /// operator's yet: its unknowns do not hold a trial's steady-state gate shut.
    fn undecidable(&self) -> Vec<&'static str> {
        vec![check::HIGH_LATENCY]
    }

    /// Starts what is down, resumes what is paused, and waits until the cluster serves
    /// again with no evict-leader scheduler left. The stores' data is not cleared: there is
    /// no load of the operator's own in it.
    #[tracing::instrument(skip_all, fields(subject = topology::SUBJECT, instance = self.runtime.instance()))]
    async fn reset(&mut self) -> Result<String, String> {
        let mut did = crate::runtime::bring_back(self.runtime.as_ref(), None).await?;
        let t = self.runtime.topology().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let obs = self.observer.observe(&t).await;
            let mut waiting = waiting_for(&obs);
            if waiting.is_empty() && !obs.evicting.is_empty() {
                let c = Client::new(Duration::from_secs(5));
                if let Some(at) = obs
                    .leader
                    .as_ref()
                    .and_then(|l| obs.pd.iter().find(|m| &m.name == l))
                {
                    for id in &obs.evicting {
                        c.send(
                            reqwest::Method::DELETE,
                            &at.address,
                            &format!("/pd/api/v1/schedulers/{}-{id}", observe::EVICT_LEADER),
                            None,
                        )
                        .await
                        .map_err(|e| {
                            format!("cannot remove the evict-leader scheduler of store {id}: {e}")
                        })?;
                        did.push(format!("removed the evict-leader scheduler of store {id}"));
                    }
                }
                continue;
            }
            if waiting.is_empty() {
                return Ok(if did.is_empty() {
                    "nothing to do".into()
                } else {
                    did.join("; ")
                });
            }
            if Instant::now() >= deadline {
                waiting.insert(0, "the cluster does not serve again".into());
                return Err(waiting.join("; "));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    #[tracing::instrument(skip_all, fields(subject = topology::SUBJECT, instance = self.runtime.instance()))]
    async fn observe(&mut self) -> Snapshot {
        let at = crate::clock::now();
        let start = Instant::now();
        let obs = self.look().await;
        let assessment = check::assess(&obs, &self.cfg, &self.rules);
        let pd = obs.pd.iter().map(|m| NodeObservation {
            name: m.name.clone(),
            role: ROLE_PD.into(),
            address: m.address.clone(),
            state: m.state,
            detail: m.detail.clone(),
            probe_ms: None,
        });
        let stores = obs.stores.iter().map(|s| NodeObservation {
            name: s.name.clone(),
            role: ROLE_STORE.into(),
            address: s.address.clone(),
            state: s.state,
            detail: s.detail.clone(),
            probe_ms: s.probe_ms,
        });
        let observation = Observation {
            at,
            subject: topology::SUBJECT.into(),
            instance: self.runtime.instance(),
            error: obs.error.clone(),
            nodes: pd.chain(stores).collect(),
            facts: crate::subjects::Facts::of(Arc::new(obs)),
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        };
        Snapshot {
            observation,
            assessment,
        }
    }
}
