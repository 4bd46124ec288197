//! Detached processes: spawn in a session of their own, read their state from `/proc`,
//! signal their process group.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::runtime::{NodeSpec, RunState};

/// A process we started, identified by pid and kernel start time so a reused pid is not
/// mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start_ticks: u64,
}

impl ProcessId {
    /// The process's state, or `Exited` if it is gone, a zombie, or a different process
    /// now holds the pid.
    pub fn state(self) -> RunState {
        match read_stat(self.pid) {
            Some((state, ticks)) if ticks == self.start_ticks => match state {
                'Z' | 'X' | 'x' => RunState::Exited,
                'T' | 't' => RunState::Paused,
                _ => RunState::Running,
            },
            _ => RunState::Exited,
        }
    }

    pub fn is_alive(self) -> bool {
        self.state() != RunState::Exited
    }

    /// Signals the whole process group (the node and anything it started).
    pub fn signal(self, signal: Signal) -> nix::Result<()> {
        if !self.is_alive() {
            return Ok(());
        }
        killpg(Pid::from_raw(self.pid as i32), signal)
    }

    /// Waits until the process is gone; true if it went within `timeout`.
    pub async fn wait_gone(self, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s == RunState::Exited).await
    }

    /// Waits until the process's state satisfies `done`; true if it did within `timeout`.
    pub async fn wait_until(self, timeout: Duration, done: impl Fn(RunState) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if done(self.state()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `(state letter, start time in clock ticks)` from `/proc/PID/stat`.
/// Whether some live process holds `pid` (a zombie is dead: it only waits to be reaped), for
/// processes known by pid alone, such as another operator process recorded in the DB.
pub fn running(pid: u32) -> bool {
    read_stat(pid).is_some_and(|(state, _)| !matches!(state, 'Z' | 'X' | 'x'))
}

fn read_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces or parentheses itself.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state come ppid … ; starttime is field 22 of the line, the 20th after state.
    let ticks = fields.nth(18)?.parse().ok()?;
    Some((state, ticks))
}

/// Resolves a program name on `PATH`, or checks a path.
pub fn find_program(program: &Path) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.components().count() > 1 {
        return is_exec(program).then(|| program.to_path_buf());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| is_exec(p))
}

/// Starts `spec` detached: own session (so a terminal's Ctrl-C or hang-up does not reach
/// it), stdin closed, stdout and stderr appended to `log`, working in `workdir`, environment
/// cleared but for `PATH`, `HOME=workdir` and the spec's own variables.
pub fn spawn_detached(
    spec: &NodeSpec,
    program: &Path,
    log: &Path,
    workdir: &Path,
) -> std::io::Result<ProcessId> {
    let mut log_file = OpenOptions::new().create(true).append(true).open(log)?;
    writeln!(
        log_file,
        "--- {} started by operator at {} ---",
        spec.name,
        crate::clock::format(crate::clock::now())
    )?;
    let err_file: File = log_file.try_clone()?;
    let mut cmd = Command::new(program);
    cmd.args(&spec.args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.env("HOME", workdir)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id();
    // Reap the child if this process outlives it, so it never lingers as a zombie here.
    std::thread::spawn(move || child.wait());
    let start_ticks = (0..100)
        .find_map(|_| {
            read_stat(pid).map(|(_, t)| t).or_else(|| {
                std::thread::sleep(Duration::from_millis(1));
                None
            })
        })
        .ok_or_else(|| std::io::Error::other(format!("process {pid} vanished at start")))?;
    Ok(ProcessId { pid, start_ticks })
}

/// The last `lines` lines of a log file.
pub fn tail(path: &Path, lines: usize) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    // Enough bytes for the lines people ask for, without reading a huge log whole.
    let want = (lines as u64 * 512).clamp(4096, len.max(4096));
    f.seek(SeekFrom::Start(len.saturating_sub(want)))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    Ok(all[all.len().saturating_sub(lines)..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_does_not_run() {
        assert!(running(std::process::id()));
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(running(pid));
        nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
        // Dead but not reaped: a zombie, which signal 0 would still find.
        std::thread::sleep(Duration::from_millis(200));
        assert!(nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok());
        assert!(!running(pid));
        child.wait().unwrap();
        assert!(!running(pid));
    }

    #[test]
    fn own_process_is_running_and_a_wrong_start_time_is_not_us() {
        let pid = std::process::id();
        let (state, ticks) = read_stat(pid).unwrap();
        assert!(matches!(state, 'R' | 'S'));
        let me = ProcessId {
            pid,
            start_ticks: ticks,
        };
        assert_eq!(me.state(), RunState::Running);
        let impostor = ProcessId {
            pid,
            start_ticks: ticks + 1,
        };
        assert_eq!(impostor.state(), RunState::Exited);
    }

    #[test]
    fn finds_programs_on_path() {
        assert!(find_program(Path::new("sh")).is_some());
        assert!(find_program(Path::new("no-such-program-here")).is_none());
        assert!(find_program(Path::new("/bin/sh")).is_some());
    }

    #[test]
    fn tail_returns_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        assert_eq!(tail(&p, 2).unwrap(), "line 998\nline 999");
    }

    #[tokio::test]
    async fn detached_process_is_paused_resumed_and_killed() {
        let dir = tempfile::tempdir().unwrap();
        let spec = NodeSpec {
            install_hint: None,
            name: "sleeper".into(),
            role: "test".into(),
            host: "127.0.0.1".into(),
            port: 0,
            program: "sleep".into(),
            args: vec!["30".into()],
            env: vec![],
            health: crate::runtime::HealthCheck::RedisPing,
            client: None,
            image: None,
            data_dir: None,
            durable: false,
            files: Vec::new(),
        };
        let log = dir.path().join("sleeper.log");
        let sleep = find_program(Path::new("sleep")).unwrap();
        let id = spawn_detached(&spec, &sleep, &log, dir.path()).unwrap();
        assert_eq!(id.state(), RunState::Running);
        id.signal(Signal::SIGSTOP).unwrap();
        let paused = |s| s == RunState::Paused;
        assert!(id.wait_until(Duration::from_secs(2), paused).await);
        id.signal(Signal::SIGCONT).unwrap();
        let running = |s| s == RunState::Running;
        assert!(id.wait_until(Duration::from_secs(2), running).await);
        id.signal(Signal::SIGKILL).unwrap();
        assert!(id.wait_gone(Duration::from_secs(2)).await);
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .contains("sleeper started by operator")
        );
    }
}
