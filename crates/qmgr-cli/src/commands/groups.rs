//! `qmgr groups`: the legacy (BITS 1.x, qmgr.h) groups and their status bits.

use qmgr_core::service::QueueServiceExt;
use qmgr_ipc::Client;

use crate::failure::Failure;
use crate::human;
use crate::json::{self, GroupJson, GroupList};

pub fn run(client: &Client, as_json: bool) -> Result<(), Failure> {
    let groups = client.groups()?;
    if as_json {
        json::print(&GroupList {
            groups: groups.iter().map(GroupJson::from).collect(),
        });
        return Ok(());
    }
    if groups.is_empty() {
        println!("No legacy groups.");
        return Ok(());
    }
    for view in &groups {
        let group = GroupJson::from(view);
        let job_state = view
            .job
            .as_ref()
            .map_or("no job", |job| job.job.state.name());
        println!(
            "{}  {}  status 0x{:03X} {}  job: {job_state}",
            group.id,
            human::fit_pad(&human::clean(&group.name), 24),
            group.status,
            group.status_flags.join("|"),
        );
    }
    Ok(())
}
