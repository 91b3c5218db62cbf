//! The bitsadmin-like job commands: create, add files, move through states, change settings.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;

use qmgr_core::credentials::{AuthScheme, AuthTarget, Credential, Secret};
use qmgr_core::hresult;
use qmgr_core::job::{NotifyCommand, ProxySettings};
use qmgr_core::service::{JobChange, NewFile, QueueServiceExt};
use qmgr_core::{Guid, HResult, JobType};
use qmgr_ipc::Client;

use crate::cli::ProxyArg;
use crate::destinations;
use crate::failure::{Exit, Failure};
use crate::human;
use crate::json::{self, CreatedJson};
use crate::password::read_password;
use crate::resolve::resolve_job;

pub fn create(client: &Client, name: &str, as_json: bool) -> Result<(), Failure> {
    let id = client.create_job(name, JobType::Download)?;
    if as_json {
        json::print(&CreatedJson { id: id.to_string() });
    } else {
        println!("{id}");
    }
    Ok(())
}

pub fn add_file(client: &Client, job: &str, url: &str, path: &Path) -> Result<(), Failure> {
    let file = new_file(url, path)?;
    let id = resolve_job(client, job)?;
    client.add_files(id, vec![file])?;
    println!("Added 1 file to job {id}.");
    Ok(())
}

/// `addfileset`: every line `URL PATH` (PATH may contain spaces); all or nothing.
pub fn add_file_set(client: &Client, job: &str, list: &Path) -> Result<(), Failure> {
    let text = if list == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|error| Failure::usage(format!("cannot read standard input: {error}")))?;
        text
    } else {
        std::fs::read_to_string(list)
            .map_err(|error| Failure::usage(format!("cannot read {}: {error}", list.display())))?
    };
    let files = parse_file_set(&text).map_err(|failure| failure.context(list.display()))?;
    if files.is_empty() {
        return Err(Failure::usage(format!(
            "{} lists no files (lines of `URL PATH`)",
            list.display()
        )));
    }
    let id = resolve_job(client, job)?;
    let count = files.len();
    client.add_files(id, files)?;
    println!(
        "Added {} to job {id}.",
        human::plural(u64::try_from(count).unwrap_or(u64::MAX), "file", "files")
    );
    Ok(())
}

fn parse_file_set(text: &str) -> Result<Vec<NewFile>, Failure> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(index, line)| {
            let line_number = index + 1;
            let (url, path) = line.trim().split_once(char::is_whitespace).ok_or_else(|| {
                Failure::usage(format!(
                    "line {line_number}: expected `URL PATH`, found {line:?}"
                ))
            })?;
            new_file(url, Path::new(path.trim()))
                .map_err(|failure| failure.context(format!("line {line_number}")))
        })
        .collect()
}

/// A file to add, checked here for a clearer message than the service's.
fn new_file(url: &str, path: &Path) -> Result<NewFile, Failure> {
    destinations::check_remote(url)?;
    let cwd = std::env::current_dir()
        .map_err(|error| Failure::usage(format!("cannot read the current directory: {error}")))?;
    let local = destinations::absolute(path, &cwd);
    destinations::check_directory(&local)?;
    Ok(NewFile {
        remote_name: url.to_owned(),
        local_name: local.display().to_string(),
        ranges: None,
    })
}

/// A state change (resume, suspend, cancel, complete) on each named job. Every job is
/// tried; each one done is reported on stdout, each one not done on stderr, and with
/// several jobs a last line counts them and names those not found. The worst failure
/// decides the exit code (4 when any job was not found).
pub fn change_state(client: &Client, names: &[String], action: StateAction) -> Result<(), Failure> {
    let mut failures: Vec<Failure> = Vec::new();
    let mut not_found: Vec<&str> = Vec::new();
    for name in names {
        let result = resolve_job(client, name).and_then(|id| {
            let code = action
                .call(client, id)
                .map_err(|error| Failure::from(error).context(format!("job {id}")))?;
            println!("{}", action.report(id, code));
            Ok(())
        });
        if let Err(failure) = result {
            if failure.exit == Exit::NotFound {
                not_found.push(name);
            }
            failures.push(failure);
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    let exit = failures
        .iter()
        .map(|failure| failure.exit)
        .max_by_key(|exit| exit.code())
        .unwrap_or(Exit::Failed);
    let mut message = failures
        .iter()
        .map(|failure| failure.message.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if names.len() > 1 {
        message.push_str(&summary(action, names.len(), failures.len(), &not_found));
    }
    Err(Failure::new(exit, message))
}

/// `\nqmgr: cancelled 2 of 3 jobs; not found: "nosuch"`.
fn summary(action: StateAction, named: usize, failed: usize, not_found: &[&str]) -> String {
    let mut text = format!(
        "\nqmgr: {} {} of {}",
        action.past(),
        named - failed,
        human::plural(u64::try_from(named).unwrap_or(u64::MAX), "job", "jobs")
    );
    if !not_found.is_empty() {
        let names: Vec<String> = not_found.iter().map(|name| format!("{name:?}")).collect();
        let _ = write!(text, "; not found: {}", names.join(", "));
    }
    let others = failed - not_found.len();
    if others > 0 {
        let _ = write!(
            text,
            "; {} refused",
            human::plural(u64::try_from(others).unwrap_or(u64::MAX), "other", "others")
        );
    }
    text
}

#[derive(Clone, Copy, Debug)]
pub enum StateAction {
    Resume,
    Suspend,
    Cancel,
    Complete,
}

impl StateAction {
    fn call(self, client: &Client, id: Guid) -> qmgr_core::Result<HResult> {
        match self {
            Self::Resume => client.resume(id),
            Self::Suspend => client.suspend(id),
            Self::Cancel => client.cancel(id),
            Self::Complete => client.complete(id),
        }
    }

    fn report(self, id: Guid, code: HResult) -> String {
        match (self, code) {
            (Self::Complete, hresult::BG_S_PARTIAL_COMPLETE) => {
                format!("Job {id} completed; files that were not transferred were discarded.")
            }
            (_, hresult::BG_S_UNABLE_TO_DELETE_FILES) => format!(
                "Job {id} {}; some temporary files could not be deleted.",
                self.past()
            ),
            _ => format!("Job {id} {}.", self.past()),
        }
    }

    fn past(self) -> &'static str {
        match self {
            Self::Resume => "resumed",
            Self::Suspend => "suspended",
            Self::Cancel => "cancelled",
            Self::Complete => "completed",
        }
    }
}

/// One `set…` command: resolves the job, applies the change, says what it did.
pub fn set(client: &Client, job: &str, change: JobChange, what: &str) -> Result<(), Failure> {
    let id = resolve_job(client, job)?;
    client.set_job(id, change)?;
    println!("Job {id}: {what}.");
    Ok(())
}

/// `setcredentials`: the password is read here, after the job was found, so a typo in the
/// job's name costs no typing.
pub fn set_credentials(
    client: &Client,
    job: &str,
    target: AuthTarget,
    scheme: AuthScheme,
    user_name: String,
) -> Result<(), Failure> {
    let id = resolve_job(client, job)?;
    let shown_user = human::clean(&user_name).into_owned();
    let password = read_password(&format!(
        "Password for {shown_user} ({} {} authentication): ",
        target.name(),
        scheme.name()
    ))?;
    client.set_job(
        id,
        JobChange::Credentials(Credential {
            target,
            scheme,
            user_name,
            password: Secret::new(password),
        }),
    )?;
    println!(
        "Job {id}: {} credentials for {} ({}) set.",
        scheme.name(),
        target.name(),
        shown_user
    );
    Ok(())
}

/// `removecredentials`: says so when there were none.
pub fn remove_credentials(
    client: &Client,
    job: &str,
    target: AuthTarget,
    scheme: AuthScheme,
) -> Result<(), Failure> {
    let id = resolve_job(client, job)?;
    let code = client.set_job(id, JobChange::RemoveCredentials { target, scheme })?;
    if code == hresult::S_FALSE {
        println!(
            "Job {id} had no {} credentials for the {}; nothing removed.",
            scheme.name(),
            target.name()
        );
    } else {
        println!(
            "Job {id}: {} credentials for the {} removed.",
            scheme.name(),
            target.name()
        );
    }
    Ok(())
}

pub fn notify_command(program: Option<String>, parameters: Option<String>) -> JobChange {
    JobChange::NotifyCommand(program.map(|program| NotifyCommand {
        program,
        parameters,
    }))
}

pub fn proxy(
    usage: ProxyArg,
    list: Option<String>,
    bypass: Option<String>,
) -> Result<JobChange, Failure> {
    match usage {
        ProxyArg::Override if list.as_deref().is_none_or(str::is_empty) => Err(Failure::usage(
            "setproxy override needs a proxy LIST, such as http://proxy.example:3128",
        )),
        ProxyArg::Override => Ok(JobChange::Proxy(ProxySettings {
            usage: usage.into(),
            proxy_list: list,
            bypass_list: bypass,
        })),
        _ if list.is_some() || bypass.is_some() => Err(Failure::usage(
            "proxy and bypass lists go only with `override`",
        )),
        _ => Ok(JobChange::Proxy(ProxySettings {
            usage: usage.into(),
            proxy_list: None,
            bypass_list: None,
        })),
    }
}

pub fn take_ownership(client: &Client, job: &str) -> Result<(), Failure> {
    let id = resolve_job(client, job)?;
    client.take_ownership(id)?;
    println!("Job {id} is yours.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sets_skip_comments_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a file");
        let text = format!(
            "# downloads\n\nhttp://h/a {}\n   \nfile:///etc/hostname {}/b\n",
            target.display(),
            dir.path().display()
        );
        let files = parse_file_set(&text).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].local_name, target.display().to_string());
        assert_eq!(files[1].remote_name, "file:///etc/hostname");

        let error = parse_file_set("http://h/a /tmp/a\nnot-a-pair\n").unwrap_err();
        assert!(error.message.starts_with("line 2:"), "{error}");
        let error = parse_file_set("\nbad://h/a /tmp/a\n").unwrap_err();
        assert!(error.message.starts_with("line 2:"), "{error}");
        assert_eq!(error.exit, Exit::Usage);
    }

    #[test]
    fn several_jobs_end_with_a_count_and_the_names_not_found() {
        assert_eq!(
            summary(StateAction::Cancel, 3, 1, &["nosuch"]),
            "\nqmgr: cancelled 2 of 3 jobs; not found: \"nosuch\""
        );
        assert_eq!(
            summary(StateAction::Resume, 2, 2, &["a"]),
            "\nqmgr: resumed 0 of 2 jobs; not found: \"a\"; 1 other refused"
        );
    }

    #[test]
    fn proxy_lists_go_with_override_only() {
        assert!(proxy(ProxyArg::Override, None, None).is_err());
        assert!(proxy(ProxyArg::NoProxy, Some("http://p:1".into()), None).is_err());
        let JobChange::Proxy(settings) = proxy(
            ProxyArg::Override,
            Some("http://p:1".into()),
            Some("<local>".into()),
        )
        .unwrap() else {
            panic!("not a proxy change")
        };
        assert_eq!(settings.proxy_list.as_deref(), Some("http://p:1"));
    }
}
