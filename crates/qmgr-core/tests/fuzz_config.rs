//! The config.toml parser, fuzzed: random TOML-ish text, valid configurations with values
//! swapped for edge cases, lines repeated, dropped or cut, and bytes corrupted. Nothing
//! panics; every refusal is `E_INVALIDARG` and says where (`config.toml:LINE:COLUMN:`, a
//! line the text has) and, for a bad value, which key; every accepted configuration holds
//! only values the documentation allows.
//!
//! `QMGR_FUZZ_ITERATIONS_CONFIG` and `QMGR_FUZZ_ITERATIONS_DURATIONS` set the number of
//! cases; see `qmgr_tests::fuzz` for the seed and replays.

use std::time::Duration;

use qmgr_core::QmgrError;
use qmgr_core::config::{
    Config, IDLE_TARGET_MAX, IDLE_TARGET_MIN, MAX_CONCURRENT_TRANSFERS, MAX_FILES_PER_JOB_CEILING,
    parse_duration, parse_rate,
};
use qmgr_core::hresult;
use qmgr_core::job::MINIMUM_RETRY_DELAY_FLOOR;
use qmgr_tests::fuzz::{Campaign, Rng, mutate};

const ORIGIN: &str = "config.toml";

/// Valid configurations the mutations start from.
const SAMPLES: &[&str] = &[
    "",
    "max_background_jobs = 2\nbandwidth_limit = \"20MB/s\"\n\n[job_defaults]\nminimum_retry_delay = \"30s\"\n\n[[schedule]]\ndays = [\"mon-fri\"]\nhours = \"08:00-17:00\"\nnormal = \"1MB/s\"\nlow = \"200kB/s\"\n",
    "max_background_jobs = 64\ntime_slice = \"1h30m\"\nbandwidth_limit = 0\nmax_jobs_per_user = 4294967295\nmax_files_per_job = 1000000\njob_inactivity_timeout = 90\nidle_exit = \"never\"\nstate_dir = \"/var/tmp/qmgr\"\nmax_connections = 8\nlog_level = \"TRACE\"\nidle_mode = false\nidle_target = \"100ms\"\nmetered = \"yes\"\n",
    "[job_defaults]\nminimum_retry_delay = 1\nno_progress_timeout = 0\npriority = \"foreground\"\nparallel_files = 64\ncost_flags = 0x80000021\n",
    "job_defaults = { priority = \"low\", parallel_files = 3 }\n",
    "[[schedule]]\ndays = \"sat\"\nhours = \"22:00-06:00\"\nhigh = \"512KiB/s\"\n\n[[schedule]]\ndays = [\"sun\", \"wed\"]\nmaintenance = true\nnormal = 1000\n\n[[schedule]]\ndays = [\"fri-mon\"]\nhours = \"12:00-13:00\"\nlow = \"unlimited\"\n",
    "schedule = [{ days = \"all\", hours = \"00:00-24:00\", low = \"1GB/s\" }]\nbandwidth_limit = 250000 # bytes\n",
];

/// The keys the parser knows, in the form a bad value's error names them.
const KEYS: &[&str] = &[
    "max_background_jobs",
    "time_slice",
    "bandwidth_limit",
    "max_jobs_per_user",
    "max_files_per_job",
    "max_connections",
    "job_inactivity_timeout",
    "idle_exit",
    "state_dir",
    "log_level",
    "idle_mode",
    "idle_target",
    "metered",
    "job_defaults.minimum_retry_delay",
    "job_defaults.no_progress_timeout",
    "job_defaults.priority",
    "job_defaults.parallel_files",
    "job_defaults.cost_flags",
    "schedule.days",
    "schedule.hours",
    "schedule.high",
    "schedule.normal",
    "schedule.low",
    "schedule.maintenance",
];

/// Values on the edges of what some key takes.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "7",
    "8",
    "64",
    "65",
    "65536",
    "65537",
    "1000001",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "0x7fffffff",
    "1.5",
    "nan",
    "-inf",
    "true",
    "false",
    "\"\"",
    "\" \"",
    "\"5m\"",
    "\"1h30m\"",
    "\"40ms\"",
    "\"19ms\"",
    "\"101ms\"",
    "\"0s\"",
    "\"4294967295s\"",
    "\"4294967296s\"",
    "\"49710d\"",
    "\"49711d\"",
    "\"99999999999999999999d\"",
    "\"18446744073709551615ms\"",
    "\"1500ms\"",
    "\"never\"",
    "\"unlimited\"",
    "\"20MB/s\"",
    "\"20Mb/s\"",
    "\"16777216TiB/s\"",
    "\"512 KiB / s\"",
    "\"iB\"",
    "\"/\"",
    "\"relative/dir\"",
    "\"/ok\"",
    "\"~/x\"",
    "\"info\"",
    "\"LOUD\"",
    "\"auto\"",
    "\"mon-fri\"",
    "\"fri-mon\"",
    "[\"mon\", \"tuesday\"]",
    "[\"mo\"]",
    "[]",
    "[1, 2]",
    "\"24:00-24:00\"",
    "\"00:00-24:00\"",
    "\"08:00-08:00\"",
    "\"23:59-00:00\"",
    "\"25:00-26:00\"",
    "\"8-17\"",
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "\"\\u0000\"",
    "\"\\uD800\"",
    "'''multi\nline'''",
    "\"€€€\"",
];

/// Whole lines that change a file's structure.
const LINES: &[&str] = &[
    "[job_defaults]",
    "[[schedule]]",
    "[schedule]",
    "[[job_defaults]]",
    "[unknown]",
    "unknown_key = 1",
    "a.b.c = 1",
    "\"max_background_jobs\" = 3",
    "max_background_jobs.x = 1",
    "job_defaults = 5",
    "schedule = 1",
    "schedule = [1]",
    "[[schedule]]\nhours = \"09:00-10:00\"\n[[schedule]]\nhours = \"09:30-11:00\"",
    "# comment ✓",
    "=",
    "[",
    "]]",
    "key = ",
    "\"unterminated",
    "x = \"\\q\"",
    "\u{FEFF}max_connections = 9",
    "\t  \r",
];

fn structured(rng: &mut Rng) -> String {
    let mut lines: Vec<String> = rng.pick(SAMPLES).lines().map(str::to_owned).collect();
    for _ in 0..=rng.below(4) {
        let at = rng.below(lines.len() + 1);
        match rng.below(6) {
            // A known key with an edge value, anywhere.
            0 | 1 => {
                let key = rng.pick(KEYS);
                let key = key.rsplit('.').next().unwrap_or(key);
                lines.insert(at, format!("{key} = {}", rng.pick(VALUES)));
            }
            // A present value replaced.
            2 => {
                if let Some(line) = lines.get_mut(at)
                    && let Some((key, _)) = line.split_once('=')
                {
                    *line = format!("{key}= {}", rng.pick(VALUES));
                }
            }
            3 => lines.insert(at, (*rng.pick(LINES)).to_owned()),
            4 if !lines.is_empty() => {
                let line = lines[rng.below(lines.len())].clone();
                lines.insert(at, line);
            }
            _ if at < lines.len() => {
                lines.remove(at);
            }
            _ => {}
        }
    }
    let separator = if rng.one_in(8) { "\r\n" } else { "\n" };
    lines.join(separator)
}

fn input(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 | 1 => structured(rng),
        // Bytes of a valid file corrupted, read as the loader would (invalid UTF-8 is
        // refused before parsing; the parser sees the valid text around it).
        2 | 3 => {
            let mut bytes = structured(rng).into_bytes();
            let donor = rng.pick(SAMPLES).as_bytes();
            mutate(rng, &mut bytes, donor);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        // Random text from TOML's alphabet.
        _ => {
            const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz_0123456789.-+=[]{}\"'#,:\n \t\\/";
            let len = rng.length(200);
            (0..len).map(|_| char::from(*rng.pick(ALPHABET))).collect()
        }
    }
}

/// The line a refusal points at, if its message says `config.toml:LINE:COLUMN:`.
fn line_of(message: &str) -> Option<usize> {
    let rest = message.strip_prefix(ORIGIN)?.strip_prefix(':')?;
    let (line, rest) = rest.split_once(':')?;
    let (column, _) = rest.split_once(':')?;
    column.parse::<usize>().ok()?;
    line.parse().ok()
}

fn check_refusal(text: &str, error: &QmgrError) -> Result<(), String> {
    if error.hresult != hresult::E_INVALIDARG {
        return Err(format!(
            "refused with {:?}, not E_INVALIDARG: {error}",
            error.hresult
        ));
    }
    let message = &error.description;
    let Some(line) = line_of(message) else {
        return Err(format!("the refusal says no line: {message:?}"));
    };
    let lines = text.split('\n').count();
    if line == 0 || line > lines {
        return Err(format!(
            "the refusal names line {line} of {lines}: {message:?}"
        ));
    }
    if let Some((_, rest)) = message.split_once("bad value for `") {
        let key = rest.split('`').next().unwrap_or_default();
        if !KEYS.contains(&key) {
            return Err(format!(
                "a bad value of an unknown key {key:?}: {message:?}"
            ));
        }
    }
    Ok(())
}

/// Every value of an accepted configuration is one the documentation allows.
fn check_accepted(config: &Config) -> Result<(), String> {
    let most = Duration::from_secs(u64::from(u32::MAX));
    let defaults = &config.job_defaults;
    let checks = [
        (
            "max_background_jobs",
            (1..=MAX_CONCURRENT_TRANSFERS).contains(&config.max_background_jobs),
        ),
        (
            "time_slice",
            !config.time_slice.is_zero() && config.time_slice <= most,
        ),
        ("bandwidth_limit", config.bandwidth_limit != Some(0)),
        ("max_jobs_per_user", config.max_jobs_per_user >= 1),
        (
            "max_files_per_job",
            (1..=MAX_FILES_PER_JOB_CEILING).contains(&config.max_files_per_job),
        ),
        (
            "max_connections",
            (8..=65_536).contains(&config.max_connections),
        ),
        (
            "job_inactivity_timeout",
            !config.job_inactivity_timeout.is_zero() && config.job_inactivity_timeout <= most,
        ),
        (
            "idle_exit",
            config
                .idle_exit
                .is_none_or(|idle| !idle.is_zero() && idle <= most),
        ),
        (
            "state_dir",
            config
                .state_dir
                .as_ref()
                .is_none_or(|dir| dir.is_absolute()),
        ),
        (
            "idle_target",
            (IDLE_TARGET_MIN..=IDLE_TARGET_MAX).contains(&config.idle_target),
        ),
        (
            "minimum_retry_delay",
            defaults.minimum_retry_delay >= MINIMUM_RETRY_DELAY_FLOOR
                && defaults.minimum_retry_delay <= most
                && defaults.minimum_retry_delay.subsec_nanos() == 0,
        ),
        (
            "no_progress_timeout",
            defaults.no_progress_timeout <= most
                && defaults.no_progress_timeout.subsec_nanos() == 0,
        ),
        (
            "parallel_files",
            (1..=MAX_CONCURRENT_TRANSFERS).contains(&defaults.parallel_files),
        ),
        ("cost_flags", defaults.cost_flags != 0),
    ];
    for (key, holds) in checks {
        if !holds {
            return Err(format!("accepted a `{key}` out of range: {config:?}"));
        }
    }
    for window in &config.schedules {
        let caps = [window.caps.high, window.caps.normal, window.caps.low];
        if window.days == 0
            || window.days > 0x7F
            || window.start >= 24 * 60
            || window.end >= 24 * 60
            || caps.contains(&Some(0))
        {
            return Err(format!("accepted a window out of range: {window:?}"));
        }
    }
    Ok(())
}

#[test]
fn random_and_mutated_configurations_are_refused_with_a_place_or_accepted_in_range() {
    let mut accepted = 0u64;
    let mut refused = 0u64;
    Campaign::from_env("config", 5_000).run(|rng| {
        let text = input(rng);
        let outcome = match Config::from_toml_str(&text, ORIGIN) {
            Ok(config) => {
                accepted += 1;
                check_accepted(&config)
            }
            Err(error) => {
                refused += 1;
                check_refusal(&text, &error)
            }
        };
        outcome.map_err(|why| format!("{why}\n    input: {text:?}"))
    });
    println!("fuzz config: {accepted} accepted, {refused} refused");
    if std::env::var_os("QMGR_FUZZ_CASE").is_none() {
        assert!(
            accepted > 0 && refused > 0,
            "{accepted} accepted, {refused} refused"
        );
    }
}

/// Durations and rates alone, the parsers that every duration and rate key goes through
/// (and the CLI's options too).
#[test]
fn random_durations_and_rates_parse_in_range_or_are_refused() {
    const ALPHABET: &[u8] = b"0123456789 msMhHdDkKgGtTiIbB/.-+unlimited";
    Campaign::from_env("durations", 20_000).run(|rng| {
        let text: String = if rng.one_in(2) {
            let len = rng.length(30);
            (0..len).map(|_| char::from(*rng.pick(ALPHABET))).collect()
        } else {
            let value = rng.pick(VALUES);
            value.trim_matches('"').to_owned()
        };
        match parse_duration(&text) {
            Ok(duration) if duration > Duration::from_secs(u64::from(u32::MAX)) => {
                return Err(format!(
                    "{text:?} gave {duration:?}, beyond u32::MAX seconds"
                ));
            }
            Ok(duration) => {
                // The same length written in milliseconds reads the same.
                let again = parse_duration(&format!("{}ms", duration.as_millis()));
                if again.as_ref().ok() != Some(&duration) {
                    return Err(format!("{text:?} gave {duration:?}, its ms form {again:?}"));
                }
            }
            Err(error) if error.hresult != hresult::E_INVALIDARG => {
                return Err(format!("{text:?}: {error} is not E_INVALIDARG"));
            }
            Err(error) if !error.description.contains(&format!("{text:?}")) => {
                return Err(format!("{text:?}: the refusal does not quote it: {error}"));
            }
            Err(_) => {}
        }
        match parse_rate(&text) {
            Ok(Some(0)) => Err(format!("{text:?} gave a rate of 0 rather than no cap")),
            Err(error) if error.hresult != hresult::E_INVALIDARG => {
                Err(format!("{text:?}: {error} is not E_INVALIDARG"))
            }
            _ => Ok(()),
        }
    });
}
