//! The chaos ledger: one row per fault, written before the fault is applied, so a crash
//! never leaves a fault nobody knows about. Its rows and its SQL.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, Row, ToSql, params};
use serde::{Deserialize, Serialize};

use super::sqlite::{exec, row};
use super::{Sqlite, StoreError};
use crate::clock::{self, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStatus {
    /// Recorded; being applied.
    Injecting,
    Active,
    /// Someone is healing it.
    Healing,
    Healed,
    /// Could not be applied.
    Failed,
}

impl FaultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Injecting => "injecting",
            Self::Active => "active",
            Self::Healing => "healing",
            Self::Healed => "healed",
            Self::Failed => "failed",
        }
    }

    /// Still (possibly) in effect.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Injecting | Self::Active | Self::Healing)
    }
}

/// One fault in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub id: i64,
    /// The fault's name, as its kind spells it (`chaos::FaultKind` reads it back).
    pub fault: String,
    pub subject: String,
    pub instance: u32,
    pub runtime: String,
    pub target: String,
    pub params: serde_json::Value,
    pub status: FaultStatus,
    pub injected_at: Timestamp,
    /// When it heals itself; `None`: only a heal ends it.
    pub expires_at: Option<Timestamp>,
    pub healed_at: Option<Timestamp>,
    pub injected_by: String,
    pub healed_by: Option<String>,
    pub note: String,
    pub updated_at: Timestamp,
}

/// A fault about to be applied.
#[derive(Debug, Clone)]
pub struct NewFault {
    /// The fault's name.
    pub fault: String,
    pub subject: String,
    pub instance: u32,
    pub runtime: String,
    pub target: String,
    pub params: serde_json::Value,
    pub expires_at: Option<Timestamp>,
    pub injected_by: String,
}

/// What the store does with the chaos ledger.
pub trait LedgerDb {
    /// Records a fault as `injecting`, unless a live fault already holds the target (then
    /// that one is the `Err`).
    fn record_fault(&self, f: &NewFault) -> Result<Result<FaultRecord, FaultRecord>, StoreError>;
    fn fault(&self, id: i64) -> Result<Option<FaultRecord>, StoreError>;
    /// Sets a fault's status and note; `healed_by` when healing or healed.
    fn set_fault_status(
        &self,
        id: i64,
        status: FaultStatus,
        note: &str,
        actor: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Takes a fault for healing; false if it is not live or another healer took it less
    /// than `stale_after` ago.
    fn claim_heal(
        &self,
        id: i64,
        actor: &str,
        stale_after: chrono::Duration,
    ) -> Result<bool, StoreError>;
    /// Faults, newest first: only live ones unless `all`.
    fn faults(&self, instance: Option<u32>, all: bool) -> Result<Vec<FaultRecord>, StoreError>;
}

impl ToSql for FaultStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for FaultStatus {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        match v.as_str()? {
            "injecting" => Ok(Self::Injecting),
            "active" => Ok(Self::Active),
            "healing" => Ok(Self::Healing),
            "healed" => Ok(Self::Healed),
            "failed" => Ok(Self::Failed),
            s => Err(FromSqlError::Other(format!("fault status {s:?}").into())),
        }
    }
}

const COLUMNS: &str = "id, fault, subject, instance, runtime, target, params, status, injected_at, \
    expires_at, healed_at, injected_by, healed_by, note, updated_at";

fn parse_ts(s: &str) -> rusqlite::Result<Timestamp> {
    clock::parse(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_row(row: &Row) -> rusqlite::Result<FaultRecord> {
    let params: String = row.get(6)?;
    let opt_ts = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        row.get::<_, Option<String>>(i)?
            .map(|s| parse_ts(&s))
            .transpose()
    };
    Ok(FaultRecord {
        id: row.get(0)?,
        fault: row.get(1)?,
        subject: row.get(2)?,
        instance: row.get(3)?,
        runtime: row.get(4)?,
        target: row.get(5)?,
        params: serde_json::from_str(&params).unwrap_or_default(),
        status: row.get(7)?,
        injected_at: parse_ts(&row.get::<_, String>(8)?)?,
        expires_at: opt_ts(9)?,
        healed_at: opt_ts(10)?,
        injected_by: row.get(11)?,
        healed_by: row.get(12)?,
        note: row.get(13)?,
        updated_at: parse_ts(&row.get::<_, String>(14)?)?,
    })
}

impl LedgerDb for Sqlite {
    /// Records a fault as `injecting`, unless a live fault already holds the target.
    fn record_fault(&self, f: &NewFault) -> Result<Result<FaultRecord, FaultRecord>, StoreError> {
        self.write(|tx| {
            let existing = tx
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM chaos_faults WHERE instance = ?1 AND target = ?2
                         AND status IN ('injecting', 'active', 'healing') LIMIT 1"
                    ),
                    params![f.instance, f.target],
                    from_row,
                )
                .optional()?;
            if let Some(e) = existing {
                return Ok(Err(e));
            }
            let now = clock::format(clock::now());
            exec(tx,
                "INSERT INTO chaos_faults (fault, subject, instance, runtime, target, params, status,
                        injected_at, expires_at, injected_by, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'injecting', ?7, ?8, ?9, ?7)",
                params![
                    f.fault,
                    f.subject,
                    f.instance,
                    f.runtime,
                    f.target,
                    f.params.to_string(),
                    now,
                    f.expires_at.map(clock::format),
                    f.injected_by
                ],
            )?;
            let id = tx.last_insert_rowid();
            Ok(Ok(row(tx,
                &format!("SELECT {COLUMNS} FROM chaos_faults WHERE id = ?1"),
                [id],
                from_row,
            )?))
        })
    }

    fn fault(&self, id: i64) -> Result<Option<FaultRecord>, StoreError> {
        self.read(|c| {
            Ok(row(
                c,
                &format!("SELECT {COLUMNS} FROM chaos_faults WHERE id = ?1"),
                [id],
                from_row,
            )
            .optional()?)
        })
    }

    /// Sets a fault's status and note; `healed_by` when healing or healed.
    fn set_fault_status(
        &self,
        id: i64,
        status: FaultStatus,
        note: &str,
        actor: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = clock::format(clock::now());
        let healed_at = (status == FaultStatus::Healed).then(|| now.clone());
        self.write(|tx| {
            exec(
                tx,
                "UPDATE chaos_faults SET status = ?2, note = ?3, updated_at = ?4,
                        healed_at = COALESCE(?5, healed_at), healed_by = COALESCE(?6, healed_by)
                 WHERE id = ?1",
                params![id, status, note, now, healed_at, actor],
            )?;
            Ok(())
        })
    }

    /// Takes a fault for healing; false if it is not live or another healer took it less
    /// than `stale_after` ago.
    fn claim_heal(
        &self,
        id: i64,
        actor: &str,
        stale_after: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let now = clock::now();
        let stale = clock::format(now - stale_after);
        self.write(|tx| {
            let n = exec(
                tx,
                "UPDATE chaos_faults SET status = 'healing', healed_by = ?2, updated_at = ?3
                 WHERE id = ?1 AND (status IN ('injecting', 'active')
                                    OR (status = 'healing' AND updated_at < ?4))",
                params![id, actor, clock::format(now), stale],
            )?;
            Ok(n == 1)
        })
    }

    /// Faults, newest first: only live ones unless `all`.
    fn faults(&self, instance: Option<u32>, all: bool) -> Result<Vec<FaultRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM chaos_faults
                 WHERE (?1 IS NULL OR instance = ?1)
                   AND (?2 OR status IN ('injecting', 'active', 'healing'))
                 ORDER BY id DESC"
            ))?;
            let rows = stmt.query_map(params![instance, all], from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
