//! The crash-safe store: SQLite in WAL mode, one transaction per state change.
//!
//! Durability follows DESIGN.md "Decisions": `synchronous = NORMAL` (a process crash loses
//! nothing committed; a power cut may lose the last commits but never corrupts), progress
//! batched to at most one write per interval, and the Complete mark committed with
//! `synchronous = FULL`.
//!
//! A write is as wide as the change: the job's row alone ([`Store::save_job_row`]), with
//! the rows of the files that changed ([`Store::save_job_and_files`]), one file's row, or
//! the rows of files just added ([`Store::insert_files`]); so an event of a job of 100,000
//! files costs what it costs in a job of one. [`Store::save_job`] rewrites everything, for
//! a job changed throughout (start-up recovery), and so does the COMPLETING mark.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, ToSql, params};

use crate::credentials::{AuthScheme, AuthTarget, Credential, Credentials, Secret};
use crate::error::{QmgrError, Result};
use crate::file::{FileRecord, Validator};
use crate::group::Group;
use crate::guid::Guid;
use crate::job::{AutoComplete, DEFAULT_UMASK, Job, JobError, JobPriority, JobSettings, JobTimes};
use crate::on_demand::OnDemandFile;
use crate::ranges::FileRange;
use crate::state::{JobState, JobType};
use crate::time::Timestamp;
use crate::trust;

/// The store's file name inside the state directory.
pub const STORE_FILE: &str = "qmgr.sqlite3";

/// Schema migrations, in order; `PRAGMA user_version` counts how many were applied.
const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE jobs (
        id                 TEXT PRIMARY KEY,
        job_type           INTEGER NOT NULL,
        display_name       TEXT NOT NULL,
        description        TEXT NOT NULL,
        owner_uid          INTEGER NOT NULL,
        priority           INTEGER NOT NULL,
        state              INTEGER NOT NULL,
        created            INTEGER NOT NULL,
        modified           INTEGER NOT NULL,
        transfer_completed INTEGER NOT NULL,
        settings           TEXT NOT NULL,
        error              TEXT,
        error_count        INTEGER NOT NULL,
        no_progress_since  INTEGER,
        retry_at           INTEGER,
        group_id           TEXT,
        completing         INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE files (
        job_id            TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        idx               INTEGER NOT NULL,
        remote_name       TEXT NOT NULL,
        local_name        TEXT NOT NULL,
        temp_name         TEXT,
        bytes_total       INTEGER NOT NULL,
        bytes_transferred INTEGER NOT NULL,
        completed         INTEGER NOT NULL,
        etag              TEXT,
        last_modified     TEXT,
        PRIMARY KEY (job_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE groups (
        id           TEXT PRIMARY KEY,
        owner_uid    INTEGER NOT NULL,
        created      INTEGER NOT NULL,
        display_name TEXT NOT NULL,
        description  TEXT NOT NULL,
        notify_flags INTEGER NOT NULL,
        notify_clsid TEXT,
        foreground   INTEGER NOT NULL,
        job_id       TEXT
    );
",
    r"
    -- The umask of the job's creator (NULL for jobs of older stores: 022).
    ALTER TABLE jobs ADD COLUMN umask INTEGER;
    -- Every temporary file name this store handed out, kept until the file is known to be
    -- gone: the start-up sweep deletes recorded names no job holds any more, and nothing
    -- else, so another store's or user's temporary files in the same directory are safe.
    CREATE TABLE temp_files (
        path TEXT PRIMARY KEY
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO temp_files (path) SELECT temp_name FROM files WHERE temp_name IS NOT NULL;
",
    r"
    -- qmgr transfer's jobs complete themselves (0 no, 1 replace, 2 no-clobber), and
    -- interactive retries double their delay once per retry without progress.
    ALTER TABLE jobs ADD COLUMN auto_complete INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN retries_without_progress INTEGER NOT NULL DEFAULT 0;
",
    r"
    -- SetCredentials: a user name and password per job, target (1 server, 2 proxy) and
    -- scheme (1 basic, 2 digest, 3 NTLM, 4 negotiate). Only the store (0600, in a 0700
    -- directory) and the transfer engine ever see a password.
    CREATE TABLE credentials (
        job_id    TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        target    INTEGER NOT NULL,
        scheme    INTEGER NOT NULL,
        user_name TEXT NOT NULL,
        password  TEXT NOT NULL,
        PRIMARY KEY (job_id, target, scheme)
    ) WITHOUT ROWID;
",
    r"
    -- Resume has succeeded at least once (what Microsoft allows only before it is fixed).
    -- A job of an older store that left SUSPENDED or failed once was resumed.
    ALTER TABLE jobs ADD COLUMN resumed INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET resumed = 1 WHERE state != 3 OR error_count > 0;
",
    r"
    -- The raw head of each file's last HTTP response (File5's HTTP_RESPONSE_HEADERS): kept
    -- here only, read when asked, so a job of many files does not hold them in memory.
    CREATE TABLE response_headers (
        job_id  TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        idx     INTEGER NOT NULL,
        headers TEXT NOT NULL,
        PRIMARY KEY (job_id, idx)
    ) WITHOUT ROWID;
",
    r"
    -- IBackgroundCopyFile3::SetValidationState: the application said the file is valid.
    ALTER TABLE files ADD COLUMN validated INTEGER NOT NULL DEFAULT 0;
",
    r"
    -- AddFileWithRanges: the file's byte ranges of the remote file in the order given, as a
    -- JSON list of {offset, length} (length 18446744073709551615: to the end); NULL for the
    -- whole file.
    ALTER TABLE files ADD COLUMN ranges TEXT;
",
    r"
    -- An upload job's file: the server's session and acknowledged offset, and the source's
    -- identity, as JSON; NULL for downloads.
    ALTER TABLE files ADD COLUMN upload TEXT;
",
    r"
    -- ON_DEMAND_MODE: an on-demand file's bytes in its temporary file (`filled`), those asked
    -- for and not there yet (`requested`), each a JSON list of {start, end} spans, and the
    -- read position; NULL for every other file.
    ALTER TABLE files ADD COLUMN on_demand TEXT;
",
    r"
    -- An upload-reply job's reply: its file name, URL, temporary file and progress, as
    -- JSON; NULL for every other job.
    ALTER TABLE jobs ADD COLUMN reply TEXT;
",
    r"
    -- Job5 COST_FLAGS and the per-job idle mode are kept in the settings JSON (`cost_flags`:
    -- absent or null follows the priority; `idle_mode`: absent is on), so no row changes.
    -- The version marks stores whose jobs may carry them: an older qmgr, which would drop
    -- them when it rewrites a job, refuses the store instead.
    UPDATE jobs SET settings = settings WHERE 0;
",
    r"
    -- Each file's last response head moves into its own row, written by the row's next
    -- write (most often the file's completion) instead of a write of its own.
    ALTER TABLE files ADD COLUMN response_headers TEXT;
    UPDATE files SET response_headers = (
        SELECT headers FROM response_headers r WHERE r.job_id = files.job_id AND r.idx = files.idx
    );
    DROP TABLE response_headers;
",
    r"
    -- A file's temporary name is known from its row while the row lasts: `temp_files` keeps
    -- only the names no row holds (the files of a job that left the store before its
    -- temporary files were gone, and names kept outside the files' rows), so naming a file
    -- costs no second write.
    DELETE FROM temp_files WHERE path IN (SELECT temp_name FROM files WHERE temp_name IS NOT NULL);
",
];

/// One progress write: the bytes of one file now safely on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgressUpdate {
    pub job: Guid,
    pub file: u32,
    pub bytes: u64,
    /// The file's row has more unsaved than its bytes (the size and validator of a
    /// response, see [`ProgressBatcher::record_response`]): the whole row is to be written,
    /// not [`Store::save_progress`]'s bytes alone.
    pub whole_row: bool,
}

/// The job, file and group tables.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// A batch is open ([`Store::begin_batch`]): writes are savepoints inside it.
    batch_open: bool,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`. The directory is created 0700 or
    /// checked first, and so is every file of the store (the database, its `-wal` and
    /// `-shm`): each must be a regular file of ours, never a symbolic link, and is made
    /// 0600 (see [`crate::trust`]). SQLite gives the `-wal` and `-shm` files the
    /// database's mode, so creating the database 0600 keeps all three private.
    pub fn open(dir: &Path) -> Result<Store> {
        trust::prepare_private_dir(dir, "state directory")?;
        let path = dir.join(STORE_FILE);
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.clone().into_os_string();
            companion.push(suffix);
            trust::check_private_file_if_present(Path::new(&companion), "store file")?;
        }
        drop(trust::open_private_file(
            &path,
            trust::Access::ReadWriteCreate,
            "store",
        )?);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| store_error(&path, "cannot open", &e))?;
        let mut store = Store {
            conn,
            path,
            batch_open: false,
        };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&mut self) -> Result<()> {
        self.conn
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA busy_timeout = 5000;
                 PRAGMA temp_store = MEMORY;",
            )
            .map_err(|e| self.error("cannot configure", &e))
    }

    fn migrate(&mut self) -> Result<()> {
        let version = self.schema_version()? as usize;
        if version > MIGRATIONS.len() {
            return Err(QmgrError::internal(format!(
                "store {} has schema version {version}, newer than this qmgr knows ({}); use a newer qmgr",
                self.path.display(),
                MIGRATIONS.len()
            )));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let path = self.path.clone();
            let tx = self
                .conn
                .transaction()
                .map_err(|e| store_error(&path, "cannot migrate", &e))?;
            tx.execute_batch(migration)
                .map_err(|e| store_error(&path, "cannot migrate", &e))?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(index + 1).unwrap_or(i64::MAX),
            )
            .map_err(|e| store_error(&path, "cannot migrate", &e))?;
            tx.commit()
                .map_err(|e| store_error(&path, "cannot migrate", &e))?;
        }
        Ok(())
    }

    /// Makes every later write fail (SQLite's `query_only`), or work again: how tests show
    /// what the service does when the store refuses a write (a full disk, a file system
    /// gone read-only). Reads keep working.
    #[doc(hidden)]
    pub fn refuse_writes_for_tests(&self, refuse: bool) -> Result<()> {
        self.conn
            .pragma_update(None, "query_only", refuse)
            .map_err(|e| self.error("cannot configure", &e))
    }

    /// The schema version of this store.
    pub fn schema_version(&self) -> Result<u32> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| self.error("cannot read", &e))
    }

    fn error(&self, what: &str, error: &rusqlite::Error) -> QmgrError {
        store_error(&self.path, what, error)
    }

    /// Runs `work` in one transaction; inside a batch, in a savepoint of the batch's
    /// transaction, so a failed write undoes only itself. The statements that open and end
    /// them are prepared once (a burst of writes would otherwise parse them every time).
    fn write<T>(
        &mut self,
        what: &str,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let (begin, commit, undo) = if self.batch_open {
            (
                "SAVEPOINT write",
                "RELEASE write",
                "ROLLBACK TO write; RELEASE write",
            )
        } else {
            ("BEGIN", "COMMIT", "ROLLBACK")
        };
        let conn = &self.conn;
        let run = || -> rusqlite::Result<T> {
            conn.prepare_cached(begin)?.execute([])?;
            let value = work(conn)?;
            conn.prepare_cached(commit)?.execute([])?;
            Ok(value)
        };
        run().map_err(|error| {
            // Whatever the failed write left open is undone; a failure to undo is reported
            // with the first error (the connection may be gone).
            if self.batch_open || !conn.is_autocommit() {
                let _ = conn.execute_batch(undo);
            }
            store_error(&self.path, what, &error)
        })
    }

    /// [`Store::write`] for `work` that is one statement, which SQLite makes succeed or fail
    /// whole by itself: it runs as its own transaction, or inside an open batch without a
    /// savepoint of its own (a savepoint per write copied every page it touched once more).
    fn write_statement<T>(
        &mut self,
        what: &str,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        work(&self.conn).map_err(|error| store_error(&self.path, what, &error))
    }

    /// Opens a batch: every write until [`Store::end_batch`] joins one transaction, so a
    /// burst of changes (a hundred files finishing at once) costs one commit instead of
    /// one each. Each write still succeeds or fails whole. Nothing of the batch is in the
    /// store until `end_batch` returns `Ok`, so a caller tells no one of a change in it
    /// before then.
    pub fn begin_batch(&mut self) -> Result<()> {
        if self.batch_open {
            return Ok(());
        }
        self.conn
            .execute_batch("BEGIN")
            .map_err(|e| self.error("cannot begin a batch", &e))?;
        self.batch_open = true;
        Ok(())
    }

    /// Commits the open batch (none open: nothing to do). On an error none of the batch's
    /// writes are in the store.
    pub fn end_batch(&mut self) -> Result<()> {
        if !self.batch_open {
            return Ok(());
        }
        self.batch_open = false;
        let committed = self.conn.execute_batch("COMMIT");
        if let Err(error) = committed {
            // A failed COMMIT may leave the transaction open (SQLITE_BUSY): nothing of
            // it is to be kept.
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            return Err(self.error("cannot commit a batch", &error));
        }
        Ok(())
    }

    /// Adds a new job with its files.
    pub fn insert_job(&mut self, job: &Job) -> Result<()> {
        let row = JobRow::from_job(job)?;
        self.write("cannot add a job", |tx| {
            tx.prepare_cached(
                "INSERT INTO jobs (id, job_type, display_name, description, owner_uid, priority, state, created,
                    modified, transfer_completed, settings, error, error_count, no_progress_since, retry_at,
                    group_id, completing, umask, auto_complete, retries_without_progress, resumed, reply)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
            )?
            .execute(row.params(job))?;
            write_files(tx, job, 0)
        })
    }

    /// Writes every field of an existing job and every one of its files: for a job changed
    /// throughout (start-up recovery, the last record of a job the store failed). Its cost
    /// grows with the job; a change of a few fields uses the narrower writes below.
    pub fn save_job(&mut self, job: &Job) -> Result<()> {
        let row = JobRow::from_job(job)?;
        self.write("cannot save a job", |tx| {
            update_job_row(tx, job, &row)?;
            write_credentials(tx, job)?;
            write_files(tx, job, 0)
        })
    }

    /// Writes the job's row and replaces its stored credentials with the job's own
    /// (SetCredentials, RemoveCredentials), in one transaction; no file row is touched.
    pub fn save_job_credentials(&mut self, job: &Job) -> Result<()> {
        let row = JobRow::from_job(job)?;
        self.write("cannot save credentials", |tx| {
            update_job_row(tx, job, &row)?;
            write_credentials(tx, job)
        })
    }

    /// Writes the job's own row (state, error, times, settings, counters), not its files.
    pub fn save_job_row(&mut self, job: &Job) -> Result<()> {
        let row = JobRow::from_job(job)?;
        self.write("cannot save a job", |tx| update_job_row(tx, job, &row))
    }

    /// Writes the columns of the job's row that its state machine and transfers change
    /// (state, times, error, retry and progress counters), not its settings, names, owner
    /// or reply: for a burst of files finishing, where encoding the settings again cost
    /// more than the rest of the write.
    pub fn save_job_state(&mut self, job: &Job) -> Result<()> {
        let id = job.id.to_string();
        let error = job
            .error
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| {
                QmgrError::internal(format!("cannot encode the error of job {}: {e}", job.id))
            })?;
        self.write_statement("cannot save a job", |tx| {
            let changed = tx
                .prepare_cached(
                    "UPDATE jobs SET state = ?2, modified = ?3, transfer_completed = ?4, error = ?5,
                        error_count = ?6, no_progress_since = ?7, retry_at = ?8,
                        retries_without_progress = ?9, resumed = ?10
                     WHERE id = ?1",
                )?
                .execute(params![
                    id,
                    job.state as u32,
                    job.times.modified.0,
                    job.times.transfer_completed.0,
                    error,
                    job.error_count,
                    job.no_progress_since.map(|t| t.0),
                    job.retry_at.map(|t| t.0),
                    job.retries_without_progress,
                    job.resumed,
                ])?;
            if changed == 0 {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            }
            Ok(())
        })
    }

    /// Writes the job's row and the rows of its files `indices` in one transaction; the
    /// other files' rows are not touched.
    pub fn save_job_and_files(&mut self, job: &Job, indices: &[usize]) -> Result<()> {
        let row = JobRow::from_job(job)?;
        self.write("cannot save a job", |tx| {
            update_job_row(tx, job, &row)?;
            for &index in indices {
                update_file_row(tx, job, index)?;
            }
            Ok(())
        })
    }

    /// Writes the row of file `index` of the job (its names, temporary name, sizes,
    /// progress, completion and validator) and nothing else.
    pub fn save_file(&mut self, job: &Job, index: usize) -> Result<()> {
        self.write("cannot save a file", |tx| update_file_row(tx, job, index))
    }

    /// Writes what a download changes in the row of file `index` (its temporary name,
    /// sizes, bytes, completion, validator and response head) and leaves its names alone:
    /// the write of a file that finished. A file with an upload or on-demand state, which
    /// transfers change too, gets its whole row ([`Store::save_file`]).
    pub fn save_file_outcome(&mut self, job: &Job, index: usize) -> Result<()> {
        self.write_statement("cannot save a file", |tx| {
            update_file_outcome(tx, job, index)
        })
    }

    /// Records the temporary names just given to files `indices` ahead of their start (see
    /// [`Job::give_temp_name`]): each in its row's `temp_name`, with `bytes_transferred` (a
    /// new name holds no bytes), nothing else of the rows, in one transaction. The rows are
    /// where the names are known from (see [`Store::temp_names`]).
    pub fn save_temp_names(&mut self, job: &Job, indices: &[usize]) -> Result<()> {
        let id = job.id.to_string();
        self.write("cannot record a temporary file", |tx| {
            let mut name = tx.prepare_cached(
                "UPDATE files SET temp_name = ?3, bytes_transferred = ?4
                     WHERE job_id = ?1 AND idx = ?2",
            )?;
            for &index in indices {
                let file = job
                    .files
                    .get(index)
                    .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
                let index = i64::try_from(index).unwrap_or(i64::MAX);
                let bytes = to_sql_u64(file.bytes_transferred);
                if name.execute(params![id, index, file.temp_name, bytes])? == 0 {
                    return Err(rusqlite::Error::QueryReturnedNoRows);
                }
            }
            Ok(())
        })
    }

    /// Writes the rows of files `indices`, which were just given temporary file names, in
    /// one transaction.
    pub fn save_files_with_temp_names(&mut self, job: &Job, indices: &[usize]) -> Result<()> {
        self.write("cannot save a file", |tx| {
            for &index in indices {
                update_file_row(tx, job, index)?;
            }
            Ok(())
        })
    }

    /// AddFiles: writes the job's row and adds the rows of its files from index `first`
    /// on, in one transaction; the rows of the files it had are not touched.
    pub fn insert_files(&mut self, job: &Job, first: usize) -> Result<()> {
        let row = JobRow::from_job(job)?;
        self.write("cannot add files", |tx| {
            update_job_row(tx, job, &row)?;
            write_files(tx, job, first)
        })
    }

    /// Writes the job's own row with `synchronous = FULL`, so the commit survives a power
    /// cut, and with it every commit before it: used for the COMPLETING mark before files
    /// are renamed. The start-up that finishes an interrupted Complete renames what the
    /// files' rows say is finished and deletes the rest; those rows are current already,
    /// as every change of a file is committed before it is told, and a job is completed
    /// only in a state that was told.
    pub fn save_job_durably(&mut self, job: &Job) -> Result<()> {
        // The mark must not wait for a batch: whatever came before it is committed first.
        self.end_batch()?;
        let row = JobRow::from_job(job)?;
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.error("cannot save a job", &e))?;
        let saved = self.write("cannot save a job", |tx| update_job_row(tx, job, &row));
        let restored = self
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.error("cannot save a job", &e));
        saved.and(restored)
    }

    /// Removes a job and its files (after Complete or Cancel). `temp_files_left` are the
    /// job's temporary files that may still exist (not yet deleted or renamed into place):
    /// their names, which only the job's rows held, are recorded (see
    /// [`Store::record_temp_name`]) in the same transaction, so the next start-up deletes
    /// whichever a crash leaves behind.
    pub fn delete_job(&mut self, id: Guid, temp_files_left: &[&str]) -> Result<()> {
        self.write("cannot delete a job", |tx| {
            let mut record =
                tx.prepare_cached("INSERT OR IGNORE INTO temp_files (path) VALUES (?1)")?;
            for path in temp_files_left {
                record.execute([path])?;
            }
            tx.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
                .execute([id.to_string()])?;
            Ok(())
        })
    }

    /// Writes a batch of progress updates in one transaction: the bytes of each file
    /// (an update's `whole_row` is for the caller, who writes those rows whole instead).
    pub fn save_progress(&mut self, updates: &[ProgressUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        self.write("cannot save progress", |tx| {
            let mut update = tx.prepare_cached(
                "UPDATE files SET bytes_transferred = ?3 WHERE job_id = ?1 AND idx = ?2",
            )?;
            for u in updates {
                update.execute(params![u.job.to_string(), u.file, to_sql_u64(u.bytes)])?;
            }
            Ok(())
        })
    }

    /// Every job, in the order they were created.
    pub fn load_jobs(&self) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        self.for_each_job(|job| {
            jobs.push(job);
            Ok(())
        })?;
        Ok(jobs)
    }

    /// Hands every job to `each`, in the order they were created, without holding them all
    /// at once: the caller keeps each job where it belongs as it comes, so a large queue is
    /// never in memory twice. An error from `each` stops the load and is returned.
    ///
    /// One ordered scan reads the jobs with their files (a job of several files comes as
    /// consecutive rows, its files in order); a job's settings are decoded only when they
    /// differ from the previous job's, since most jobs keep the same ones.
    pub fn for_each_job(&self, mut each: impl FnMut(Job) -> Result<()>) -> Result<()> {
        let fail = |e: rusqlite::Error| self.error("cannot load jobs", &e);
        let mut credentials = self.load_credentials()?;
        let mut statement = self
            .conn
            .prepare(
                "SELECT j.rowid, j.id, j.job_type, j.display_name, j.description, j.owner_uid, j.priority,
                    j.state, j.created, j.modified, j.transfer_completed, j.settings, j.error, j.error_count,
                    j.no_progress_since, j.retry_at, j.group_id, j.completing, j.umask, j.auto_complete,
                    j.retries_without_progress, j.resumed, j.reply,
                    f.remote_name, f.local_name, f.temp_name, f.bytes_total, f.bytes_transferred, f.completed,
                    f.etag, f.last_modified, f.validated, f.ranges, f.upload, f.on_demand
                 FROM jobs AS j LEFT JOIN files AS f ON f.job_id = j.id
                 ORDER BY j.rowid, f.idx",
            )
            .map_err(fail)?;
        let mut rows = statement.query([]).map_err(fail)?;
        let mut settings_seen = SettingsSeen::default();
        // The job whose rows are being read, by rowid.
        let mut current: Option<(i64, Job)> = None;
        while let Some(row) = rows.next().map_err(fail)? {
            let rowid: i64 = row.get(0).map_err(fail)?;
            if current.as_ref().is_none_or(|(at, _)| *at != rowid) {
                if let Some((_, job)) = current.take() {
                    each(finished(job))?;
                }
                let mut job = self.job_from_row(row, &mut settings_seen)?;
                if let Some(owned) = credentials.remove(&job.id) {
                    job.credentials = Credentials::new(owned);
                }
                current = Some((rowid, job));
            }
            let Some((_, job)) = current.as_mut() else {
                continue;
            };
            // A job without files has one row whose file columns are NULL.
            if let Some(file) = file_from_row(row).map_err(fail)? {
                job.files.push(file);
            }
        }
        if let Some((_, job)) = current {
            each(finished(job))?;
        }
        Ok(())
    }

    /// Every job's credentials, by job.
    fn load_credentials(&self) -> Result<HashMap<Guid, Vec<Credential>>> {
        let fail = |e: rusqlite::Error| self.error("cannot load credentials", &e);
        let corrupt = |job: &str, error: QmgrError| {
            QmgrError::internal(format!(
                "store {}: job {job} has unusable credentials: {}",
                self.path.display(),
                error.description
            ))
        };
        let mut statement = self
            .conn
            .prepare("SELECT job_id, target, scheme, user_name, password FROM credentials")
            .map_err(fail)?;
        let mut rows = statement.query([]).map_err(fail)?;
        let mut by_job: HashMap<Guid, Vec<Credential>> = HashMap::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let job: String = row.get(0).map_err(fail)?;
            let credential = Credential {
                target: AuthTarget::from_raw(row.get(1).map_err(fail)?)
                    .map_err(|e| corrupt(&job, e))?,
                scheme: AuthScheme::from_raw(row.get(2).map_err(fail)?)
                    .map_err(|e| corrupt(&job, e))?,
                user_name: row.get(3).map_err(fail)?,
                password: Secret::new(row.get::<_, String>(4).map_err(fail)?),
            };
            let id: Guid = job.parse().map_err(|_| {
                QmgrError::internal(format!(
                    "store {}: credentials for a malformed job id {job:?}",
                    self.path.display()
                ))
            })?;
            by_job.entry(id).or_default().push(credential);
        }
        Ok(by_job)
    }

    /// The job of a row of [`Store::for_each_job`]'s scan, without its files yet.
    fn job_from_row(&self, row: &Row<'_>, settings_seen: &mut SettingsSeen) -> Result<Job> {
        let id_text = row
            .get_ref(1)
            .and_then(|value| value.as_str().map_err(rusqlite::Error::from))
            .map_err(|e| self.error("cannot load a job", &e))?;
        let id: Guid = id_text.parse().map_err(|_| {
            QmgrError::internal(format!(
                "store {}: job {id_text:?} has a malformed id",
                self.path.display()
            ))
        })?;
        let fail = |e: rusqlite::Error| self.error(&format!("cannot load job {id}"), &e);
        let corrupt = |what: &str| {
            QmgrError::internal(format!(
                "store {}: job {id} has {what}",
                self.path.display()
            ))
        };
        let settings = row
            .get_ref(11)
            .and_then(|value| value.as_str().map_err(rusqlite::Error::from))
            .map_err(fail)?;
        let settings = settings_seen
            .decode(settings)
            .map_err(|_| corrupt("unreadable settings"))?;
        let error = match row.get_ref(12).map_err(fail)? {
            ValueRef::Null => None,
            value => Some(
                value
                    .as_str()
                    .map_err(|e| fail(e.into()))
                    .and_then(|text| {
                        serde_json::from_str::<Box<JobError>>(text)
                            .map_err(|_| corrupt("an unreadable error record"))
                    })?,
            ),
        };
        let group = match row.get_ref(16).map_err(fail)? {
            ValueRef::Null => None,
            value => Some(
                value
                    .as_str()
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| corrupt("a malformed group id"))?,
            ),
        };
        Ok(Job {
            id,
            job_type: JobType::from_raw(row.get(2).map_err(fail)?)
                .ok_or_else(|| corrupt("an unknown type"))?,
            display_name: row.get(3).map_err(fail)?,
            description: row.get(4).map_err(fail)?,
            owner_uid: row.get(5).map_err(fail)?,
            priority: JobPriority::from_raw(row.get(6).map_err(fail)?)
                .ok_or_else(|| corrupt("an unknown priority"))?,
            state: JobState::from_raw(row.get(7).map_err(fail)?)
                .ok_or_else(|| corrupt("an unknown state"))?,
            files: Vec::new(),
            times: JobTimes {
                created: Timestamp(row.get(8).map_err(fail)?),
                modified: Timestamp(row.get(9).map_err(fail)?),
                transfer_completed: Timestamp(row.get(10).map_err(fail)?),
            },
            settings,
            error,
            error_count: row.get(13).map_err(fail)?,
            no_progress_since: row.get::<_, Option<i64>>(14).map_err(fail)?.map(Timestamp),
            retry_at: row.get::<_, Option<i64>>(15).map_err(fail)?.map(Timestamp),
            group,
            completing: row.get(17).map_err(fail)?,
            umask: row
                .get::<_, Option<u32>>(18)
                .map_err(fail)?
                .filter(|umask| *umask <= 0o777)
                .unwrap_or(DEFAULT_UMASK),
            auto_complete: AutoComplete::from_raw(row.get(19).map_err(fail)?)
                .map_err(|_| corrupt("an unknown auto-complete mark"))?,
            retries_without_progress: row.get(20).map_err(fail)?,
            resumed: row.get(21).map_err(fail)?,
            reply: match row.get_ref(22).map_err(fail)? {
                ValueRef::Null => None,
                value => Some(
                    value
                        .as_str()
                        .map_err(|e| fail(e.into()))
                        .and_then(|text| {
                            serde_json::from_str(text)
                                .map_err(|_| corrupt("an unreadable reply record"))
                        })?,
                ),
            },
            credentials: Credentials::default(),
            tally: crate::job::FileTally::default(),
            refetch: crate::job::RefetchMarks::default(),
            pending_headers: crate::job::PendingHeaders::default(),
        })
    }

    /// The head of the last HTTP response for file `index` of job `job`, if one was kept.
    pub fn response_headers(&self, job: Guid, index: usize) -> Result<Option<String>> {
        let index = i64::try_from(index).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached("SELECT response_headers FROM files WHERE job_id = ?1 AND idx = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row(params![job.to_string(), index], |row| {
                        row.get::<_, Option<String>>(0)
                    })
                    .optional()
            })
            .map(Option::flatten)
            .map_err(|e| self.error("cannot read response headers", &e))
    }

    /// Records a temporary file name that no file's row holds (a reply's, a scratch file's,
    /// a file's whose row lets go of it before the file is gone), before the file is
    /// created or the row lets go, so that no crash can leave a file this store does not
    /// know of.
    pub fn record_temp_name(&mut self, path: &str) -> Result<()> {
        self.write("cannot record a temporary file", |tx| {
            tx.prepare_cached("INSERT OR IGNORE INTO temp_files (path) VALUES (?1)")?
                .execute([path])?;
            Ok(())
        })
    }

    /// Forgets temporary file names whose files are gone (deleted or renamed into place).
    pub fn forget_temp_names<S: AsRef<str>>(&mut self, paths: &[S]) -> Result<()> {
        if paths.is_empty() {
            return Ok(());
        }
        self.write("cannot forget a temporary file", |tx| {
            let mut delete = tx.prepare_cached("DELETE FROM temp_files WHERE path = ?1")?;
            for path in paths {
                delete.execute([path.as_ref()])?;
            }
            Ok(())
        })
    }

    /// Every temporary file name recorded apart from the files' rows and not yet
    /// forgotten. The store knows of a temporary file by one or the other: a file's row
    /// holds its name while the row lasts, and this record keeps the names rows let go of
    /// before their files were gone.
    pub fn temp_names(&self) -> Result<Vec<String>> {
        let fail = |e: rusqlite::Error| self.error("cannot read the temporary files", &e);
        let mut statement = self
            .conn
            .prepare("SELECT path FROM temp_files ORDER BY path")
            .map_err(fail)?;
        let names = statement
            .query_map([], |row| row.get(0))
            .map_err(fail)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(fail)?;
        Ok(names)
    }

    /// Adds or replaces a legacy group.
    pub fn save_group(&mut self, group: &Group) -> Result<()> {
        self.write("cannot save a group", |tx| {
            tx.prepare_cached(
                "INSERT INTO groups (id, owner_uid, created, display_name, description, notify_flags, notify_clsid,
                    foreground, job_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET owner_uid = ?2, display_name = ?4, description = ?5,
                    notify_flags = ?6, notify_clsid = ?7, foreground = ?8, job_id = ?9",
            )?
            .execute(params![
                group.id.to_string(),
                group.owner_uid,
                group.created.0,
                group.display_name,
                group.description,
                group.notify_flags,
                group.notify_clsid.map(|g| g.to_string()),
                group.foreground,
                group.job.map(|g| g.to_string()),
            ])?;
            Ok(())
        })
    }

    pub fn delete_group(&mut self, id: Guid) -> Result<()> {
        self.write("cannot delete a group", |tx| {
            tx.prepare_cached("DELETE FROM groups WHERE id = ?1")?
                .execute([id.to_string()])?;
            Ok(())
        })
    }

    /// Every legacy group, in the order they were created.
    pub fn load_groups(&self) -> Result<Vec<Group>> {
        let fail = |e: rusqlite::Error| self.error("cannot load groups", &e);
        let mut statement = self
            .conn
            .prepare(
                "SELECT id, owner_uid, created, display_name, description, notify_flags, notify_clsid, foreground,
                    job_id FROM groups ORDER BY rowid",
            )
            .map_err(fail)?;
        let mut rows = statement.query([]).map_err(fail)?;
        let mut groups = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let id: String = row.get(0).map_err(fail)?;
            let corrupt = || {
                QmgrError::internal(format!(
                    "store {}: group {id} is malformed",
                    self.path.display()
                ))
            };
            let parse_guid = |text: Option<String>| {
                text.map(|t| t.parse::<Guid>())
                    .transpose()
                    .map_err(|_| corrupt())
            };
            groups.push(Group {
                id: id.parse().map_err(|_| corrupt())?,
                owner_uid: row.get(1).map_err(fail)?,
                created: Timestamp(row.get(2).map_err(fail)?),
                display_name: row.get(3).map_err(fail)?,
                description: row.get(4).map_err(fail)?,
                notify_flags: row.get(5).map_err(fail)?,
                notify_clsid: parse_guid(row.get(6).map_err(fail)?)?,
                foreground: row.get(7).map_err(fail)?,
                job: parse_guid(row.get(8).map_err(fail)?)?,
            });
        }
        Ok(groups)
    }

    /// SQLite's own consistency check: `Ok(())` when the database is sound.
    pub fn check_integrity(&self) -> Result<()> {
        let verdict: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(|e| self.error("cannot check integrity", &e))?;
        let dangling: Option<String> = self
            .conn
            .query_row(
                "SELECT job_id FROM files WHERE job_id NOT IN (SELECT id FROM jobs) LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.error("cannot check integrity", &e))?;
        match (verdict.as_str(), dangling) {
            ("ok", None) => Ok(()),
            ("ok", Some(job)) => Err(QmgrError::internal(format!(
                "store {}: files of job {job} have no job",
                self.path.display()
            ))),
            (problem, _) => Err(QmgrError::internal(format!(
                "store {}: {problem}",
                self.path.display()
            ))),
        }
    }
}

/// A job's columns, converted for binding.
struct JobRow {
    id: String,
    job_type: u32,
    priority: u32,
    state: u32,
    settings: String,
    error: Option<String>,
    no_progress_since: Option<i64>,
    retry_at: Option<i64>,
    group: Option<String>,
    auto_complete: u32,
    reply: Option<String>,
}

impl JobRow {
    fn from_job(job: &Job) -> Result<JobRow> {
        let encode = |what: &str, e: serde_json::Error| {
            QmgrError::internal(format!("cannot encode the {what} of job {}: {e}", job.id))
        };
        Ok(JobRow {
            id: job.id.to_string(),
            job_type: job.job_type as u32,
            priority: job.priority as u32,
            state: job.state as u32,
            settings: serde_json::to_string(&job.settings).map_err(|e| encode("settings", e))?,
            error: job
                .error
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| encode("error", e))?,
            no_progress_since: job.no_progress_since.map(|t| t.0),
            retry_at: job.retry_at.map(|t| t.0),
            group: job.group.map(|g| g.to_string()),
            auto_complete: AutoComplete::to_raw(job.auto_complete),
            reply: job
                .reply
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| encode("reply", e))?,
        })
    }

    /// Parameters ?1..?22 of the INSERT and UPDATE statements.
    fn params<'a>(&'a self, job: &'a Job) -> [&'a dyn ToSql; 22] {
        [
            &self.id,
            &self.job_type,
            &job.display_name,
            &job.description,
            &job.owner_uid,
            &self.priority,
            &self.state,
            &job.times.created.0,
            &job.times.modified.0,
            &job.times.transfer_completed.0,
            &self.settings,
            &self.error,
            &job.error_count,
            &self.no_progress_since,
            &self.retry_at,
            &self.group,
            &job.completing,
            &job.umask,
            &self.auto_complete,
            &job.retries_without_progress,
            &job.resumed,
            &self.reply,
        ]
    }
}

/// Updates the job's row; an error if the store has no such job.
fn update_job_row(tx: &Connection, job: &Job, row: &JobRow) -> rusqlite::Result<()> {
    let changed = tx
        .prepare_cached(
            "UPDATE jobs SET job_type = ?2, display_name = ?3, description = ?4, owner_uid = ?5, priority = ?6,
                state = ?7, created = ?8, modified = ?9, transfer_completed = ?10, settings = ?11, error = ?12,
                error_count = ?13, no_progress_since = ?14, retry_at = ?15, group_id = ?16, completing = ?17,
                umask = ?18, auto_complete = ?19, retries_without_progress = ?20, resumed = ?21,
                reply = ?22
             WHERE id = ?1",
        )?
        .execute(row.params(job))?;
    if changed == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    Ok(())
}

/// Replaces the stored credentials of `job` with its own.
fn write_credentials(tx: &Connection, job: &Job) -> rusqlite::Result<()> {
    let id = job.id.to_string();
    tx.prepare_cached("DELETE FROM credentials WHERE job_id = ?1")?
        .execute([&id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO credentials (job_id, target, scheme, user_name, password)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for credential in job.credentials.iter() {
        insert.execute(params![
            id,
            credential.target as u32,
            credential.scheme as u32,
            credential.user_name,
            credential.password.reveal(),
        ])?;
    }
    Ok(())
}

/// Updates the row of file `index` of `job`; an error if the job has no such file or the
/// store no such row.
fn update_file_row(tx: &Connection, job: &Job, index: usize) -> rusqlite::Result<()> {
    let file = job
        .files
        .get(index)
        .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    let mut statement = tx
        .prepare_cached(
            "UPDATE files SET remote_name = ?3, local_name = ?4, temp_name = ?5, bytes_total = ?6,
                bytes_transferred = ?7, completed = ?8, etag = ?9, last_modified = ?10, validated = ?11,
                upload = ?12, on_demand = ?13, response_headers = COALESCE(?14, response_headers)
             WHERE job_id = ?1 AND idx = ?2",
        )?;
    let on_demand = encode_on_demand(&file.on_demand)?;
    let headers = job.pending_response_headers(index);
    let id = job.id.to_string();
    let row = FileRow::of(index, file);
    let [p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12] = row.params(&id);
    let changed = statement.execute([
        p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, &on_demand, &headers,
    ])?;
    if changed == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    Ok(())
}

/// [`Store::save_file_outcome`]'s write.
fn update_file_outcome(tx: &Connection, job: &Job, index: usize) -> rusqlite::Result<()> {
    let file = job
        .files
        .get(index)
        .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    if file.upload.is_some() || file.on_demand != OnDemandFile::default() {
        return update_file_row(tx, job, index);
    }
    let mut statement = tx.prepare_cached(
        "UPDATE files SET temp_name = ?3, bytes_total = ?4, bytes_transferred = ?5, completed = ?6,
            etag = ?7, last_modified = ?8, response_headers = COALESCE(?9, response_headers)
         WHERE job_id = ?1 AND idx = ?2",
    )?;
    let changed = statement.execute(params![
        job.id.to_string(),
        i64::try_from(index).unwrap_or(i64::MAX),
        file.temp_name,
        to_sql_u64(file.bytes_total),
        to_sql_u64(file.bytes_transferred),
        file.completed,
        file.validator.etag,
        file.validator.last_modified,
        job.pending_response_headers(index),
    ])?;
    if changed == 0 {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    Ok(())
}

/// Writes the rows of the job's files from index `first` on (adding or replacing them).
fn write_files(tx: &Connection, job: &Job, first: usize) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO files (job_id, idx, remote_name, local_name, temp_name, bytes_total, bytes_transferred,
            completed, etag, last_modified, validated, upload, ranges, on_demand, response_headers)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (job_id, idx) DO UPDATE SET remote_name = ?3, local_name = ?4, temp_name = ?5,
            bytes_total = ?6, bytes_transferred = ?7, completed = ?8, etag = ?9, last_modified = ?10,
            validated = ?11, upload = ?12, ranges = ?13, on_demand = ?14,
            response_headers = COALESCE(?15, response_headers)",
    )?;
    let id = job.id.to_string();
    for (index, file) in job.files.iter().enumerate().skip(first) {
        let row = FileRow::of(index, file);
        // A file's ranges never change once it is added: only this write stores them.
        let ranges = encode_ranges(&file.ranges)?;
        let on_demand = encode_on_demand(&file.on_demand)?;
        let headers = job.pending_response_headers(index);
        let [p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12] = row.params(&id);
        upsert.execute([
            p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, &ranges, &on_demand, &headers,
        ])?;
    }
    Ok(())
}

/// A file's values as its row holds them: ?1..?12 of the statements that write file rows.
struct FileRow<'a> {
    index: i64,
    /// The upload record as its column holds it (JSON).
    upload: Option<String>,
    bytes_total: i64,
    bytes_transferred: i64,
    file: &'a FileRecord,
}

impl<'a> FileRow<'a> {
    fn of(index: usize, file: &'a FileRecord) -> Self {
        Self {
            index: i64::try_from(index).unwrap_or(i64::MAX),
            upload: file
                .upload
                .as_ref()
                .and_then(|upload| serde_json::to_string(upload).ok()),
            bytes_total: to_sql_u64(file.bytes_total),
            bytes_transferred: to_sql_u64(file.bytes_transferred),
            file,
        }
    }

    #[expect(
        clippy::ptr_arg,
        reason = "a String is sized, so it can stand as a &dyn ToSql; a str cannot"
    )]
    fn params<'p>(&'p self, job_id: &'p String) -> [&'p dyn ToSql; 12] {
        [
            job_id,
            &self.index,
            &self.file.remote_name,
            &self.file.local_name,
            &self.file.temp_name,
            &self.bytes_total,
            &self.bytes_transferred,
            &self.file.completed,
            &self.file.validator.etag,
            &self.file.validator.last_modified,
            &self.file.validated,
            &self.upload,
        ]
    }
}

/// The file of a row of [`Store::for_each_job`]'s scan; `None` for the one row of a job
/// without files.
fn file_from_row(row: &Row<'_>) -> rusqlite::Result<Option<FileRecord>> {
    let Some(remote_name) = row.get::<_, Option<String>>(FIRST_FILE_COLUMN)? else {
        return Ok(None);
    };
    let column = |offset: usize| FIRST_FILE_COLUMN + offset;
    Ok(Some(FileRecord {
        remote_name,
        local_name: row.get(column(1))?,
        temp_name: row.get(column(2))?,
        bytes_total: from_sql_u64(row.get(column(3))?),
        bytes_transferred: from_sql_u64(row.get(column(4))?),
        completed: row.get(column(5))?,
        validator: Validator {
            etag: row.get(column(6))?,
            last_modified: row.get(column(7))?,
        },
        validated: row.get(column(8))?,
        ranges: decode_ranges(column(9), row.get(column(9))?)?,
        upload: decode_upload(column(10), row.get(column(10))?)?.map(Box::new),
        on_demand: decode_on_demand(column(11), row.get(column(11))?)?,
    }))
}

/// An `upload` column's record; text that is not one fails the load rather than losing
/// where the upload stands.
fn decode_upload(
    column: usize,
    text: Option<String>,
) -> rusqlite::Result<Option<crate::file::UploadRecord>> {
    text.map(|text| {
        serde_json::from_str(&text).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(
                column,
                rusqlite::types::Type::Text,
                Box::new(error),
            )
        })
    })
    .transpose()
}

/// An on-demand file's state as its `on_demand` column holds it: `None` (NULL) for a file
/// with nothing filled, asked for or read (every file of other jobs).
fn encode_on_demand(state: &OnDemandFile) -> rusqlite::Result<Option<String>> {
    if *state == OnDemandFile::default() {
        return Ok(None);
    }
    serde_json::to_string(state)
        .map(Some)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
}

/// The state of an `on_demand` column (see [`encode_on_demand`]); text that does not
/// decode fails the load rather than forgetting which bytes are there.
fn decode_on_demand(column: usize, text: Option<String>) -> rusqlite::Result<OnDemandFile> {
    let Some(text) = text else {
        return Ok(OnDemandFile::default());
    };
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// A file's ranges as its `ranges` column holds them: `None` (NULL) for the whole file.
fn encode_ranges(ranges: &[FileRange]) -> rusqlite::Result<Option<String>> {
    if ranges.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(ranges)
        .map(Some)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
}

/// The ranges of a `ranges` column (see [`encode_ranges`]); text that is not a list of
/// ranges fails the load rather than turning the file into a whole one.
fn decode_ranges(column: usize, text: Option<String>) -> rusqlite::Result<Vec<FileRange>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            Box::new(error),
        )
    })
}

/// Where the file's columns start in the rows of [`Store::for_each_job`]'s scan.
const FIRST_FILE_COLUMN: usize = 23;

/// A job read whole: its file list no larger than its files (it grew one push at a time),
/// and its counts made.
fn finished(mut job: Job) -> Job {
    job.files.shrink_to_fit();
    job.counted()
}

/// The settings text of the last job loaded and what it decoded to: the next job with the
/// same text gets a copy instead of another decoding.
#[derive(Default)]
struct SettingsSeen {
    last: Option<(String, JobSettings)>,
}

impl SettingsSeen {
    fn decode(&mut self, text: &str) -> serde_json::Result<JobSettings> {
        if let Some((seen, settings)) = &self.last
            && seen == text
        {
            return Ok(settings.clone());
        }
        let settings: JobSettings = serde_json::from_str(text)?;
        self.last = Some((text.to_owned(), settings.clone()));
        Ok(settings)
    }
}

/// SQLite integers are signed 64-bit; sizes keep their bit pattern (BG_SIZE_UNKNOWN = -1).
#[expect(
    clippy::cast_possible_wrap,
    reason = "SQLite stores u64 as i64; from_sql_u64 reverses it bit for bit"
)]
fn to_sql_u64(value: u64) -> i64 {
    value as i64
}

#[expect(clippy::cast_sign_loss, reason = "reverses to_sql_u64 bit for bit")]
fn from_sql_u64(value: i64) -> u64 {
    value as u64
}

fn store_error(path: &Path, what: &str, error: &rusqlite::Error) -> QmgrError {
    QmgrError::internal(format!("store {}: {what}: {error}", path.display()))
}

/// Collects progress in memory and says when to write it, so a fast transfer does not
/// become a storm of small writes. Time is passed in (monotonic), which keeps it testable.
#[derive(Debug)]
pub struct ProgressBatcher {
    interval: Duration,
    /// Bytes on disk per file, and whether the rest of its row is unsaved too.
    pending: BTreeMap<(Guid, u32), (u64, bool)>,
    /// Jobs whose own row is behind by progress alone (see [`ProgressBatcher::record_job_row`]).
    job_rows: BTreeSet<Guid>,
    last_flush: Option<Duration>,
}

impl ProgressBatcher {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            pending: BTreeMap::new(),
            job_rows: BTreeSet::new(),
            last_flush: None,
        }
    }

    /// Notes that the job's row is behind in what progress changes (its modification time
    /// and no-progress bookkeeping) while its state, error and settings are as stored: a
    /// file of a running job finished. The row is then written with the next progress,
    /// not once per file; after a crash these columns are at most one interval old, as
    /// the files' bytes may be.
    pub fn record_job_row(&mut self, job: Guid) {
        self.job_rows.insert(job);
    }

    /// Takes the jobs whose rows [`ProgressBatcher::record_job_row`] held back. Taken
    /// with [`ProgressBatcher::take`], which starts the next interval.
    pub fn take_job_rows(&mut self) -> Vec<Guid> {
        std::mem::take(&mut self.job_rows).into_iter().collect()
    }

    /// Notes that `bytes` of `file` of `job` are on disk (the latest value wins).
    pub fn record(&mut self, job: Guid, file: u32, bytes: u64) {
        let pending = self.pending.entry((job, file)).or_insert((bytes, false));
        pending.0 = bytes;
    }

    /// Notes that a response changed the file's row (its size and validator) and that
    /// `bytes` of it are on disk: the next write takes the whole row. Stored bytes then never
    /// go without the validator that says which version of the file they are of.
    pub fn record_response(&mut self, job: Guid, file: u32, bytes: u64) {
        self.pending.insert((job, file), (bytes, true));
    }

    /// Forgets pending progress of a job (it was saved whole, cancelled or completed).
    pub fn forget(&mut self, job: Guid) {
        self.pending
            .retain(|(pending_job, _), _| *pending_job != job);
        self.job_rows.remove(&job);
    }

    fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.job_rows.is_empty()
    }

    /// Forgets pending progress of one file (its row was just written with newer bytes).
    pub fn forget_file(&mut self, job: Guid, file: u32) {
        self.pending.remove(&(job, file));
    }

    /// Whether there is something to write and the interval since the last write passed.
    pub fn is_due(&self, now: Duration) -> bool {
        !self.is_empty()
            && self
                .last_flush
                .is_none_or(|last| now.saturating_sub(last) >= self.interval)
    }

    /// When the pending progress should be written, if any is pending.
    pub fn due_at(&self) -> Option<Duration> {
        if self.is_empty() {
            None
        } else {
            Some(
                self.last_flush
                    .map_or(Duration::ZERO, |last| last + self.interval),
            )
        }
    }

    /// Takes the pending updates; `now` starts the next interval.
    pub fn take(&mut self, now: Duration) -> Vec<ProgressUpdate> {
        self.last_flush = Some(now);
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|((job, file), (bytes, whole_row))| ProgressUpdate {
                job,
                file,
                bytes,
                whole_row,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorContext;
    use crate::hresult;
    use crate::job::{NotifyCommand, ProxyUsage};

    fn sample_job(now: Timestamp) -> Job {
        let mut job = Job::new(
            Guid::new_random(),
            "nightly mirror",
            JobType::Download,
            1000,
            JobSettings::default(),
            now,
        )
        .unwrap();
        job.add_file("http://mirror.example/a.iso", "/srv/a.iso", 200, now)
            .unwrap();
        job.add_file("ftp://mirror.example/b.iso", "/srv/b.iso", 200, now)
            .unwrap();
        job.set_description("every night", now).unwrap();
        job.settings.notify_command = Some(Box::new(NotifyCommand {
            program: "/bin/true".into(),
            parameters: Some("x".into()),
        }));
        job.settings.proxy.usage = ProxyUsage::Override;
        job.settings.proxy.proxy_list = Some("http://proxy:3128".into());
        job.settings.custom_headers = Some("X-A: 1\r\nX-B: 2".into());
        job.settings.max_download_size = Some(1 << 30);
        job.files[0].bytes_total = 4096;
        job.files[0].bytes_transferred = 1024;
        job.files[0].temp_name = Some("/srv/.BIT1234.tmp".into());
        job.files[0].validator = Validator {
            etag: Some("\"abc\"".into()),
            last_modified: Some("Mon, 01 Jan 2024 00:00:00 GMT".into()),
        };
        job.error = Some(Box::new(JobError {
            error: QmgrError::new(
                hresult::BG_E_HTTP_ERROR_503,
                ErrorContext::RemoteFile,
                "server busy",
            ),
            file_index: Some(0),
            protocol: Some("http".into()),
            at: now,
            retry_after: Some(Duration::from_secs(120)),
        }));
        job.error_count = 3;
        job.retry_at = Some(now.plus(Duration::from_secs(600)));
        job.no_progress_since = Some(now);
        job.group = Some(Guid::new_random());
        job.recount_files();
        job
    }

    #[test]
    fn an_upload_reply_jobs_reply_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let now = Timestamp(1_700_000_000_000_000);
        let mut job = Job::new(
            Guid::new_random(),
            "crash report",
            JobType::UploadReply,
            1000,
            JobSettings::default(),
            now,
        )
        .unwrap();
        job.add_file("http://up.example/dumps/a.dmp", "/srv/a.dmp", 1, now)
            .unwrap();
        assert!(
            job.reply
                .as_ref()
                .unwrap()
                .file_name
                .as_deref()
                .unwrap()
                .starts_with("/srv/a.dmp."),
            "a reply name is made beside the upload file"
        );
        store.insert_job(&job).unwrap();
        assert_eq!(store.load_jobs().unwrap(), vec![job.clone()]);

        let reply = job.reply.as_mut().unwrap();
        reply.url = Some("http://up.example/replies/1/reply.bin".into());
        reply.temp_name = Some("/srv/.BIT99.tmp".into());
        reply.bytes_total = 5000;
        reply.bytes = 1200;
        reply.validator.etag = Some("\"r1\"".into());
        store.save_job_row(&job).unwrap();
        let loaded = store.load_jobs().unwrap();
        assert_eq!(loaded, vec![job.clone()]);
        assert_eq!(loaded[0].reply.as_ref().unwrap().bytes, 1200);

        let download = sample_job(now);
        store.insert_job(&download).unwrap();
        let loaded = store.load_jobs().unwrap();
        assert!(
            loaded
                .iter()
                .any(|j| j.id == download.id && j.reply.is_none())
        );
    }

    #[test]
    fn jobs_round_trip_with_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let now = Timestamp(1_700_000_000_000_000);
        let mut job = sample_job(now);
        store.insert_job(&job).unwrap();
        assert_eq!(store.load_jobs().unwrap(), vec![job.clone()]);

        job.resume(now).unwrap();
        job.set_priority(JobPriority::High, now).unwrap();
        job.files[1].completed = true;
        job.recount_files();
        job.completing = true;
        job.auto_complete = Some(AutoComplete::NoClobber);
        job.retries_without_progress = 4;
        job.settings.first_retry_delay = Some(Duration::from_secs(5));
        store.save_job(&job).unwrap();
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.load_jobs().unwrap(), vec![job]);
        reopened.check_integrity().unwrap();
    }

    #[test]
    fn a_queue_of_many_jobs_loads_back_whole_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut jobs = Vec::new();
        for n in 0..40u32 {
            let now = Timestamp(1_700_000_000_000_000 + i64::from(n));
            // Every kind of job side by side: the sample (every field set), a plain job,
            // jobs without files, and runs of jobs with the same settings and with
            // settings that differ from the job before.
            let mut job = if n % 5 == 0 {
                sample_job(now)
            } else {
                Job::new(
                    Guid::new_random(),
                    &format!("job {n}"),
                    JobType::Download,
                    1000 + n % 3,
                    JobSettings::default(),
                    now,
                )
                .unwrap()
            };
            for file in 0..(n % 4) {
                job.add_file(
                    &format!("http://mirror.example/{n}/{file}"),
                    &format!("/srv/{n}-{file}"),
                    100,
                    now,
                )
                .unwrap();
            }
            if n % 7 == 3 {
                job.settings.minimum_retry_delay = Duration::from_secs(60 + u64::from(n));
                job.settings.custom_headers = Some(format!("X-Job: {n}"));
            }
            if n % 6 == 1 {
                job.credentials.set(Credential {
                    target: AuthTarget::Server,
                    scheme: AuthScheme::Basic,
                    user_name: format!("user{n}"),
                    password: Secret::new(format!("secret{n}")),
                });
            }
            store.insert_job(&job).unwrap();
            if !job.credentials.is_empty() {
                store.save_job_credentials(&job).unwrap();
            }
            jobs.push(job);
        }
        let loaded = store.load_jobs().unwrap();
        assert_eq!(loaded.len(), jobs.len());
        for (loaded, job) in loaded.iter().zip(&jobs) {
            assert_eq!(loaded, job);
            assert_eq!(loaded.credentials, job.credentials, "job {}", job.id);
            assert_eq!(loaded.progress(), job.progress(), "job {}", job.id);
            assert_eq!(loaded.files.capacity(), loaded.files.len());
        }
    }

    #[test]
    fn a_failure_while_loading_jobs_stops_the_load_with_that_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        for n in 0..3 {
            store.insert_job(&sample_job(Timestamp(n))).unwrap();
        }
        let mut seen = 0;
        let error = store
            .for_each_job(|_| {
                seen += 1;
                if seen == 2 {
                    Err(QmgrError::internal("no room for this job"))
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
        assert_eq!(seen, 2);
        assert!(error.description.contains("no room"), "{error}");
    }

    #[test]
    fn unreadable_settings_name_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let good = sample_job(Timestamp(1));
        let bad = sample_job(Timestamp(2));
        store.insert_job(&good).unwrap();
        store.insert_job(&bad).unwrap();
        store
            .conn
            .execute(
                "UPDATE jobs SET settings = '{' WHERE id = ?1",
                [bad.id.to_string()],
            )
            .unwrap();
        let error = store.load_jobs().unwrap_err();
        assert!(
            error.description.contains(&bad.id.to_string())
                && error.description.contains("unreadable settings"),
            "{error}"
        );
    }

    #[test]
    fn jobs_load_in_creation_order_and_deletion_removes_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let jobs: Vec<Job> = (0..5).map(|i| sample_job(Timestamp(i))).collect();
        for job in &jobs {
            store.insert_job(job).unwrap();
        }
        // Saving a job must not move it in the order.
        store.save_job(&jobs[0]).unwrap();
        let ids: Vec<Guid> = store.load_jobs().unwrap().iter().map(|j| j.id).collect();
        assert_eq!(ids, jobs.iter().map(|j| j.id).collect::<Vec<_>>());
        store.delete_job(jobs[2].id, &[]).unwrap();
        assert_eq!(store.load_jobs().unwrap().len(), 4);
        let orphans: i64 = store
            .conn
            .query_row(
                "SELECT COUNT(*) FROM files WHERE job_id = ?1",
                [jobs[2].id.to_string()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        store.check_integrity().unwrap();
    }

    #[test]
    fn the_creators_umask_is_kept_and_old_jobs_get_022() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut job = sample_job(Timestamp(1));
        job.umask = 0o077;
        store.insert_job(&job).unwrap();
        assert_eq!(store.load_jobs().unwrap()[0].umask, 0o077);
        // A job written before the column existed has NULL there.
        store
            .conn
            .execute("UPDATE jobs SET umask = NULL", [])
            .unwrap();
        assert_eq!(store.load_jobs().unwrap()[0].umask, DEFAULT_UMASK);
    }

    #[test]
    fn a_first_version_store_is_migrated_with_its_temporary_names_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO jobs VALUES ('{00000000-0000-0000-0000-000000000001}', 0, 'old', '', 1000, 2, 1,
                    0, 0, 0, ?1, NULL, 0, NULL, NULL, NULL, 0)",
                [serde_json::to_string(&JobSettings::default()).unwrap()],
            )
            .unwrap();
            // Never resumed: still SUSPENDED, no error.
            conn.execute(
                "INSERT INTO jobs VALUES ('{00000000-0000-0000-0000-000000000002}', 0, 'new', '', 1000, 2, 3,
                    0, 0, 0, ?1, NULL, 0, NULL, NULL, NULL, 0)",
                [serde_json::to_string(&JobSettings::default()).unwrap()],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO files VALUES ('{00000000-0000-0000-0000-000000000001}', 0, 'http://x/a', '/d/a',
                    '/d/.BIT00.tmp', -1, 0, 0, NULL, NULL)",
                [],
            )
            .unwrap();
        }
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        let jobs = store.load_jobs().unwrap();
        assert_eq!(jobs[0].umask, DEFAULT_UMASK);
        assert!(jobs[0].resumed, "a job that left SUSPENDED was resumed");
        assert!(!jobs[1].resumed, "a SUSPENDED job without errors was not");
        assert_eq!(
            store.temp_names().unwrap(),
            Vec::<String>::new(),
            "a name a file's row holds is known from the row alone"
        );
        assert_eq!(jobs[0].files[0].temp_name.as_deref(), Some("/d/.BIT00.tmp"));
        store.record_temp_name("/d/.BIT01.tmp").unwrap();
        let mut job = store.load_jobs().unwrap().remove(0);
        job.files[0].temp_name = Some("/d/.BIT01.tmp".into());
        store.save_files_with_temp_names(&job, &[0]).unwrap();
        assert_eq!(
            store.load_jobs().unwrap()[0].files[0].temp_name.as_deref(),
            Some("/d/.BIT01.tmp")
        );
        store.forget_temp_names(&["/d/.BIT00.tmp"]).unwrap();
        assert_eq!(
            store.temp_names().unwrap(),
            vec!["/d/.BIT01.tmp".to_owned()]
        );
        store.check_integrity().unwrap();
    }

    /// A stored job of `files` files (every field of `sample_job`, and more files).
    fn stored_job(store: &mut Store, files: usize) -> Job {
        let now = Timestamp(1_700_000_000_000_000);
        let mut job = sample_job(now);
        for index in job.files.len()..files {
            job.add_file(
                &format!("http://mirror.example/{index}"),
                &format!("/srv/{index}"),
                u32::MAX,
                now,
            )
            .unwrap();
        }
        store.insert_job(&job).unwrap();
        job
    }

    /// A store holding a job of `files` files, that job, and a copy changed throughout.
    fn stored_and_changed(files: usize) -> (tempfile::TempDir, Store, Job, Job) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let stored = stored_job(&mut store, files);
        let mut job = stored.clone();
        change_everything(&mut job);
        (dir, store, stored, job)
    }

    /// Changes the job's row and every file in memory, so that a write can be seen to have
    /// taken exactly the parts it should.
    fn change_everything(job: &mut Job) {
        let later = Timestamp(1_800_000_000_000_000);
        job.set_description("changed", later).unwrap();
        job.error_count += 1;
        for (index, file) in job.files.iter_mut().enumerate() {
            file.bytes_transferred = 10_000 + index as u64;
            file.bytes_total = 20_000;
            file.completed = true;
            file.temp_name = Some(format!("/srv/.BIT{index:016X}.tmp"));
            file.validator.etag = Some(format!("\"{index}\"").into());
        }
        job.recount_files();
    }

    #[test]
    fn response_headers_ride_on_the_files_next_row_write_and_go_with_the_job() {
        let (_dir, mut store, mut job, _) = stored_and_changed(2);
        assert_eq!(store.response_headers(job.id, 0).unwrap(), None);
        job.keep_response_headers(0, "HTTP/1.1 200 OK\r\nETag: \"a\"\r\n".into());
        // Held, not written, until the row is.
        assert_eq!(store.response_headers(job.id, 0).unwrap(), None);
        let written = rows_changed(&mut store, |store| store.save_file(&job, 0).unwrap());
        assert_eq!(written, 1, "the head costs no write of its own");
        job.response_headers_written(0);
        assert_eq!(job.pending_response_headers(0), None);
        assert_eq!(
            store.response_headers(job.id, 0).unwrap().as_deref(),
            Some("HTTP/1.1 200 OK\r\nETag: \"a\"\r\n")
        );
        // A later write without a new head keeps the stored one; a new head replaces it.
        store.save_job_and_files(&job, &[0]).unwrap();
        store.save_job(&job).unwrap();
        assert!(store.response_headers(job.id, 0).unwrap().is_some());
        job.keep_response_headers(0, "HTTP/1.1 206 Partial Content\r\n".into());
        store.save_job(&job).unwrap();
        assert_eq!(
            store.response_headers(job.id, 0).unwrap().as_deref(),
            Some("HTTP/1.1 206 Partial Content\r\n")
        );
        assert_eq!(store.response_headers(job.id, 1).unwrap(), None);
        store.delete_job(job.id, &[]).unwrap();
        assert_eq!(store.response_headers(job.id, 0).unwrap(), None);
    }

    #[test]
    fn response_headers_of_an_older_store_move_into_their_files_rows() {
        let dir = tempfile::tempdir().unwrap();
        let job = sample_job(Timestamp(1_700_000_000_000_000));
        {
            let conn = store_before(dir.path(), "moves into its own row");
            insert_old_job(
                &conn,
                job.id,
                &serde_json::to_string(&job.settings).unwrap(),
            );
            for index in 0..2 {
                conn.execute(
                    "INSERT INTO files (job_id, idx, remote_name, local_name, bytes_total,
                        bytes_transferred, completed) VALUES (?1, ?2, 'http://h/f', '/l', 0, 0, 0)",
                    params![job.id.to_string(), index],
                )
                .unwrap();
            }
            conn.execute(
                "INSERT INTO response_headers (job_id, idx, headers) VALUES (?1, 1, 'HTTP/1.1 200 OK')",
                params![job.id.to_string()],
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        assert_eq!(store.response_headers(job.id, 0).unwrap(), None);
        assert_eq!(
            store.response_headers(job.id, 1).unwrap().as_deref(),
            Some("HTTP/1.1 200 OK")
        );
    }

    #[test]
    fn an_older_stores_record_keeps_only_the_names_no_row_holds() {
        let dir = tempfile::tempdir().unwrap();
        let job = sample_job(Timestamp(1_700_000_000_000_000));
        {
            let conn = store_before(dir.path(), "costs no second write");
            insert_old_job(
                &conn,
                job.id,
                &serde_json::to_string(&job.settings).unwrap(),
            );
            conn.execute(
                "INSERT INTO files (job_id, idx, remote_name, local_name, temp_name, bytes_total,
                    bytes_transferred, completed) VALUES (?1, 0, 'http://h/f', '/l/f', '/l/.BIT01.tmp', 0, 0, 0)",
                params![job.id.to_string()],
            )
            .unwrap();
            for name in ["/l/.BIT01.tmp", "/l/.BIT02.tmp"] {
                conn.execute("INSERT INTO temp_files (path) VALUES (?1)", [name])
                    .unwrap();
            }
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        assert_eq!(
            store.temp_names().unwrap(),
            vec!["/l/.BIT02.tmp".to_owned()],
            "the name of a job gone stays; the name a row holds is known from the row"
        );
        assert_eq!(
            store.load_jobs().unwrap()[0].files[0].temp_name.as_deref(),
            Some("/l/.BIT01.tmp")
        );
    }

    #[test]
    fn a_jobs_temporary_files_left_are_recorded_with_its_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut job = sample_job(Timestamp(1));
        job.give_temp_name(0, "/srv/.BIT00000000000000A0.tmp".into());
        store.insert_job(&job).unwrap();
        let other = sample_job(Timestamp(1));
        store.insert_job(&other).unwrap();

        store
            .delete_job(job.id, &["/srv/.BIT00000000000000A0.tmp"])
            .unwrap();
        assert_eq!(store.load_jobs().unwrap(), vec![other.clone()]);
        assert_eq!(
            store.temp_names().unwrap(),
            vec!["/srv/.BIT00000000000000A0.tmp".to_owned()]
        );
        store.delete_job(other.id, &[]).unwrap();
        assert_eq!(
            store.temp_names().unwrap().len(),
            1,
            "nothing more recorded"
        );

        // A refused deletion records nothing: the job's rows still hold its names.
        let mut kept = sample_job(Timestamp(1));
        kept.give_temp_name(0, "/srv/.BIT00000000000000B0.tmp".into());
        store.insert_job(&kept).unwrap();
        store.refuse_writes_for_tests(true).unwrap();
        assert!(
            store
                .delete_job(kept.id, &["/srv/.BIT00000000000000B0.tmp"])
                .is_err()
        );
        store.refuse_writes_for_tests(false).unwrap();
        assert_eq!(store.temp_names().unwrap().len(), 1);
        assert_eq!(store.load_jobs().unwrap().len(), 1);
    }

    #[test]
    fn a_batchs_writes_reach_the_store_together_when_it_ends() {
        let (dir, mut store, stored, job) = stored_and_changed(3);
        store.begin_batch().unwrap();
        store.save_file(&job, 0).unwrap();
        store.save_files_with_temp_names(&job, &[1, 2]).unwrap();
        store.save_job_row(&job).unwrap();
        let reader = Store::open(dir.path()).unwrap();
        assert_eq!(
            reader.load_jobs().unwrap().remove(0),
            stored,
            "nothing of an open batch is in the store"
        );
        store.end_batch().unwrap();
        let loaded = reader.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.files, job.files);
        assert_eq!(loaded.description, "changed");
        assert_eq!(loaded.files[1].temp_name, job.files[1].temp_name);
    }

    #[test]
    fn a_write_that_fails_in_a_batch_undoes_only_itself() {
        let (_dir, mut store, stored, job) = stored_and_changed(2);
        let mut elsewhere = job.clone();
        elsewhere.id = Guid::new_random();
        store.begin_batch().unwrap();
        store.save_file_outcome(&job, 0).unwrap();
        // Single statements that find no row, and a write of several statements that fails
        // at its second file.
        assert!(store.save_file_outcome(&elsewhere, 0).is_err());
        assert!(store.save_job_state(&elsewhere).is_err());
        let mut half = job.clone();
        half.files[1].temp_name = Some("/srv/.BIT00000000000000F1.tmp".into());
        assert!(store.save_temp_names(&half, &[1, 9]).is_err());
        store.save_job_state(&job).unwrap();
        store.end_batch().unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.files[0], job.files[0]);
        assert_eq!(
            loaded.files[1], stored.files[1],
            "the failed write left nothing"
        );
        assert_eq!(loaded.error_count, job.error_count);
    }

    #[test]
    fn a_batch_that_never_ends_leaves_the_store_as_it_was() {
        let (dir, mut store, stored, job) = stored_and_changed(2);
        store.begin_batch().unwrap();
        store.save_job_and_files(&job, &[0, 1]).unwrap();
        // The process ends (a crash) with the batch open.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load_jobs().unwrap().remove(0), stored);
    }

    #[test]
    fn a_refused_write_in_a_batch_fails_alone() {
        let (_dir, mut store, stored, job) = stored_and_changed(3);
        store.begin_batch().unwrap();
        store.save_file(&job, 0).unwrap();
        store.refuse_writes_for_tests(true).unwrap();
        assert!(store.save_file(&job, 1).is_err());
        store.refuse_writes_for_tests(false).unwrap();
        store.save_file(&job, 2).unwrap();
        store.end_batch().unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.files[0], job.files[0]);
        assert_eq!(loaded.files[1], stored.files[1]);
        assert_eq!(loaded.files[2], job.files[2]);
    }

    #[test]
    fn the_completing_mark_commits_an_open_batch_first() {
        let (dir, mut store, _stored, mut job) = stored_and_changed(2);
        store.begin_batch().unwrap();
        let every_file: Vec<usize> = (0..job.files.len()).collect();
        store.save_job_and_files(&job, &every_file).unwrap();
        job.completing = true;
        store.save_job_durably(&job).unwrap();
        // The batch ended with the mark: nothing is left open to lose.
        drop(store);
        let loaded = Store::open(dir.path())
            .unwrap()
            .load_jobs()
            .unwrap()
            .remove(0);
        assert!(loaded.completing);
        assert_eq!(loaded.files, job.files);
    }

    #[test]
    fn the_completing_mark_writes_the_jobs_row_alone() {
        let (_dir, mut store, stored, mut job) = stored_and_changed(2);
        job.completing = true;
        assert_eq!(
            rows_changed(&mut store, |s| s.save_job_durably(&job).unwrap()),
            1
        );
        let loaded = store.load_jobs().unwrap().remove(0);
        assert!(loaded.completing);
        assert_eq!(loaded.description, job.description);
        assert_eq!(
            loaded.files, stored.files,
            "the files' rows are as they were"
        );
    }

    #[test]
    fn a_job_row_write_leaves_every_file_row_as_it_was() {
        let (_dir, mut store, stored, job) = stored_and_changed(3);
        store.save_job_row(&job).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.description, "changed");
        assert_eq!(loaded.error_count, job.error_count);
        assert_eq!(loaded.files, stored.files);
    }

    #[test]
    fn a_files_outcome_is_written_as_its_whole_row_would_be() {
        let (dir, mut store, stored, mut job) = stored_and_changed(3);
        // Names a finished download never changes: the outcome's write must leave them.
        job.files[1].remote_name = "http://example.invalid/moved".into();
        job.files[1].local_name = "/srv/moved".into();
        job.keep_response_headers(1, "HTTP/1.1 200 OK\r\n".into());
        store.save_file_outcome(&job, 1).unwrap();
        let reloaded = store.load_jobs().unwrap().remove(0);
        // The outcome's columns are the job's; the names the row had are kept.
        let file = &reloaded.files[1];
        let (changed, before) = (&job.files[1], &stored.files[1]);
        assert_eq!(file.temp_name, changed.temp_name);
        assert_eq!(file.bytes_total, changed.bytes_total);
        assert_eq!(file.bytes_transferred, changed.bytes_transferred);
        assert_eq!(file.completed, changed.completed);
        assert_eq!(file.validator, changed.validator);
        assert_eq!(file.remote_name, before.remote_name);
        assert_eq!(file.local_name, before.local_name);
        assert_eq!(reloaded.files[0], stored.files[0]);
        assert_eq!(reloaded.files[2], stored.files[2]);
        assert_eq!(
            store.response_headers(job.id, 1).unwrap().as_deref(),
            Some("HTTP/1.1 200 OK\r\n")
        );
        assert!(store.save_file_outcome(&job, 3).is_err(), "no such file");
        drop(dir);
    }

    #[test]
    fn names_given_ahead_are_recorded_and_the_rest_of_the_rows_kept() {
        let (dir, mut store, stored, job) = stored_and_changed(3);
        store.save_temp_names(&job, &[0, 2]).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        for index in [0, 2] {
            let expected = FileRecord {
                temp_name: job.files[index].temp_name.clone(),
                bytes_transferred: job.files[index].bytes_transferred,
                ..stored.files[index].clone()
            };
            assert_eq!(loaded.files[index], expected, "file {index}");
        }
        assert_eq!(loaded.files[1], stored.files[1]);
        assert_eq!(
            store.temp_names().unwrap(),
            Vec::<String>::new(),
            "the rows hold the names: no second record"
        );
        assert!(store.save_temp_names(&job, &[3]).is_err(), "no such file");
        drop(dir);
    }

    #[test]
    fn a_file_write_touches_that_file_only() {
        let (_dir, mut store, stored, mut job) = stored_and_changed(3);
        store.save_file(&job, 1).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.files[1], job.files[1]);
        assert_eq!(loaded.files[0], stored.files[0]);
        assert_eq!(loaded.files[2], stored.files[2]);
        assert_eq!(
            loaded.description, stored.description,
            "the job's row is not written"
        );

        job.files[2].temp_name = Some("/srv/.BIT0000000000000002.tmp".into());
        store.save_files_with_temp_names(&job, &[2]).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.files[2], job.files[2]);
        assert_eq!(loaded.files[0], stored.files[0]);
    }

    #[test]
    fn a_state_write_takes_what_transfers_change_and_nothing_else() {
        let (_dir, mut store, job, mut changed) = stored_and_changed(2);
        changed.state = JobState::Transferred;
        changed.retry_at = Some(Timestamp(1_700_000_000_000_000));
        changed.no_progress_since = Some(Timestamp(1_600_000_000_000_000));
        changed.retries_without_progress += 3;
        changed.resumed = !job.resumed;
        changed.settings.parallel_files += 3;
        store.save_job_state(&changed).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.state, changed.state);
        assert_eq!(loaded.times, changed.times);
        assert_eq!(loaded.error, changed.error);
        assert_eq!(loaded.error_count, changed.error_count);
        assert_eq!(loaded.no_progress_since, changed.no_progress_since);
        assert_eq!(loaded.retry_at, changed.retry_at);
        assert_eq!(
            loaded.retries_without_progress,
            changed.retries_without_progress
        );
        assert_eq!(loaded.resumed, changed.resumed);
        // The rest stays as stored.
        assert_eq!(loaded.settings, job.settings);
        assert_eq!(loaded.description, job.description);
        assert_eq!(loaded.files, job.files);
    }

    #[test]
    fn a_job_and_file_write_takes_the_row_and_the_named_files() {
        let (_dir, mut store, stored, job) = stored_and_changed(4);
        store.save_job_and_files(&job, &[0, 3]).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.description, "changed");
        assert_eq!(loaded.files[0], job.files[0]);
        assert_eq!(loaded.files[3], job.files[3]);
        assert_eq!(loaded.files[1..3], stored.files[1..3]);
    }

    #[test]
    fn inserting_files_adds_the_new_rows_and_leaves_the_old_ones() {
        let (_dir, mut store, stored, mut job) = stored_and_changed(2);
        let now = Timestamp(1_900_000_000_000_000);
        job.add_file("http://mirror.example/c", "/srv/c", 10, now)
            .unwrap();
        job.add_file("http://mirror.example/d", "/srv/d", 10, now)
            .unwrap();
        store.insert_files(&job, 2).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.files.len(), 4);
        assert_eq!(loaded.files[..2], stored.files[..]);
        assert_eq!(loaded.files[2..], job.files[2..]);
        assert_eq!(loaded.times.modified, now, "the job's row is written too");
        assert_eq!(loaded.progress(), {
            let mut expected = loaded.clone();
            expected.recount_files();
            expected.progress()
        });
        store.check_integrity().unwrap();
    }

    #[test]
    fn narrow_writes_of_what_is_not_stored_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let unknown = sample_job(Timestamp(1));
        assert!(store.save_job_row(&unknown).is_err());
        assert!(store.save_file(&unknown, 0).is_err());
        let job = stored_job(&mut store, 2);
        let error = store.save_file(&job, 2).unwrap_err();
        assert!(error.description.contains("cannot save a file"), "{error}");
        // A refused transaction leaves nothing half written.
        let mut changed = job.clone();
        change_everything(&mut changed);
        assert!(store.save_job_and_files(&changed, &[0, 7]).is_err());
        assert_eq!(store.load_jobs().unwrap(), vec![job]);
    }

    /// Rows SQLite changed while `write` ran.
    fn rows_changed(store: &mut Store, write: impl FnOnce(&mut Store)) -> u64 {
        let before = store.conn.total_changes();
        write(store);
        store.conn.total_changes() - before
    }

    #[test]
    fn rows_written_per_event_do_not_grow_with_the_job() {
        let mut per_size = Vec::new();
        for files in [3, 300, 3000] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open(dir.path()).unwrap();
            let mut job = stored_job(&mut store, files);
            let now = Timestamp(1_900_000_000_000_000);
            let last = files - 1;
            let state_change = rows_changed(&mut store, |s| {
                job.resume(now).unwrap();
                s.save_job_row(&job).unwrap();
            });
            let file_done = rows_changed(&mut store, |s| {
                job.start_transfer(now);
                job.file_done(last, now);
                s.save_job_and_files(&job, &[last]).unwrap();
            });
            let temp_name = rows_changed(&mut store, |s| {
                job.give_temp_name(1, "/srv/.BIT00000000000000AA.tmp".into());
                s.save_files_with_temp_names(&job, &[1]).unwrap();
            });
            let add_one = rows_changed(&mut store, |s| {
                let first = job.files.len();
                job.add_file("http://mirror.example/new", "/srv/new", u32::MAX, now)
                    .unwrap();
                s.insert_files(&job, first).unwrap();
            });
            let whole = rows_changed(&mut store, |s| s.save_job(&job).unwrap());
            assert_eq!(whole, files as u64 + 2, "the whole-job write is what grows");
            per_size.push((state_change, file_done, temp_name, add_one));
        }
        // The job's row; the row and one file; the file given a name; the row and the new
        // file.
        assert_eq!(per_size, vec![(1, 2, 1, 2); 3]);
    }

    #[test]
    fn credentials_are_stored_with_the_job_and_go_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut job = sample_job(Timestamp(1));
        store.insert_job(&job).unwrap();
        for (target, scheme, user) in [
            (AuthTarget::Server, AuthScheme::Basic, "alice"),
            (AuthTarget::Proxy, AuthScheme::Ntlm, "proxy-user"),
        ] {
            job.set_credentials(
                Credential {
                    target,
                    scheme,
                    user_name: user.into(),
                    password: Secret::new(format!("{user}'s password")),
                },
                Timestamp(2),
            )
            .unwrap();
        }
        store.save_job(&job).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.credentials, job.credentials);
        assert_eq!(
            loaded
                .credentials
                .offer(AuthTarget::Proxy)
                .map(|offer| offer.password),
            Some("proxy-user's password")
        );

        job.remove_credentials(AuthTarget::Server, AuthScheme::Basic, Timestamp(3))
            .unwrap();
        store.save_job(&job).unwrap();
        let loaded = store.load_jobs().unwrap().remove(0);
        assert_eq!(loaded.credentials.iter().count(), 1);
        assert_eq!(loaded.credentials.offer(AuthTarget::Server), None);

        store.delete_job(job.id, &[]).unwrap();
        let left: i64 = store
            .conn
            .query_row("SELECT COUNT(*) FROM credentials", [], |row| row.get(0))
            .unwrap();
        assert_eq!(left, 0, "a job's credentials leave the store with it");
    }

    #[test]
    fn saving_a_job_that_is_not_stored_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let error = store.save_job(&sample_job(Timestamp(1))).unwrap_err();
        assert!(error.description.contains("cannot save a job"), "{error}");
    }

    #[test]
    fn progress_updates_touch_only_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut job = sample_job(Timestamp(1));
        store.insert_job(&job).unwrap();
        store
            .save_progress(&[
                ProgressUpdate {
                    job: job.id,
                    file: 0,
                    bytes: 2048,
                    whole_row: false,
                },
                ProgressUpdate {
                    job: job.id,
                    file: 1,
                    bytes: 7,
                    whole_row: false,
                },
            ])
            .unwrap();
        job.files[0].bytes_transferred = 2048;
        job.files[1].bytes_transferred = 7;
        assert_eq!(store.load_jobs().unwrap(), vec![job]);
    }

    #[test]
    fn size_unknown_survives_the_signed_column() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let job = sample_job(Timestamp(1));
        assert_eq!(job.files[1].bytes_total, crate::file::SIZE_UNKNOWN);
        store.insert_job(&job).unwrap();
        assert_eq!(
            store.load_jobs().unwrap()[0].files[1].bytes_total,
            crate::file::SIZE_UNKNOWN
        );
    }

    #[test]
    fn groups_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut group = Group::new(Guid::new_random(), 1000, Timestamp(5));
        store.save_group(&group).unwrap();
        group.display_name = "legacy".into();
        group.notify_flags = crate::group::notify::GROUP_DONE;
        group.notify_clsid = Some(Guid::new_random());
        group.foreground = true;
        group.job = Some(Guid::new_random());
        store.save_group(&group).unwrap();
        assert_eq!(store.load_groups().unwrap(), vec![group.clone()]);
        store.delete_group(group.id).unwrap();
        assert!(store.load_groups().unwrap().is_empty());
    }

    #[test]
    fn a_store_of_the_first_schema_gains_the_auto_complete_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STORE_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO jobs (id, job_type, display_name, description, owner_uid, priority,
                    state, created, modified, transfer_completed, settings, error_count)
                 VALUES (?1, 0, 'old', '', 1000, 2, 0, 1, 1, 0, ?2, 0)",
                params![
                    Guid::new_random().to_string(),
                    r#"{"minimum_retry_delay":{"secs":600,"nanos":0},"no_progress_timeout":{"secs":1209600,"nanos":0},"notify_flags":3,"notify_command":null,"proxy":{"usage":"preconfig","proxy_list":null,"bypass_list":null},"custom_headers":null,"security_flags":0,"max_download_size":null,"parallel_files":1}"#
                ],
            )
            .unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        let jobs = store.load_jobs().unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].auto_complete, None, "old jobs wait for Complete");
        assert_eq!(jobs[0].retries_without_progress, 0);
        assert_eq!(jobs[0].settings.first_retry_delay, None);
    }

    /// A job of a ranged file (one range running to the end) and a whole one.
    fn ranged_job(now: Timestamp) -> Job {
        let mut job = Job::new(
            Guid::new_random(),
            "delta",
            JobType::Download,
            1000,
            JobSettings::default(),
            now,
        )
        .unwrap();
        let ranges = [
            FileRange {
                offset: 900,
                length: 100,
            },
            FileRange {
                offset: 100,
                length: 100,
            },
            FileRange {
                offset: 5000,
                length: crate::ranges::LENGTH_TO_EOF,
            },
        ];
        job.add_file_known_taken("http://h/a", "/d/a", Some(&ranges), 10, false, now)
            .unwrap();
        job.add_file("http://h/b", "/d/b", 10, now).unwrap();
        job
    }

    #[test]
    fn on_demand_state_is_stored_with_its_file_and_survives_a_reopen() {
        use crate::on_demand::{Span, SpanSet};
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let now = Timestamp(1_700_000_000_000_000);
        let mut job = Job::new(
            Guid::new_random(),
            "on demand",
            JobType::Download,
            1000,
            JobSettings::default(),
            now,
        )
        .unwrap();
        job.add_file("http://h/a", "/d/a", 10, now).unwrap();
        job.add_file("http://h/b", "/d/b", 10, now).unwrap();
        job.set_on_demand(true, now).unwrap();
        store.insert_job(&job).unwrap();

        job.files[0].on_demand.requested = SpanSet::of([Span { start: 0, end: 10 }]);
        job.files[0].on_demand.position = 4;
        store.save_file(&job, 0).unwrap();
        assert_eq!(store.load_jobs().unwrap(), vec![job.clone()]);

        job.files[0].on_demand.fill(Span { start: 0, end: 10 });
        job.files[0].on_demand.fill(Span { start: 50, end: 60 });
        job.files[1].on_demand.requested = SpanSet::of([Span { start: 7, end: 9 }]);
        store.save_job_and_files(&job, &[0, 1]).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load_jobs().unwrap();
        assert_eq!(loaded, vec![job.clone()]);
        assert!(loaded[0].settings.on_demand);
        assert_eq!(
            loaded[0].files[0].on_demand.filled.spans(),
            &[Span { start: 0, end: 10 }, Span { start: 50, end: 60 }]
        );
        assert!(loaded[0].files[0].on_demand.requested.is_empty());
    }

    #[test]
    fn ranges_are_stored_with_their_file_and_kept_by_every_later_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let now = Timestamp(1_700_000_000_000_000);
        let mut job = ranged_job(now);
        assert_eq!(job.files[0].ranges.len(), 3);
        assert!(job.files[1].ranges.is_empty());
        store.insert_job(&job).unwrap();
        assert_eq!(store.load_jobs().unwrap(), vec![job.clone()]);

        job.files[0].bytes_transferred = 150;
        store.save_file(&job, 0).unwrap();
        store.save_job_and_files(&job, &[0, 1]).unwrap();
        store
            .save_progress(&[ProgressUpdate {
                job: job.id,
                file: 0,
                bytes: 180,
                whole_row: false,
            }])
            .unwrap();
        job.files[0].bytes_transferred = 180;
        assert_eq!(store.load_jobs().unwrap(), vec![job.clone()]);
        store.save_job_durably(&job).unwrap();
        drop(store);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.load_jobs().unwrap(), vec![job]);
        reopened.check_integrity().unwrap();
    }

    #[test]
    fn unreadable_ranges_fail_the_load_instead_of_making_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.insert_job(&ranged_job(Timestamp(1))).unwrap();
        store
            .conn
            .execute("UPDATE files SET ranges = 'not ranges' WHERE idx = 0", [])
            .unwrap();
        let error = store.load_jobs().unwrap_err();
        assert!(error.description.contains("cannot load jobs"), "{error}");
    }

    /// A store file as it was just before the migration whose text contains `marker`
    /// (found by what it adds, so later migrations do not move it), owner-only as qmgrd
    /// wants it.
    fn store_before(dir: &Path, marker: &str) -> Connection {
        let before = MIGRATIONS
            .iter()
            .position(|migration| migration.contains(marker))
            .unwrap();
        let conn = Connection::open(dir.join(STORE_FILE)).unwrap();
        for migration in &MIGRATIONS[..before] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", i64::try_from(before).unwrap())
            .unwrap();
        std::fs::set_permissions(
            dir.join(STORE_FILE),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        conn
    }

    /// A job row with the columns every schema version has, and `settings` as stored.
    fn insert_old_job(conn: &Connection, id: Guid, settings: &str) {
        conn.execute(
            "INSERT INTO jobs (id, job_type, display_name, description, owner_uid, priority,
                state, created, modified, transfer_completed, settings, error_count)
             VALUES (?1, 0, 'old', '', 1000, 2, 3, 1, 1, 0, ?2, 0)",
            params![id.to_string(), settings],
        )
        .unwrap();
    }

    #[test]
    fn a_store_before_ranges_is_migrated_with_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let job = sample_job(Timestamp(1_700_000_000_000_000));
        {
            let conn = store_before(dir.path(), "ADD COLUMN ranges");
            insert_old_job(
                &conn,
                job.id,
                &serde_json::to_string(&JobSettings::default()).unwrap(),
            );
            conn.execute(
                "INSERT INTO files (job_id, idx, remote_name, local_name, temp_name, bytes_total,
                    bytes_transferred, completed, etag, last_modified)
                 VALUES (?1, 0, 'http://x/a', '/d/a', NULL, 4096, 10, 0, NULL, NULL)",
                [job.id.to_string()],
            )
            .unwrap();
        }
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        let mut jobs = store.load_jobs().unwrap();
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].files[0].ranges.is_empty(), "an old file is whole");
        assert_eq!(jobs[0].files[0].bytes_total, 4096);
        // A ranged file added after the migration keeps its ranges.
        let ranges = [FileRange {
            offset: 7,
            length: 3,
        }];
        jobs[0]
            .add_file_known_taken("http://x/b", "/d/b", Some(&ranges), 10, false, Timestamp(2))
            .unwrap();
        store.insert_files(&jobs[0], 1).unwrap();
        let loaded = store.load_jobs().unwrap();
        assert_eq!(loaded[0].files[1].ranges, ranges);
        assert_eq!(loaded[0].files[1].bytes_total, 3, "sized by its ranges");
        store.check_integrity().unwrap();
    }

    #[test]
    fn a_store_before_cost_flags_is_migrated_and_its_jobs_follow_their_priority() {
        let dir = tempfile::tempdir().unwrap();
        let job = sample_job(Timestamp(1_700_000_000_000_000));
        let mut old_settings = serde_json::to_value(JobSettings::default()).unwrap();
        let fields = old_settings.as_object_mut().unwrap();
        assert!(fields.remove("cost_flags").is_some());
        assert!(fields.remove("idle_mode").is_some());
        {
            let conn = store_before(dir.path(), "COST_FLAGS");
            insert_old_job(&conn, job.id, &old_settings.to_string());
        }
        let mut store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        let mut jobs = store.load_jobs().unwrap();
        assert_eq!(jobs[0].settings.cost_flags, None);
        assert!(
            jobs[0].settings.idle_mode,
            "idle mode is on unless turned off"
        );
        // Set after the migration, both survive a reload.
        jobs[0]
            .set_cost_flags(Some(0x8000_0067), Timestamp(2))
            .unwrap();
        jobs[0].set_idle_mode(false, Timestamp(2)).unwrap();
        store.save_job(&jobs[0]).unwrap();
        let loaded = store.load_jobs().unwrap();
        assert_eq!(loaded[0].settings.cost_flags, Some(0x8000_0067));
        assert!(!loaded[0].settings.idle_mode);
    }

    #[test]
    fn a_store_from_a_newer_qmgr_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
        store.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(store);
        let error = Store::open(dir.path()).unwrap_err();
        assert!(error.description.contains("schema version 99"), "{error}");
    }

    #[test]
    fn the_store_uses_write_ahead_logging() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn progress_is_batched_per_interval() {
        let job = Guid::new_random();
        let mut batcher = ProgressBatcher::new(Duration::from_secs(1));
        let at = Duration::from_millis;
        assert!(!batcher.is_due(at(0)), "nothing pending");
        batcher.record(job, 0, 10);
        assert!(batcher.is_due(at(0)), "the first write is not delayed");
        assert_eq!(
            batcher.take(at(0)),
            vec![ProgressUpdate {
                job,
                file: 0,
                bytes: 10,
                whole_row: false
            }]
        );
        batcher.record(job, 0, 20);
        batcher.record(job, 0, 30);
        batcher.record(job, 1, 5);
        assert!(!batcher.is_due(at(999)));
        assert_eq!(batcher.due_at(), Some(at(1000)));
        assert!(batcher.is_due(at(1000)));
        assert_eq!(
            batcher.take(at(1000)),
            vec![
                ProgressUpdate {
                    job,
                    file: 0,
                    bytes: 30,
                    whole_row: false
                },
                ProgressUpdate {
                    job,
                    file: 1,
                    bytes: 5,
                    whole_row: false
                }
            ]
        );
        batcher.record(job, 0, 40);
        batcher.forget(job);
        assert_eq!(batcher.due_at(), None);
    }

    #[test]
    fn job_rows_held_back_by_progress_wait_for_the_interval_and_go_with_their_job() {
        let (job, other) = (Guid::new_random(), Guid::new_random());
        let mut batcher = ProgressBatcher::new(Duration::from_secs(1));
        let at = Duration::from_millis;
        batcher.record(job, 0, 10);
        assert_eq!(batcher.take(at(0)).len(), 1);
        assert!(batcher.take_job_rows().is_empty());
        batcher.record_job_row(job);
        batcher.record_job_row(job);
        batcher.record_job_row(other);
        assert_eq!(batcher.due_at(), Some(at(1000)), "a held row alone is due");
        assert!(!batcher.is_due(at(999)));
        assert!(batcher.is_due(at(1000)));
        let mut expected = vec![job, other];
        expected.sort();
        assert_eq!(batcher.take_job_rows(), expected, "each job once");
        assert_eq!(batcher.due_at(), None);
        batcher.record_job_row(job);
        batcher.forget(job);
        assert_eq!(batcher.due_at(), None, "a job gone takes its row with it");
    }

    #[test]
    fn a_response_asks_for_the_whole_row_until_it_is_written() {
        let job = Guid::new_random();
        let mut batcher = ProgressBatcher::new(Duration::from_secs(1));
        let at = Duration::from_millis;
        batcher.record_response(job, 0, 0);
        // Later bytes keep the row's claim: they are of the version the response named.
        batcher.record(job, 0, 4096);
        batcher.record(job, 1, 7);
        assert_eq!(
            batcher.take(at(0)),
            vec![
                ProgressUpdate {
                    job,
                    file: 0,
                    bytes: 4096,
                    whole_row: true,
                },
                ProgressUpdate {
                    job,
                    file: 1,
                    bytes: 7,
                    whole_row: false,
                }
            ]
        );
        // Once taken (the row written), bytes alone are due again.
        batcher.record(job, 0, 8192);
        assert_eq!(
            batcher.take(at(1000)),
            vec![ProgressUpdate {
                job,
                file: 0,
                bytes: 8192,
                whole_row: false,
            }]
        );
        // A row written meanwhile (forget_file) drops the claim.
        batcher.record_response(job, 2, 0);
        batcher.forget_file(job, 2);
        assert_eq!(batcher.due_at(), None);
    }
}
