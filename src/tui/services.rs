//! The app's services, one tokio task per concern: terminal events, ticks, signals, the
//! monitor, the agent, the DB watcher, load, chaos. They talk to the app only by messages,
//! and do the effects `update` asks for — never blocking the UI.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{self, Sender};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::msg::{Effect, Msg};
use crate::agent::approval::{ChannelApprover, Question};
use crate::agent::local::LocalAgent;
use crate::agent::variant::Variant;
use crate::chaos::{Chaos, FaultKind};
use crate::config::{AgentConfig, Config};
use crate::load::{self, LoadOptions, LoadSpec};
use crate::monitor::Monitor;
use crate::paths::StateDir;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{Store, StoreError};
use crate::subjects::launch;
use crate::tickets::TicketFilter;

/// What the services need, shared by their tasks.
pub struct Context {
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub state: StateDir,
    pub db: PathBuf,
    pub instance: u32,
    pub subject: String,
    /// The subject, looked up once by the CLI.
    pub kind: &'static dyn crate::subjects::SubjectKind,
    pub runtime: Arc<dyn Runtime>,
    pub store: Store,
    pub agent: AgentConfig,
    pub variant: Option<Variant>,
}

pub struct Services {
    ctx: Arc<Context>,
    tx: Sender<Msg>,
    stop: CancellationToken,
    chaos: Arc<Chaos>,
    load: Option<CancellationToken>,
    guidance: Option<mpsc::UnboundedSender<String>>,
}

/// How many messages wait for the app at most. A sender that can wait (a key, an approval,
/// a DB read) waits for room; nothing is dropped.
pub const MSG_QUEUE: usize = 32;

/// Sends to the app from code that cannot wait: the UI's own path, or a callback that is not
/// async (the monitor's report, the load's figures). When the queue is full the message goes
/// to a task that waits for room, so it is delayed, never dropped.
fn post(tx: &Sender<Msg>, msg: Msg) {
    if let Err(TrySendError::Full(msg)) = tx.try_send(msg) {
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(msg).await;
        });
    }
}

/// How often the DB is checked for other processes' writes.
const DB_POLL: Duration = Duration::from_millis(300);

impl Services {
    pub fn new(ctx: Context, tx: Sender<Msg>) -> Self {
        let chaos = Arc::new(Chaos::new(
            ctx.store.clone(),
            ctx.runtime.clone(),
            ctx.kind.faults(),
            ctx.config.chaos.durations.clone(),
            "tui",
        ));
        Self {
            ctx: Arc::new(ctx),
            tx,
            stop: CancellationToken::new(),
            chaos,
            load: None,
            guidance: None,
        }
    }

    pub fn stop(&self) {
        self.stop.cancel();
        if let Some(l) = &self.load {
            l.cancel();
        }
    }

    /// Keys, mouse, paste and resizes from the terminal.
    pub fn terminal(&self) {
        let (tx, stop) = (self.tx.clone(), self.stop.clone());
        tokio::spawn(async move {
            let mut events = EventStream::new();
            loop {
                let ev = tokio::select! {
                    _ = stop.cancelled() => break,
                    ev = events.next() => ev,
                };
                let msg = match ev {
                    Some(Ok(Event::Key(k))) => Msg::Key(k),
                    Some(Ok(Event::Mouse(m))) => Msg::Mouse(m),
                    Some(Ok(Event::Paste(p))) => Msg::Paste(p),
                    Some(Ok(Event::Resize(w, h))) => Msg::Resize(w, h),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        warn!(error = %e, "terminal input failed");
                        break;
                    }
                    None => break,
                };
                if tx.send(msg).await.is_err() {
                    break;
                }
            }
        });
    }

    /// A tick a second, and SIGTERM / SIGINT.
    pub fn clock_and_signals(&self) {
        let (tx, stop) = (self.tx.clone(), self.stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => Msg::Tick,
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => Msg::Terminate,
                    _ = tokio::signal::ctrl_c() => Msg::Terminate,
                };
                if tx.send(msg).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Brings the cluster up if it is not (and says so), then starts the loops.
    pub fn start(&mut self) {
        let up = self.ctx.runtime.topology().is_ok();
        if up {
            self.loops();
            return;
        }
        post(
            &self.tx,
            Msg::ClusterUp(Ok(format!(
                "instance {} was down: starting it",
                self.ctx.instance
            ))),
        );
        self.bring_up();
    }

    fn bring_up(&mut self) {
        let (ctx, tx) = (self.ctx.clone(), self.tx.clone());
        let start_loops = self.loops_starter();
        tokio::spawn(async move {
            match launch::up(ctx.kind, ctx.runtime.as_ref(), &ctx.config).await {
                Ok(r) => {
                    let names: Vec<String> = r.nodes.iter().map(|n| n.name.clone()).collect();
                    let _ = tx
                        .send(Msg::ClusterUp(Ok(format!("started {}", names.join(", ")))))
                        .await;
                    start_loops();
                }
                Err(e) => {
                    let _ = tx.send(Msg::ClusterUp(Err(e.to_string()))).await;
                }
            }
        });
    }

    /// A closure that starts the loops, for tasks that decide when.
    fn loops_starter(&mut self) -> impl FnOnce() + Send + 'static {
        let (guidance_tx, guidance_rx) = mpsc::unbounded_channel();
        self.guidance = Some(guidance_tx);
        let (ctx, tx, stop) = (self.ctx.clone(), self.tx.clone(), self.stop.clone());
        move || start_loops(ctx, tx, stop, guidance_rx)
    }

    fn loops(&mut self) {
        (self.loops_starter())();
    }

    /// Does what `update` asked for.
    pub fn perform(&mut self, e: Effect) {
        let tx = self.tx.clone();
        match e {
            Effect::Inject { fault, target } => {
                let chaos = self.chaos.clone();
                tokio::spawn(async move {
                    let r = chaos.inject(fault, Some(&target), None).await;
                    let _ = tx
                        .send(Msg::Chaos(
                            r.map(|f| {
                                format!("fault #{} injected: {} on {}", f.id, f.fault, f.target)
                            })
                            .map_err(|e| e.to_string()),
                        ))
                        .await;
                });
            }
            Effect::DemoInject => {
                let chaos = self.chaos.clone();
                tokio::spawn(async move {
                    match chaos
                        .inject(FaultKind::NodeKill, None, Some(Duration::ZERO))
                        .await
                    {
                        Ok(f) => {
                            let _ = tx
                                .send(Msg::Chaos(Ok(format!(
                                    "fault #{} injected: {} on {}",
                                    f.id, f.fault, f.target
                                ))))
                                .await;
                            let _ = tx.send(Msg::DemoFault(Box::new(f))).await;
                        }
                        Err(e) => {
                            let _ = tx.send(Msg::Chaos(Err(e.to_string()))).await;
                        }
                    }
                });
            }
            Effect::Heal(id) => {
                let chaos = self.chaos.clone();
                tokio::spawn(async move {
                    let r = chaos.heal(id).await;
                    let _ = tx
                        .send(Msg::Chaos(
                            r.map(|h| format!("fault #{} healed: {}", h.fault.id, h.fault.note))
                                .map_err(|e| e.to_string()),
                        ))
                        .await;
                });
            }
            Effect::HealAll => {
                let chaos = self.chaos.clone();
                tokio::spawn(async move {
                    let r = chaos.heal_all().await;
                    let _ = tx
                        .send(Msg::Chaos(
                            r.map(|h| format!("{} fault(s) healed", h.len()))
                                .map_err(|e| e.to_string()),
                        ))
                        .await;
                });
            }
            Effect::Answer { reply, answer } => {
                let _ = reply.send(answer);
            }
            Effect::Guidance(text) => match &self.guidance {
                Some(g) => {
                    let _ = g.send(text);
                }
                None => {
                    post(
                        &tx,
                        Msg::AgentDown("no agent is running to take guidance".into()),
                    );
                }
            },
            Effect::LoadTicketDetail(id) => {
                let store = self.ctx.store.clone();
                tokio::spawn(async move {
                    let r = store
                        .call(move |db| Ok((db.ticket_events(id)?, db.sessions(Some(id), 20)?)))
                        .await;
                    if let Ok((events, sessions)) = r {
                        let _ = tx
                            .send(Msg::TicketDetail {
                                ticket_id: id,
                                events,
                                sessions,
                            })
                            .await;
                    }
                });
            }
            Effect::StartLoad { rate } => {
                if self.load.is_some() {
                    return;
                }
                let stop = self.stop.child_token();
                self.load = Some(stop.clone());
                let ctx = self.ctx.clone();
                tokio::spawn(async move {
                    let options = LoadOptions {
                        keys: 20,
                        limit: None,
                    };
                    let workload = match crate::subjects::registry::build(
                        &ctx.subject,
                        ctx.runtime.clone(),
                        &ctx.config,
                    ) {
                        Ok(mut subject) => subject.workload(&options).await,
                        Err(e) => Err(e),
                    };
                    let workload = match workload {
                        Ok(w) => w,
                        Err(e) => {
                            let _ = tx.send(Msg::Chaos(Err(format!("no load: {e}")))).await;
                            let _ = tx.send(Msg::LoadStopped).await;
                            return;
                        }
                    };
                    let spec = LoadSpec {
                        workload,
                        rate,
                        duration: Duration::from_secs(24 * 3600),
                        timeout: Duration::from_secs(2),
                    };
                    let t2 = tx.clone();
                    load::run(spec, stop, move |s| {
                        post(&t2, Msg::Load(s.clone()));
                    })
                    .await;
                    let _ = tx.send(Msg::LoadStopped).await;
                });
            }
            Effect::StopLoad => {
                if let Some(l) = self.load.take() {
                    l.cancel();
                }
            }
            Effect::RetryClusterUp => self.bring_up(),
            Effect::StartCampaign(file) => {
                let ctx = self.ctx.clone();
                tokio::spawn(async move {
                    let started = tokio::task::spawn_blocking(move || start_campaign(&ctx, &file))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                    let _ = tx.send(Msg::Chaos(started)).await;
                });
            }
            Effect::StopCampaign(id) => {
                let store = self.ctx.store.clone();
                tokio::spawn(async move {
                    let r = store.call(move |db| db.request_stop(id)).await;
                    let _ = tx
                        .send(Msg::Chaos(match r {
                            Ok(true) => Ok(format!("campaign #{id} is stopping")),
                            Ok(false) => Err(format!("campaign #{id} is not running")),
                            Err(e) => Err(e.to_string()),
                        }))
                        .await;
                });
            }
            Effect::LoadTrial(id) => {
                let store = self.ctx.store.clone();
                tokio::spawn(async move {
                    let r = store
                        .call(move |db| {
                            let Some(trial) = db.trial(id)? else {
                                return Ok(None);
                            };
                            let events = db.trial_events(id)?;
                            let session = match trial.metrics.sessions.last() {
                                Some(sid) => db
                                    .session(*sid)?
                                    .map(|s| Ok::<_, StoreError>((db.entries(s.id, 0)?, s)))
                                    .transpose()?,
                                None => None,
                            };
                            Ok(Some((trial, events, session)))
                        })
                        .await;
                    if let Ok(Some((trial, events, session))) = r {
                        let session = session.map(|(entries, s)| {
                            let mut v = super::session_view::SessionView::from_session(&s, false);
                            for e in &entries {
                                v.apply(e);
                            }
                            v
                        });
                        let _ = tx
                            .send(Msg::Trial(Box::new(super::app::TrialTimeline {
                                trial,
                                events,
                                session,
                            })))
                            .await;
                    }
                });
            }
            Effect::Quit { heal, stop_cluster } => {
                let (chaos, runtime) = (self.chaos.clone(), self.ctx.runtime.clone());
                self.stop();
                tokio::spawn(async move {
                    if heal {
                        if let Err(e) = chaos.heal_all().await {
                            warn!(error = %e, "could not heal on quit");
                        }
                    }
                    if stop_cluster {
                        match runtime.down().await {
                            Ok(_) | Err(RuntimeError::NotUp { .. }) => {}
                            Err(e) => warn!(error = %e, "could not stop the cluster on quit"),
                        }
                    }
                    let _ = tx.send(Msg::Exit).await;
                });
            }
        }
    }
}

fn start_loops(
    ctx: Arc<Context>,
    tx: Sender<Msg>,
    stop: CancellationToken,
    guidance: mpsc::UnboundedReceiver<String>,
) {
    // The monitor.
    match crate::subjects::registry::build(&ctx.subject, ctx.runtime.clone(), &ctx.config) {
        Ok(subject) => {
            let monitor = Monitor::new(subject, ctx.store.clone(), &ctx.config.tickets)
                .with_events(ctx.runtime.events());
            let tx = tx.clone();
            tokio::spawn(
                monitor.run(ctx.config.monitor.interval, stop.clone(), move |r| {
                    post(
                        &tx,
                        match r {
                            Ok(report) => Msg::Cycle(Box::new(report)),
                            Err(e) => Msg::CycleFailed(e.to_string()),
                        },
                    );
                }),
            );
        }
        Err(e) => {
            post(&tx, Msg::CycleFailed(e));
        }
    }
    // The agent, asking the app for approvals.
    let (qtx, mut qrx) = mpsc::channel::<Question>(16);
    let (etx, mut erx) = mpsc::unbounded_channel();
    let agent = crate::subjects::registry::build(&ctx.subject, ctx.runtime.clone(), &ctx.config)
        .map_err(|e| e.to_string())
        .and_then(|subject| {
            LocalAgent {
                config: &ctx.agent,
                variant: ctx.variant.as_ref(),
                subject,
                runtime: ctx.runtime.clone(),
                store: ctx.store.clone(),
                state: &ctx.state,
                db: &ctx.db,
                instance: ctx.instance,
                config_path: ctx.config_path.clone(),
                approver: Arc::new(ChannelApprover::new(qtx)),
                events: Some(etx),
                guidance: Some(guidance),
            }
            .build()
            .map_err(|e| e.to_string())
        });
    match agent {
        Ok(mut agent) => {
            if let Some(why) = agent.deps.executor.unsandboxed() {
                post(&tx, Msg::Unsandboxed(why));
            }
            let stop = stop.clone();
            let down = tx.clone();
            tokio::spawn(async move {
                agent.run(stop, false).await;
                let _ = down.send(Msg::AgentDown("the agent stopped".into())).await;
            });
        }
        Err(e) => {
            post(&tx, Msg::AgentDown(e));
        }
    }
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some((req, reply)) = qrx.recv().await {
                let _ = tx.send(Msg::Approval(req, reply)).await;
            }
        });
    }
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(ev) = erx.recv().await {
                if tx.send(Msg::Agent(ev)).await.is_err() {
                    break;
                }
            }
        });
    }
    // Faults whose time is up heal, even ones another process injected.
    {
        let chaos = Chaos::new(
            ctx.store.clone(),
            ctx.runtime.clone(),
            ctx.kind.faults(),
            ctx.config.chaos.durations.clone(),
            "tui",
        );
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = chaos.sweep().await {
                            warn!(error = %e, "chaos sweep failed");
                        }
                    }
                }
            }
        });
    }
    tokio::spawn(watch_db(ctx, tx, stop));
}

/// The campaign files `r` can start: `campaigns/*.yaml` under the folder the app runs in.
fn campaign_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir("campaigns")
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Follows the DB: on every commit (by this process or another) sends what changed.
async fn watch_db(ctx: Arc<Context>, tx: Sender<Msg>, stop: CancellationToken) {
    // The store reads on a connection of its own, whose data_version moves with every commit
    // but its own reads: this process's writes as much as another's.
    let store = ctx.store.clone();
    let instance = ctx.instance;
    let mut last_version = None;
    let mut seen: HashMap<i64, i64> = HashMap::new();
    let mut tick = tokio::time::interval(DB_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let known = seen.clone();
        let last = last_version;
        let read = store
            .call(move |db| {
                let version = db.data_version()?;
                if Some(version) == last {
                    return Ok::<_, StoreError>(None);
                }
                let tickets = db.tickets(&TicketFilter {
                    limit: Some(500),
                    ..Default::default()
                })?;
                let mut faults = db.faults(Some(instance), false)?;
                faults.extend(
                    db.faults(Some(instance), true)?
                        .into_iter()
                        .filter(|f| !f.status.is_live())
                        .take(20),
                );
                let sessions = db.sessions(None, 50)?;
                let campaigns = db.campaigns(20)?;
                let mut trials = Vec::new();
                for c in &campaigns {
                    trials.push((c.id, db.trials(c.id)?));
                }
                // New steps of the sessions still running (and of the ones never read).
                let mut entries = Vec::new();
                for s in sessions.iter().take(10) {
                    let after = known.get(&s.id).copied().unwrap_or(0);
                    if s.outcome.is_none() || !known.contains_key(&s.id) {
                        let new = db.entries(s.id, after)?;
                        if !new.is_empty() || !known.contains_key(&s.id) {
                            entries.push((s.id, new));
                        }
                    }
                }
                Ok(Some((
                    version,
                    tickets,
                    faults,
                    sessions,
                    entries,
                    (campaigns, trials, campaign_files()),
                )))
            })
            .await;
        match read {
            Ok(Some((version, tickets, faults, sessions, entries, (list, trials, files)))) => {
                last_version = Some(version);
                if tx
                    .send(Msg::Campaigns {
                        list,
                        trials,
                        files,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
                if tx
                    .send(Msg::Db {
                        tickets,
                        faults,
                        sessions,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
                for (session, list) in entries {
                    let top = list.last().map_or(0, |e| e.seq);
                    let e = seen.entry(session).or_insert(0);
                    *e = (*e).max(top);
                    if !list.is_empty() {
                        let _ = tx
                            .send(Msg::Entries {
                                session,
                                entries: list,
                            })
                            .await;
                    }
                }
            }
            Ok(None) => {}
            // Shown in the app; the next tick tries again.
            Err(e) => {
                let _ = tx
                    .send(Msg::CycleFailed(format!("reading the DB: {e}")))
                    .await;
            }
        }
    }
}

/// Runs `operator eval run campaign FILE` as a process of its own, on this app's config,
/// state and DB: the campaign goes on if the app quits, and shows here through the DB.
fn start_campaign(ctx: &Context, file: &str) -> Result<String, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the operator binary: {e}"))?;
    let logs = ctx.state.logs();
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let log_path = logs.join("campaign.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = std::process::Command::new(exe);
    if let Some(c) = &ctx.config_path {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("--state-dir")
        .arg(ctx.state.root())
        .arg("--db")
        .arg(&ctx.db)
        .args(["eval", "run", "campaign", file])
        .env_remove("OPERATOR_INSTANCE")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the campaign: {e}"))?;
    let pid = child.id();
    // Reaped when it ends, so that its pid does not linger as a zombie of the app's.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(format!(
        "campaign {file} started (pid {pid}; its log: {})",
        log_path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full queue delays what cannot wait; it never loses it, and what can wait waits.
    #[tokio::test]
    async fn a_full_queue_loses_nothing() {
        let (tx, mut rx) = mpsc::channel(2);
        for _ in 0..5 {
            post(&tx, Msg::Tick);
        }
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(Msg::Paste("a key".into())).await.is_ok() }
        });
        let mut got = 0;
        let mut paste = false;
        while got < 6 {
            match rx.recv().await {
                Some(Msg::Tick) => got += 1,
                Some(Msg::Paste(p)) => {
                    paste = p == "a key";
                    got += 1;
                }
                _ => panic!("only what was sent arrives"),
            }
        }
        assert!(paste && waiting.await.unwrap());
        assert!(rx.try_recv().is_err(), "nothing more");
    }
}
