//! The DB schema, as numbered migrations applied in order. `PRAGMA user_version` records the
//! last one applied; a DB from a newer build is refused rather than misread.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// Each entry is one migration; append, never edit.
const MIGRATIONS: &[&str] = &[
    // 1: tickets and their events, agent sessions and log, the chaos ledger.
    r"
CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY,
    violation_key    TEXT NOT NULL,
    subject          TEXT NOT NULL,
    instance         INTEGER NOT NULL,
    invariant        TEXT NOT NULL,
    entity           TEXT NOT NULL,
    severity         TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status           TEXT NOT NULL
                     CHECK (status IN ('open', 'in_progress', 'verifying', 'resolved', 'escalated')),
    held             INTEGER NOT NULL DEFAULT 0,
    summary          TEXT NOT NULL,
    detail           TEXT NOT NULL DEFAULT '{}',
    occurrences      INTEGER NOT NULL DEFAULT 1,
    observations     INTEGER NOT NULL DEFAULT 1,
    opened_at        TEXT NOT NULL,
    last_seen_at     TEXT NOT NULL,
    cleared_at       TEXT,
    resolved_at      TEXT,
    resolution       TEXT CHECK (resolution IN ('verified', 'self_healed', 'manual')),
    claimed_by       TEXT,
    lease_expires_at TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT NOT NULL,
    CHECK ((status = 'resolved') = (resolution IS NOT NULL))
);
-- One ticket per violation key that is not resolved: two monitors cannot open two.
CREATE UNIQUE INDEX tickets_one_active ON tickets (violation_key) WHERE status != 'resolved';
CREATE INDEX tickets_by_key ON tickets (violation_key, resolved_at);
CREATE INDEX tickets_by_status ON tickets (status);
CREATE INDEX tickets_by_instance ON tickets (subject, instance, status);

CREATE TABLE ticket_events (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    actor       TEXT NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX ticket_events_by_ticket ON ticket_events (ticket_id, id);

CREATE TABLE agent_sessions (
    id            INTEGER PRIMARY KEY,
    ticket_id     INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    agent_id      TEXT NOT NULL,
    backend       TEXT NOT NULL,
    model         TEXT NOT NULL,
    mode          TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    ended_at      TEXT,
    outcome       TEXT,
    turns         INTEGER NOT NULL DEFAULT 0,
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd      REAL NOT NULL DEFAULT 0,
    error         TEXT
);
CREATE INDEX agent_sessions_by_ticket ON agent_sessions (ticket_id);

CREATE TABLE agent_log (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES agent_sessions (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    content     TEXT NOT NULL DEFAULT '',
    command     TEXT,
    policy      TEXT,
    exit_code   INTEGER,
    duration_ms INTEGER,
    UNIQUE (session_id, seq)
);

CREATE TABLE chaos_faults (
    id          INTEGER PRIMARY KEY,
    fault       TEXT NOT NULL,
    subject     TEXT NOT NULL,
    instance    INTEGER NOT NULL,
    runtime     TEXT NOT NULL,
    target      TEXT NOT NULL,
    params      TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL
                CHECK (status IN ('injecting', 'active', 'healing', 'healed', 'failed')),
    injected_at TEXT NOT NULL,
    expires_at  TEXT,
    healed_at   TEXT,
    injected_by TEXT NOT NULL,
    healed_by   TEXT,
    note        TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL
);
CREATE INDEX chaos_faults_by_status ON chaos_faults (status);
",
    // 2: what the agent's audit needs beyond the first sketch.
    r"
ALTER TABLE agent_sessions ADD COLUMN variant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE agent_sessions ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_sessions ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agent_sessions ADD COLUMN summary TEXT;
ALTER TABLE agent_log ADD COLUMN tool TEXT;
ALTER TABLE agent_log ADD COLUMN tool_use_id TEXT;
ALTER TABLE agent_log ADD COLUMN decision TEXT;
ALTER TABLE agent_log ADD COLUMN actor TEXT;
ALTER TABLE agent_log ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';
CREATE INDEX agent_sessions_by_start ON agent_sessions (started_at);
",
    // 3: the evaluation harness: campaigns, their trials and timelines, snapshots, slots.
    r"
CREATE TABLE eval_campaigns (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted')),
    started_at     TEXT NOT NULL,
    ended_at       TEXT,
    spec           TEXT NOT NULL,
    provenance     TEXT NOT NULL DEFAULT '{}',
    pid            INTEGER,
    heartbeat_at   TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    note           TEXT NOT NULL DEFAULT '',
    updated_at     TEXT NOT NULL
);
CREATE INDEX eval_campaigns_by_status ON eval_campaigns (status);

CREATE TABLE eval_trials (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES eval_campaigns (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    problem      INTEGER NOT NULL,
    subject      TEXT NOT NULL,
    fault        TEXT,
    params       TEXT NOT NULL DEFAULT '{}',
    plan         TEXT NOT NULL,
    fixed_target TEXT,
    pick         TEXT NOT NULL,
    variant      TEXT NOT NULL,
    baseline     INTEGER NOT NULL,
    control      INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done')),
    step         TEXT,
    slot         INTEGER,
    instance     INTEGER,
    attempt      INTEGER NOT NULL DEFAULT 0,
    verdict      TEXT CHECK (verdict IN ('resolved', 'unresolved', 'escalated', 'undetected',
                                         'invalid', 'clean', 'false_alarm')),
    reason       TEXT,
    won          INTEGER,
    target       TEXT,
    started_at   TEXT,
    ended_at     TEXT,
    injected_at  TEXT,
    ttd_ms       INTEGER,
    ttr_ms       INTEGER,
    fault_id     INTEGER REFERENCES chaos_faults (id),
    localized    INTEGER,
    regression   INTEGER,
    metrics      TEXT NOT NULL DEFAULT '{}',
    updated_at   TEXT NOT NULL,
    UNIQUE (campaign_id, seq),
    CHECK ((status = 'done') = (verdict IS NOT NULL))
);
CREATE INDEX eval_trials_by_campaign ON eval_trials (campaign_id, status, seq);

CREATE TABLE eval_trial_events (
    id       INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES eval_trials (id) ON DELETE CASCADE,
    attempt  INTEGER NOT NULL,
    at       TEXT NOT NULL,
    step     TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX eval_trial_events_by_trial ON eval_trial_events (trial_id, id);

CREATE TABLE eval_trial_tickets (
    trial_id  INTEGER NOT NULL REFERENCES eval_trials (id) ON DELETE CASCADE,
    attempt   INTEGER NOT NULL,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    PRIMARY KEY (trial_id, attempt, ticket_id)
);

CREATE TABLE eval_snapshots (
    id       INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES eval_trials (id) ON DELETE CASCADE,
    attempt  INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    at       TEXT NOT NULL,
    body     TEXT NOT NULL
);
CREATE INDEX eval_snapshots_by_trial ON eval_snapshots (trial_id);

CREATE TABLE eval_slots (
    slot         INTEGER PRIMARY KEY,
    instance     INTEGER NOT NULL UNIQUE,
    campaign_id  INTEGER NOT NULL REFERENCES eval_campaigns (id) ON DELETE CASCADE,
    pid          INTEGER NOT NULL,
    runtime      TEXT NOT NULL,
    claimed_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    trial_id     INTEGER
);
",
    // 4: incidents: the tickets of one cause, worked together. A DB from before them gets
    // one incident per ticket, with the ticket's own state, claim and attempts.
    r"
CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY,
    subject          TEXT NOT NULL,
    instance         INTEGER NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('open', 'in_progress', 'verifying', 'resolved', 'escalated')),
    opened_at        TEXT NOT NULL,
    last_joined_at   TEXT NOT NULL,
    resolved_at      TEXT,
    claimed_by       TEXT,
    lease_expires_at TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    worked_by        TEXT,
    session_id       INTEGER,
    updated_at       TEXT NOT NULL
);
CREATE INDEX incidents_by_instance ON incidents (subject, instance, status);
ALTER TABLE tickets ADD COLUMN incident_id INTEGER REFERENCES incidents (id);
ALTER TABLE tickets ADD COLUMN incident_root INTEGER NOT NULL DEFAULT 1;
CREATE INDEX tickets_by_incident ON tickets (incident_id);
INSERT INTO incidents (id, subject, instance, status, opened_at, last_joined_at, resolved_at,
                       claimed_by, lease_expires_at, attempts, worked_by, updated_at)
    SELECT id, subject, instance, status, opened_at, opened_at, resolved_at,
           claimed_by, lease_expires_at, attempts, claimed_by, updated_at
    FROM tickets;
UPDATE tickets SET incident_id = id;
ALTER TABLE agent_sessions ADD COLUMN incident_id INTEGER;
UPDATE agent_sessions SET incident_id = ticket_id;
CREATE INDEX agent_sessions_by_incident ON agent_sessions (incident_id);
",
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// How long a writer waits for another one before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the DB at `path`: WAL, a busy timeout, foreign keys, and every
/// migration this build knows.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    let at = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(at)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(at)?;
    // Switching a new file to WAL can answer "busy" at once, without waiting, while another
    // process opens it too: try again until the busy timeout.
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(at(e)),
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(at)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(at)?;
    migrate(&conn, path)?;
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let at = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(at)?;
    if version > latest() {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            known: latest(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = i as i64 + 1;
        // IMMEDIATE: two processes opening a new DB at once migrate it once, in turn.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(at)?;
        let current: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(at)?;
        if current >= next {
            conn.execute_batch("COMMIT").map_err(at)?;
            continue;
        }
        let applied = conn
            .execute_batch(sql)
            .and_then(|()| conn.pragma_update(None, "user_version", next));
        match applied {
            Ok(()) => conn.execute_batch("COMMIT").map_err(at)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(StoreError::Migration {
                    path: path.to_path_buf(),
                    version: next,
                    source: e,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_sets_wal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        let c = open(&p).unwrap();
        let mode: String = c
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(c);
        let c = open(&p).unwrap();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest());
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.db");
        let c = open(&p).unwrap();
        c.pragma_update(None, "user_version", latest() + 1).unwrap();
        drop(c);
        let err = open(&p).unwrap_err();
        assert!(matches!(err, StoreError::NewerSchema { .. }), "{err}");
        assert!(err.to_string().contains("t.db"));
    }

    /// A DB from before incidents (schema 3, with tickets in every state and a session)
    /// upgrades in place: every ticket kept, each its own incident with its state, claim and
    /// attempts, and the session names it.
    #[test]
    fn a_db_from_before_incidents_upgrades_with_every_ticket_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.db");
        {
            let c = Connection::open(&p).unwrap();
            for sql in &MIGRATIONS[..3] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 3).unwrap();
            let t = "2026-01-01T00:00:00.000Z";
            for (id, status, resolution, claimed) in [
                (1, "resolved", Some("self_healed"), None),
                (2, "in_progress", None, Some("agent-1")),
                (3, "open", None, None),
                (4, "escalated", None, None),
            ] {
                c.execute(
                    "INSERT INTO tickets (id, violation_key, subject, instance, invariant, entity,
                        severity, status, summary, opened_at, last_seen_at, updated_at,
                        resolved_at, resolution, claimed_by, lease_expires_at, attempts)
                     VALUES (?1, 'k' || ?1, 'etcd', 0, 'member_down', 'etcd-' || ?1, 'critical',
                        ?2, 's', ?3, ?3, ?3, CASE WHEN ?4 IS NULL THEN NULL ELSE ?3 END, ?4, ?5,
                        CASE WHEN ?5 IS NULL THEN NULL ELSE ?3 END, 2)",
                    rusqlite::params![id, status, t, resolution, claimed],
                )
                .unwrap();
            }
            c.execute(
                "INSERT INTO agent_sessions (ticket_id, agent_id, backend, model, mode, started_at)
                 VALUES (2, 'agent-1', 'runbook', 'runbook', 'auto', ?1)",
                [t],
            )
            .unwrap();
        }
        let c = open(&p).unwrap();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest());
        let rows: Vec<(i64, i64, String, String, Option<String>, i64)> = c
            .prepare(
                "SELECT t.id, t.incident_id, t.status, i.status, i.claimed_by, i.attempts
                 FROM tickets t JOIN incidents i ON i.id = t.incident_id ORDER BY t.id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 4, "every ticket kept: {rows:?}");
        for (id, incident, status, incident_status, _, attempts) in &rows {
            assert_eq!(id, incident);
            assert_eq!(status, incident_status);
            assert_eq!(*attempts, 2);
        }
        assert_eq!(rows[1].4.as_deref(), Some("agent-1"));
        let session_incident: i64 = c
            .query_row("SELECT incident_id FROM agent_sessions", [], |r| r.get(0))
            .unwrap();
        assert_eq!(session_incident, 2);
        // New incidents number after the old ones.
        c.execute(
            "INSERT INTO incidents (subject, instance, status, opened_at, last_joined_at, updated_at)
             VALUES ('etcd', 0, 'open', 'x', 'x', 'x')",
            [],
        )
        .unwrap();
        assert_eq!(c.last_insert_rowid(), 5);
    }

    #[test]
    fn a_file_that_is_not_a_db_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.db");
        std::fs::write(
            &p,
            "this is not a database, just text that is long enough....",
        )
        .unwrap();
        let err = open(&p).unwrap_err();
        assert!(err.to_string().contains("junk.db"), "{err}");
    }
}
