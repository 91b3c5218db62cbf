//! A hash of the part of an upload's source the server holds, kept as the acknowledged
//! offset moves: a resumed upload hashes its source's prefix again and compares, so a file
//! changed in place (same size, modification time put back) is never spliced onto what the
//! server already has. The hash only has to notice accidental change, so it is a fast mix
//! of four independent lanes over 32-byte blocks, fixed here (its value is stored) and
//! independent of how the file is read. The bytes of a fragment are hashed as they are sent
//! ([`PrefixHash::feed`]), so the file is read once, not twice.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const SEEDS: [u64; 4] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
];
const WORD_FACTOR: u64 = 0x9e37_79b9_7f4a_7c15;
const ROUND_FACTOR: u64 = 0xbf58_476d_1ce4_e5b9;
const FINAL_FACTOR: u64 = 0x94d0_49bb_1331_11eb;
const BLOCK: usize = 32;
/// How much is read at a time when the file itself must be read.
const READ_BYTES: usize = 1 << 20;

/// The hash of a file's first bytes, carried forward as more of them count.
#[derive(Debug)]
pub struct PrefixHash {
    lanes: [u64; 4],
    /// Whole blocks hashed so far end here.
    blocks_end: u64,
    /// Bytes after `blocks_end` fed and not yet a whole block.
    pending: [u8; BLOCK],
    pending_len: usize,
    buffer: Vec<u8>,
}

impl Default for PrefixHash {
    fn default() -> Self {
        PrefixHash {
            lanes: SEEDS,
            blocks_end: 0,
            pending: [0; BLOCK],
            pending_len: 0,
            buffer: Vec::new(),
        }
    }
}

impl PrefixHash {
    /// Where the next fed byte must be in the file.
    fn fed_end(&self) -> u64 {
        self.blocks_end + self.pending_len as u64
    }

    /// Hashes `bytes`, found at `offset` in the file, if they continue what was fed so far
    /// (others are left for [`PrefixHash::digest`] to read).
    pub fn feed(&mut self, offset: u64, bytes: &[u8]) {
        let fed = self.fed_end();
        if offset > fed || offset + bytes.len() as u64 <= fed {
            return;
        }
        let skip = usize::try_from(fed - offset).unwrap_or(usize::MAX);
        self.absorb(&bytes[skip..]);
    }

    fn absorb(&mut self, mut bytes: &[u8]) {
        if self.pending_len > 0 {
            let take = (BLOCK - self.pending_len).min(bytes.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < BLOCK {
                return;
            }
            let block = self.pending;
            self.mix_block(&block);
            self.pending_len = 0;
        }
        let mut blocks = bytes.chunks_exact(BLOCK);
        for block in &mut blocks {
            self.mix_block(block);
        }
        let rest = blocks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    fn mix_block(&mut self, block: &[u8]) {
        for (lane, word) in self.lanes.iter_mut().zip(block.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            *lane = (*lane ^ word.wrapping_mul(WORD_FACTOR))
                .rotate_left(31)
                .wrapping_mul(ROUND_FACTOR);
        }
        self.blocks_end += BLOCK as u64;
    }

    /// The hash of `file`'s bytes `0..end`. Reads only what was neither hashed nor fed
    /// before, unless `end` is before what was hashed (then from the start again). A file
    /// shorter than `end` is an error.
    pub fn digest(&mut self, file: &File, end: u64) -> io::Result<u64> {
        let whole_blocks = end - end % BLOCK as u64;
        if whole_blocks < self.blocks_end {
            *self = PrefixHash {
                buffer: std::mem::take(&mut self.buffer),
                ..PrefixHash::default()
            };
        }
        if self.fed_end() < whole_blocks {
            // Only whole blocks are read here; the pending bytes are read again with them.
            self.pending_len = 0;
            if self.buffer.is_empty() {
                self.buffer = vec![0; READ_BYTES];
            }
            let mut buffer = std::mem::take(&mut self.buffer);
            while self.blocks_end < whole_blocks {
                let want = usize::try_from(whole_blocks - self.blocks_end)
                    .unwrap_or(usize::MAX)
                    .min(READ_BYTES);
                let chunk = &mut buffer[..want];
                let read = file.read_exact_at(chunk, self.blocks_end);
                if let Err(error) = read {
                    self.buffer = buffer;
                    return Err(error);
                }
                for block in chunk.chunks_exact(BLOCK) {
                    self.mix_block(block);
                }
            }
            self.buffer = buffer;
        }
        let mut tail = [0u8; BLOCK];
        let tail_length = usize::try_from(end - whole_blocks).expect("below a block");
        file.read_exact_at(&mut tail[..tail_length], whole_blocks)?;
        let mut lanes = self.lanes;
        let mut hash = end;
        for (lane, word) in lanes.iter_mut().zip(tail.chunks_exact(8)) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            *lane = (*lane ^ word.wrapping_mul(WORD_FACTOR))
                .rotate_left(31)
                .wrapping_mul(ROUND_FACTOR);
            hash = (hash ^ *lane).rotate_left(27).wrapping_mul(ROUND_FACTOR);
        }
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(FINAL_FACTOR);
        hash ^= hash >> 29;
        Ok(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut named = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut named, bytes).unwrap();
        let file = File::open(named.path()).unwrap();
        (named, file)
    }

    fn sample(length: u32) -> Vec<u8> {
        (0..length).map(|i| (i * 7 % 253) as u8).collect()
    }

    #[test]
    fn the_hash_does_not_depend_on_the_steps_it_was_taken_in() {
        let bytes = sample(3_000_005);
        let (_keep, file) = file_of(&bytes);
        let whole = PrefixHash::default().digest(&file, 2_999_999).unwrap();
        let mut stepped = PrefixHash::default();
        for end in [1, 9, 4096, 1_048_583, 2_000_000] {
            stepped.digest(&file, end).unwrap();
        }
        assert_eq!(stepped.digest(&file, 2_999_999).unwrap(), whole);
        // Going back starts over and still agrees.
        let early = PrefixHash::default().digest(&file, 10).unwrap();
        assert_eq!(stepped.digest(&file, 10).unwrap(), early);
        let (_empty, none) = file_of(&[]);
        assert_eq!(
            PrefixHash::default().digest(&file, 0).unwrap(),
            PrefixHash::default().digest(&none, 0).unwrap()
        );
    }

    #[test]
    fn fed_bytes_hash_as_read_ones_and_others_are_ignored() {
        let bytes = sample(1_000_003);
        let (_keep, file) = file_of(&bytes);
        let read = PrefixHash::default().digest(&file, 700_001).unwrap();
        let mut fed = PrefixHash::default();
        // Pieces of odd sizes, one sent twice, one out of order (ignored), then a digest.
        let mut at = 0usize;
        for size in [5, 27, 64, 1000, 333] {
            fed.feed(at as u64, &bytes[at..at + size]);
            at += size;
        }
        fed.feed(100, &bytes[100..500]);
        fed.feed(900_000, &bytes[900_000..900_010]);
        while at < 800_000 {
            let end = (at + 65_536).min(800_000);
            fed.feed(at as u64, &bytes[at..end]);
            at = end;
        }
        assert_eq!(fed.digest(&file, 700_001).unwrap(), read);
        // The fed bytes past the digest's end were not needed for it, and later ones agree.
        assert_eq!(
            fed.digest(&file, 1_000_003).unwrap(),
            PrefixHash::default().digest(&file, 1_000_003).unwrap()
        );
    }

    #[test]
    fn a_changed_byte_or_length_changes_the_hash_and_a_short_file_is_an_error() {
        let bytes = sample(100_000);
        let (_keep, file) = file_of(&bytes);
        let before = PrefixHash::default().digest(&file, 90_001).unwrap();
        for position in [0, 7, 8, 31, 32, 50_000, 90_000] {
            let mut changed = bytes.clone();
            changed[position] ^= 1;
            let (_other, other) = file_of(&changed);
            assert_ne!(
                PrefixHash::default().digest(&other, 90_001).unwrap(),
                before,
                "byte {position}"
            );
        }
        assert_ne!(PrefixHash::default().digest(&file, 90_000).unwrap(), before);
        assert!(PrefixHash::default().digest(&file, 100_001).is_err());
    }
}
