//! The rate limiter subject: our own Redis-backed service (`service`), how to run it
//! (`topology`), how to look at it (`observe`) and what must hold (`check`).

pub mod check;
pub mod config;
pub mod context;
pub mod demo;
pub mod faults;
pub mod latency;
pub mod load;
pub mod node_probe;
pub mod observe;
pub mod policy;
pub mod redis_link;
pub mod redis_state;
pub mod service;
pub mod topology;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use self::config::RateLimiterConfig;
use self::observe::{Observer, RlObservation};
use crate::chaos::FaultKind;
use crate::config::{Config, ConfigError};
use crate::runtime::local::LocalRuntime;
use crate::runtime::{ClusterPlan, Runtime, RuntimeError};
use crate::subjects::{
    InvariantInfo, NodeObservation, Observation, Snapshot, Subject, SubjectContext, SubjectKind,
};

/// The registry's entry.
pub struct RateLimiter;

#[async_trait]
impl SubjectKind for RateLimiter {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn about(&self) -> &'static str {
        "our own rate limiter: three HTTP nodes sharing their counters in one Redis"
    }

    fn build(
        &self,
        runtime: Arc<dyn Runtime>,
        config: &Config,
    ) -> Result<Box<dyn Subject>, ConfigError> {
        let cfg: RateLimiterConfig = config.section()?;
        Ok(Box::new(RateLimiterSubject::new(runtime, cfg)))
    }

    fn check_config(&self, config: &Config) -> Result<(), ConfigError> {
        config.section::<RateLimiterConfig>().map(drop)
    }

    fn plan(&self, runtime: &dyn Runtime, config: &Config) -> Result<ClusterPlan, RuntimeError> {
        let cfg: &RateLimiterConfig = &config.section()?;
        Ok(match runtime.kind() {
            // Containers each have their own address; the runtime publishes what it probes.
            "docker" => topology::plan_docker(cfg, &config.runtime.docker),
            _ => {
                let names = topology::port_names(cfg);
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let ports = runtime.allocate_ports(&refs)?;
                topology::plan(cfg, &config.runtime.local, LocalRuntime::host(), &ports)
            }
        })
    }

    fn words(&self) -> &'static dyn crate::policy::SubjectWords {
        &RateLimiter
    }

    fn faults(&self) -> &'static dyn crate::chaos::SubjectFaults {
        &RateLimiter
    }

    fn demo(&self) -> &'static crate::subjects::DemoScript {
        &demo::SCRIPT
    }

    fn install_hint(&self, program: &str) -> Option<String> {
        match program {
            "redis-server" => Some(
                "Install Redis: `apt-get install redis-server` (Debian, Ubuntu), \
                 `brew install redis` (macOS); or set `ratelimiter.redis_server` in the config."
                    .into(),
            ),
            "ratelimiter" => Some(
                "Build it with `cargo build --release --bins`, or set \
                 `ratelimiter.ratelimiter_bin` in the config."
                    .into(),
            ),
            _ => None,
        }
    }

    fn adopted_role(&self, role: &str) -> Option<(crate::runtime::HealthCheck, u8)> {
        (role == topology::ROLE_REDIS).then_some((crate::runtime::HealthCheck::RedisPing, 0))
    }

    fn runbook(&self) -> &'static str {
        include_str!("../../../assets/runbooks/ratelimiter.yaml")
    }

    fn consequences(&self) -> &'static [crate::invariant::Consequence] {
        check::CONSEQUENCES
    }
}

/// What the policy is told of the rate limiter: `redis-cli` and its URLs, its rc file, and
/// folders named after Redis.
impl crate::policy::SubjectWords for RateLimiter {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn classify_program(
        &self,
        program: &str,
        args: &[crate::policy::Arg],
    ) -> Option<crate::policy::ProgramVerdict> {
        policy::classify(program, &crate::policy::known(args))
    }

    fn url_schemes(&self) -> &'static [(&'static str, u16)] {
        &URL_SCHEMES
    }

    fn endpoint_variables(&self) -> &'static [(&'static str, &'static str)] {
        &[("REDISCLI_RCFILE", "redis-cli's configuration")]
    }

    fn data_words(&self) -> &'static [&'static str] {
        &["redis"]
    }

    /// Redis runs with no snapshot and no append-only file (topology.rs): its keys live only
    /// in memory.
    fn memory_nodes(&self) -> &'static [&'static str] {
        &["redis"]
    }

    /// Redis reads an HTTP request's lines as commands of its own protocol.
    fn non_http_nodes(&self) -> &'static [&'static str] {
        &["redis"]
    }

    fn http_routes(&self) -> &'static [crate::policy::Route] {
        &policy::ROUTES
    }
}

/// What chaos is told of the rate limiter: its own faults through Redis, and Redis kept out of
/// random draws.
impl crate::chaos::SubjectFaults for RateLimiter {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn own(&self) -> &'static [crate::chaos::faults::SubjectFault] {
        &faults::FAULTS
    }

    fn default_target(&self, fault: FaultKind) -> Option<&'static str> {
        // Only Redis keeps data on a volume.
        (fault == FaultKind::DiskPressure).then_some(topology::REDIS)
    }

    fn random_target_fits(&self, role: &str) -> bool {
        // Redis is the state every node shares: faulted only when named.
        role != topology::ROLE_REDIS && !crate::runtime::is_rig(role)
    }
}

/// Redis's URL schemes and their default ports.
pub(crate) const URL_SCHEMES: [(&str, u16); 2] = [("redis", 6379), ("rediss", 6380)];

pub struct RateLimiterSubject {
    runtime: Arc<dyn Runtime>,
    cfg: RateLimiterConfig,
    rules: Vec<InvariantInfo>,
    observer: Observer,
}

impl RateLimiterSubject {
    pub fn new(runtime: Arc<dyn Runtime>, cfg: RateLimiterConfig) -> Self {
        Self {
            rules: check::catalogue(&cfg),
            observer: Observer::new(cfg.clone()),
            runtime,
            cfg,
        }
    }

    async fn look(&mut self) -> RlObservation {
        let failed = |error: String| RlObservation {
            error: Some(error),
            redis: None,
            nodes: Vec::new(),
        };
        match self.runtime.topology() {
            Ok(t) if t.subject != topology::SUBJECT => failed(format!(
                "instance {} runs `{}`, not the rate limiter",
                t.instance, t.subject
            )),
            Ok(t) => {
                let redis = t.nodes.iter().find(|n| n.role == topology::ROLE_REDIS);
                let disk = async {
                    match redis {
                        Some(r) => self.runtime.disk_usage(&r.name).await,
                        None => Ok(None),
                    }
                };
                let (mut rl, disk) = tokio::join!(self.observer.observe(&t), disk);
                if let Some(probe) = rl.redis.as_mut() {
                    match disk {
                        Ok(d) => probe.disk = d,
                        Err(e) => probe.disk_error = Some(e.to_string()),
                    }
                }
                rl
            }
            Err(e) => failed(e.to_string()),
        }
    }
}

#[async_trait]
impl Subject for RateLimiterSubject {
    fn name(&self) -> &str {
        topology::SUBJECT
    }

    fn kind(&self) -> &'static dyn SubjectKind {
        &RateLimiter
    }

    fn instance(&self) -> u32 {
        self.runtime.instance()
    }

    fn invariants(&self) -> &[InvariantInfo] {
        &self.rules
    }

    fn context(&self) -> Result<SubjectContext, String> {
        let t = self.runtime.topology().map_err(|e| e.to_string())?;
        Ok(context::describe(&t, &self.cfg, &self.rules))
    }

    async fn workload(
        &mut self,
        options: &crate::load::LoadOptions,
    ) -> Result<Arc<dyn crate::load::Workload>, String> {
        let t = self.runtime.topology().map_err(|e| e.to_string())?;
        let targets: Vec<String> = t
            .nodes
            .iter()
            .filter(|n| n.role == topology::ROLE_LIMITER)
            .map(|n| n.client_address().to_string())
            .collect();
        if targets.is_empty() {
            return Err(format!(
                "instance {} has no rate-limiter node",
                self.runtime.instance()
            ));
        }
        Ok(Arc::new(load::CheckWorkload::new(
            targets,
            options.keys,
            options.limit,
        )))
    }

    async fn load_spec(&mut self) -> Option<crate::load::LoadSpec> {
        // 20 requests a second over 50 keys: each key far below the default limit.
        let options = crate::load::LoadOptions {
            keys: 50,
            limit: None,
        };
        Some(crate::load::LoadSpec {
            workload: self.workload(&options).await.ok()?,
            rate: 20,
            duration: std::time::Duration::from_secs(24 * 3600),
            timeout: std::time::Duration::from_secs(2),
        })
    }

    fn undecidable(&self) -> Vec<&'static str> {
        // Only the Docker runtime gives Redis a bounded volume.
        if self.runtime.kind() == "local" {
            vec![check::LOW_DISK_SPACE]
        } else {
            Vec::new()
        }
    }

    #[tracing::instrument(skip_all, fields(subject = topology::SUBJECT, instance = self.runtime.instance()))]
    async fn reset(&mut self) -> Result<String, String> {
        let mut did = crate::runtime::bring_back(self.runtime.as_ref(), None).await?;
        let t = self.runtime.topology().map_err(|e| e.to_string())?;
        let redis = t
            .nodes
            .iter()
            .find(|n| n.role == topology::ROLE_REDIS)
            .ok_or("the recorded topology has no redis node")?;
        let link = redis_link::RedisLink::new(
            &format!("redis://{}", redis.address),
            self.cfg
                .probe_timeout
                .max(std::time::Duration::from_secs(2)),
        )
        .map_err(|e| e.to_string())?;
        let cleared = link
            .run_within(std::time::Duration::from_secs(10), |mut c| async move {
                redis_state::clear_data(&mut c).await
            })
            .await
            .map_err(|e| format!("cannot clear the counters: {e}"))?;
        did.push(format!("cleared {cleared} Redis keys"));
        Ok(did.join("; "))
    }

    #[tracing::instrument(skip_all, fields(subject = topology::SUBJECT, instance = self.runtime.instance()))]
    async fn observe(&mut self) -> Snapshot {
        let at = crate::clock::now();
        let start = Instant::now();
        let rl = self.look().await;
        let assessment = check::assess(&rl, &self.cfg, &self.rules);
        let redis = rl.redis.iter().map(|r| NodeObservation {
            name: r.name.clone(),
            role: topology::ROLE_REDIS.into(),
            address: r.address.clone(),
            state: r.state,
            detail: r.detail.clone(),
            probe_ms: r.probe_ms,
        });
        let limiters = rl.nodes.iter().map(|n| NodeObservation {
            name: n.name.clone(),
            role: topology::ROLE_LIMITER.into(),
            address: n.address.clone(),
            state: n.state,
            detail: n.detail.clone(),
            probe_ms: n.probe_ms,
        });
        let observation = Observation {
            at,
            subject: topology::SUBJECT.into(),
            instance: self.runtime.instance(),
            error: rl.error.clone(),
            nodes: redis.chain(limiters).collect(),
            facts: crate::subjects::Facts::of(Arc::new(rl)),
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        };
        Snapshot {
            observation,
            assessment,
        }
    }
}
