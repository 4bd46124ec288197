//! The SQLite handle: one connection for writes and one for reads, so that a read never
//! waits behind a write that waits for another process's lock (WAL lets them run at once).
//! Every call blocks: the store's façade runs them on blocking threads.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Params, Row, Transaction, TransactionBehavior};

use super::{StoreError, schema};

const STATEMENT_CACHE: usize = 64;

pub struct Sqlite {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    path: PathBuf,
}

/// A panic while holding a connection leaves it usable: SQLite rolls the transaction back.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sqlite {
    /// Opens (creating and migrating if needed) the DB at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let writer = schema::open(path)?;
        let reader = schema::open(path)?;
        // More distinct statements than rusqlite's default cache of 16 run every cycle.
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`).
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` on the reading connection.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&lock(&self.reader))
    }
}

/// Runs a statement, prepared once per connection (the monitor runs the same ones every
/// cycle: parsing their SQL each time cost more than running them).
pub(super) fn exec(c: &Connection, sql: &str, params: impl Params) -> rusqlite::Result<usize> {
    c.prepare_cached(sql)?.execute(params)
}

/// One row of a query, the statement prepared once per connection.
pub(super) fn row<T>(
    c: &Connection,
    sql: &str,
    params: impl Params,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    c.prepare_cached(sql)?.query_row(params, f)
}
