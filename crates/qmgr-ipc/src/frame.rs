//! Frames: a `u32` little-endian payload length, then that many bytes of postcard.
//!
//! Reading is defensive: the length is checked against a limit before anything is
//! allocated, a connection that ends inside a frame is reported as such, and a payload
//! that does not decode (or decodes with bytes left over) is an error value, never a panic.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest payload either side writes, and the largest answer a client reads: room
/// for a page of a listing and for the largest job with every name, error and attempt.
pub const MAX_FRAME_LEN: u32 = 32 * 1024 * 1024;

/// The largest answer a client reads from the service.
pub const MAX_ANSWER_FRAME_LEN: u32 = MAX_FRAME_LEN;

/// The largest request the service reads from a client after the handshake. The largest
/// legitimate one is a part of a long AddFiles (`message::ADD_FILES_PART_BYTES`, 4 MiB,
/// plus at most one file of about 10.7 KB with every name at its longest); this leaves
/// room to spare. A peer cannot make the service hold more for one frame than this.
pub const MAX_REQUEST_FRAME_LEN: u32 = 16 * 1024 * 1024;

/// The largest notification a client reads: a notification is a job id, a kind and a
/// state, a few dozen bytes.
pub const MAX_NOTIFICATION_FRAME_LEN: u32 = 64 * 1024;

/// The largest first frame (the handshake) a service reads from a peer it has not yet
/// accepted: a Hello is a few dozen bytes.
pub const MAX_HANDSHAKE_FRAME_LEN: u32 = 64 * 1024;

const LENGTH_PREFIX_LEN: usize = 4;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("the peer closed the connection")]
    Closed,
    /// The connection ended inside a frame.
    #[error("the connection ended inside a frame ({received} of {expected} bytes arrived)")]
    Truncated { expected: usize, received: usize },
    /// The length prefix (or an encoded message) exceeds the limit.
    #[error("a frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: u64, limit: u32 },
    /// The payload is not an encoding of the expected message.
    #[error("malformed frame payload: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Encodes `message` as one frame (length prefix included), refusing one larger than
/// [`MAX_FRAME_LEN`].
pub fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut bytes = postcard::to_extend(message, vec![0; LENGTH_PREFIX_LEN])
        .map_err(|error| FrameError::Malformed(format!("cannot encode the message: {error}")))?;
    let payload_len = bytes.len() - LENGTH_PREFIX_LEN;
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|len| *len <= MAX_FRAME_LEN)
        .ok_or(FrameError::TooLarge {
            len: payload_len as u64,
            limit: MAX_FRAME_LEN,
        })?;
    bytes[..LENGTH_PREFIX_LEN].copy_from_slice(&len.to_le_bytes());
    Ok(bytes)
}

/// How many bytes `message` takes in a frame's payload, without encoding it (the service
/// measures listing pages with this).
pub fn encoded_len<T: Serialize + ?Sized>(message: &T) -> usize {
    // Measuring cannot fail where encoding would not: a message that cannot be encoded
    // counts as too large.
    postcard::experimental::serialized_size(message).unwrap_or(usize::MAX)
}

/// Writes `message` as one frame with a single `write_all`, so a frame is never
/// interleaved with another writer's and costs one system call.
pub fn write_frame<T: Serialize>(writer: &mut impl Write, message: &T) -> Result<(), FrameError> {
    let bytes = encode_frame(message)?;
    writer.write_all(&bytes)?;
    Ok(())
}

/// Reads one frame's payload, refusing a length above `limit` before allocating.
pub fn read_payload(reader: &mut impl Read, limit: u32) -> Result<Vec<u8>, FrameError> {
    let mut prefix = [0u8; LENGTH_PREFIX_LEN];
    let received = read_fully(reader, &mut prefix)?;
    if received == 0 {
        return Err(FrameError::Closed);
    }
    if received < LENGTH_PREFIX_LEN {
        return Err(FrameError::Truncated {
            expected: LENGTH_PREFIX_LEN,
            received,
        });
    }
    let len = u32::from_le_bytes(prefix);
    if len > limit {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            limit,
        });
    }
    let expected = len as usize;
    // The buffer grows as bytes arrive: a length prefix alone reserves at most one chunk,
    // so a peer that announces a large frame and sends nothing costs almost nothing.
    let mut payload = Vec::with_capacity(expected.min(INITIAL_PAYLOAD_CAPACITY));
    let received = read_growing(reader, &mut payload, expected)?;
    if received < expected {
        return Err(FrameError::Truncated { expected, received });
    }
    Ok(payload)
}

/// Decodes a whole payload as a `T`; trailing bytes make it malformed.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes(payload) {
        Ok((message, [])) => Ok(message),
        Ok((_, rest)) => Err(FrameError::Malformed(format!(
            "{} bytes follow the message",
            rest.len()
        ))),
        Err(error) => Err(FrameError::Malformed(error.to_string())),
    }
}

/// Reads one frame and decodes it as a `T`.
pub fn read_frame<T: DeserializeOwned>(
    reader: &mut impl Read,
    limit: u32,
) -> Result<T, FrameError> {
    decode(&read_payload(reader, limit)?)
}

/// How much a payload buffer reserves before its bytes arrive.
const INITIAL_PAYLOAD_CAPACITY: usize = 64 * 1024;

/// Appends up to `expected` bytes to `payload`, growing it only as bytes arrive; returns
/// how many bytes arrived before the stream ended.
fn read_growing(
    reader: &mut impl Read,
    payload: &mut Vec<u8>,
    expected: usize,
) -> io::Result<usize> {
    reader.take(expected as u64).read_to_end(payload)?;
    Ok(payload.len())
}

/// Fills `buf` unless the stream ends first; returns how many bytes arrived.
fn read_fully(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announced_length_reserves_memory_only_as_bytes_arrive() {
        // A peer announces the largest frame and sends ten bytes of it.
        let mut input = MAX_FRAME_LEN.to_le_bytes().to_vec();
        input.extend_from_slice(&[7; 10]);
        let error = read_payload(&mut input.as_slice(), MAX_FRAME_LEN).unwrap_err();
        assert!(
            matches!(error, FrameError::Truncated { received: 10, .. }),
            "{error}"
        );
        let mut payload = Vec::with_capacity(16);
        let announced = MAX_FRAME_LEN as usize;
        let received = read_growing(&mut [7u8; 10].as_slice(), &mut payload, announced).unwrap();
        assert_eq!(received, 10);
        assert!(payload.capacity() < 1024 * 1024, "{}", payload.capacity());
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        values: Vec<u64>,
    }

    fn sample() -> Sample {
        Sample {
            name: "frame".into(),
            values: vec![1, 300, u64::MAX],
        }
    }

    #[test]
    fn a_frame_is_a_little_endian_length_and_the_payload() {
        let bytes = encode_frame(&sample()).unwrap();
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(len, bytes.len() - 4);
        assert_eq!(&bytes[4..], postcard::to_stdvec(&sample()).unwrap());
    }

    #[test]
    fn the_measured_length_is_the_payload_length() {
        let bytes = encode_frame(&sample()).unwrap();
        assert_eq!(encoded_len(&sample()), bytes.len() - 4);
    }

    #[test]
    fn frames_round_trip_back_to_back() {
        let mut stream = Vec::new();
        write_frame(&mut stream, &sample()).unwrap();
        write_frame(&mut stream, &7u32).unwrap();
        let mut reader = stream.as_slice();
        assert_eq!(
            read_frame::<Sample>(&mut reader, MAX_FRAME_LEN).unwrap(),
            sample()
        );
        assert_eq!(read_frame::<u32>(&mut reader, MAX_FRAME_LEN).unwrap(), 7);
        assert!(matches!(
            read_frame::<u32>(&mut reader, MAX_FRAME_LEN),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading_the_payload() {
        let mut reader: &[u8] = &u32::MAX.to_le_bytes();
        match read_payload(&mut reader, MAX_FRAME_LEN) {
            Err(FrameError::TooLarge { len, limit }) => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(limit, MAX_FRAME_LEN);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        let mut reader: &[u8] = &100u32.to_le_bytes();
        assert!(matches!(
            read_payload(&mut reader, 99),
            Err(FrameError::TooLarge { len: 100, .. })
        ));
    }

    #[test]
    fn truncation_anywhere_is_reported() {
        let bytes = encode_frame(&sample()).unwrap();
        for cut in 1..bytes.len() {
            let mut reader = &bytes[..cut];
            match read_payload(&mut reader, MAX_FRAME_LEN) {
                Err(FrameError::Truncated { expected, received }) => {
                    assert!(received < expected, "cut {cut}");
                }
                other => panic!("cut {cut}: expected Truncated, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(matches!(
            decode::<Sample>(&[]),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<Sample>(&[3, 0xFF, 0xFE, 0xFD, 0]),
            Err(FrameError::Malformed(_))
        ));
        let mut with_trailer = postcard::to_stdvec(&sample()).unwrap();
        with_trailer.push(0);
        match decode::<Sample>(&with_trailer) {
            Err(FrameError::Malformed(why)) => assert!(why.contains("1 bytes follow"), "{why}"),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn a_huge_declared_sequence_length_does_not_allocate_it() {
        // A varint claiming u32::MAX elements inside a small frame must fail cleanly.
        let payload = [0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
        assert!(matches!(
            decode::<Sample>(&payload),
            Err(FrameError::Malformed(_))
        ));
    }
}
