//! The durable event log: one SQLite table in WAL mode, appended in batches (one
//! transaction each, fsynced before the batch is folded or published), read back in
//! append order for replay, and trimmed by age. Only the stats actor writes it; the CLI
//! opens it read-only.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};
use serde::{Deserialize, Serialize};

use crate::events::{EpochMs, Event};

/// An event as stored, with its place in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: i64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("event log {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("event log {path}: cannot create its folder: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("event log {path}: row {seq} is not an event: {source}")]
    Corrupt {
        path: PathBuf,
        seq: i64,
        source: serde_json::Error,
    },
}

pub struct EventLog {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    call_id TEXT,
    queue   TEXT,
    agent   TEXT,
    body    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_at ON events(at);
CREATE INDEX IF NOT EXISTS events_call ON events(call_id);
";

impl EventLog {
    /// Opens (creating if needed) the log for writing.
    pub fn open(path: &Path) -> Result<EventLog, LogError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LogError::Folder {
                path: path.to_owned(),
                source,
            })?;
        }
        let log = EventLog::wrap(path, Connection::open(path))?;
        // FULL: a committed batch survives a power cut, not only a crash of the process.
        log.conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| log.conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| log.conn.execute_batch(SCHEMA))
            .map_err(|e| log.err(e))?;
        Ok(log)
    }

    /// Opens an existing log without writing to it (for `hotline stats --db`).
    pub fn open_read_only(path: &Path) -> Result<EventLog, LogError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        EventLog::wrap(path, Connection::open_with_flags(path, flags))
    }

    fn wrap(path: &Path, conn: rusqlite::Result<Connection>) -> Result<EventLog, LogError> {
        let conn = conn.map_err(|source| LogError::Sqlite {
            path: path.to_owned(),
            source,
        })?;
        Ok(EventLog {
            conn,
            path: path.to_owned(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> LogError {
        LogError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends the batch in one transaction and returns it with sequence numbers.
    pub fn append(&mut self, events: &[Event]) -> Result<Vec<StoredEvent>, LogError> {
        let path = self.path.clone();
        let err = |source| LogError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(err)?;
        let mut stored = Vec::with_capacity(events.len());
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO events (at, kind, call_id, queue, agent, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            for event in events {
                let value = serde_json::to_value(event).unwrap_or_default();
                let field = |name: &str| value.get(name).and_then(|v| v.as_str());
                insert
                    .execute(params![
                        event.at,
                        field("event").unwrap_or(""),
                        event.kind.call_id(),
                        field("queue"),
                        field("agent"),
                        value.to_string(),
                    ])
                    .map_err(err)?;
                stored.push(StoredEvent {
                    seq: tx.last_insert_rowid(),
                    event: event.clone(),
                });
            }
        }
        tx.commit().map_err(err)?;
        Ok(stored)
    }

    /// Calls `f` with every event stamped at or after `from`, in append order, and returns
    /// how many there were. A row that no longer parses (edited by hand, or written by a
    /// newer version) is skipped with a warning rather than stopping the replay.
    pub fn replay_since(
        &self,
        from: EpochMs,
        mut f: impl FnMut(StoredEvent),
    ) -> Result<u64, LogError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, body FROM events WHERE at >= ?1 ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([from]).map_err(|e| self.err(e))?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            match self.decode(row) {
                Ok(stored) => {
                    f(stored);
                    n += 1;
                }
                Err(e @ LogError::Corrupt { .. }) => tracing::warn!("{e}; skipped"),
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// The newest events (up to `limit`), newest first, optionally only those before `before`.
    pub fn recent(&self, limit: u32, before: Option<i64>) -> Result<Vec<StoredEvent>, LogError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, body FROM events WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![before.unwrap_or(i64::MAX), limit])
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            match self.decode(row) {
                Ok(stored) => out.push(stored),
                Err(e @ LogError::Corrupt { .. }) => tracing::warn!("{e}; skipped"),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Deletes events stamped before `at`; returns how many.
    pub fn delete_before(&self, at: EpochMs) -> Result<usize, LogError> {
        self.conn
            .execute("DELETE FROM events WHERE at < ?1", [at])
            .map_err(|e| self.err(e))
    }

    fn decode(&self, row: &rusqlite::Row<'_>) -> Result<StoredEvent, LogError> {
        let seq: i64 = row.get(0).map_err(|e| self.err(e))?;
        let body: String = row.get(1).map_err(|e| self.err(e))?;
        let event = serde_json::from_str(&body).map_err(|source| LogError::Corrupt {
            path: self.path.clone(),
            seq,
            source,
        })?;
        Ok(StoredEvent { seq, event })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventKind;

    #[test]
    fn appends_replays_and_trims_a_real_file() {
        let dir = std::env::temp_dir().join(format!("hotline-log-{}", std::process::id()));
        let path = dir.join("events.sqlite");
        let _ = std::fs::remove_file(&path);
        let mut log = EventLog::open(&path).unwrap();
        let ev = |at, agent: &str| Event {
            at,
            kind: EventKind::AgentResume {
                agent: agent.to_owned(),
            },
        };
        let stored = log.append(&[ev(10, "a"), ev(5, "b"), ev(20, "c")]).unwrap();
        assert_eq!(stored.iter().map(|s| s.seq).collect::<Vec<_>>(), [1, 2, 3]);
        drop(log);
        let log = EventLog::open_read_only(&path).unwrap();
        let mut seen = Vec::new();
        log.replay_since(6, |s| seen.push(s.event.at)).unwrap();
        // Append order, not time order, and only events at or after `from`.
        assert_eq!(seen, [10, 20]);
        let recent = log.recent(2, None).unwrap();
        assert_eq!(recent.iter().map(|s| s.seq).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(log.recent(5, Some(2)).unwrap()[0].event, ev(10, "a"));
        drop(log);
        let log = EventLog::open(&path).unwrap();
        assert_eq!(log.delete_before(10).unwrap(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
