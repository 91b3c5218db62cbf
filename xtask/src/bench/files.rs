//! Files the transfer benchmarks share: a scratch directory on tmpfs, incompressible test
//! files, and the check that a download is byte for byte its source.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

/// Where the benchmarks keep their files unless `QMGR_BENCH_DIR` names another directory.
const SCRATCH_PARENT: &str = "/dev/shm/qmgr-bench";

/// This run's directory (on tmpfs unless `QMGR_BENCH_DIR` says otherwise), removed when
/// dropped.
#[derive(Debug)]
pub struct Scratch {
    parent: PathBuf,
    root: PathBuf,
}

impl Scratch {
    pub fn create() -> Result<Scratch> {
        let parent = if let Some(dir) = std::env::var_os("QMGR_BENCH_DIR") {
            // A directory on disk measures what making files durable (fsync) costs, which
            // tmpfs hides.
            std::path::absolute(PathBuf::from(dir).join("qmgr-bench"))
                .context("QMGR_BENCH_DIR cannot be made absolute")?
        } else {
            ensure!(
                Path::new("/dev/shm").is_dir(),
                "/dev/shm (tmpfs) is missing; the benchmark keeps its files in memory there \
                 (or set QMGR_BENCH_DIR)"
            );
            PathBuf::from(SCRATCH_PARENT)
        };
        let root = parent.join(std::process::id().to_string());
        fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
        // nginx's workers run as an unprivileged user: they must reach the files.
        for dir in [&parent, &root] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot open up {}", dir.display()))?;
        }
        Ok(Scratch { parent, root })
    }

    /// Whether the files live in memory (the default) rather than on a disk.
    pub fn on_tmpfs(&self) -> bool {
        self.parent == Path::new(SCRATCH_PARENT)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn www(&self) -> PathBuf {
        self.path("www")
    }

    /// An empty directory for one run's downloads.
    pub fn downloads(&self, tool: usize) -> Result<PathBuf> {
        let dir = self.path("downloads").join(tool.to_string());
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot empty {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(error) = fs::remove_dir_all(&self.root) {
            eprintln!("cannot remove {}: {error}", self.root.display());
        }
        // Only if no other run is using it.
        let _ = fs::remove_dir(&self.parent);
    }
}

/// Incompressible bytes from a xorshift generator, different for each seed, readable by all.
pub fn write_pseudo_random(path: &Path, size: u64, seed: u64) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.set_permissions(fs::Permissions::from_mode(0o644))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut chunk = vec![0_u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        let take = usize::try_from(left.min(chunk.len() as u64))?;
        for word in chunk[..take].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        out.write_all(&chunk[..take])?;
        left -= take as u64;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The first three fields of /proc/loadavg.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// The downloaded file has the source's size and, if `content`, its bytes.
pub fn check_file(source: &Path, downloaded: &Path, content: bool) -> Result<()> {
    let expected = fs::metadata(source)?.len();
    let got = fs::metadata(downloaded)
        .with_context(|| format!("{} is missing", downloaded.display()))?
        .len();
    ensure!(
        got == expected,
        "{} has {got} bytes, not {expected}",
        downloaded.display()
    );
    if content && !same_bytes(source, downloaded)? {
        bail!("{} differs from {}", downloaded.display(), source.display());
    }
    Ok(())
}

fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let open =
        |path: &Path| File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let (mut a, mut b) = (open(a)?, open(b)?);
    let (mut left, mut right) = (vec![0; 1 << 20], vec![0; 1 << 20]);
    loop {
        let n = read_full(&mut a, &mut left)?;
        let m = read_full(&mut b, &mut right)?;
        if n != m || left[..n] != right[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buffer` unless the file ends first; the number of bytes read.
fn read_full(file: &mut File, buffer: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The last lines of a tool's error output, for a failure message.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
