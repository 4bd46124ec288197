//! TiKV itself, where PD's and TiKV's programs are on this machine (on `PATH`, or fetched by
//! `tiup install pd:v8.5.7 tikv:v8.5.7`): the real cluster up, a store killed, its ticket, the
//! runbook agent's repair, the monitor's verification. Where they are not (no machine of this
//! project's CI can pull their images or build PD), the test says it is skipped and why, and
//! `scripts/test.sh` lists it. The same steps run against the stand-in in `tests/tikv.rs`.

mod common;

use std::path::PathBuf;

use common::Cluster;
use operator::subjects::tikv::config::TikvConfig;
use operator::subjects::tikv::programs;

/// The real `pd-server` and `tikv-server`, found as the product finds them, or why not.
fn real_programs() -> Result<(PathBuf, PathBuf), String> {
    let (pd, tikv) = programs::find(&TikvConfig::default());
    for p in [&pd, &tikv] {
        if !p.is_absolute() || !p.is_file() {
            let name = p.display().to_string();
            return Err(format!(
                "no {name} here: {}",
                programs::install_hint(&name).unwrap_or_default()
            ));
        }
    }
    Ok((pd, tikv))
}

#[test]
fn a_real_store_killed_is_ticketed_repaired_and_verified() {
    let (pd, tikv) = match real_programs() {
        Ok(found) => found,
        Err(why) => return common::skip_absent(&why),
    };
    let c = Cluster::prepare(&format!(
        "tikv.pd_bin = {:?}\ntikv.tikv_bin = {:?}\n",
        pd.display().to_string(),
        tikv.display().to_string()
    ))
    .up_subject("tikv");
    c.ok(&["node", "kill", "tikv-2"]);
    let out = c.runbook_agent_once();
    assert!(out.contains("operator node start tikv-2"), "{out}");
    assert!(out.contains("resolved (verified)"), "{out}");
}
