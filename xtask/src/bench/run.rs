//! Timing one run of a program: wall time, CPU time and peak memory of the process and its
//! threads, read from the kernel's accounting of the exited child (`wait4`), which is
//! exact to the microsecond where `/usr/bin/time` rounds to hundredths.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// What one run cost.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub wall: Duration,
    /// User plus system time of the process and all its threads.
    pub cpu: Duration,
    /// Peak resident set size in bytes.
    pub peak_rss: u64,
}

/// Runs `command` to its end and measures it; fails if it does not exit with status 0.
pub fn measure(command: &mut Command) -> Result<Measured> {
    let description = format!("{command:?}");
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {description}"))?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let (status, usage) =
        wait_with_usage(pid).with_context(|| format!("waiting for {description}"))?;
    let wall = started.elapsed();
    // The child was reaped by wait4; dropping the handle neither waits nor kills.
    drop(child);
    if !status.success() {
        bail!("{description} failed: {status}");
    }
    Ok(Measured {
        wall,
        cpu: duration_of(usage.ru_utime) + duration_of(usage.ru_stime),
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    })
}

fn wait_with_usage(pid: libc::pid_t) -> Result<(ExitStatus, libc::rusage)> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain integers, for which all-zero bytes are a valid value;
        // wait4 writes only into the two locals whose addresses it gets, and `pid` is our
        // own child that nothing else waits for (its `Child` handle is never waited on).
        let (reaped, usage) = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            let reaped = libc::wait4(pid, &raw mut status, 0, &raw mut usage);
            (reaped, usage)
        };
        if reaped == pid {
            return Ok((ExitStatus::from_raw(status), usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error).context("wait4");
        }
    }
}

fn duration_of(time: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(time.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(time.tv_usec).unwrap_or(0))
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: libc::c_int) -> Result<()> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: kill only takes integers and touches no memory of ours.
    let sent = unsafe { libc::kill(pid, signal) };
    if sent != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot signal process {pid}"));
    }
    Ok(())
}

/// The median of the runs by `key` (the mean of the two middle values for an even count).
pub fn median_by(runs: &[Measured], key: impl Fn(&Measured) -> f64) -> f64 {
    median(&runs.iter().map(key).collect::<Vec<_>>())
}

/// The smallest and largest value of the runs by `key`.
pub fn range_by(runs: &[Measured], key: impl Fn(&Measured) -> f64) -> (f64, f64) {
    range(&runs.iter().map(key).collect::<Vec<_>>())
}

/// The median of `values` (the mean of the two middle ones for an even count; NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut values = values.to_vec();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => f64::midpoint(values[n / 2 - 1], values[n / 2]),
    }
}

/// The smallest and largest of `values`.
pub fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), &v| {
            (low.min(v), high.max(v))
        })
}

#[cfg(test)]
mod tests {
    use super::{median, range};

    #[test]
    fn median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]).to_bits(), 2.0_f64.to_bits());
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]).to_bits(), 2.5_f64.to_bits());
    }

    #[test]
    fn median_of_nothing_is_not_a_number() {
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn range_is_the_smallest_and_largest_value() {
        let (low, high) = range(&[2.0, 5.0, 1.0]);
        assert_eq!(
            (low.to_bits(), high.to_bits()),
            (1.0_f64.to_bits(), 5.0_f64.to_bits())
        );
    }
}
