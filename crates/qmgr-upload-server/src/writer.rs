//! Writing a fragment into its partial file.
//!
//! The fragment's bytes are gathered into a few buffers that one blocking thread writes in
//! order while the next ones fill. A buffer per write (rather than a write per body frame)
//! keeps the system calls and thread wake-ups few; one thread per fragment keeps the writes
//! from contending for the file; the buffers come from a pool the server keeps, so that
//! their memory is not mapped afresh for every fragment. A session's memory is bounded by
//! [`BUFFERS_PER_FRAGMENT`] × [`BUFFER_BYTES`] whatever the fragment size.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

/// The size of one write.
pub const BUFFER_BYTES: usize = 1024 * 1024;
/// How many buffers one fragment holds at most: one filling while the others are written.
pub const BUFFERS_PER_FRAGMENT: usize = 2;
/// How many idle buffers the server keeps for the next fragments.
const SPARE_BUFFERS: usize = 8;

/// Buffers of [`BUFFER_BYTES`] that fragments no longer use.
#[derive(Debug, Default)]
pub struct BufferPool {
    spare: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// An empty buffer for at most `wanted` bytes: a spare one if there is one, else a new
    /// one no bigger than needed.
    fn take(&self, wanted: usize) -> Vec<u8> {
        if let Some(buffer) = self.lock().pop() {
            return buffer;
        }
        Vec::with_capacity(wanted.clamp(1, BUFFER_BYTES))
    }

    /// Keeps a full-size buffer for later, while the pool has room for it.
    fn give_back(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() < BUFFER_BYTES {
            return;
        }
        buffer.clear();
        let mut spare = self.lock();
        if spare.len() < SPARE_BUFFERS {
            spare.push(buffer);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a fragment's bytes did not all reach the file.
#[derive(Debug)]
pub enum WriteFailed {
    /// A write failed; the file is cut back to what was written before it.
    Io(io::Error),
    /// The writing thread went away without saying why (it panicked).
    Lost,
}

/// One buffer back from the writing thread: emptied, with how many bytes it wrote.
struct Written {
    buffer: Vec<u8>,
    outcome: io::Result<u64>,
}

/// A fragment's bytes on their way into the file, in order, from one offset on.
#[derive(Debug)]
pub struct FragmentWriter<'pool> {
    pool: &'pool BufferPool,
    /// Where the next byte given goes.
    end: u64,
    /// How many more bytes the fragment may bring: no buffer is made bigger.
    to_come: u64,
    filling: Vec<u8>,
    /// How many bytes `filling` takes before it is written.
    filling_limit: usize,
    /// Buffers back from the thread, to fill again.
    empty: Vec<Vec<u8>>,
    /// Buffers this fragment took from the pool.
    taken: usize,
    /// Buffers with the thread.
    in_flight: usize,
    to_thread: Option<mpsc::Sender<Vec<u8>>>,
    from_thread: tokio::sync::mpsc::UnboundedReceiver<Written>,
    file: Arc<File>,
}

impl<'pool> FragmentWriter<'pool> {
    /// Starts the writing thread for a fragment of at most `length` bytes, written from
    /// `offset` on.
    pub fn start(
        pool: &'pool BufferPool,
        file: Arc<File>,
        offset: u64,
        length: u64,
    ) -> FragmentWriter<'pool> {
        let (to_thread, buffers) = mpsc::channel();
        let (done, from_thread) = tokio::sync::mpsc::unbounded_channel();
        let thread_file = file.clone();
        tokio::task::spawn_blocking(move || write_in_order(&thread_file, offset, &buffers, &done));
        FragmentWriter {
            file,
            pool,
            end: offset,
            to_come: length,
            filling: Vec::new(),
            filling_limit: 0,
            empty: Vec::new(),
            taken: 0,
            in_flight: 0,
            to_thread: Some(to_thread),
            from_thread,
        }
    }

    /// Where the next byte given goes.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Waits until `bytes` more can be taken without waiting. A fragment's side calls it
    /// before it reads a body frame, so that it waits for the thread while holding none:
    /// a frame held keeps the connection's read buffer from being reused, and the
    /// connection would read on into freshly allocated memory.
    pub async fn make_room(&mut self, bytes: usize, received: &mut u64) -> Result<(), WriteFailed> {
        let bytes = bytes.min(usize::try_from(self.to_come).unwrap_or(usize::MAX));
        loop {
            let room = self.filling_limit - self.filling.len();
            let buffer_at_hand = !self.empty.is_empty() || self.taken < BUFFERS_PER_FRAGMENT;
            if room >= bytes || buffer_at_hand || self.in_flight == 0 {
                return Ok(());
            }
            let buffer = self.collect(received).await?;
            self.empty.push(buffer);
        }
    }

    /// Takes `bytes` (the next ones of the fragment), waiting while the thread is behind.
    /// `received` grows by what reaches the file.
    pub async fn write(&mut self, mut bytes: &[u8], received: &mut u64) -> Result<(), WriteFailed> {
        while !bytes.is_empty() {
            if self.filling.len() >= self.filling_limit {
                self.filling = self.next_buffer(received).await?;
                self.filling_limit = self.filling.capacity().min(BUFFER_BYTES);
            }
            let taken = (self.filling_limit - self.filling.len()).min(bytes.len());
            self.filling.extend_from_slice(&bytes[..taken]);
            bytes = &bytes[taken..];
            self.end += taken as u64;
            self.to_come = self.to_come.saturating_sub(taken as u64);
            if self.filling.len() >= self.filling_limit {
                self.submit(received).await?;
            }
        }
        Ok(())
    }

    /// Writes what is gathered and waits for every write; the buffers go back to the pool.
    pub async fn finish(mut self, received: &mut u64) -> Result<(), WriteFailed> {
        if !self.filling.is_empty() {
            self.submit(received).await?;
        }
        while self.in_flight > 0 {
            let buffer = self.collect(received).await?;
            self.empty.push(buffer);
        }
        self.to_thread = None;
        for buffer in self
            .empty
            .drain(..)
            .chain([std::mem::take(&mut self.filling)])
        {
            self.pool.give_back(buffer);
        }
        Ok(())
    }

    async fn next_buffer(&mut self, received: &mut u64) -> Result<Vec<u8>, WriteFailed> {
        if let Some(buffer) = self.empty.pop() {
            return Ok(buffer);
        }
        if self.taken < BUFFERS_PER_FRAGMENT {
            self.taken += 1;
            return Ok(self
                .pool
                .take(usize::try_from(self.to_come).unwrap_or(usize::MAX)));
        }
        self.collect(received).await
    }

    async fn submit(&mut self, received: &mut u64) -> Result<(), WriteFailed> {
        let buffer = std::mem::take(&mut self.filling);
        self.filling_limit = 0;
        let sent = self
            .to_thread
            .as_ref()
            .is_some_and(|to_thread| to_thread.send(buffer).is_ok());
        if sent {
            self.in_flight += 1;
            return Ok(());
        }
        // The thread stopped at a failed write: its report is on its way.
        while self.in_flight > 0 {
            self.collect(received).await?;
        }
        Err(WriteFailed::Lost)
    }

    /// The next buffer back from the thread.
    async fn collect(&mut self, received: &mut u64) -> Result<Vec<u8>, WriteFailed> {
        let written = self.from_thread.recv().await.ok_or(WriteFailed::Lost)?;
        self.in_flight -= 1;
        match written.outcome {
            Ok(count) => {
                *received += count;
                Ok(written.buffer)
            }
            Err(error) => {
                // Part of the buffer may have landed, and the file's length is what a
                // restarted server takes as received: it goes back to the last whole
                // write. Cut here, by the side that holds the session, not by the thread:
                // were the fragment's request dropped meanwhile, the session's next
                // fragment may already be writing.
                let file = self.file.clone();
                let held = *received;
                let _ = tokio::task::spawn_blocking(move || file.set_len(held)).await;
                Err(WriteFailed::Io(error))
            }
        }
    }
}

/// The writing thread: each buffer at the offset after the one before, until the
/// fragment's side hangs up or a write fails (after which it writes nothing more).
fn write_in_order(
    file: &File,
    mut offset: u64,
    buffers: &mpsc::Receiver<Vec<u8>>,
    done: &tokio::sync::mpsc::UnboundedSender<Written>,
) {
    while let Ok(mut buffer) = buffers.recv() {
        let count = buffer.len() as u64;
        let outcome = file.write_all_at(&buffer, offset).map(|()| count);
        let failed = outcome.is_err();
        offset += count;
        buffer.clear();
        if done.send(Written { buffer, outcome }).is_err() || failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(length: usize) -> Vec<u8> {
        (0..length)
            .map(|i| u8::try_from(i % 251).expect("below 251"))
            .collect()
    }

    #[tokio::test]
    async fn bytes_reach_the_file_in_order_through_buffers_that_are_kept() {
        let file = Arc::new(tempfile::tempfile().unwrap());
        let pool = BufferPool::default();
        let bytes = pattern(5 * BUFFER_BYTES / 2 + 17);
        let offset = 10;
        let mut received = offset;
        let mut writer = FragmentWriter::start(&pool, file.clone(), offset, bytes.len() as u64);
        for piece in bytes.chunks(100_003) {
            writer.write(piece, &mut received).await.unwrap();
        }
        assert_eq!(writer.end(), offset + bytes.len() as u64);
        writer.finish(&mut received).await.unwrap();
        assert_eq!(received, offset + bytes.len() as u64);
        let mut on_disk = vec![0; bytes.len()];
        file.read_exact_at(&mut on_disk, offset).unwrap();
        assert!(on_disk == bytes);
        assert_eq!(pool.lock().len(), BUFFERS_PER_FRAGMENT);

        // The next fragment takes them again instead of new ones.
        let mut writer = FragmentWriter::start(&pool, file.clone(), received, 1);
        writer.write(b"x", &mut received).await.unwrap();
        assert!(pool.lock().len() < BUFFERS_PER_FRAGMENT);
        writer.finish(&mut received).await.unwrap();
        assert_eq!(pool.lock().len(), BUFFERS_PER_FRAGMENT);
    }

    #[tokio::test]
    async fn making_room_waits_for_a_buffer_to_come_back() {
        let file = Arc::new(tempfile::tempfile().unwrap());
        let pool = BufferPool::default();
        let mut received = 0;
        let length = 3 * BUFFER_BYTES as u64;
        let mut writer = FragmentWriter::start(&pool, file, 0, length);
        writer
            .write(&pattern(2 * BUFFER_BYTES), &mut received)
            .await
            .unwrap();
        // Both buffers are with the thread: room is made by waiting for one of them.
        assert_eq!(writer.in_flight + writer.empty.len(), 2);
        writer.make_room(1000, &mut received).await.unwrap();
        assert_eq!(writer.empty.len(), 1);
        assert!(received >= BUFFER_BYTES as u64);
        writer.finish(&mut received).await.unwrap();
        assert_eq!(received, 2 * BUFFER_BYTES as u64);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_and_counts_nothing() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("read-only");
        std::fs::write(&path, b"").unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let pool = BufferPool::default();
        let mut received = 0;
        let mut writer = FragmentWriter::start(&pool, file, 0, 3 * BUFFER_BYTES as u64);
        let bytes = pattern(3 * BUFFER_BYTES);
        let outcome = match writer.write(&bytes, &mut received).await {
            Ok(()) => writer.finish(&mut received).await,
            Err(failed) => Err(failed),
        };
        assert!(matches!(outcome, Err(WriteFailed::Io(_))), "{outcome:?}");
        assert_eq!(received, 0);
    }
}
