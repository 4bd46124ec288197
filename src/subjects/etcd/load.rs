//! etcd's traffic and its safety oracle. The load writes and reads a bounded set of keys
//! under [`LOAD_PREFIX`] and records, for each key, the latest write the cluster
//! acknowledged (its value and revision) in the instance's folder; the oracle reads every
//! key back and names each acknowledged write that is gone. Invariants say whether the
//! cluster looks well; this says whether a repair kept the data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::gateway::{Gateway, GatewayError, Header};
use crate::load::{Outcome, Workload};
use crate::subjects::{LoadVerdict, LostWrite};

/// Where the load's keys live, inside the operator's own prefix (`reset` clears it).
pub const LOAD_PREFIX: &str = "/operator/load/";
/// The record of acknowledged writes, in the instance's folder.
pub const RECORD_FILE: &str = "etcd-load.json";
/// At most this many keys: fixed-width names, and a record that stays small.
pub const MAX_KEYS: u32 = 10_000;

/// The `i`-th key: fixed width, so that no key is a prefix of another.
pub fn key(i: u32) -> String {
    format!("{LOAD_PREFIX}k{i:04}")
}

/// The latest acknowledged write of each key, and the cluster that acknowledged them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The cluster's id as etcd says it (decimal); empty before the first acknowledgement.
    #[serde(default)]
    pub cluster_id: String,
    #[serde(default)]
    pub acked: BTreeMap<String, Acked>,
    /// Another cluster answered in the middle of a run (the instance was made again under
    /// the load): every write recorded before is gone with the old one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acked {
    pub value: String,
    pub revision: u64,
}

impl Record {
    /// Notes an acknowledged write; true when the record changed. Two writes of one key may
    /// be acknowledged out of order: the revision, not the arrival, says which is last. The
    /// first answer of a run from another cluster than the record's starts it afresh (that
    /// cluster was gone before the run); one later in the run is a cluster made again under
    /// the load, and the record keeps what the old one acknowledged.
    pub fn note(&mut self, key: &str, value: &str, header: &Header, first_of_run: bool) -> bool {
        let cluster = header.cluster_id.to_string();
        if self.cluster_id != cluster {
            if first_of_run || self.acked.is_empty() {
                *self = Record {
                    cluster_id: cluster,
                    ..Record::default()
                };
            } else {
                let changed = self.changed_to.as_deref() != Some(cluster.as_str());
                self.changed_to = Some(cluster);
                return changed;
            }
        }
        match self.acked.get(key) {
            Some(a) if a.revision >= header.revision => false,
            _ => {
                self.acked.insert(
                    key.to_string(),
                    Acked {
                        value: value.to_string(),
                        revision: header.revision,
                    },
                );
                true
            }
        }
    }

    /// Compares the record with what the cluster holds now (`found`, every key under the
    /// prefix as read at once, and the cluster that answered).
    pub fn judge(
        &self,
        found: &[super::gateway::Entry],
        cluster_id: u64,
    ) -> Result<LoadVerdict, String> {
        if let Some(other) = &self.changed_to {
            return Err(format!(
                "cluster {} acknowledged writes, then cluster {other} answered: the instance was made again under the load",
                self.cluster_id
            ));
        }
        if !self.cluster_id.is_empty() && self.cluster_id != cluster_id.to_string() {
            return Err(format!(
                "the record is of cluster {}, and this is cluster {cluster_id}: the instance \
                 was made again since the load ran",
                self.cluster_id
            ));
        }
        let by_key: BTreeMap<&str, &super::gateway::Entry> =
            found.iter().map(|e| (e.key.as_str(), e)).collect();
        let lost = self
            .acked
            .iter()
            .filter_map(|(key, a)| {
                let found = match by_key.get(key.as_str()) {
                    None => "nothing: the key is gone".to_string(),
                    Some(e) if e.mod_revision < a.revision => format!(
                        "an older value {:?} written at revision {}",
                        e.value, e.mod_revision
                    ),
                    Some(e) if e.mod_revision == a.revision && e.value != a.value => {
                        format!("another value {:?} at the same revision", e.value)
                    }
                    // The acknowledged value, or a later write (one whose answer was lost).
                    Some(_) => return None,
                };
                Some(LostWrite {
                    key: key.clone(),
                    expected: a.value.clone(),
                    revision: a.revision,
                    found,
                })
            })
            .collect();
        Ok(LoadVerdict {
            checked: self.acked.len(),
            lost,
        })
    }

    /// Reads the record at `path`; none yet is an empty record.
    pub async fn read(path: &Path) -> Result<Record, String> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not a load record: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Writes the record to `path` whole or not at all (a temporary file, then a rename):
    /// a crash mid-write leaves the previous record.
    pub async fn write(&self, path: &Path) -> Result<(), String> {
        let (path, bytes) = (
            path.to_path_buf(),
            serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?,
        );
        let target = path.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            // This process's own temporary file, on disk before the rename.
            let tmp = target.with_extension(format!("json.{}.tmp", std::process::id()));
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// Puts and linearizable gets, in turn, on each member as clients reach it.
pub struct KvWorkload {
    gateway: Gateway,
    endpoints: Vec<String>,
    keys: u32,
    /// Tells this run's values from another's.
    run: String,
    record: Mutex<Record>,
    dirty: AtomicBool,
    /// Whether this run has had a write acknowledged yet.
    acked_any: AtomicBool,
    path: PathBuf,
}

impl KvWorkload {
    /// A workload that adds to the record at `path` (read now: a second run adds to it).
    pub async fn new(endpoints: Vec<String>, keys: u32, path: PathBuf) -> Result<Self, String> {
        if endpoints.is_empty() {
            return Err("the instance has no etcd member".into());
        }
        if keys == 0 || keys > MAX_KEYS {
            return Err(format!("--keys must be between 1 and {MAX_KEYS} for etcd"));
        }
        let record = Record::read(&path).await?;
        Ok(Self {
            gateway: Gateway::new(Duration::from_secs(2)),
            endpoints,
            keys,
            run: format!("{:x}", crate::clock::now().timestamp_millis()),
            record: Mutex::new(record),
            dirty: AtomicBool::new(false),
            acked_any: AtomicBool::new(false),
            path,
        })
    }
}

#[async_trait]
impl Workload for KvWorkload {
    async fn request(&self, n: u64, timeout: Duration) -> Outcome {
        let endpoint = &self.endpoints[(n as usize) % self.endpoints.len()];
        // Each key is written, then read, then the next one.
        let key = key(((n / 2) % u64::from(self.keys)) as u32);
        let gateway = self.gateway.with_timeout(timeout);
        if n % 2 == 0 {
            let value = format!("{}-{n}", self.run);
            match gateway.put(endpoint, &key, &value).await {
                Ok(header) => {
                    let mut record = match self.record.lock() {
                        Ok(r) => r,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    let first = !self.acked_any.swap(true, Ordering::AcqRel);
                    if record.note(&key, &value, &header, first) {
                        self.dirty.store(true, Ordering::Release);
                    }
                    Outcome::Ok
                }
                // NOSPACE and its kin: the cluster answered, and would not take the write.
                Err(GatewayError::Answered { .. }) => Outcome::Refused,
                Err(_) => Outcome::Failed,
            }
        } else {
            match gateway.get(endpoint, &key).await {
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Failed,
            }
        }
    }

    fn words(&self) -> [&'static str; 2] {
        ["ok", "refused"]
    }

    async fn checkpoint(&self) -> Result<(), String> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let record = match self.record.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let written = record.write(&self.path).await;
        if written.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        written
    }
}

/// The oracle: reads every load key from the first member that answers and judges the
/// record at `path` against them.
pub async fn verify(
    gateway: &Gateway,
    members: &[String],
    path: &Path,
) -> Result<LoadVerdict, String> {
    let record = Record::read(path).await?;
    if record.acked.is_empty() {
        return Ok(LoadVerdict::default());
    }
    let mut errors = Vec::new();
    for m in members {
        match gateway.range_prefix(m, LOAD_PREFIX).await {
            Ok((entries, header)) => return record.judge(&entries, header.cluster_id),
            Err(e) => errors.push(format!("{m}: {e}")),
        }
    }
    Err(format!(
        "no member answered a read of {LOAD_PREFIX}: {}",
        errors.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::etcd::gateway::Entry;

    fn header(cluster: u64, revision: u64) -> Header {
        Header {
            cluster_id: cluster,
            revision,
            ..Header::default()
        }
    }

    fn entry(key: &str, value: &str, rev: u64) -> Entry {
        Entry {
            key: key.into(),
            value: value.into(),
            mod_revision: rev,
        }
    }

    #[test]
    fn the_latest_revision_wins_whatever_order_the_answers_came_in() {
        let mut r = Record::default();
        assert!(r.note("k", "b", &header(7, 12), true));
        assert!(!r.note("k", "a", &header(7, 11), false));
        assert_eq!(r.acked["k"].value, "b");
        // Another cluster at a run's start: the old record means nothing there.
        let mut fresh = r.clone();
        assert!(fresh.note("j", "x", &header(8, 3), true));
        assert_eq!(fresh.acked.len(), 1);
        assert_eq!(fresh.cluster_id, "8");
        // Another cluster in the middle of a run: the instance was made again under it.
        assert!(r.note("j", "x", &header(8, 3), false));
        assert_eq!(r.acked.len(), 1);
        let e = r.judge(&[], 8).unwrap_err();
        assert!(e.contains("made again under the load"), "{e}");
    }

    #[test]
    fn gone_older_and_changed_values_are_lost_and_a_later_write_is_not() {
        let mut r = Record::default();
        for (k, v, rev) in [("a", "1", 5), ("b", "2", 6), ("c", "3", 7), ("d", "4", 8)] {
            r.note(k, v, &header(1, rev), false);
        }
        let found = [
            entry("a", "1", 5),      // kept
            entry("b", "old", 4),    // rolled back
            entry("c", "other", 7),  // changed
            entry("d", "later", 20), // overwritten later: fine
        ];
        let v = r.judge(&found, 1).unwrap();
        assert_eq!(v.checked, 4);
        let lost: Vec<&str> = v.lost.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(lost, ["b", "c"]);
        let v = r.judge(&found[..1], 1).unwrap();
        assert_eq!(v.lost.len(), 3);
        assert!(v.lost[0].found.contains("gone"), "{:?}", v.lost[0]);
        assert!(r.judge(&found, 2).unwrap_err().contains("made again"));
    }

    #[tokio::test]
    async fn a_record_survives_a_round_trip_and_a_broken_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RECORD_FILE);
        assert_eq!(Record::read(&path).await.unwrap(), Record::default());
        let mut r = Record::default();
        r.note("k", "v", &header(3, 9), true);
        r.write(&path).await.unwrap();
        assert_eq!(Record::read(&path).await.unwrap(), r);
        std::fs::write(&path, "{not json").unwrap();
        let e = Record::read(&path).await.unwrap_err();
        assert!(e.contains(RECORD_FILE), "{e}");
    }
}
