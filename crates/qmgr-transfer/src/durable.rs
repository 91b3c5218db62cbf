//! A finished download is made durable (`fdatasync`) before it is reported `Completed`, so
//! a file the service records as complete is complete on disk, also after a power cut; and
//! Complete, which renames the files, finds their bytes already on disk instead of waiting
//! for one journal commit per file.
//!
//! The syncs run on a few threads of their own, never on the engine's: the engine goes on
//! with other transfers while the disk works, and syncs that wait at the same time share
//! the file system's journal commits. A file on a memory file system (tmpfs, ramfs) has
//! nothing to make durable and is reported at once. The report itself goes out through
//! the engine's [`crate::outbox::Outbox`], in its turn among the engine's other events.

use std::fs::File;
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{Receiver, Sender};

use crate::error::TransferError;
use crate::event::EngineEvent;

/// Threads syncing finished files. Several syncs in flight let the file system commit
/// them together; more than the engine's usual parallel transfers would only wait.
const SYNC_THREADS: usize = 4;

/// A finished file and the event that reports it once its bytes are durable.
#[derive(Debug)]
pub(crate) struct Finished {
    pub file: File,
    pub event: EngineEvent,
}

/// Wakes the engine thread: a sync it waits on to report in order is done.
pub(crate) type Wake = Arc<dyn Fn() + Send + Sync>;

/// What becomes of a finished file's report: ready now (nothing to sync, or the file is
/// gone), or given by its sync thread once the file is durable.
#[derive(Debug)]
pub(crate) enum Receipt {
    Now(EngineEvent),
    Later(Receiver<EngineEvent>),
}

/// The handle of the sync threads, started with the first file that needs them. They end
/// once every handle is dropped and the files handed over are synced.
#[derive(Clone)]
pub(crate) struct Syncer {
    work: Option<Sender<(Finished, Sender<EngineEvent>)>>,
    wake: Wake,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("started", &self.work.is_some())
            .finish_non_exhaustive()
    }
}

impl Syncer {
    /// `wake` is called after each sync done on a thread.
    pub(crate) fn new(wake: Wake) -> Syncer {
        Syncer { work: None, wake }
    }

    /// Makes `finished.file` durable; the receipt gives `finished.event`, or a failure to
    /// make the file durable.
    pub(crate) fn hand_over(&mut self, finished: Finished) -> Receipt {
        if let Some(deleted) = deleted(&finished) {
            return Receipt::Now(deleted);
        }
        if !needs_sync(&finished.file) {
            return Receipt::Now(finished.event);
        }
        let wake = &self.wake;
        let work = self.work.get_or_insert_with(|| start(wake));
        let (reply, receipt) = crossbeam_channel::bounded(1);
        match work.send((finished, reply)) {
            Ok(()) => Receipt::Later(receipt),
            // The threads could not be started: sync here rather than report early.
            Err(unsent) => Receipt::Now(synced(unsent.into_inner().0)),
        }
    }
}

fn start(wake: &Wake) -> Sender<(Finished, Sender<EngineEvent>)> {
    let (work, queue) = crossbeam_channel::unbounded::<(Finished, Sender<EngineEvent>)>();
    for index in 0..SYNC_THREADS {
        let (queue, wake) = (queue.clone(), Arc::clone(wake));
        // Should no thread start, handing over fails and the engine syncs by itself.
        let _ = thread::Builder::new()
            .name(format!("qmgr-sync-{index}"))
            .spawn(move || {
                for (finished, reply) in queue {
                    let _ = reply.send(synced(finished));
                    wake();
                }
            });
    }
    work
}

/// The event that reports `finished` after its sync: its own, or a failure naming the file.
fn synced(finished: Finished) -> EngineEvent {
    let Finished { file, event } = finished;
    match (file.sync_data(), &event) {
        (Err(error), EngineEvent::Completed { id, temp_path, .. }) => EngineEvent::Failed {
            id: *id,
            error: TransferError::local(&error, "syncing", temp_path),
        },
        // Only a completed download is handed over; anything else goes on as it was.
        _ => event,
    }
}

/// A `Failed` in place of the report of a file that was deleted (alone or with its
/// directory) while it was written: the bytes went to no name, and Complete would find
/// nothing to rename. Transient: the next attempt starts a new file, or, should the
/// directory be gone too, stops with the error of creating it.
fn deleted(finished: &Finished) -> Option<EngineEvent> {
    use std::os::unix::fs::MetadataExt;

    let EngineEvent::Completed { id, temp_path, .. } = &finished.event else {
        return None;
    };
    let links = finished
        .file
        .metadata()
        .map_or(1, |metadata| metadata.nlink());
    (links == 0).then(|| EngineEvent::Failed {
        id: *id,
        error: TransferError::transient(
            qmgr_core::hresult::HRESULT_FILE_NOT_FOUND,
            qmgr_core::ErrorContext::LocalFile,
            format!(
                "{} was deleted before the download finished",
                temp_path.display()
            ),
        ),
    })
}

/// Whether the file lives where a sync means something: not on a memory file system.
fn needs_sync(file: &File) -> bool {
    /// `f_type` of tmpfs and ramfs (linux/magic.h).
    const MEMORY_FILE_SYSTEMS: [i64; 2] = [0x0102_1994, 0x8584_58f6];
    match rustix::fs::fstatfs(file) {
        // `f_type` is an i64 on 64-bit Linux targets, narrower on others.
        #[allow(clippy::useless_conversion)]
        Ok(stat) => !MEMORY_FILE_SYSTEMS.contains(&i64::from(stat.f_type)),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::TransferId;
    use std::path::Path;
    use std::time::Duration;

    /// Whether files under `directory` would be synced.
    fn syncs_in(directory: &Path) -> bool {
        File::open(directory).is_ok_and(|dir| needs_sync(&dir))
    }

    fn completed(temp_path: &Path) -> EngineEvent {
        EngineEvent::Completed {
            id: TransferId(7),
            temp_path: temp_path.to_owned(),
            bytes: 3,
            validator: qmgr_core::Validator::default(),
        }
    }

    /// The event a receipt gives, waiting for its sync if need be.
    fn reported(receipt: Receipt) -> EngineEvent {
        match receipt {
            Receipt::Now(event) => event,
            Receipt::Later(event) => event.recv_timeout(Duration::from_secs(10)).unwrap(),
        }
    }

    fn no_wake() -> Wake {
        Arc::new(|| {})
    }

    #[test]
    fn a_finished_file_is_reported_after_its_sync_and_the_engine_is_woken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let (woken, wakes) = crossbeam_channel::unbounded();
        let mut syncer = Syncer::new(Arc::new(move || {
            let _ = woken.send(());
        }));
        let receipt = syncer.hand_over(Finished {
            file: File::open(&path).unwrap(),
            event: completed(&path),
        });
        // Synced on a thread of its own where the directory is on a disk.
        let on_a_thread = matches!(receipt, Receipt::Later(_));
        assert_eq!(on_a_thread, syncs_in(dir.path()));
        let event = reported(receipt);
        assert!(
            matches!(event, EngineEvent::Completed { bytes: 3, .. }),
            "{event:?}"
        );
        if on_a_thread {
            assert!(wakes.recv_timeout(Duration::from_secs(10)).is_ok());
        }
    }

    #[test]
    fn a_file_deleted_while_it_was_written_is_reported_failed_not_completed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let receipt = Syncer::new(no_wake()).hand_over(Finished {
            file,
            event: completed(&path),
        });
        match reported(receipt) {
            EngineEvent::Failed { error, .. } => {
                assert!(error.transient);
                assert_eq!(
                    error.error.hresult,
                    qmgr_core::hresult::HRESULT_FILE_NOT_FOUND
                );
                assert!(error.error.description.contains("was deleted"), "{error:?}");
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_file_that_cannot_be_synced_is_reported_failed() {
        // A pipe cannot be fdatasynced (EINVAL).
        let (reader, _writer) = std::io::pipe().unwrap();
        let file = File::from(std::os::fd::OwnedFd::from(reader));
        let event = synced(Finished {
            file,
            event: completed(Path::new("/tmp/x")),
        });
        match event {
            EngineEvent::Failed { error, .. } => {
                assert!(
                    error.error.description.contains("syncing /tmp/x"),
                    "{error:?}"
                );
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
