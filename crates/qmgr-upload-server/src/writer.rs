//! Writing a fragment's body into its partial file.
//!
//! Each body frame is written where it belongs as soon as the connection hands it over, by
//! the network thread itself, as nginx writes a request body to its temporary file: the
//! frame was just copied out of the socket into the connection's read buffer (at most
//! 256 KiB), so it is still in the CPU's cache when it is copied on into the page cache,
//! and the read buffer is free again for the next read. Handing the bytes to a writing
//! thread instead (gathered into buffers, or as the frames themselves) cost the server half
//! as much CPU again for a 1 GiB upload over loopback (0.90 s against 0.61 s) and
//! lengthened it: the second copy then reads the bytes from memory on another core, and
//! every buffer costs two thread wake-ups. The price is that a write the storage stalls (a
//! full page cache being written back to a slow disk) holds up the server's other
//! connections for as long.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Writes `bytes` at `offset` of the partial `file`, which holds `offset` bytes. A write
/// that fails cuts the file back to `offset`: its length is what the server holds, also
/// for a restarted server, so nothing of a failed write may stay.
pub fn write_at_end(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(bytes, offset).inspect_err(|_| {
        // Part of it may have landed. If cutting back fails too, the file is longer
        // than the session says: the next write overwrites the surplus in place, and a
        // restart takes the surplus for received bytes (bytes the client did send).
        let _ = file.set_len(offset);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_land_at_the_offset_given() {
        let file = tempfile::tempfile().unwrap();
        write_at_end(&file, b"abc", 0).unwrap();
        write_at_end(&file, b"defg", 3).unwrap();
        let mut on_disk = vec![0; 7];
        file.read_exact_at(&mut on_disk, 0).unwrap();
        assert_eq!(on_disk, b"abcdefg");
    }

    #[test]
    fn a_failed_write_leaves_the_file_as_it_was() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("read-only");
        std::fs::write(&path, b"held").unwrap();
        let file = File::open(&path).unwrap();
        assert!(write_at_end(&file, b"more", 4).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"held");
    }
}
