//! Lists the user's jobs, as `qmgr list` does, through the user's qmgrd (started if it is
//! not running).
//!
//! ```sh
//! cargo run -p qmgr-client --example list
//! ```

use qmgr_client::Manager;

fn main() -> Result<(), qmgr_client::Error> {
    let manager = Manager::connect()?;
    let jobs = manager.jobs()?;
    for job in &jobs {
        println!(
            "{} {:<15} {:<10} {}  {}",
            job.id,
            job.state.to_string(),
            job.priority.name(),
            job.progress,
            job.display_name.escape_debug()
        );
        if let Some(error) = &job.error {
            println!("    {error}");
        }
    }
    println!("{} jobs", jobs.len());
    Ok(())
}
