//! The example of README.md's "Use it from Rust" section: the code below this comment is
//! the README's, character for character (tests/examples.rs checks, and runs it).

use qmgr_client::{JobState, Manager};

fn main() -> Result<(), qmgr_client::Error> {
    let manager = Manager::connect()?; // the user's qmgrd, started if it is not running
    let job = manager
        .new_job("os-release copy")
        .file("file:///etc/os-release", "os-release.txt")
        .create()?;
    job.resume()?;
    let last = job.wait(|status| eprintln!("{status}"))?;
    if last.state == JobState::Transferred {
        job.complete()?; // os-release.txt appears only now
    }
    Ok(())
}
