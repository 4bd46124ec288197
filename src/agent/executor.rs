//! Where the agent's commands run: one trait, and for the local runtime a subprocess in a
//! process group of its own, with a cleared environment (no API keys, ever), the cluster's
//! state dir as working directory and `operator` on its PATH. Output is bounded (head and
//! tail) and a command that outlives its timeout is killed with everything it started.

use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::output::Drained;
use super::sandbox::protocol::TOKEN_VAR;
use super::sandbox::server::Host;
use super::sandbox::{Plan, Sandboxed, keep_open_across_exec, seccomp};
use crate::policy::Class;

/// What a command did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecOutput {
    /// None when killed by a signal (a timeout among them).
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration_ms: u64,
    pub timed_out: bool,
    /// Bytes left out of the middle of stdout and stderr.
    pub omitted_bytes: u64,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// The result as the model reads it.
    pub fn for_model(&self) -> String {
        let mut s = match (self.exit_code, self.signal, self.timed_out) {
            (_, _, true) => format!("timed out after {}ms and was killed", self.duration_ms),
            (Some(c), _, _) => format!("exit code {c}"),
            (None, Some(sig), _) => format!("killed by signal {sig}"),
            (None, None, _) => "ended".to_string(),
        };
        if !self.stdout.is_empty() {
            s.push_str("\nstdout:\n");
            s.push_str(self.stdout.trim_end());
        }
        if !self.stderr.is_empty() {
            s.push_str("\nstderr:\n");
            s.push_str(self.stderr.trim_end());
        }
        if self.stdout.is_empty() && self.stderr.is_empty() {
            s.push_str("\n(no output)");
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("cannot start the command: {0}")]
    Spawn(std::io::Error),
    #[error("the agent's sandbox is not available: {0}")]
    Sandbox(String),
}

#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs a shell command that the policy (and, where asked, a person) allowed at
    /// `grant`; a failing command is an `Ok` with its exit code. The grant bounds what the
    /// command may change through the operator's own verbs.
    async fn run(
        &self,
        command: &str,
        timeout: Duration,
        grant: Class,
    ) -> Result<ExecOutput, ExecError>;
    /// Why commands run without a sandbox, where they do: the app's header and every
    /// audited step say so.
    fn unsandboxed(&self) -> Option<String> {
        None
    }
    /// Where and how commands run, for the prompt and the audit.
    fn describe(&self) -> String;
    /// The Docker endpoint commands' `docker` reaches when they name none (`DOCKER_HOST`),
    /// or `None` for the client's default.
    fn docker_host(&self) -> Option<String>;
}

/// The shell the command runs under: it leads the command's process group and waits for it;
/// told that the agent died (the kernel sends it SIGTERM, `PR_SET_PDEATHSIG`), it kills the
/// whole group, so no command an agent started outlives the agent, even one killed with
/// SIGKILL. `wait` gives the command's own status. `$0` is the shell, `$1` the command.
/// The memory each process of a command may take (its data: heap and private writable
/// mappings), inherited by all it starts. A reader allowed to run unasked can still build a
/// string that doubles (`awk 'BEGIN{s="x"; for(;;) s=s s}'`): it fails at this bound instead
/// of taking the host's memory. RLIMIT_DATA, not RLIMIT_AS: Go clients (etcdctl, docker)
/// reserve large address ranges they never use, and those are not counted here. In the
/// sandbox the command cannot raise it (no CAP_SYS_RESOURCE).
pub const COMMAND_MEMORY: u64 = 1 << 30;

const GUARD_BASH: &str = r#"trap 'kill -KILL 0' TERM; "$0" --noprofile --norc -c "$1" & wait $!"#;
const GUARD_SH: &str = r#"trap 'kill -KILL 0' TERM; "$0" -c "$1" & wait $!"#;

/// Kills a process group when dropped.
struct KillGroup(Pid);

impl Drop for KillGroup {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

/// Runs commands as local subprocesses, in bubblewrap's sandbox where it has one.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    cwd: PathBuf,
    env: Vec<(String, String)>,
    /// Bytes kept at each end of stdout and of stderr.
    limit: usize,
    shell: PathBuf,
    sandbox: Option<Arc<Sandboxed>>,
    /// Why there is no sandbox, when one was wanted.
    unsandboxed: Option<String>,
}

/// The folders holding the `operator` binary beside this one (test binaries live in
/// `target/*/deps`, `operator` one folder up), first the nearest, each without `..`.
pub fn operator_dirs() -> Vec<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    exe_dir
        .iter()
        .flat_map(|d| [d.clone(), d.join("..")])
        .filter(|d| d.join("operator").is_file())
        .map(|d| d.canonicalize().unwrap_or(d))
        .collect()
}

/// What the environment of the agent's commands is made of: nothing else gets in.
pub struct LocalEnv<'a> {
    pub cwd: &'a Path,
    pub state_dir: &'a Path,
    pub db: &'a Path,
    pub instance: u32,
    pub config: Option<&'a Path>,
    pub output_limit: usize,
}

impl LocalExecutor {
    pub fn new(e: LocalEnv) -> Self {
        let op_dirs = operator_dirs();
        let system =
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let path = op_dirs
            .iter()
            .map(|d| d.display().to_string())
            .chain(std::iter::once(system))
            .collect::<Vec<_>>()
            .join(":");
        let mut env = vec![
            ("PATH".to_string(), path),
            ("HOME".to_string(), e.cwd.display().to_string()),
            ("LANG".to_string(), "C.UTF-8".to_string()),
            ("TERM".to_string(), "dumb".to_string()),
            ("NO_COLOR".to_string(), "1".to_string()),
            (
                "OPERATOR_STATE_DIR".to_string(),
                e.state_dir.display().to_string(),
            ),
            ("OPERATOR_DB".to_string(), e.db.display().to_string()),
            ("OPERATOR_INSTANCE".to_string(), e.instance.to_string()),
        ];
        if let Some(c) = e.config {
            env.push(("OPERATOR_CONFIG".to_string(), c.display().to_string()));
        }
        // Where `docker` goes is no secret, and no more than it reaches by default: in a
        // containerized agent, the operator's filtering proxy.
        if let Ok(h) = std::env::var("DOCKER_HOST") {
            env.push(("DOCKER_HOST".to_string(), h));
        }
        let shell = ["/bin/bash", "/usr/bin/bash"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("/bin/sh"));
        Self {
            cwd: e.cwd.to_path_buf(),
            env,
            limit: e.output_limit,
            shell,
            sandbox: None,
            unsandboxed: None,
        }
    }

    /// The same executor, every command in bubblewrap's sandbox of `plan`, the operator's
    /// verbs served to it over the plan's socket.
    pub fn sandboxed(mut self, plan: Plan) -> Self {
        let operator = operator_dirs()
            .first()
            .map(|d| d.join("operator"))
            .unwrap_or_else(|| PathBuf::from("operator"));
        let host = Host {
            operator,
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            output_limit: self.limit,
        };
        self.sandbox = Some(Arc::new(Sandboxed::new(plan, host)));
        self
    }

    /// The same executor, saying why its commands run unsandboxed.
    pub fn unsandboxed_because(mut self, why: String) -> Self {
        self.unsandboxed = Some(why);
        self
    }

    /// The environment commands get (for tests and the audit).
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
}

#[async_trait]
impl Executor for LocalExecutor {
    #[instrument(skip(self), fields(timeout_ms = timeout.as_millis() as u64, sandboxed = self.sandbox.is_some()))]
    async fn run(
        &self,
        command: &str,
        timeout: Duration,
        grant: Class,
    ) -> Result<ExecOutput, ExecError> {
        let start = Instant::now();
        let bash = self.shell.ends_with("bash");
        let mut shell: Vec<std::ffi::OsString> = vec![self.shell.clone().into()];
        if bash {
            shell.extend(["--noprofile".into(), "--norc".into()]);
        }
        // Revoked when the command ends.
        let mut _token = None;
        // The sandbox's seccomp program, open until bubblewrap has read it.
        let mut filter = None;
        let mut cmd = match &self.sandbox {
            Some(s) => {
                s.ensure_served().await.map_err(ExecError::Sandbox)?;
                let mut env = s.env(&self.env);
                _token = s.mint(grant);
                if let Some(t) = &_token {
                    env.push((TOKEN_VAR.into(), t.token.clone()));
                }
                shell.extend(["-c".into(), command.into()]);
                filter = seccomp::memfd()
                    .map_err(|e| ExecError::Sandbox(format!("the seccomp filter: {e}")))?;
                let fd = filter.as_ref().map(AsRawFd::as_raw_fd);
                let mut cmd = tokio::process::Command::new(&s.plan.bwrap);
                keep_open_across_exec(cmd.as_std_mut(), fd);
                // bubblewrap is PID 1 of the command's namespace: when it goes, so does
                // everything the command started.
                cmd.args(s.plan.args(&shell, fd))
                    .env_clear()
                    .envs(env)
                    .current_dir("/");
                cmd
            }
            None => {
                let mut cmd = tokio::process::Command::new(&self.shell);
                cmd.args(&shell[1..])
                    .arg("-c")
                    .arg(if bash { GUARD_BASH } else { GUARD_SH })
                    .arg(&self.shell)
                    .arg(command)
                    .env_clear()
                    .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .current_dir(&self.cwd);
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let agent = nix::unistd::getpid().as_raw();
        // SAFETY: between fork and exec only async-signal-safe calls: setrlimit, prctl and
        // getppid.
        unsafe {
            cmd.pre_exec(move || {
                let memory = nix::libc::rlimit {
                    rlim_cur: COMMAND_MEMORY,
                    rlim_max: COMMAND_MEMORY,
                };
                if nix::libc::setrlimit(nix::libc::RLIMIT_DATA, &memory) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The agent may have died before the line above: then nobody would tell.
                if nix::libc::getppid() != agent {
                    return Err(std::io::Error::other("the agent is gone"));
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(ExecError::Spawn)?;
        drop(filter);
        let pgid = child.id().map(|p| Pid::from_raw(p as i32));
        // Dropped before the end (the session stopped): the whole group goes, not the guard.
        let _group = pgid.map(KillGroup);
        let drained = Drained::start(&mut child, self.limit);
        let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(s) => (s.ok(), false),
            Err(_) => {
                if let Some(g) = pgid {
                    let _ = killpg(g, Signal::SIGKILL);
                }
                (child.wait().await.ok(), true)
            }
        };
        // Whatever the command left running in its group goes too, so the pipes close.
        if let Some(g) = pgid {
            let _ = killpg(g, Signal::SIGKILL);
        }
        let ((stdout, stderr), omitted_bytes) = drained.finish(Duration::from_secs(2)).await;
        Ok(ExecOutput {
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stdout,
            stderr,
            duration_ms: start.elapsed().as_millis() as u64,
            timed_out,
            omitted_bytes,
        })
    }

    fn describe(&self) -> String {
        match (&self.sandbox, &self.unsandboxed) {
            (Some(_), _) => format!(
                "local subprocesses ({} -c) in bubblewrap's sandbox, in a view of {}: ./logs (read-only) and ./scratch (the one writable folder, with /tmp); `operator` reaches the cluster through the agent",
                self.shell.display(),
                self.cwd.display()
            ),
            (None, Some(why)) => format!(
                "local subprocesses ({} -c) in {}, UNSANDBOXED: {why}",
                self.shell.display(),
                self.cwd.display()
            ),
            (None, None) => format!(
                "local subprocesses ({} -c) in {}",
                self.shell.display(),
                self.cwd.display()
            ),
        }
    }

    fn unsandboxed(&self) -> Option<String> {
        self.unsandboxed.clone()
    }

    fn docker_host(&self) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == "DOCKER_HOST")
            .map(|(_, v)| v.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(dir: &Path, limit: usize) -> LocalExecutor {
        LocalExecutor::new(LocalEnv {
            cwd: dir,
            state_dir: dir,
            db: &dir.join("operator.db"),
            instance: 0,
            config: None,
            output_limit: limit,
        })
    }

    #[tokio::test]
    async fn runs_in_the_state_dir_with_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let e = exec(dir.path(), 8192);
        let o = e
            .run(
                "pwd; echo oops >&2; exit 3",
                Duration::from_secs(5),
                Class::ReadOnly,
            )
            .await
            .unwrap();
        assert_eq!(o.exit_code, Some(3));
        assert_eq!(o.stdout.trim(), dir.path().display().to_string());
        assert_eq!(o.stderr.trim(), "oops");
        assert!(o.for_model().starts_with("exit code 3"));
    }

    #[tokio::test]
    async fn a_command_sees_only_the_allowlisted_environment() {
        let dir = tempfile::tempdir().unwrap();
        let e = exec(dir.path(), 8192);
        let o = e
            .run("env", Duration::from_secs(5), Class::ReadOnly)
            .await
            .unwrap();
        let mut seen: Vec<&str> = o
            .stdout
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            // Variables the shell sets for itself.
            .filter(|k| !["PWD", "SHLVL", "_", "OLDPWD"].contains(k))
            .collect();
        seen.sort_unstable();
        let mut allowed: Vec<&str> = e.env().iter().map(|(k, _)| k.as_str()).collect();
        allowed.sort_unstable();
        assert_eq!(
            seen, allowed,
            "whatever else this process holds (API keys) stays out"
        );
        assert!(
            allowed
                .iter()
                .all(|k| !k.contains("KEY") && !k.contains("TOKEN"))
        );
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let e = exec(dir.path(), 8192);
        let marker = dir.path().join("child.pid");
        let cmd = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let o = e
            .run(&cmd, Duration::from_millis(500), Class::ReadOnly)
            .await
            .unwrap();
        assert!(o.timed_out);
        assert_eq!(o.exit_code, None);
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the group: it is gone too.
        std::thread::sleep(Duration::from_millis(100));
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false);
        assert!(!alive, "the grandchild survived the timeout");
    }

    #[tokio::test]
    async fn a_background_leftover_does_not_hold_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let e = exec(dir.path(), 8192);
        let t = Instant::now();
        let o = e
            .run(
                "sleep 30 & echo started",
                Duration::from_secs(10),
                Class::ReadOnly,
            )
            .await
            .unwrap();
        assert_eq!(o.exit_code, Some(0));
        assert_eq!(o.stdout.trim(), "started");
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    /// A reader allowed to run unasked that doubles a string fails at the command's memory
    /// bound, soon, instead of taking the host's memory; the bound is what the shell sees.
    #[tokio::test]
    async fn a_command_that_doubles_a_string_stops_at_its_memory_bound() {
        let dir = tempfile::tempdir().unwrap();
        let e = exec(dir.path(), 8192);
        let o = e
            .run(
                r#"awk 'BEGIN{s="x"; for(i=0;i<40;i++) s=s s; print length(s)}'"#,
                Duration::from_secs(60),
                Class::ReadOnly,
            )
            .await
            .unwrap();
        assert!(!o.success() && !o.timed_out, "{o:?}");
        assert!(o.stderr.to_lowercase().contains("memory"), "{o:?}");
        let o = e
            .run("ulimit -d", Duration::from_secs(5), Class::ReadOnly)
            .await
            .unwrap();
        assert_eq!(o.stdout.trim(), (COMMAND_MEMORY / 1024).to_string());
    }

    #[tokio::test]
    async fn big_output_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let e = exec(dir.path(), 1024);
        let o = e
            .run("seq 1 100000", Duration::from_secs(10), Class::ReadOnly)
            .await
            .unwrap();
        assert!(o.stdout.len() < 3000);
        assert!(o.omitted_bytes > 500_000);
        assert!(o.stdout.starts_with("1\n2\n"));
        assert!(o.stdout.trim_end().ends_with("100000"));
    }
}
