//! The agent's local executor against real processes: a command, and everything it started,
//! ends with the agent that ran it, even an agent killed with SIGKILL mid-command.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use operator::agent::executor::{Executor, LocalEnv, LocalExecutor};
use operator::policy::Class;

const AS_AGENT: &str = "OPERATOR_TEST_EXECUTOR_AGENT";

fn alive(pid: i32) -> bool {
    // A zombie has exited: only its parent has not looked yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Run by the test below in a process of its own, as the agent: a command that starts a
/// child in the background and waits on another, then writes down both pids. Ignored: it
/// is no test of its own.
#[test]
#[ignore = "run by a_command_and_its_children_die_with_an_agent_killed_mid_command"]
fn helper_agent_running_a_long_command() {
    let Ok(dir) = std::env::var(AS_AGENT) else {
        return;
    };
    let dir = Path::new(&dir);
    let e = LocalExecutor::new(LocalEnv {
        cwd: dir,
        state_dir: dir,
        db: &dir.join("operator.db"),
        instance: 0,
        config: None,
        output_limit: 4096,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _ = rt.block_on(e.run(
        "sleep 300 & echo $! > bg.pid; echo $$ > sh.pid; sleep 300",
        Duration::from_secs(600),
        Class::ReadOnly,
    ));
}

#[test]
fn a_command_and_its_children_die_with_an_agent_killed_mid_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_agent_running_a_long_command",
            "--ignored",
            "--nocapture",
        ])
        .env(AS_AGENT, dir.path())
        .spawn()
        .unwrap();
    let read = |f: &str| -> Option<i32> {
        std::fs::read_to_string(dir.path().join(f))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let start = Instant::now();
    let (bg, sh) = loop {
        if let (Some(bg), Some(sh)) = (read("bg.pid"), read("sh.pid")) {
            break (bg, sh);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(alive(bg) && alive(sh));
    agent.kill().unwrap(); // SIGKILL: the agent runs no clean-up of its own
    agent.wait().unwrap();
    let killed = Instant::now();
    while (alive(bg) || alive(sh)) && killed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<i32> = [bg, sh].into_iter().filter(|p| alive(*p)).collect();
    for p in &left {
        let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
    }
    assert!(
        left.is_empty(),
        "{left:?} outlived the agent that started them"
    );
    eprintln!(
        "the command's processes were gone {} ms after the agent was killed",
        killed.elapsed().as_millis()
    );
}

/// The command's own exit status still comes back through the guard.
#[tokio::test]
async fn the_exit_status_is_the_commands_own() {
    let dir = tempfile::tempdir().unwrap();
    let e = LocalExecutor::new(LocalEnv {
        cwd: dir.path(),
        state_dir: dir.path(),
        db: &dir.path().join("operator.db"),
        instance: 0,
        config: None,
        output_limit: 4096,
    });
    let out = e
        .run(
            "echo out; echo err >&2; exit 7",
            Duration::from_secs(10),
            Class::ReadOnly,
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(7));
    assert_eq!(out.stdout.trim(), "out");
    assert_eq!(out.stderr.trim(), "err");
    let out = e
        .run("sleep 30", Duration::from_millis(300), Class::ReadOnly)
        .await
        .unwrap();
    assert!(out.timed_out);
}
