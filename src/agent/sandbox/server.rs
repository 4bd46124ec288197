//! The verb socket: the agent's process serves the operator's verbs to the commands in its
//! sandbox, as the Docker API proxy serves `docker` to the toolbox. A call is read strictly
//! ([`super::verbs`]), one that changes something needs its command's token, and the call
//! runs here, outside the sandbox, as the operator with this instance's state: so nodes are
//! started by the agent's process, never inside a sandbox that ends with its command.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::{Instrument, info_span, warn};

use super::grants::Grants;
use super::plan::RunAs;
use super::protocol::{Answer, Request};
use super::verbs::call_of;
use crate::agent::output::Drained;

/// Longest request read: a call is a few words.
const MAX_REQUEST: u64 = 64 * 1024;
/// Longest a call may run (a node's start waits for its health).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Calls run at once: each is an operator process on this machine, outside the sandbox, so a
/// command cannot start hundreds.
const AT_ONCE: usize = 4;

/// What the socket runs a call with: the operator binary and the environment today's
/// unsandboxed commands have (this instance's state dir, DB and config).
#[derive(Debug, Clone)]
pub struct Host {
    pub operator: PathBuf,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub output_limit: usize,
}

/// A served socket; it stops serving and is removed when dropped.
#[derive(Debug)]
pub struct Served {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it still serves at its path (an `operator down` may have removed it).
    pub fn alive(&self) -> bool {
        !self.task.is_finished() && is_socket(&self.path)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// Serves at `path` (replacing whatever is there), readable only by `run_as` (the user
/// commands run as) or this user.
pub fn serve(
    path: &Path,
    host: Host,
    grants: Grants,
    run_as: Option<RunAs>,
) -> std::io::Result<Served> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    if let Some(u) = run_as {
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(u.uid)),
            Some(nix::unistd::Gid::from_raw(u.gid)),
        )?;
    }
    let span = info_span!("verb_socket", path = %path.display());
    let at_once = Arc::new(Semaphore::new(AT_ONCE));
    let task = tokio::spawn(
        async move {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, "the verb socket stopped accepting");
                        return;
                    }
                };
                let host = host.clone();
                let grants = grants.clone();
                let at_once = at_once.clone();
                tokio::spawn(async move {
                    if let Err(e) = answer(stream, &host, &grants, &at_once).await {
                        warn!(error = %e, "a verb call failed");
                    }
                });
            }
        }
        .instrument(span),
    );
    Ok(Served {
        path: path.to_path_buf(),
        task,
    })
}

async fn answer(
    stream: UnixStream,
    host: &Host,
    grants: &Grants,
    at_once: &Semaphore,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::other("no request within 5s"))??;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(req) => {
            let Ok(_turn) = at_once.acquire().await else {
                return Ok(());
            };
            // A client that goes away (its command ended or was killed) ends its call: the
            // operator process is killed with the future that waits on it.
            tokio::select! {
                reply = run(&req, host, grants) => reply,
                () = gone(&mut reader) => return Ok(()),
            }
        }
        Err(e) => refused(format!("not a request: {e}")),
    };
    let mut out = serde_json::to_vec(&reply)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

/// Returns when the client has closed its end: it sends nothing after its request.
async fn gone(reader: &mut (impl tokio::io::AsyncRead + Unpin)) {
    let mut byte = [0u8; 64];
    while let Ok(n) = reader.read(&mut byte).await {
        if n == 0 {
            return;
        }
    }
}

fn refused(why: String) -> Answer {
    Answer {
        stdout: String::new(),
        stderr: format!("error: {why}\n"),
        code: 2,
    }
}

/// One call: read, checked against the command's token, run as the operator here.
async fn run(req: &Request, host: &Host, grants: &Grants) -> Answer {
    let call = match call_of(&req.argv) {
        Ok(c) => c,
        Err(e) => return refused(e.to_string()),
    };
    if !grants.allows(req.token.as_deref(), call.class) {
        return refused(format!(
            "`operator {}` {} the cluster: only a command the agent allowed at that level (and a person, where the mode asks one) may, and this one carries no token for it",
            req.argv.join(" "),
            if call.class == crate::policy::Class::Mutating {
                "changes"
            } else {
                "takes something out of"
            }
        ));
    }
    tracing::info!(call = %call.argv.join(" "), class = call.class.as_str(), "verb call");
    let mut cmd = tokio::process::Command::new(&host.operator);
    cmd.args(&call.argv)
        .env_clear()
        .envs(host.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(&host.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return refused(format!("cannot run {}: {e}", host.operator.display())),
    };
    let drained = Drained::start(&mut child, host.output_limit);
    let code = match tokio::time::timeout(CALL_TIMEOUT, child.wait()).await {
        Ok(Ok(s)) => s.code().unwrap_or(1),
        Ok(Err(e)) => return refused(format!("the call failed: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            124
        }
    };
    let ((stdout, stderr), _) = drained.finish(Duration::from_secs(2)).await;
    Answer {
        stdout,
        stderr,
        code,
    }
}
