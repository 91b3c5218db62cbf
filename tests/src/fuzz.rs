//! Fuzz loops that run on stable Rust, as ordinary tests.
//!
//! A [`Campaign`] runs a check over many generated inputs. Every case draws its input from
//! an [`Rng`] seeded by the campaign's seed and the case's number, so a failing case
//! replays alone from the two numbers the campaign prints. A panic or an `Err` from the
//! check is a finding; the campaign goes on to the end, then fails naming the first few.
//!
//! The environment steers a campaign (`NAME` is the campaign's name, upper-cased, `-` as
//! `_`):
//!
//! | variable | effect |
//! |---|---|
//! | `QMGR_FUZZ_ITERATIONS_NAME`, else `QMGR_FUZZ_ITERATIONS` | how many cases (the test's small default otherwise) |
//! | `QMGR_FUZZ_SEED` | the seed (decimal or `0x` hex); a fresh one each run otherwise |
//! | `QMGR_FUZZ_CASE` | run only this case of the seed (a replay) |
//! | `QMGR_FUZZ_REPORT` | a file to which the campaign appends one tab-separated line: name, cases, seconds, findings, seed |

#![allow(
    clippy::cast_possible_truncation,
    reason = "a generator keeps the bits it wants of a wider number"
)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A deterministic generator: splitmix64 to spread the seed, xorshift64* to draw.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`; every seed (zero too) gives a usable, distinct stream.
    pub fn new(seed: u64) -> Rng {
        Rng(splitmix64(seed) | 1)
    }

    /// The generator of case `case` of a campaign seeded with `seed`.
    pub fn for_case(seed: u64, case: u64) -> Rng {
        Rng::new(seed ^ splitmix64(case.wrapping_add(0x5EED)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    pub fn next_u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }

    pub fn byte(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0, "below(0)");
        (self.next_u64() % bound as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }

    /// A length that is usually small and now and then large: what finds edge cases in
    /// length handling without making every case slow.
    pub fn length(&mut self, max: usize) -> usize {
        match self.below(8) {
            0..=4 => self.below(max.min(16) + 1),
            5 | 6 => self.below(max.min(256) + 1),
            _ => self.below(max + 1),
        }
    }
}

fn splitmix64(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Byte values that sit on the edges parsers care about.
const INTERESTING_BYTES: [u8; 12] = [
    0, 1, 0x7F, 0x80, 0xFF, 0xFE, b'\n', b'"', b'=', b'[', b'\\', 0xC0,
];

/// Changes `bytes` in one to four random ways: bit flips, edge values, inserted, removed
/// or repeated runs, a cut, or a run copied from `donor` (another valid sample).
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, donor: &[u8]) {
    for _ in 0..=rng.below(4) {
        let len = bytes.len();
        match rng.below(8) {
            0 if len > 0 => {
                let at = rng.below(len);
                bytes[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                bytes[at] = *rng.pick(&INTERESTING_BYTES);
            }
            2 => {
                let at = rng.below(len + 1);
                let run = rng.length(32);
                let insert = rng.bytes(run);
                bytes.splice(at..at, insert);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.length(32)).min(len);
                bytes.drain(at..end);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.length(64)).min(len);
                let run = bytes[at..end].to_vec();
                let to = rng.below(len + 1);
                bytes.splice(to..to, run);
            }
            5 if len > 0 => bytes.truncate(rng.below(len)),
            6 if !donor.is_empty() => {
                let from = rng.below(donor.len());
                let end = (from + 1 + rng.length(64)).min(donor.len());
                let at = rng.below(len + 1);
                bytes.splice(at..at, donor[from..end].iter().copied());
            }
            _ if len > 0 => {
                let at = rng.below(len);
                bytes[at] = rng.byte();
            }
            _ => bytes.push(rng.byte()),
        }
    }
}

/// How many findings a campaign describes in full.
const FINDINGS_SHOWN: usize = 5;

/// One run of a fuzz target: its name, seed and number of cases.
#[derive(Debug, Clone)]
pub struct Campaign {
    name: String,
    seed: u64,
    cases: u64,
    only: Option<u64>,
}

/// What a campaign found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    pub cases: u64,
    pub failed: u64,
    /// The first few: the case number and what went wrong.
    pub first: Vec<(u64, String)>,
}

impl Campaign {
    /// The campaign `name` as the environment sets it (see the module's table), with
    /// `default_cases` cases when it does not say.
    pub fn from_env(name: &str, default_cases: u64) -> Campaign {
        let variable = format!(
            "QMGR_FUZZ_ITERATIONS_{}",
            name.to_ascii_uppercase().replace('-', "_")
        );
        let cases = std::env::var(&variable)
            .or_else(|_| std::env::var("QMGR_FUZZ_ITERATIONS"))
            .ok()
            .map_or(default_cases, |text| {
                parse_number(&text).unwrap_or_else(|| panic!("{variable}: not a number: {text:?}"))
            });
        let seed = std::env::var("QMGR_FUZZ_SEED")
            .ok()
            .map_or_else(fresh_seed, |text| {
                parse_number(&text)
                    .unwrap_or_else(|| panic!("QMGR_FUZZ_SEED: not a number: {text:?}"))
            });
        let only = std::env::var("QMGR_FUZZ_CASE").ok().map(|text| {
            parse_number(&text).unwrap_or_else(|| panic!("QMGR_FUZZ_CASE: not a number: {text:?}"))
        });
        Campaign::new(name, seed, cases, only)
    }

    /// A campaign with everything given (tests of the kit itself).
    pub fn new(name: &str, seed: u64, cases: u64, only: Option<u64>) -> Campaign {
        Campaign {
            name: name.to_owned(),
            seed,
            cases,
            only,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Runs `check` on every case and returns what it found, without failing.
    pub fn explore(&self, mut check: impl FnMut(&mut Rng) -> Result<(), String>) -> Findings {
        let cases: Box<dyn Iterator<Item = u64>> = match self.only {
            Some(case) => Box::new(std::iter::once(case)),
            None => Box::new(0..self.cases),
        };
        let mut findings = Findings {
            cases: 0,
            failed: 0,
            first: Vec::new(),
        };
        for case in cases {
            let mut rng = Rng::for_case(self.seed, case);
            let outcome = match catch_unwind(AssertUnwindSafe(|| check(&mut rng))) {
                Ok(outcome) => outcome,
                Err(panic) => Err(format!("panicked: {}", panic_text(panic.as_ref()))),
            };
            findings.cases += 1;
            if let Err(why) = outcome {
                findings.failed += 1;
                if findings.first.len() < FINDINGS_SHOWN {
                    findings.first.push((case, why));
                }
            }
        }
        findings
    }

    /// Runs `check` on every case, prints and reports the outcome, and panics if anything
    /// was found, with the command lines that replay each shown case.
    pub fn run(&self, check: impl FnMut(&mut Rng) -> Result<(), String>) {
        println!(
            "fuzz {}: seed {:#x}, {} cases (replay with QMGR_FUZZ_SEED={:#x})",
            self.name,
            self.seed,
            self.only.map_or(self.cases, |_| 1),
            self.seed
        );
        let started = Instant::now();
        let findings = self.explore(check);
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "fuzz {}: {} cases in {seconds:.1} s, {} findings",
            self.name, findings.cases, findings.failed
        );
        self.report(&findings, seconds);
        if findings.failed == 0 {
            return;
        }
        let mut message = format!(
            "fuzz {}: {} of {} cases failed (seed {:#x})",
            self.name, findings.failed, findings.cases, self.seed
        );
        for (case, why) in &findings.first {
            let _ = write!(
                message,
                "\n  case {case}: {why}\n    replay: QMGR_FUZZ_SEED={:#x} QMGR_FUZZ_CASE={case}",
                self.seed
            );
        }
        panic!("{message}");
    }

    fn report(&self, findings: &Findings, seconds: f64) {
        let Some(path) = std::env::var_os("QMGR_FUZZ_REPORT") else {
            return;
        };
        let line = format!(
            "{}\t{}\t{seconds:.2}\t{}\t{:#x}\n",
            self.name, findings.cases, findings.failed, self.seed
        );
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = written {
            panic!("cannot append to {}: {error}", path.to_string_lossy());
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// A decimal or `0x` hexadecimal number; `_` separators allowed.
pub fn parse_number(text: &str) -> Option<u64> {
    let text = text.trim().replace('_', "");
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// A seed for a run that names none: the clock and the process id, mixed.
fn fresh_seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    splitmix64(nanos ^ (u64::from(std::process::id()) << 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_draws_the_same_input_every_time_and_cases_differ() {
        let first = Rng::for_case(42, 7).bytes(32);
        assert_eq!(Rng::for_case(42, 7).bytes(32), first);
        assert_ne!(Rng::for_case(42, 8).bytes(32), first);
        assert_ne!(Rng::for_case(43, 7).bytes(32), first);
        assert_ne!(Rng::new(0).next_u64(), 0);
    }

    #[test]
    fn findings_name_their_cases_and_a_replay_runs_only_one() {
        let check = |rng: &mut Rng| {
            let value = rng.below(4);
            match value {
                0 => panic!("zero"),
                1 => Err("one".to_owned()),
                _ => Ok(()),
            }
        };
        let findings = Campaign::new("kit", 9, 200, None).explore(check);
        assert_eq!(findings.cases, 200);
        assert!(
            findings.failed > 50 && findings.failed < 150,
            "{findings:?}"
        );
        assert_eq!(findings.first.len(), FINDINGS_SHOWN);
        let (case, why) = findings.first[0].clone();
        let replay = Campaign::new("kit", 9, 200, Some(case)).explore(check);
        assert_eq!(replay.cases, 1);
        assert_eq!(replay.first, vec![(case, why)]);
    }

    #[test]
    fn a_campaign_with_findings_fails() {
        let outcome = catch_unwind(|| Campaign::new("kit", 1, 3, None).run(|_| Err("bad".into())));
        let text = panic_text(outcome.unwrap_err().as_ref());
        assert!(text.contains("3 of 3 cases failed"), "{text}");
        assert!(
            text.contains("QMGR_FUZZ_SEED=0x1 QMGR_FUZZ_CASE=0"),
            "{text}"
        );
    }

    #[test]
    fn mutations_change_inputs_and_stay_in_bounds() {
        let sample = b"max_background_jobs = 2\n".to_vec();
        let mut changed = 0;
        for case in 0..1000 {
            let mut rng = Rng::for_case(5, case);
            let mut bytes = sample.clone();
            mutate(&mut rng, &mut bytes, b"[job_defaults]");
            changed += usize::from(bytes != sample);
            assert!(bytes.len() <= sample.len() + 4 * 64 + 14, "{}", bytes.len());
        }
        assert!(changed > 900, "{changed}");
        let mut empty = Vec::new();
        mutate(&mut Rng::new(3), &mut empty, &[]);
    }

    #[test]
    fn numbers_are_decimal_or_hex() {
        assert_eq!(parse_number("1_000_000"), Some(1_000_000));
        assert_eq!(parse_number("0xFF"), Some(255));
        assert_eq!(parse_number("x"), None);
    }
}
