//! UTF-16 strings at the C boundary, fuzzed: random code units (lone and reversed
//! surrogates, NULs anywhere, lengths on both sides of the limit, no terminator at all)
//! read as an in-string the way every method reads one, from a buffer that ends at an
//! unreadable page, so reading one unit too far crashes the test. Nothing panics; a valid
//! string comes back exactly; anything else is `E_INVALIDARG` whose description names the
//! parameter; strings handed back to C read back the same.
//!
//! `QMGR_FUZZ_ITERATIONS_UTF16` sets the number of cases; see `qmgr_tests::fuzz` for the
//! seed and replays.

use qmgr_core::hresult;
use qmgr_tests::fuzz::{Campaign, Rng};

use crate::abi::types::WCHAR;
use crate::boundary::{FromCaller, hresult, take_last_failure};
use crate::memory::CoTaskMemFree;
use crate::strings::{MAX_WIDE_UNITS, to_co_task};

/// Memory whose last readable byte is followed by a page that faults when touched.
struct GuardedBuffer {
    base: *mut libc::c_void,
    mapped: usize,
    usable: usize,
}

impl GuardedBuffer {
    /// Room for `units` code units, ending exactly at the guard page.
    fn with_room_for(units: usize) -> GuardedBuffer {
        // SAFETY: sysconf has no memory preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
        let usable = (units * 2).div_ceil(page).max(1) * page;
        let mapped = usable + page;
        // SAFETY: a fresh anonymous private mapping; no existing memory is involved.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap of {mapped} bytes");
        // SAFETY: the last page of the mapping just made; nothing refers to it yet.
        let guard =
            unsafe { libc::mprotect(base.cast::<u8>().add(usable).cast(), page, libc::PROT_NONE) };
        assert_eq!(guard, 0, "mprotect of the guard page");
        GuardedBuffer {
            base,
            mapped,
            usable,
        }
    }

    /// Copies `units` so that the last one ends at the guard page; returns where they start.
    fn place(&mut self, units: &[u16]) -> *const WCHAR {
        let bytes = units.len() * 2;
        assert!(bytes <= self.usable);
        // SAFETY: `usable - bytes` is within the readable, writable part of the mapping.
        let start = unsafe { self.base.cast::<u8>().add(self.usable - bytes) };
        // SAFETY: `bytes` bytes from `start` lie within the mapping's readable part, which
        // nothing else refers to; `units` is a separate Rust allocation.
        unsafe { std::ptr::copy_nonoverlapping(units.as_ptr().cast::<u8>(), start, bytes) };
        #[expect(
            clippy::cast_ptr_alignment,
            reason = "the mapping is page-aligned and `bytes` is even, so `start` is too"
        )]
        let wide = start.cast::<WCHAR>().cast_const();
        wide
    }
}

impl Drop for GuardedBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `with_room_for`, unmapped once.
        unsafe { libc::munmap(self.base, self.mapped) };
    }
}

/// A code unit, surrogates and NULs far more often than chance.
fn unit(rng: &mut Rng) -> u16 {
    match rng.below(10) {
        0 => 0xD800 + rng.next_u16() % 0x400,
        1 => 0xDC00 + rng.next_u16() % 0x400,
        2 => 0,
        3 => rng.next_u16() % 0x80,
        4 => *rng.pick(&[0xFFFE, 0xFFFF, 0xFEFF, 0xD7FF, 0xE000, 0x20AC]),
        _ => rng.next_u16(),
    }
}

/// The units of one case: what C hands over, terminator (or none) included.
fn units(rng: &mut Rng) -> Vec<u16> {
    let len = match rng.below(10) {
        0 => MAX_WIDE_UNITS - 2 + rng.below(5),
        1 => rng.below(MAX_WIDE_UNITS * 2),
        _ => rng.length(64),
    };
    let mut units: Vec<u16> = if rng.one_in(3) {
        // Mostly valid text: characters, now and then a pair or a lone surrogate.
        let mut text = Vec::with_capacity(len);
        while text.len() < len {
            match rng.below(20) {
                0 => text.push(unit(rng)),
                1 => text.extend([0xD83D, 0xDE00]),
                _ => text.push(u16::from(b'a') + rng.next_u16() % 26),
            }
        }
        text
    } else {
        (0..len).map(|_| unit(rng)).collect()
    };
    // Without a terminator C must still hand over more than the limit (the contract); with
    // one, it may sit anywhere.
    if rng.one_in(4) && units.len() <= MAX_WIDE_UNITS {
        units.resize(MAX_WIDE_UNITS + 1, u16::from(b'x'));
    } else {
        units.push(0);
    }
    units
}

/// What reading `units` must give: the text, or which refusal.
fn expected(units: &[u16]) -> Result<String, &'static str> {
    let end = units.iter().position(|&unit| unit == 0);
    match end {
        Some(end) if end <= MAX_WIDE_UNITS => {
            String::from_utf16(&units[..end]).map_err(|_| "unpaired surrogate")
        }
        _ => Err("longer than"),
    }
}

fn check(buffer: &mut GuardedBuffer, units: &[u16]) -> Result<(), String> {
    let wide = buffer.place(units);
    let mut read = None;
    // The way every method reads an in-string: through the boundary, as an HRESULT.
    let code = hresult(|| {
        // SAFETY: `wide` points at `units`, which reach a NUL or exceed the limit (the
        // contract of an in-string).
        let text = unsafe { wide.checked() }.required_string("RemoteUrl")?;
        read = Some(text);
        Ok(hresult::S_OK)
    });
    match (expected(units), read) {
        (Ok(want), Some(got)) if want == got && code == hresult::S_OK.0 => {
            // Handed back to C, the text reads back the same.
            let copy = to_co_task(&got).map_err(|error| format!("to_co_task: {error}"))?;
            let mut back = Vec::new();
            // SAFETY: `to_co_task` made a NUL-terminated copy; it is freed once, below.
            unsafe {
                let mut at = copy;
                while *at != 0 {
                    back.push(*at);
                    at = at.add(1);
                }
                CoTaskMemFree(copy.cast());
            }
            if String::from_utf16(&back).ok().as_deref() != Some(got.as_str()) {
                return Err(format!("{got:?} was handed back as {back:04x?}"));
            }
            Ok(())
        }
        (Err(why), None) if code == hresult::E_INVALIDARG.0 => {
            let failure = take_last_failure().map(|error| error.description);
            match failure {
                Some(text) if text.contains("RemoteUrl") && text.contains(why) => Ok(()),
                other => Err(format!("refused ({why}) with the description {other:?}")),
            }
        }
        (want, got) => Err(format!(
            "expected {want:?}, read {got:?} with HRESULT {code:#010x}"
        )),
    }
}

#[test]
fn random_utf16_reads_exactly_or_is_e_invalidarg_and_never_past_its_buffer() {
    let mut buffer = GuardedBuffer::with_room_for(MAX_WIDE_UNITS * 2 + 1);
    let mut valid = 0u64;
    let mut refused = 0u64;
    Campaign::from_env("utf16", 2_000).run(|rng| {
        let units = units(rng);
        if expected(&units).is_ok() {
            valid += 1;
        } else {
            refused += 1;
        }
        check(&mut buffer, &units).map_err(|why| {
            let shown = &units[..units.len().min(40)];
            format!("{why}\n    units ({} in all): {shown:04x?}", units.len())
        })
    });
    println!("fuzz utf16: {valid} valid, {refused} refused");
}

/// The edges, fixed: a terminator exactly at the limit and one past it, a lone surrogate at
/// each end, no terminator at all.
#[test]
fn the_edges_of_an_in_string_are_held_exactly() {
    let mut buffer = GuardedBuffer::with_room_for(MAX_WIDE_UNITS * 2 + 1);
    let letters = |n: usize| vec![u16::from(b'a'); n];
    let cases = [
        [letters(MAX_WIDE_UNITS), vec![0]].concat(),
        [letters(MAX_WIDE_UNITS + 1), vec![0]].concat(),
        letters(MAX_WIDE_UNITS + 1),
        vec![0xD800, 0],
        vec![u16::from(b'a'), 0xDC00, 0],
        vec![0xDE00, 0xD83D, 0],
        vec![0xD83D, 0xDE00, 0],
        vec![0],
    ];
    for units in cases {
        check(&mut buffer, &units).unwrap_or_else(|why| panic!("{} units: {why}", units.len()));
    }
}
