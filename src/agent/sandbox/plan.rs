//! bubblewrap's plan for one instance: what is bound where, read-only or not, and as whom
//! the command runs; and a probe that the plan works on this machine.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// Files of `/etc` that ordinary programs read: names, addresses, certificates, libraries,
/// time zone, the alternatives' links. Nothing else of `/etc` is there.
const ETC: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/services",
    "/etc/protocols",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates.conf",
];

/// Top-level folders that are links into `/usr` on a merged system, and folders otherwise.
const USR_LINKS: &[&str] = &["bin", "sbin", "lib", "lib64", "lib32", "libx32"];

/// Where the socket is inside the sandbox.
pub const SOCKET_INSIDE: &str = "/run/operator/verbs.sock";

/// The user a command runs as when the operator is root: `nobody`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// `nobody` when this process is root; `None` (the command runs as this user, who is not
    /// root) otherwise.
    pub fn for_this_process() -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let user = nix::unistd::User::from_name("nobody").ok().flatten();
        Some(Self {
            uid: user.as_ref().map_or(65534, |u| u.uid.as_raw()),
            gid: user.as_ref().map_or(65534, |u| u.gid.as_raw()),
        })
    }
}

/// The sandbox's plan: what is bound where, as whom.
#[derive(Debug, Clone)]
pub struct Plan {
    pub bwrap: PathBuf,
    /// The instance's folder: the command's working directory, at the same path inside, so
    /// that the policy's paths and the command's agree.
    pub cwd: PathBuf,
    /// The nodes' logs (read-only at `cwd/logs`).
    pub logs: PathBuf,
    /// The one writable folder (`cwd/scratch`).
    pub scratch: PathBuf,
    /// The folder of the `operator` binary: the binary is read-only at its own path.
    pub exe_dir: Option<PathBuf>,
    /// The verb socket on this side; bound at [`SOCKET_INSIDE`].
    pub socket: PathBuf,
    pub run_as: Option<RunAs>,
}

impl Plan {
    /// The plan for an instance folder, with bubblewrap found on this machine (or at
    /// `bwrap`, where the configuration names it).
    pub fn for_instance(
        cwd: &Path,
        exe_dir: Option<PathBuf>,
        socket: PathBuf,
        bwrap: Option<&Path>,
    ) -> Result<Self, String> {
        let bwrap = match bwrap {
            Some(p) if p.is_file() => p.to_path_buf(),
            Some(p) => {
                return Err(format!(
                    "agent.bwrap names {}, which is not a file",
                    p.display()
                ));
            }
            None => find_program("bwrap").ok_or_else(|| {
                "bubblewrap (`bwrap`) is not installed: `apt-get install bubblewrap`".to_string()
            })?,
        };
        Ok(Self {
            bwrap,
            cwd: cwd.to_path_buf(),
            logs: cwd.join("logs"),
            scratch: cwd.join(crate::policy::SCRATCH),
            exe_dir,
            socket,
            run_as: RunAs::for_this_process(),
        })
    }

    /// Makes the folders the plan binds (the cluster may not be up yet, or was taken down),
    /// with the scratch folder owned by the user commands run as.
    pub fn prepare(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.logs)?;
        std::fs::create_dir_all(&self.scratch)?;
        if let Some(d) = self.run_as {
            nix::unistd::chown(
                &self.scratch,
                Some(nix::unistd::Uid::from_raw(d.uid)),
                Some(nix::unistd::Gid::from_raw(d.gid)),
            )
            .map_err(std::io::Error::from)?;
        }
        Ok(())
    }

    /// bubblewrap's words for running `argv`, in the environment bubblewrap is given.
    /// `seccomp` is a descriptor holding [`super::seccomp`]'s program, left open across exec.
    pub fn args(&self, argv: &[OsString], seccomp: Option<RawFd>) -> Vec<OsString> {
        // No `--clearenv` or `--setenv`: the environment is bubblewrap's own (the caller
        // clears it and sets the command's), since a command line is readable by every user.
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |words: &[&str]| a.extend(words.iter().map(OsString::from));
        push(&[
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]);
        if self.run_as.is_some() {
            // Only to become `nobody` (and drop the bounding set) before the command runs.
            push(&[
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
                "--cap-add",
                "CAP_SETPCAP",
            ]);
        }
        // bubblewrap makes the folders above a bind's destination readable by root alone:
        // made first, they are readable by the command's user too.
        let mut made = std::collections::BTreeSet::new();
        let mut bind = |a: &mut Vec<OsString>, how: &str, from: &Path, to: &Path| {
            for up in to.ancestors().skip(1).collect::<Vec<_>>().into_iter().rev() {
                if up != Path::new("/") && made.insert(up.to_path_buf()) {
                    a.extend(["--dir".into(), up.as_os_str().to_owned()]);
                }
            }
            a.extend([
                how.into(),
                from.as_os_str().to_owned(),
                to.as_os_str().to_owned(),
            ]);
        };
        bind(&mut a, "--ro-bind", Path::new("/usr"), Path::new("/usr"));
        for name in USR_LINKS {
            let host = Path::new("/").join(name);
            match std::fs::read_link(&host) {
                Ok(target) => {
                    a.push("--symlink".into());
                    a.push(target.into_os_string());
                    a.push(host.into_os_string());
                }
                Err(_) if host.is_dir() => bind(&mut a, "--ro-bind", &host, &host),
                Err(_) => {}
            }
        }
        for f in ETC {
            bind(&mut a, "--ro-bind-try", Path::new(f), Path::new(f));
        }
        a.extend([
            "--proc".into(),
            "/proc".into(),
            "--dev".into(),
            "/dev".into(),
        ]);
        a.extend([
            "--perms".into(),
            "1777".into(),
            "--tmpfs".into(),
            "/tmp".into(),
        ]);
        // Only the binary, in its own folder: not the build's other files beside it.
        if let Some(d) = &self.exe_dir {
            let op = d.join("operator");
            bind(&mut a, "--ro-bind", &op, &op);
        }
        bind(&mut a, "--ro-bind", &self.logs, &self.cwd.join("logs"));
        bind(
            &mut a,
            "--bind",
            &self.scratch,
            &self.cwd.join(crate::policy::SCRATCH),
        );
        bind(&mut a, "--ro-bind", &self.socket, Path::new(SOCKET_INSIDE));
        a.extend(["--remount-ro".into(), "/".into()]);
        a.extend(["--chdir".into(), self.cwd.clone().into()]);
        if let Some(fd) = seccomp {
            a.extend(["--seccomp".into(), fd.to_string().into()]);
        }
        a.push("--".into());
        if let Some(d) = self.run_as {
            a.extend(
                [
                    "/usr/bin/setpriv".to_string(),
                    format!("--reuid={}", d.uid),
                    format!("--regid={}", d.gid),
                    "--clear-groups".into(),
                    "--inh-caps=-all".into(),
                    "--bounding-set=-all".into(),
                    "--no-new-privs".into(),
                    "--".into(),
                ]
                .map(OsString::from),
            );
        }
        a.extend(argv.iter().cloned());
        a
    }
}

/// A program on the usual system paths (not the caller's PATH: a user's folder there could
/// hold another `bwrap`).
fn find_program(name: &str) -> Option<PathBuf> {
    ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Tries the plan once with `true`: the sandbox works here, or why not (no user namespaces,
/// no bubblewrap, a kernel that refuses).
pub fn probe(plan: &Plan) -> Result<(), String> {
    plan.prepare()
        .map_err(|e| format!("cannot prepare {}: {e}", plan.scratch.display()))?;
    // The socket is bound into every sandbox: a placeholder stands in until it is served.
    let placeholder = !plan.socket.exists();
    if placeholder {
        if let Some(dir) = plan.socket.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&plan.socket, b"").map_err(|e| format!("{}: {e}", plan.socket.display()))?;
    }
    let tried = try_true(plan);
    if placeholder {
        let _ = std::fs::remove_file(&plan.socket);
    }
    tried
}

/// Runs `true` in the plan's sandbox.
fn try_true(plan: &Plan) -> Result<(), String> {
    let filter = super::seccomp::memfd().map_err(|e| format!("the seccomp filter: {e}"))?;
    let fd = filter.as_ref().map(AsRawFd::as_raw_fd);
    let mut cmd = std::process::Command::new(&plan.bwrap);
    cmd.args(plan.args(&["/usr/bin/true".into()], fd))
        .env_clear()
        .stdin(std::process::Stdio::null());
    keep_open_across_exec(&mut cmd, fd);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {}: {e}", plan.bwrap.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "bubblewrap cannot make a sandbox here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Leaves `fd` open in the child (it is opened close-on-exec, so that no other child of this
/// process inherits it).
pub fn keep_open_across_exec(cmd: &mut impl CommandExt, fd: Option<RawFd>) {
    let Some(fd) = fd else {
        return;
    };
    // SAFETY: between fork and exec only fcntl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
