//! A finished download is made durable (`fdatasync`) before it is reported `Completed`, so
//! a file the service records as complete is complete on disk, also after a power cut; and
//! Complete, which renames the files, finds their bytes already on disk instead of waiting
//! for one journal commit per file.
//!
//! The syncs run on a few threads of their own, never on the engine's: the engine goes on
//! with other transfers while the disk works, and syncs that wait at the same time share
//! the file system's journal commits. A file on a memory file system (tmpfs, ramfs) has
//! nothing to make durable and is reported at once.

use std::fs::File;
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

/// The handle of the sync threads, started with the first file that needs them. They end
/// once every handle is dropped and the files handed over are synced and reported.
#[derive(Clone, Debug)]
pub(crate) struct Syncer {
    events: Sender<EngineEvent>,
    work: Option<Sender<Finished>>,
}

impl Syncer {
    pub(crate) fn new(events: Sender<EngineEvent>) -> Syncer {
        Syncer { events, work: None }
    }

    /// Reports `finished.event` once `finished.file` is durable, or a failure to make it so.
    pub(crate) fn hand_over(&mut self, finished: Finished) {
        if let Some(deleted) = deleted(&finished) {
            let _ = self.events.send(deleted);
            return;
        }
        if !needs_sync(&finished.file) {
            let _ = self.events.send(finished.event);
            return;
        }
        let work = self.work.get_or_insert_with(|| start(&self.events));
        if let Err(unsent) = work.send(finished) {
            // The threads could not be started: sync here rather than report early.
            let _ = self.events.send(synced(unsent.into_inner()));
        }
    }
}

fn start(events: &Sender<EngineEvent>) -> Sender<Finished> {
    let (work, queue) = crossbeam_channel::unbounded::<Finished>();
    for index in 0..SYNC_THREADS {
        let (queue, events) = (queue.clone(), events.clone());
        // Should no thread start, handing over fails and the engine syncs by itself.
        let _ = thread::Builder::new()
            .name(format!("qmgr-sync-{index}"))
            .spawn(move || run(&queue, &events));
    }
    work
}

fn run(queue: &Receiver<Finished>, events: &Sender<EngineEvent>) {
    for finished in queue {
        let _ = events.send(synced(finished));
    }
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

    #[test]
    fn a_finished_file_is_reported_after_it_was_handed_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let (events, received) = crossbeam_channel::unbounded();
        let mut syncer = Syncer::new(events);
        syncer.hand_over(Finished {
            file: File::open(&path).unwrap(),
            event: completed(&path),
        });
        let event = received.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(
            matches!(event, EngineEvent::Completed { bytes: 3, .. }),
            "{event:?}"
        );
        // Synced on a thread of its own where the directory is on a disk.
        assert_eq!(syncer.work.is_some(), syncs_in(dir.path()));
    }

    #[test]
    fn a_file_deleted_while_it_was_written_is_reported_failed_not_completed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (events, received) = crossbeam_channel::unbounded();
        Syncer::new(events).hand_over(Finished {
            file,
            event: completed(&path),
        });
        match received.recv_timeout(Duration::from_secs(10)).unwrap() {
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
