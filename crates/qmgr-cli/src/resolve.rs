//! Naming jobs: a GUID, a unique prefix of one, or a unique display name, in that order.

use std::fmt::Write as _;

use qmgr_core::Guid;
use qmgr_core::service::QueueServiceExt;
use qmgr_ipc::Client;

use crate::failure::{Exit, Failure};

/// What a name refers to among the jobs a user can see.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolution {
    Found(Guid),
    /// Several jobs answer to the name: their GUIDs and display names.
    Ambiguous(Vec<(Guid, String)>),
    NotFound,
}

/// Resolves `name` among `jobs` (GUID and display name of each). A complete GUID is taken
/// as it is, whether or not it is among `jobs` (the service then says whether it exists).
pub fn resolve(name: &str, jobs: &[(Guid, String)]) -> Resolution {
    if let Ok(id) = name.parse::<Guid>() {
        return Resolution::Found(id);
    }
    if let Some(prefix) = guid_prefix(name) {
        let matching: Vec<&(Guid, String)> = jobs
            .iter()
            .filter(|(id, _)| id.to_plain_string().starts_with(&prefix))
            .collect();
        if !matching.is_empty() {
            return decide(matching);
        }
    }
    decide(
        jobs.iter()
            .filter(|(_, job_name)| job_name == name)
            .collect(),
    )
}

fn decide(matching: Vec<&(Guid, String)>) -> Resolution {
    match matching.as_slice() {
        [] => Resolution::NotFound,
        [(id, _)] => Resolution::Found(*id),
        _ => Resolution::Ambiguous(matching.into_iter().cloned().collect()),
    }
}

/// The name as the start of a GUID's plain text form (lower case, no braces), if it can be.
fn guid_prefix(name: &str) -> Option<String> {
    let bare = name.strip_prefix('{').unwrap_or(name).to_ascii_lowercase();
    let plausible = !bare.is_empty()
        && bare.len() <= 36
        && bare.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    plausible.then_some(bare)
}

/// Resolves `name` with the jobs the service lists for this user (every user's, for root).
pub fn resolve_job(client: &Client, name: &str) -> Result<Guid, Failure> {
    if let Ok(id) = name.parse::<Guid>() {
        return Ok(id);
    }
    let all_users = rustix::process::getuid().is_root();
    let jobs: Vec<(Guid, String)> = client
        .job_summaries(all_users)?
        .into_iter()
        .map(|summary| (summary.job.id, summary.job.display_name))
        .collect();
    match resolve(name, &jobs) {
        Resolution::Found(id) => Ok(id),
        Resolution::NotFound => Err(Failure::new(
            Exit::NotFound,
            format!(
                "no job is named {name:?} (by GUID, GUID prefix or display name); `qmgr list` \
                 shows your jobs"
            ),
        )),
        Resolution::Ambiguous(candidates) => {
            let mut message = format!(
                "{name:?} names {} jobs; use a longer GUID prefix or the whole GUID:",
                candidates.len()
            );
            for (id, display_name) in candidates {
                let _ = write!(message, "\n  {id}  {}", crate::human::clean(&display_name));
            }
            Err(Failure::usage(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guid(text: &str) -> Guid {
        text.parse().unwrap()
    }

    fn jobs() -> Vec<(Guid, String)> {
        vec![
            (
                guid("{AB120000-0000-4000-8000-000000000001}"),
                "nightly".into(),
            ),
            (
                guid("{AB340000-0000-4000-8000-000000000002}"),
                "backup".into(),
            ),
            (
                guid("{CD560000-0000-4000-8000-000000000003}"),
                "backup".into(),
            ),
            (
                guid("{EF780000-0000-4000-8000-000000000004}"),
                "deadbeef".into(),
            ),
        ]
    }

    #[test]
    fn a_complete_guid_is_taken_as_it_is() {
        let unknown = "{00000000-0000-4000-8000-00000000000F}";
        assert_eq!(resolve(unknown, &jobs()), Resolution::Found(guid(unknown)));
        assert_eq!(
            resolve("ab120000-0000-4000-8000-000000000001", &jobs()),
            Resolution::Found(jobs()[0].0)
        );
    }

    #[test]
    fn a_unique_prefix_names_its_job_in_any_case_and_with_a_brace() {
        assert_eq!(resolve("ab12", &jobs()), Resolution::Found(jobs()[0].0));
        assert_eq!(resolve("{AB34", &jobs()), Resolution::Found(jobs()[1].0));
        assert_eq!(
            resolve("ef780000-00", &jobs()),
            Resolution::Found(jobs()[3].0)
        );
    }

    #[test]
    fn a_shared_prefix_is_ambiguous() {
        let Resolution::Ambiguous(candidates) = resolve("ab", &jobs()) else {
            panic!("\"ab\" should be ambiguous")
        };
        assert_eq!(candidates.len(), 2);
    }

    #[test]
    fn display_names_come_after_prefixes() {
        assert_eq!(resolve("nightly", &jobs()), Resolution::Found(jobs()[0].0));
        // "deadbeef" looks like a prefix but matches no GUID, so it is a display name.
        assert_eq!(resolve("deadbeef", &jobs()), Resolution::Found(jobs()[3].0));
        let Resolution::Ambiguous(candidates) = resolve("backup", &jobs()) else {
            panic!("\"backup\" should be ambiguous")
        };
        assert_eq!(candidates.len(), 2);
        assert_eq!(resolve("nothing", &jobs()), Resolution::NotFound);
        assert_eq!(resolve("", &jobs()), Resolution::NotFound);
    }
}
