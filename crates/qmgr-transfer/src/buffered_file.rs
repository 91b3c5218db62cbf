//! The buffered writer of a transfer's file, whose buffer is kept for the next transfer
//! when this one ends. A buffer this large is mapped on its own by the allocator: allocated
//! and freed per file, each small file would cost page faults and an unmap (with its
//! cross-CPU TLB flush), which shows when thousands of small files go through one engine.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};

/// The file buffer: large writes, few syscalls, and still a bounded amount of data that a
/// crash of the process can lose.
pub(crate) const WRITE_BUFFER: usize = 256 * 1024;
/// Buffers kept for reuse by the engine's thread (enough for its usual parallel transfers).
const POOLED_BUFFERS: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn take_buffer() -> Vec<u8> {
    POOL.with(|pool| pool.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(WRITE_BUFFER))
}

fn give_back(mut buffer: Vec<u8>) {
    buffer.clear();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED_BUFFERS && buffer.capacity() == WRITE_BUFFER {
            pool.push(buffer);
        }
    });
}

/// A file written through a buffer of [`WRITE_BUFFER`] bytes.
#[derive(Debug)]
pub(crate) struct BufferedFile {
    /// `None` only once handed back by [`BufferedFile::into_inner`].
    file: Option<File>,
    buffer: Vec<u8>,
}

impl BufferedFile {
    pub(crate) fn new(file: File) -> BufferedFile {
        BufferedFile {
            file: Some(file),
            buffer: take_buffer(),
        }
    }

    pub(crate) fn get_ref(&self) -> &File {
        self.file
            .as_ref()
            .expect("the file is here until into_inner")
    }

    /// The file, with every buffered byte written to it.
    pub(crate) fn into_inner(mut self) -> io::Result<File> {
        self.write_buffered()?;
        Ok(self.file.take().expect("the file is here until into_inner"))
    }

    fn write_buffered(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            let file = self
                .file
                .as_mut()
                .expect("the file is here until into_inner");
            let written = file.write_all(&self.buffer);
            // Bytes a failed write left are dropped with it, as the caller stops the file.
            self.buffer.clear();
            written?;
        }
        Ok(())
    }
}

impl Write for BufferedFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + data.len() > WRITE_BUFFER {
            self.write_buffered()?;
        }
        if data.len() >= WRITE_BUFFER {
            return self
                .file
                .as_mut()
                .expect("the file is here until into_inner")
                .write(data);
        }
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_buffered()?;
        self.file
            .as_mut()
            .expect("the file is here until into_inner")
            .flush()
    }
}

impl Seek for BufferedFile {
    fn seek(&mut self, position: SeekFrom) -> io::Result<u64> {
        self.write_buffered()?;
        self.file
            .as_mut()
            .expect("the file is here until into_inner")
            .seek(position)
    }
}

impl Drop for BufferedFile {
    fn drop(&mut self) {
        // As a BufWriter does: what is buffered goes to the file; an error has no one to
        // hear it (callers that care flush first).
        if self.file.is_some() {
            let _ = self.write_buffered();
        }
        give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn bytes_arrive_in_order_through_small_and_large_writes_and_buffers_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut expected = Vec::new();
        let mut writer = BufferedFile::new(File::create(&path).unwrap());
        for size in [10, WRITE_BUFFER - 5, 7, WRITE_BUFFER * 2 + 3, 1] {
            let chunk: Vec<u8> = (0..size)
                .map(|i| u8::try_from(i % 251).expect("below 251"))
                .collect();
            writer.write_all(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        let buffer_address = writer.buffer.as_ptr();
        let mut file = writer.into_inner().unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut written = Vec::new();
        File::open(&path)
            .unwrap()
            .read_to_end(&mut written)
            .unwrap();
        assert_eq!(written, expected);
        // The next writer on this thread gets the same buffer back.
        let next = BufferedFile::new(File::create(dir.path().join("g")).unwrap());
        assert_eq!(next.buffer.as_ptr(), buffer_address);
        assert!(next.buffer.is_empty());
    }

    #[test]
    fn dropping_writes_what_is_buffered_and_seeking_flushes_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        {
            let mut writer = BufferedFile::new(File::create(&path).unwrap());
            writer.write_all(b"abcdef").unwrap();
            writer.seek(SeekFrom::Start(1)).unwrap();
            writer.write_all(b"XY").unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"aXYdef");
    }
}
