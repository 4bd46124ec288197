//! The local sandbox of the agent's commands: bubblewrap, with a file system of only what
//! commands need (read-only), the instance's logs read-only, one writable scratch folder, new
//! PID, IPC and UTS namespaces, a session of its own, no capabilities, a seccomp filter
//! ([`seccomp`]) and, where the operator runs as root, the command itself as `nobody` (root
//! without capabilities still owns root's files and the kernel's writable settings). The operator's own verbs reach the cluster
//! through a socket this process serves ([`server`]); a command that may change something
//! carries a token minted for it alone ([`Grants`]).

pub mod grants;
pub mod plan;
pub mod protocol;
pub mod seccomp;
pub mod server;
pub mod verbs;

pub use grants::{Grants, Token};
pub use plan::{Plan, RunAs, SOCKET_INSIDE, keep_open_across_exec, probe};

use self::protocol::SOCKET_VAR;
use self::server::{Host, Served, serve};
use crate::policy::Class;

/// The sandbox of a local executor: its plan, the tokens of the commands running, and the
/// verb socket, served from the first command on.
#[derive(Debug)]
pub struct Sandboxed {
    pub plan: Plan,
    grants: Grants,
    host: Host,
    served: tokio::sync::Mutex<Option<Served>>,
}

impl Sandboxed {
    /// The sandbox of `plan`, its verbs run as `host` says.
    pub fn new(plan: Plan, host: Host) -> Self {
        Self {
            plan,
            grants: Grants::default(),
            host,
            served: tokio::sync::Mutex::new(None),
        }
    }

    /// A token for one command allowed at `class` (none for a read-only one).
    pub fn mint(&self, class: Class) -> Option<Token> {
        self.grants.mint(class)
    }

    /// Makes the folders the plan binds (`down` removes them with the instance's folder) and
    /// serves the verb socket if it is not served (first command, or `down` removed it).
    pub async fn ensure_served(&self) -> Result<(), String> {
        self.plan
            .prepare()
            .map_err(|e| format!("{}: {e}", self.plan.cwd.display()))?;
        let mut served = self.served.lock().await;
        if served.as_ref().is_some_and(Served::alive) {
            return Ok(());
        }
        *served = None;
        let s = serve(
            &self.plan.socket,
            self.host.clone(),
            self.grants.clone(),
            self.plan.run_as,
        )
        .map_err(|e| {
            format!(
                "cannot serve the operator's verbs at {}: {e}",
                self.plan.socket.display()
            )
        })?;
        *served = Some(s);
        Ok(())
    }

    /// The environment inside: no state dir, DB or config; the socket instead.
    pub fn env(&self, host: &[(String, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = host
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "OPERATOR_STATE_DIR"
                        | "OPERATOR_DB"
                        | "OPERATOR_CONFIG"
                        | "DOCKER_HOST"
                        | "HOME"
                        | "PATH"
                )
            })
            .cloned()
            .collect();
        // The system's folders, after the operator's: the caller's own PATH names folders
        // that are not there.
        let path = self
            .plan
            .exe_dir
            .iter()
            .map(|d| d.display().to_string())
            .chain(
                [
                    "/usr/local/bin",
                    "/usr/bin",
                    "/bin",
                    "/usr/local/sbin",
                    "/usr/sbin",
                    "/sbin",
                ]
                .map(String::from),
            )
            .collect::<Vec<_>>()
            .join(":");
        env.push(("PATH".into(), path));
        env.push(("HOME".into(), self.plan.scratch.display().to_string()));
        env.push((SOCKET_VAR.into(), SOCKET_INSIDE.into()));
        env
    }
}
