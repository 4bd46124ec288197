//! The etcd subject: three members of Debian's `etcd-server` (real Raft), how to run them
//! (`topology`), how to talk to them (`gateway`), how to look (`observe`) and what must hold
//! (`check`).

pub mod check;
pub mod config;
pub mod context;
pub mod demo;
pub mod faults;
pub mod gateway;
pub mod load;
pub mod membership;
pub mod observe;
pub mod policy;
pub mod topology;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use self::config::EtcdConfig;
use self::gateway::Gateway;
use self::observe::{EtcdObservation, Observer};
use crate::config::{Config, ConfigError};
use crate::runtime::local::LocalRuntime;
use crate::runtime::{ClusterPlan, Runtime, RuntimeError};
use crate::subjects::{
    InvariantInfo, NodeObservation, Observation, Snapshot, Subject, SubjectContext, SubjectKind,
};

/// Where the operator's own keys live (the load's, the oracle's): `reset` clears them.
pub const KEY_PREFIX: &str = "/operator/";

/// The registry's entry.
pub struct Etcd;

#[async_trait]
impl SubjectKind for Etcd {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn about(&self) -> &'static str {
        "an etcd cluster of three members (real Raft), from Debian's etcd-server"
    }

    fn build(
        &self,
        runtime: Arc<dyn Runtime>,
        config: &Config,
    ) -> Result<Box<dyn Subject>, ConfigError> {
        let cfg: EtcdConfig = config.section()?;
        Ok(Box::new(EtcdSubject::new(runtime, cfg)))
    }

    fn check_config(&self, config: &Config) -> Result<(), ConfigError> {
        config.section::<EtcdConfig>().map(drop)
    }

    fn plan(&self, runtime: &dyn Runtime, config: &Config) -> Result<ClusterPlan, RuntimeError> {
        let cfg: &EtcdConfig = &config.section()?;
        Ok(match runtime.kind() {
            "docker" => topology::plan_docker(
                cfg,
                &config.runtime.docker.toolbox_image,
                runtime.instance(),
                "new",
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
                    runtime.instance(),
                    "new",
                )
            }
        })
    }

    /// Members answer their clients only once a majority has formed a cluster: wait for
    /// every one of them to say it is healthy.
    async fn settle(&self, runtime: &dyn Runtime, _config: &Config) -> Result<(), String> {
        let t = runtime.topology().map_err(|e| e.to_string())?;
        let gateway = Gateway::new(Duration::from_secs(1));
        let settling = crate::subjects::launch::Settling::new(runtime, "etcd");
        loop {
            let mut waiting = Vec::new();
            for n in t.nodes.iter().filter(|n| n.role == topology::ROLE_MEMBER) {
                match gateway.status(&n.address).await {
                    Ok(s) if s.leader != 0 => {}
                    Ok(_) => waiting.push(format!("{} knows no leader yet", n.name)),
                    Err(e) => waiting.push(format!("{}: {e}", n.name)),
                }
            }
            if let Some(over) = settling.over(&waiting) {
                return over;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn demo(&self) -> &'static crate::subjects::DemoScript {
        &demo::SCRIPT
    }

    fn runbook(&self) -> &'static str {
        include_str!("../../../assets/runbooks/etcd.yaml")
    }

    fn consequences(&self) -> &'static [crate::invariant::Consequence] {
        check::CONSEQUENCES
    }

    fn words(&self) -> &'static dyn crate::policy::SubjectWords {
        &Etcd
    }

    fn faults(&self) -> &'static dyn crate::chaos::SubjectFaults {
        &Etcd
    }

    fn install_hint(&self, program: &str) -> Option<String> {
        (program == "etcd").then(|| {
            "Install etcd: `apt-get install etcd-server etcd-client` (Debian, Ubuntu; \
             `./scripts/setup.sh demo` does it), or set `etcd.etcd_bin` in the config."
                .into()
        })
    }

    async fn reset_node(&self, node: &str, runtime: &dyn Runtime) -> Result<String, String> {
        membership::reset(node, runtime).await
    }
}

/// What chaos is told of etcd: its own faults; any member may be drawn.
impl crate::chaos::SubjectFaults for Etcd {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn own(&self) -> &'static [crate::chaos::faults::SubjectFault] {
        &faults::FAULTS
    }
}

/// What the policy is told of etcd: `etcdctl`, its variables, and folders named after etcd.
impl crate::policy::SubjectWords for Etcd {
    fn name(&self) -> &'static str {
        topology::SUBJECT
    }

    fn classify_program(
        &self,
        program: &str,
        args: &[crate::policy::Arg],
    ) -> Option<crate::policy::ProgramVerdict> {
        match program {
            "etcdctl" => Some(policy::classify(args)),
            "etcd" => Some(policy::server(&crate::policy::known(args))),
            _ => None,
        }
    }

    fn data_words(&self) -> &'static [&'static str] {
        &["etcd"]
    }

    fn http_routes(&self) -> &'static [crate::policy::Route] {
        &policy::ROUTES
    }

    fn endpoint_variables(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("ETCDCTL_ENDPOINTS", "etcdctl"),
            ("ETCDCTL_DISCOVERY_SRV", "etcdctl"),
            ("ETCDCTL_CACERT", "etcdctl's TLS"),
            ("ETCDCTL_CERT", "etcdctl's TLS identity"),
            ("ETCDCTL_KEY", "etcdctl's TLS identity"),
        ]
    }
}

pub struct EtcdSubject {
    runtime: Arc<dyn Runtime>,
    cfg: EtcdConfig,
    rules: Vec<InvariantInfo>,
    observer: Observer,
}

impl EtcdSubject {
    pub fn new(runtime: Arc<dyn Runtime>, cfg: EtcdConfig) -> Self {
        Self {
            rules: check::catalogue(&cfg),
            observer: Observer::new(cfg.clone()),
            runtime,
            cfg,
        }
    }

    async fn look(&mut self) -> EtcdObservation {
        match self.runtime.topology() {
            Ok(t) if t.subject != topology::SUBJECT => EtcdObservation::failed(format!(
                "instance {} runs `{}`, not etcd",
                t.instance, t.subject
            )),
            Ok(t) => {
                // Each member's volume, beside the probes: free where the engine mounts it
                // on this machine.
                let runtime = &self.runtime;
                let disks = futures::future::join_all(
                    t.nodes
                        .iter()
                        .filter(|n| n.role == topology::ROLE_MEMBER)
                        .map(
                            |n| async move { (n.name.clone(), runtime.disk_usage(&n.name).await) },
                        ),
                );
                let (mut obs, disks) = tokio::join!(self.observer.observe(&t), disks);
                for (name, disk) in disks {
                    if let Some(m) = obs.members.iter_mut().find(|m| m.name == name) {
                        match disk {
                            Ok(d) => m.disk = d,
                            Err(e) => m.disk_error = Some(e.to_string()),
                        }
                    }
                }
                obs
            }
            Err(e) => EtcdObservation::failed(e.to_string()),
        }
    }

    fn record_path(&self) -> std::path::PathBuf {
        self.runtime.instance_dir().join(load::RECORD_FILE)
    }

    /// The members' addresses: as clients reach them (`clients`), else as the monitor does.
    fn member_addresses(&self, clients: bool) -> Result<Vec<String>, String> {
        let t = self.runtime.topology().map_err(|e| e.to_string())?;
        Ok(t.nodes
            .iter()
            .filter(|n| n.role == topology::ROLE_MEMBER)
            .map(|n| {
                if clients {
                    n.client_address().to_string()
                } else {
                    n.address.clone()
                }
            })
            .collect())
    }

    /// The address of a member that answers with a leader, waiting up to `within`.
    async fn serving_member(&self, within: Duration) -> Result<String, String> {
        let t = self.runtime.topology().map_err(|e| e.to_string())?;
        let gateway = Gateway::new(Duration::from_secs(1));
        let deadline = Instant::now() + within;
        loop {
            for n in t.nodes.iter().filter(|n| n.role == topology::ROLE_MEMBER) {
                if gateway
                    .status(&n.address)
                    .await
                    .is_ok_and(|s| s.leader != 0)
                {
                    return Ok(n.address.clone());
                }
            }
            if Instant::now() >= deadline {
                return Err("no member answers with a leader".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[async_trait]
impl Subject for EtcdSubject {
    fn name(&self) -> &str {
        topology::SUBJECT
    }

    fn kind(&self) -> &'static dyn SubjectKind {
        &Etcd
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
        let w = load::KvWorkload::new(
            self.member_addresses(true)?,
            options.keys,
            self.record_path(),
        )
        .await?;
        Ok(Arc::new(w))
    }

    async fn load_spec(&mut self) -> Option<crate::load::LoadSpec> {
        // Ten requests a second over 20 keys: a few hundred bytes a second, which the
        // members' auto-compaction keeps far below the quota.
        let options = crate::load::LoadOptions {
            keys: 20,
            limit: None,
        };
        Some(crate::load::LoadSpec {
            workload: self.workload(&options).await.ok()?,
            rate: 10,
            duration: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(2),
        })
    }

    async fn verify_load(&mut self) -> Option<Result<crate::subjects::LoadVerdict, String>> {
        let members = match self.member_addresses(false) {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        let gateway = Gateway::new(Duration::from_secs(5));
        // A cluster just healed may still be electing: ask again for a few seconds.
        let mut tries = 0;
        loop {
            tries += 1;
            match load::verify(&gateway, &members, &self.record_path()).await {
                Err(e) if tries < 5 && e.starts_with("no member answered") => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                answer => return Some(answer),
            }
        }
    }

    #[tracing::instrument(skip_all, fields(subject = topology::SUBJECT, instance = self.runtime.instance()))]
    async fn reset(&mut self) -> Result<String, String> {
        let mut did = crate::runtime::bring_back(self.runtime.as_ref(), None).await?;
        let address = self.serving_member(Duration::from_secs(15)).await?;
        let t = self.runtime.topology().map_err(|e| e.to_string())?;
        let gateway = Gateway::new(Duration::from_secs(10));
        let members = gateway.members(&address).await.map_err(|e| e.to_string())?;
        let expected: Vec<&str> = t
            .nodes
            .iter()
            .filter(|n| n.role == topology::ROLE_MEMBER)
            .map(|n| n.name.as_str())
            .collect();
        let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        if names != expected {
            return Err(format!(
                "the member list is {names:?}, not {expected:?}: the cluster must be made again"
            ));
        }
        // The load's record speaks of the keys about to be deleted: it goes first, so that a
        // crash in between leaves no record of writes that are gone on purpose.
        let record = self.record_path();
        tokio::task::spawn_blocking(move || match std::fs::remove_file(&record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove {}: {e}", record.display()))
            }
            _ => Ok(()),
        })
        .await
        .map_err(|e| e.to_string())??;
        let deleted = gateway
            .delete_prefix(&address, KEY_PREFIX)
            .await
            .map_err(|e| format!("cannot delete the operator's keys: {e}"))?;
        did.push(format!("deleted {deleted} keys under {KEY_PREFIX}"));
        // Reclaim what an earlier trial may have filled: compact, defragment, disarm.
        let s = gateway.status(&address).await.map_err(|e| e.to_string())?;
        match gateway.compact(&address, s.header.revision).await {
            Ok(()) => {}
            // Already compacted to there.
            Err(gateway::GatewayError::Answered { code: Some(11), .. }) => {}
            Err(e) => return Err(format!("cannot compact: {e}")),
        }
        // Defragmenting stalls a member's writes for a moment, which the next trial would
        // see as slow commits: only where a backend has grown past a quarter of its quota.
        let mut defragmented = Vec::new();
        for n in t.nodes.iter().filter(|n| n.role == topology::ROLE_MEMBER) {
            let grown = gateway
                .status(&n.address)
                .await
                .map_err(|e| format!("cannot ask {}: {e}", n.name))?
                .db_size
                > self.cfg.quota_backend_bytes / 4;
            if grown {
                gateway
                    .defragment(&n.address)
                    .await
                    .map_err(|e| format!("cannot defragment {}: {e}", n.name))?;
                defragmented.push(n.name.as_str());
            }
        }
        did.push(if defragmented.is_empty() {
            "compacted".to_string()
        } else {
            format!("compacted, and defragmented {}", defragmented.join(", "))
        });
        let disarmed = gateway
            .disarm_all(&address)
            .await
            .map_err(|e| format!("cannot disarm the alarms: {e}"))?;
        if !disarmed.is_empty() {
            did.push(format!("disarmed {}", disarmed.join(", ")));
        }
        Ok(did.join("; "))
    }

    #[tracing::instrument(skip_all, fields(subject = topology::SUBJECT, instance = self.runtime.instance()))]
    async fn observe(&mut self) -> Snapshot {
        let at = crate::clock::now();
        let start = Instant::now();
        let obs = self.look().await;
        let assessment = check::assess(&obs, &self.cfg, &self.rules);
        let observation = Observation {
            at,
            subject: topology::SUBJECT.into(),
            instance: self.runtime.instance(),
            error: obs.error.clone(),
            nodes: obs
                .members
                .iter()
                .map(|m| NodeObservation {
                    name: m.name.clone(),
                    role: topology::ROLE_MEMBER.into(),
                    address: m.address.clone(),
                    state: m.state,
                    detail: m.detail.clone(),
                    probe_ms: m.probe_ms,
                })
                .collect(),
            facts: crate::subjects::Facts::of(Arc::new(obs)),
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        };
        Snapshot {
            observation,
            assessment,
        }
    }
}
