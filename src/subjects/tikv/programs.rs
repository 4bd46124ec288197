//! Where PD's and TiKV's programs are on this machine, and how to get them when they are not:
//! as configured (a path, or a name on `PATH`), else the newest that TiUP fetched into its
//! components folder (`tiup install pd tikv`).

use std::path::{Path, PathBuf};

use super::config::TikvConfig;
use crate::runtime::local::process::find_program;

/// The version the images are pinned to, and the one the advice names.
pub const VERSION: &str = "v8.5.7";

/// `pd-server` and `tikv-server` as found; a program not found is given by its configured
/// name, for the runtime to report missing with [`install_hint`].
pub fn find(cfg: &TikvConfig) -> (PathBuf, PathBuf) {
    let home = cfg
        .tiup_home
        .clone()
        .or_else(|| dirs::home_dir().map(|h| h.join(".tiup")));
    let one = |configured: &str, component: &str| {
        let configured = PathBuf::from(configured);
        find_program(&configured)
            .or_else(|| {
                let name = configured.file_name()?;
                from_tiup(home.as_deref()?, component, Path::new(name))
            })
            .unwrap_or(configured)
    };
    (one(&cfg.pd_bin, "pd"), one(&cfg.tikv_bin, "tikv"))
}

/// `<tiup home>/components/<component>/<version>/<program>`, the newest version holding it.
fn from_tiup(home: &Path, component: &str, program: &Path) -> Option<PathBuf> {
    let dir = home.join("components").join(component);
    let mut found: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.trim_start_matches('v').to_string();
            let key = version
                .split(['.', '-'])
                .map(|p| p.parse::<u64>().unwrap_or(0))
                .collect();
            let path = e.path().join(program);
            find_program(&path).map(|p| (key, p))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// How to get one of TiKV's programs (by its file name) when it is missing locally.
pub fn install_hint(program: &str) -> Option<String> {
    let (component, key) = match program {
        "pd-server" => ("pd", "pd_bin"),
        "tikv-server" => ("tikv", "tikv_bin"),
        _ => return None,
    };
    Some(format!(
        "TiKV's local runtime needs pd-server and tikv-server. Get {program} with TiUP: \
         `tiup install {component}:{VERSION}` (it lands under ~/.tiup/components, where it is \
         found), or set `tikv.{key}` to its path. Or run TiKV on Docker (`--runtime docker`) \
         with the images pingcap/pd:{VERSION} and pingcap/tikv:{VERSION}."
    ))
}

/// How to get an image the engine lacks.
pub fn pull_hint(image: &str) -> String {
    format!(
        "pull it where a registry answers: `docker pull {image}` (or `docker load -i` a copy \
         saved elsewhere with `docker save`); or run TiKV locally with its programs from TiUP \
         (`tiup install pd:{VERSION} tikv:{VERSION}`)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executable(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn programs_are_found_as_configured_else_the_newest_tiup_fetched() {
        let home = tempfile::tempdir().unwrap();
        let cfg = TikvConfig {
            tiup_home: Some(home.path().into()),
            pd_bin: "operator-test-no-such-pd-server".into(),
            ..TikvConfig::default()
        };
        // Nothing anywhere: the configured names, for the runtime to report.
        let (pd, tikv) = find(&cfg);
        assert_eq!(pd, PathBuf::from("operator-test-no-such-pd-server"));
        assert_eq!(tikv, PathBuf::from("tikv-server"));
        // TiUP's folder: the newest version (numerically, v8.10 after v8.5) that holds it.
        let c = home.path().join("components");
        executable(&c.join("tikv/v8.5.7/tikv-server"));
        executable(&c.join("tikv/v8.10.0/tikv-server"));
        std::fs::create_dir_all(c.join("tikv/v9.0.0")).unwrap();
        let (_, tikv) = find(&cfg);
        assert_eq!(tikv, c.join("tikv/v8.10.0/tikv-server"));
        // A configured path wins.
        let own = home.path().join("bin/pd-server");
        executable(&own);
        let cfg = TikvConfig {
            pd_bin: own.display().to_string(),
            ..cfg
        };
        assert_eq!(find(&cfg).0, own);
    }

    #[test]
    fn the_advice_names_the_one_command_that_gets_each_program() {
        let pd = install_hint("pd-server").unwrap();
        assert!(
            pd.contains("tiup install pd:v8.5.7") && pd.contains("tikv.pd_bin"),
            "{pd}"
        );
        let tikv = install_hint("tikv-server").unwrap();
        assert!(tikv.contains("tiup install tikv:v8.5.7"), "{tikv}");
        assert!(install_hint("etcd").is_none());
        assert!(pull_hint("pingcap/pd:v8.5.7").contains("docker pull pingcap/pd:v8.5.7"));
    }
}
