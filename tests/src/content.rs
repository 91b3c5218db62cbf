//! The bytes the server serves: a deterministic function of (path, version).
//!
//! Every file is one pseudo-random block repeated; the block's length is prime so that
//! the pattern does not line up with power-of-two buffer or chunk sizes, which would let
//! a misplaced resume offset go unnoticed.

/// The content version every path starts at; [`crate::TestServer::set_version`] or
/// `change_after` move a path to another version.
pub const INITIAL_VERSION: u32 = 0;

/// Length of the repeated block (the largest prime below 2^16).
const BLOCK_LEN: usize = 65_521;

/// 1990-01-01T00:00:00Z: early enough that every version's Last-Modified lies in the past.
const LAST_MODIFIED_BASE: u64 = 631_152_000;

const SECONDS_PER_DAY: u64 = 86_400;

/// A 64-bit hash of (path, version) that seeds the block and names it in the ETag.
pub(crate) fn content_hash(path: &str, version: u32) -> u64 {
    // FNV-1a, with a separator byte so that ("/a1", 0) and ("/a", 1...) cannot collide by
    // concatenation, then a finalising mix because FNV's low bits are weak.
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    for byte in path.bytes().chain([0xff]).chain(version.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    scramble(hash)
}

/// The splitmix64 output function: spreads every input bit over the whole word.
fn scramble(mut word: u64) -> u64 {
    word = (word ^ (word >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    word = (word ^ (word >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    word ^ (word >> 31)
}

/// The strong validator of a version of a file.
pub(crate) fn etag(path: &str, version: u32, size: u64) -> String {
    format!("\"{:016x}-{size}-v{version}\"", content_hash(path, version))
}

/// Last-Modified of a version, in seconds since the Unix epoch. Version `v` falls on day
/// `v` after the base date, so different versions never share a date.
pub(crate) fn last_modified_secs(path: &str, version: u32) -> u64 {
    LAST_MODIFIED_BASE
        + u64::from(version) * SECONDS_PER_DAY
        + content_hash(path, version) % SECONDS_PER_DAY
}

/// The repeated block of one (path, version), stored twice in a row so that any window of
/// up to one block length is a single contiguous slice, whatever its starting offset.
pub(crate) struct ContentPattern {
    doubled_block: Vec<u8>,
}

impl ContentPattern {
    pub(crate) fn new(path: &str, version: u32) -> ContentPattern {
        let mut state = content_hash(path, version);
        let mut doubled_block = Vec::with_capacity(2 * BLOCK_LEN + 8);
        while doubled_block.len() < BLOCK_LEN {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            doubled_block.extend_from_slice(&scramble(state).to_le_bytes());
        }
        doubled_block.truncate(BLOCK_LEN);
        doubled_block.extend_from_within(..BLOCK_LEN);
        ContentPattern { doubled_block }
    }

    /// Appends `len` bytes of content starting at `offset` to `out`.
    fn append(&self, mut offset: u64, mut len: usize, out: &mut Vec<u8>) {
        while len > 0 {
            let piece = self.slice_at(offset, len);
            out.extend_from_slice(piece);
            offset += piece.len() as u64;
            len -= piece.len();
        }
    }
}

/// Bytes a response body is cut from: the content pattern of a file, or bytes held in
/// memory (an upload's reply).
pub(crate) trait BodySource {
    /// The bytes starting at `offset`, as many as possible up to `max_len`; empty only
    /// when `offset` lies at or past the end.
    fn slice_at(&self, offset: u64, max_len: usize) -> &[u8];
}

impl BodySource for ContentPattern {
    /// Never empty for `max_len > 0`: the pattern goes on for ever, but one slice holds
    /// at most one block length.
    fn slice_at(&self, offset: u64, max_len: usize) -> &[u8] {
        let start = usize::try_from(offset % BLOCK_LEN as u64)
            .expect("an offset within the block fits in usize");
        &self.doubled_block[start..start + max_len.min(BLOCK_LEN)]
    }
}

impl BodySource for [u8] {
    fn slice_at(&self, offset: u64, max_len: usize) -> &[u8] {
        let start = usize::try_from(offset).map_or(self.len(), |start| start.min(self.len()));
        &self[start..start + max_len.min(self.len() - start)]
    }
}

/// The exact bytes the server serves for `path` at `version`, from `offset`, `len` bytes
/// long. `path` is the URL path without the query, e.g. `"/data/64k"`.
pub fn content(path: &str, version: u32, offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    ContentPattern::new(path, version).append(offset, len, &mut out);
    out
}

/// The whole body of a file of `size` bytes: `content(path, version, 0, size)`.
pub fn expected_body(path: &str, version: u32, size: u64) -> Vec<u8> {
    let len = usize::try_from(size).expect("the expected body fits in memory");
    content(path, version, 0, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_bodies_slice_within_their_length() {
        let bytes: &[u8] = b"0123456789";
        assert_eq!(bytes.slice_at(3, 4), b"3456");
        assert_eq!(bytes.slice_at(8, 100), b"89");
        assert!(bytes.slice_at(10, 5).is_empty());
        assert!(bytes.slice_at(u64::MAX, 5).is_empty());
    }

    #[test]
    fn slices_across_block_boundaries_agree_with_the_whole_body() {
        let size = 3 * BLOCK_LEN as u64 + 17;
        let whole = expected_body("/data/x", 4, size);
        for (offset, len) in [
            (0, 10),
            (BLOCK_LEN - 3, 9),
            (BLOCK_LEN, 1),
            (100, 2 * BLOCK_LEN + 50),
        ] {
            assert_eq!(
                content("/data/x", 4, offset as u64, len),
                whole[offset..offset + len],
                "offset {offset} len {len}"
            );
        }
    }

    #[test]
    fn the_pattern_repeats_with_the_block_length() {
        let whole = expected_body("/p", 0, 2 * BLOCK_LEN as u64);
        assert_eq!(whole[..BLOCK_LEN], whole[BLOCK_LEN..]);
        assert_ne!(whole[..BLOCK_LEN], whole[1..=BLOCK_LEN]);
    }

    #[test]
    fn versions_and_paths_give_different_content_and_validators() {
        let base = expected_body("/data/1m/a", 0, 4096);
        assert_ne!(base, expected_body("/data/1m/a", 1, 4096));
        assert_ne!(base, expected_body("/data/1m/b", 0, 4096));
        assert_ne!(etag("/a", 0, 10), etag("/a", 1, 10));
        assert_ne!(last_modified_secs("/a", 0), last_modified_secs("/a", 1));
    }

    #[test]
    fn etag_names_size_and_version() {
        let tag = etag("/data/10", 3, 10);
        assert!(tag.starts_with('"') && tag.ends_with("-10-v3\""), "{tag}");
        assert_eq!(tag.len(), 1 + 16 + "-10-v3".len() + 1);
    }
}
