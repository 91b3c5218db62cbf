//! A hash of the part of an upload's source the server holds, kept as the acknowledged
//! offset moves: a resumed upload hashes its source's prefix again and compares, so a file
//! changed in place (same size, modification time put back) is never spliced onto what the
//! server already has. The hash only has to notice accidental change, so it is a fast
//! word-wise mix, fixed here (its value is stored) and independent of how the file is read.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const SEED: u64 = 0x6a09_e667_f3bc_c908;
const WORD_FACTOR: u64 = 0x9e37_79b9_7f4a_7c15;
const ROUND_FACTOR: u64 = 0xbf58_476d_1ce4_e5b9;
const FINAL_FACTOR: u64 = 0x94d0_49bb_1331_11eb;
/// How much is read at a time.
const READ_BYTES: usize = 1 << 20;

/// The hash of a file's first bytes, carried forward as more of them count.
#[derive(Debug)]
pub struct PrefixHash {
    /// The whole 8-byte words hashed so far end here.
    words_end: u64,
    state: u64,
    buffer: Vec<u8>,
}

impl Default for PrefixHash {
    fn default() -> Self {
        PrefixHash {
            words_end: 0,
            state: SEED,
            buffer: Vec::new(),
        }
    }
}

impl PrefixHash {
    /// The hash of `file`'s bytes `0..end`. Reads only what was not hashed before, unless
    /// `end` went back (then from the start again). A file shorter than `end` is an error.
    pub fn digest(&mut self, file: &File, end: u64) -> io::Result<u64> {
        let whole_words = end & !7;
        if whole_words < self.words_end {
            *self = PrefixHash {
                buffer: std::mem::take(&mut self.buffer),
                ..PrefixHash::default()
            };
        }
        if self.buffer.is_empty() && whole_words > self.words_end {
            self.buffer = vec![0; READ_BYTES];
        }
        while self.words_end < whole_words {
            let want = usize::try_from(whole_words - self.words_end)
                .unwrap_or(usize::MAX)
                .min(READ_BYTES);
            let chunk = &mut self.buffer[..want];
            file.read_exact_at(chunk, self.words_end)?;
            for word in chunk.chunks_exact(8) {
                let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                self.state = mix(self.state, word);
            }
            self.words_end += want as u64;
        }
        let mut tail = [0u8; 8];
        let tail_length = usize::try_from(end - whole_words).expect("below 8");
        file.read_exact_at(&mut tail[..tail_length], whole_words)?;
        let mut hash = mix(self.state, u64::from_le_bytes(tail)) ^ end;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(FINAL_FACTOR);
        hash ^= hash >> 29;
        Ok(hash)
    }
}

fn mix(state: u64, word: u64) -> u64 {
    (state ^ word.wrapping_mul(WORD_FACTOR))
        .rotate_left(31)
        .wrapping_mul(ROUND_FACTOR)
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

    #[test]
    fn the_hash_does_not_depend_on_the_steps_it_was_taken_in() {
        let bytes: Vec<u8> = (0..3_000_005u32).map(|i| (i * 7 % 253) as u8).collect();
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
        assert_eq!(PrefixHash::default().digest(&file, 0).unwrap(), {
            let (_empty, none) = file_of(&[]);
            PrefixHash::default().digest(&none, 0).unwrap()
        });
    }

    #[test]
    fn a_changed_byte_or_length_changes_the_hash_and_a_short_file_is_an_error() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (_keep, file) = file_of(&bytes);
        let before = PrefixHash::default().digest(&file, 90_001).unwrap();
        for position in [0, 7, 8, 50_000, 90_000] {
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
