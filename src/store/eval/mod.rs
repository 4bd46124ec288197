//! The evaluation harness's SQL: campaigns and their planned trials, each trial's timeline,
//! tickets and snapshots, and the slots harnesses hold.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, Row, ToSql, params};

mod rows;

pub use rows::{
    CampaignRow, CampaignStatus, NewCampaign, NewTrial, SlotRow, TrialEvent, TrialMetrics,
    TrialOutcome, TrialRow, TrialStatus, Verdict,
};

use super::sqlite::{exec, row};
use super::{Sqlite, StoreError};
use crate::clock::{self, Timestamp};

/// What the store does for the evaluation harness.
pub trait EvalDb {
    /// Stores a campaign as running, with every planned trial pending.
    fn create_campaign(&self, c: &NewCampaign) -> Result<i64, StoreError>;
    fn campaign(&self, id: i64) -> Result<Option<CampaignRow>, StoreError>;
    /// Campaigns, running ones first, then newest first.
    fn campaigns(&self, limit: usize) -> Result<Vec<CampaignRow>, StoreError>;
    /// Marks a campaign running again under `pid` for `--resume`: trials left running by a
    /// harness that is gone, and invalid ones, go back to pending. Returns how many are to run.
    fn resume_campaign(&self, id: i64, pid: u32) -> Result<usize, StoreError>;
    fn end_campaign(&self, id: i64, status: CampaignStatus, note: &str) -> Result<(), StoreError>;
    /// The harness is alive; returns whether a stop was asked for.
    fn campaign_heartbeat(&self, id: i64) -> Result<bool, StoreError>;
    /// Asks the campaign's harness, whichever process it is, to stop.
    fn request_stop(&self, id: i64) -> Result<bool, StoreError>;
    fn trials(&self, campaign: i64) -> Result<Vec<TrialRow>, StoreError>;
    fn trial(&self, id: i64) -> Result<Option<TrialRow>, StoreError>;
    /// The trial's plan as the campaign drew it (the harness's JSON, read back by it).
    fn trial_plan(&self, id: i64) -> Result<serde_json::Value, StoreError>;
    /// Takes the campaign's next pending trial for `slot`, atomically.
    fn next_trial(
        &self,
        campaign: i64,
        slot: u32,
        instance: u32,
    ) -> Result<Option<TrialRow>, StoreError>;
    /// Records a step of a trial's timeline.
    fn trial_step(
        &self,
        trial: i64,
        attempt: u32,
        step: &str,
        detail: &str,
    ) -> Result<(), StoreError>;
    fn finish_trial(&self, trial: i64, outcome: &TrialOutcome) -> Result<(), StoreError>;
    /// Puts a trial that did not finish back to pending (an interrupted harness).
    fn unfinish_trial(&self, trial: i64, why: &str) -> Result<(), StoreError>;
    fn trial_events(&self, trial: i64) -> Result<Vec<TrialEvent>, StoreError>;
    fn link_ticket(&self, trial: i64, attempt: u32, ticket: i64) -> Result<(), StoreError>;
    fn save_snapshot(
        &self,
        trial: i64,
        attempt: u32,
        kind: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError>;
    fn snapshots(
        &self,
        trial: i64,
    ) -> Result<Vec<(String, Timestamp, serde_json::Value)>, StoreError>;
    /// Claims the lowest free slot in `0..max` for a harness; `None` when all are taken.
    fn claim_slot(
        &self,
        campaign: i64,
        pid: u32,
        runtime: &str,
        base_instance: u32,
        max: u32,
    ) -> Result<Option<SlotRow>, StoreError>;
    fn slot_heartbeat(&self, slot: u32, pid: u32, trial: Option<i64>) -> Result<(), StoreError>;
    fn release_slot(&self, slot: u32, pid: u32) -> Result<(), StoreError>;
    fn slots(&self) -> Result<Vec<SlotRow>, StoreError>;
}

/// Stores an enum of the eval model as its text (`as_str` / `parse`), as the schema's CHECKs
/// spell it.
macro_rules! text_column {
    ($ty:ty, $what:literal) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl FromSql for $ty {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                <$ty>::parse(s)
                    .ok_or_else(|| FromSqlError::Other(format!(concat!($what, " {:?}"), s).into()))
            }
        }
    };
}

text_column!(Verdict, "verdict");
text_column!(TrialStatus, "trial status");
text_column!(CampaignStatus, "campaign status");

fn conversion(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

fn ts(row: &Row, i: usize) -> rusqlite::Result<Timestamp> {
    clock::parse(&row.get::<_, String>(i)?).map_err(|e| conversion(i, e))
}

fn ts_opt(row: &Row, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    row.get::<_, Option<String>>(i)?
        .map(|s| clock::parse(&s).map_err(|e| conversion(i, e)))
        .transpose()
}

fn json(row: &Row, i: usize) -> rusqlite::Result<serde_json::Value> {
    let s: String = row.get(i)?;
    serde_json::from_str(&s).map_err(|e| conversion(i, e))
}

const CAMPAIGN_COLUMNS: &str = "c.id, c.name, c.status, c.started_at, c.ended_at, c.spec, \
    c.provenance, c.pid, c.heartbeat_at, c.stop_requested, c.note, \
    (SELECT COUNT(*) FROM eval_trials t WHERE t.campaign_id = c.id), \
    (SELECT COUNT(*) FROM eval_trials t WHERE t.campaign_id = c.id AND t.status = 'done')";

fn campaign_from_row(r: &Row) -> rusqlite::Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.get(0)?,
        name: r.get(1)?,
        status: r.get(2)?,
        started_at: ts(r, 3)?,
        ended_at: ts_opt(r, 4)?,
        spec: json(r, 5)?,
        provenance: json(r, 6)?,
        pid: r.get(7)?,
        heartbeat_at: ts_opt(r, 8)?,
        stop_requested: r.get(9)?,
        note: r.get(10)?,
        trials: r.get::<_, i64>(11)?.max(0) as usize,
        done: r.get::<_, i64>(12)?.max(0) as usize,
    })
}

const TRIAL_COLUMNS: &str = "id, campaign_id, seq, problem, subject, fault, params, target, \
    fixed_target, pick, variant, baseline, control, status, step, slot, instance, attempt, \
    verdict, reason, won, started_at, ended_at, injected_at, ttd_ms, ttr_ms, fault_id, \
    localized, regression, metrics";

fn trial_from_row(r: &Row) -> rusqlite::Result<TrialRow> {
    let pick: String = r.get(9)?;
    let metrics: String = r.get(29)?;
    Ok(TrialRow {
        id: r.get(0)?,
        campaign_id: r.get(1)?,
        seq: r.get(2)?,
        problem: r.get(3)?,
        subject: r.get(4)?,
        fault: r.get(5)?,
        params: json(r, 6)?,
        target: r.get(7)?,
        fixed_target: r.get(8)?,
        pick: pick.parse().map_err(|e| conversion(9, e))?,
        variant: r.get(10)?,
        baseline: r.get(11)?,
        control: r.get(12)?,
        status: r.get(13)?,
        step: r.get(14)?,
        slot: r.get(15)?,
        instance: r.get(16)?,
        attempt: r.get(17)?,
        verdict: r.get(18)?,
        reason: r.get(19)?,
        won: r.get(20)?,
        started_at: ts_opt(r, 21)?,
        ended_at: ts_opt(r, 22)?,
        injected_at: ts_opt(r, 23)?,
        ttd_ms: r.get::<_, Option<i64>>(24)?.map(|v| v.max(0) as u64),
        ttr_ms: r.get::<_, Option<i64>>(25)?.map(|v| v.max(0) as u64),
        fault_id: r.get(26)?,
        localized: r.get(27)?,
        regression: r.get(28)?,
        metrics: serde_json::from_str(&metrics).unwrap_or_default(),
    })
}

fn slot_from_row(r: &Row) -> rusqlite::Result<SlotRow> {
    Ok(SlotRow {
        slot: r.get(0)?,
        instance: r.get(1)?,
        campaign_id: r.get(2)?,
        pid: r.get(3)?,
        runtime: r.get(4)?,
        claimed_at: ts(r, 5)?,
        heartbeat_at: ts(r, 6)?,
        trial_id: r.get(7)?,
    })
}

fn ms(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

impl EvalDb for Sqlite {
    fn create_campaign(&self, c: &NewCampaign) -> Result<i64, StoreError> {
        self.write(|tx| {
            let now = clock::format(clock::now());
            exec(
                tx,
                "INSERT INTO eval_campaigns (name, status, started_at, spec, provenance, pid,
                        heartbeat_at, updated_at)
                 VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?2, ?2)",
                params![
                    c.name,
                    now,
                    c.spec.to_string(),
                    c.provenance.to_string(),
                    c.pid
                ],
            )?;
            let id = tx.last_insert_rowid();
            for t in &c.trials {
                exec(
                    tx,
                    "INSERT INTO eval_trials (campaign_id, seq, problem, subject, fault, params,
                            plan, fixed_target, pick, variant, baseline, control, status,
                            updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?13)",
                    params![
                        id,
                        t.seq,
                        t.problem,
                        t.subject,
                        t.fault,
                        t.params.to_string(),
                        t.plan.to_string(),
                        t.target,
                        t.pick.to_string(),
                        t.variant,
                        t.baseline,
                        t.control,
                        now
                    ],
                )?;
            }
            Ok(id)
        })
    }

    fn campaign(&self, id: i64) -> Result<Option<CampaignRow>, StoreError> {
        self.read(|c| {
            Ok(row(
                c,
                &format!("SELECT {CAMPAIGN_COLUMNS} FROM eval_campaigns c WHERE c.id = ?1"),
                [id],
                campaign_from_row,
            )
            .optional()?)
        })
    }

    fn campaigns(&self, limit: usize) -> Result<Vec<CampaignRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {CAMPAIGN_COLUMNS} FROM eval_campaigns c
                 ORDER BY (c.status = 'running') DESC, c.id DESC LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit as i64], campaign_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn resume_campaign(&self, id: i64, pid: u32) -> Result<usize, StoreError> {
        self.write(|tx| {
            let now = clock::format(clock::now());
            let n = exec(
                tx,
                "UPDATE eval_campaigns SET status = 'running', pid = ?2, heartbeat_at = ?3,
                        stop_requested = 0, ended_at = NULL, updated_at = ?3
                 WHERE id = ?1",
                params![id, pid, now],
            )?;
            if n == 0 {
                return Err(StoreError::Corrupt(format!("no campaign #{id}")));
            }
            exec(
                tx,
                "UPDATE eval_trials SET status = 'pending', step = NULL, slot = NULL,
                        verdict = NULL, updated_at = ?2
                 WHERE campaign_id = ?1 AND (status = 'running' OR verdict = 'invalid')",
                params![id, now],
            )?;
            let left: i64 = row(
                tx,
                "SELECT COUNT(*) FROM eval_trials WHERE campaign_id = ?1 AND status = 'pending'",
                [id],
                |r| r.get(0),
            )?;
            Ok(left.max(0) as usize)
        })
    }

    fn end_campaign(&self, id: i64, status: CampaignStatus, note: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let now = clock::format(clock::now());
            exec(
                tx,
                "UPDATE eval_campaigns SET status = ?2, note = ?3, ended_at = ?4, pid = NULL,
                        updated_at = ?4
                 WHERE id = ?1",
                params![id, status, note, now],
            )?;
            Ok(())
        })
    }

    fn campaign_heartbeat(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|tx| {
            let now = clock::format(clock::now());
            exec(
                tx,
                "UPDATE eval_campaigns SET heartbeat_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            Ok(row(
                tx,
                "SELECT stop_requested FROM eval_campaigns WHERE id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
    }

    fn request_stop(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|tx| {
            let n = exec(
                tx,
                "UPDATE eval_campaigns SET stop_requested = 1 WHERE id = ?1 AND status = 'running'",
                [id],
            )?;
            Ok(n > 0)
        })
    }

    fn trials(&self, campaign: i64) -> Result<Vec<TrialRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TRIAL_COLUMNS} FROM eval_trials WHERE campaign_id = ?1 ORDER BY seq"
            ))?;
            let rows = stmt.query_map([campaign], trial_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn trial(&self, id: i64) -> Result<Option<TrialRow>, StoreError> {
        self.read(|c| {
            Ok(row(
                c,
                &format!("SELECT {TRIAL_COLUMNS} FROM eval_trials WHERE id = ?1"),
                [id],
                trial_from_row,
            )
            .optional()?)
        })
    }

    fn trial_plan(&self, id: i64) -> Result<serde_json::Value, StoreError> {
        self.read(|c| {
            let plan: String = row(c, "SELECT plan FROM eval_trials WHERE id = ?1", [id], |r| {
                r.get(0)
            })?;
            serde_json::from_str(&plan)
                .map_err(|e| StoreError::Corrupt(format!("trial #{id}'s plan: {e}")))
        })
    }

    fn next_trial(
        &self,
        campaign: i64,
        slot: u32,
        instance: u32,
    ) -> Result<Option<TrialRow>, StoreError> {
        self.write(|tx| {
            let id: Option<i64> = row(
                tx,
                "SELECT id FROM eval_trials WHERE campaign_id = ?1 AND status = 'pending'
                 ORDER BY seq LIMIT 1",
                [campaign],
                |r| r.get(0),
            )
            .optional()?;
            let Some(id) = id else {
                return Ok(None);
            };
            let now = clock::format(clock::now());
            exec(
                tx,
                "UPDATE eval_trials SET status = 'running', slot = ?2, instance = ?3,
                        attempt = attempt + 1, started_at = ?4, step = 'claimed', verdict = NULL,
                        reason = NULL, won = NULL, ended_at = NULL, injected_at = NULL,
                        ttd_ms = NULL, ttr_ms = NULL, fault_id = NULL, localized = NULL,
                        regression = NULL, target = NULL, metrics = '{}', updated_at = ?4
                 WHERE id = ?1",
                params![id, slot, instance, now],
            )?;
            Ok(Some(row(
                tx,
                &format!("SELECT {TRIAL_COLUMNS} FROM eval_trials WHERE id = ?1"),
                [id],
                trial_from_row,
            )?))
        })
    }

    fn trial_step(
        &self,
        trial: i64,
        attempt: u32,
        step: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let now = clock::format(clock::now());
            exec(
                tx,
                "INSERT INTO eval_trial_events (trial_id, attempt, at, step, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![trial, attempt, now, step, detail],
            )?;
            exec(
                tx,
                "UPDATE eval_trials SET step = ?2, updated_at = ?3 WHERE id = ?1",
                params![trial, step, now],
            )?;
            Ok(())
        })
    }

    fn finish_trial(&self, trial: i64, o: &TrialOutcome) -> Result<(), StoreError> {
        self.write(|tx| {
            let now = clock::format(clock::now());
            let verdict = o.verdict.unwrap_or(Verdict::Invalid);
            let metrics = serde_json::to_string(&o.metrics)
                .map_err(|e| StoreError::Corrupt(format!("trial metrics: {e}")))?;
            exec(
                tx,
                "UPDATE eval_trials SET status = 'done', step = 'done', verdict = ?2, reason = ?3,
                        won = ?4, target = ?5, injected_at = ?6, ttd_ms = ?7, ttr_ms = ?8,
                        fault_id = ?9, localized = ?10, regression = ?11, metrics = ?12,
                        ended_at = ?13, updated_at = ?13
                 WHERE id = ?1",
                params![
                    trial,
                    verdict,
                    o.reason,
                    o.won,
                    o.target,
                    o.injected_at.map(clock::format),
                    ms(o.ttd_ms),
                    ms(o.ttr_ms),
                    o.fault_id,
                    o.localized,
                    o.regression,
                    metrics,
                    now
                ],
            )?;
            Ok(())
        })
    }

    fn unfinish_trial(&self, trial: i64, why: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let now = clock::format(clock::now());
            exec(
                tx,
                "UPDATE eval_trials SET status = 'pending', step = NULL, slot = NULL,
                        reason = ?2, updated_at = ?3
                 WHERE id = ?1 AND status = 'running'",
                params![trial, why, now],
            )?;
            Ok(())
        })
    }

    fn trial_events(&self, trial: i64) -> Result<Vec<TrialEvent>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, trial_id, attempt, at, step, detail FROM eval_trial_events
                 WHERE trial_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([trial], |r| {
                Ok(TrialEvent {
                    id: r.get(0)?,
                    trial_id: r.get(1)?,
                    attempt: r.get(2)?,
                    at: ts(r, 3)?,
                    step: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn link_ticket(&self, trial: i64, attempt: u32, ticket: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            exec(
                tx,
                "INSERT OR IGNORE INTO eval_trial_tickets (trial_id, attempt, ticket_id)
                 VALUES (?1, ?2, ?3)",
                params![trial, attempt, ticket],
            )?;
            Ok(())
        })
    }

    fn save_snapshot(
        &self,
        trial: i64,
        attempt: u32,
        kind: &str,
        body: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            exec(
                tx,
                "INSERT INTO eval_snapshots (trial_id, attempt, kind, at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    trial,
                    attempt,
                    kind,
                    clock::format(clock::now()),
                    body.to_string()
                ],
            )?;
            Ok(())
        })
    }

    fn snapshots(
        &self,
        trial: i64,
    ) -> Result<Vec<(String, Timestamp, serde_json::Value)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT kind, at, body FROM eval_snapshots s
                 WHERE trial_id = ?1
                   AND attempt = (SELECT attempt FROM eval_trials WHERE id = s.trial_id)
                 ORDER BY id",
            )?;
            let rows = stmt.query_map([trial], |r| Ok((r.get(0)?, ts(r, 1)?, json(r, 2)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn claim_slot(
        &self,
        campaign: i64,
        pid: u32,
        runtime: &str,
        base_instance: u32,
        max: u32,
    ) -> Result<Option<SlotRow>, StoreError> {
        self.write(|tx| {
            let taken: Vec<u32> = {
                let mut stmt = tx.prepare_cached("SELECT slot FROM eval_slots")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            let Some(slot) = (0..max).find(|s| !taken.contains(s)) else {
                return Ok(None);
            };
            let now = clock::format(clock::now());
            exec(
                tx,
                "INSERT INTO eval_slots (slot, instance, campaign_id, pid, runtime, claimed_at,
                        heartbeat_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![slot, base_instance + slot, campaign, pid, runtime, now],
            )?;
            Ok(Some(row(
                tx,
                "SELECT slot, instance, campaign_id, pid, runtime, claimed_at, heartbeat_at,
                        trial_id FROM eval_slots WHERE slot = ?1",
                [slot],
                slot_from_row,
            )?))
        })
    }

    fn slot_heartbeat(&self, slot: u32, pid: u32, trial: Option<i64>) -> Result<(), StoreError> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE eval_slots SET heartbeat_at = ?3, trial_id = ?4 WHERE slot = ?1 AND pid = ?2",
                params![slot, pid, clock::format(clock::now()), trial],
            )?;
            Ok(())
        })
    }

    fn release_slot(&self, slot: u32, pid: u32) -> Result<(), StoreError> {
        self.write(|tx| {
            exec(
                tx,
                "DELETE FROM eval_slots WHERE slot = ?1 AND pid = ?2",
                params![slot, pid],
            )?;
            Ok(())
        })
    }

    fn slots(&self) -> Result<Vec<SlotRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT slot, instance, campaign_id, pid, runtime, claimed_at, heartbeat_at,
                        trial_id FROM eval_slots ORDER BY slot",
            )?;
            let rows = stmt.query_map([], slot_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(&dir.path().join("t.db")).unwrap();
        (dir, db)
    }

    fn campaign(db: &Sqlite) -> i64 {
        let trial = |seq: u32, fault: &str| NewTrial {
            seq,
            problem: seq,
            subject: "ratelimiter".into(),
            fault: Some(fault.into()),
            params: serde_json::json!({}),
            plan: serde_json::json!({ "seq": seq }),
            target: None,
            pick: 7,
            variant: "default".into(),
            baseline: false,
            control: false,
        };
        db.create_campaign(&NewCampaign {
            name: "t".into(),
            spec: serde_json::json!({ "name": "t" }),
            provenance: serde_json::json!({}),
            pid: 1,
            trials: vec![trial(0, "node_kill"), trial(1, "pause")],
        })
        .unwrap()
    }

    #[test]
    fn slots_are_claimed_once_each_and_trials_taken_in_order() {
        let (_d, db) = db();
        let id = campaign(&db);
        let a = db.claim_slot(id, 1, "local", 100, 2).unwrap().unwrap();
        let b = db.claim_slot(id, 2, "local", 100, 2).unwrap().unwrap();
        assert_eq!((a.slot, a.instance, b.slot, b.instance), (0, 100, 1, 101));
        assert!(
            db.claim_slot(id, 3, "local", 100, 2).unwrap().is_none(),
            "both taken"
        );
        // Only its holder frees a slot.
        db.release_slot(0, 2).unwrap();
        assert_eq!(db.slots().unwrap().len(), 2);
        db.release_slot(0, 1).unwrap();
        assert_eq!(
            db.claim_slot(id, 4, "local", 100, 2).unwrap().unwrap().slot,
            0
        );
        let first = db.next_trial(id, 0, 100).unwrap().unwrap();
        let second = db.next_trial(id, 1, 101).unwrap().unwrap();
        assert_eq!((first.seq, second.seq, first.attempt), (0, 1, 1));
        assert!(db.next_trial(id, 0, 100).unwrap().is_none());
        let plan = db.trial_plan(first.id).unwrap();
        assert_eq!(plan, serde_json::json!({ "seq": 0 }));
        db.trial_step(first.id, 1, "reset", "cleared").unwrap();
        db.finish_trial(
            first.id,
            &TrialOutcome {
                verdict: Some(Verdict::Invalid),
                reason: "gate".into(),
                ..TrialOutcome::default()
            },
        )
        .unwrap();
        // Resume: the running trial and the invalid one run again, each as the same row.
        db.end_campaign(id, CampaignStatus::Interrupted, "stopped")
            .unwrap();
        assert_eq!(db.resume_campaign(id, 9).unwrap(), 2);
        let again = db.next_trial(id, 0, 100).unwrap().unwrap();
        assert_eq!((again.id, again.attempt), (first.id, 2));
        assert_eq!(db.trials(id).unwrap().len(), 2);
        assert_eq!(db.trial_events(first.id).unwrap().len(), 1);
        assert!(db.request_stop(id).unwrap());
        assert!(
            db.campaign_heartbeat(id).unwrap(),
            "the harness hears the stop"
        );
        let row = db.campaign(id).unwrap().unwrap();
        assert_eq!((row.trials, row.done, row.pid), (2, 0, Some(9)));
    }
}
