//! One module per command family; [`run`] dispatches a parsed command line.

mod daemon;
mod groups;
mod info;
mod jobs;
mod list;
mod monitor;
mod policy;
mod transfer;

use clap::CommandFactory;
use qmgr_core::service::JobChange;

use crate::cli::{Cli, Command, DaemonCommand};
use crate::failure::Failure;
use crate::human;
use crate::session::Session;
use jobs::StateAction;

pub fn run(command: Command) -> Result<(), Failure> {
    if let Command::Completions { shell } = command {
        clap_complete::generate(shell, &mut Cli::command(), "qmgr", &mut std::io::stdout());
        return Ok(());
    }
    if let Command::Manpages { dir } = &command {
        return match crate::manual::write_pages(dir) {
            Ok(_) => Ok(()),
            Err(error) => Err(Failure::new(
                crate::failure::Exit::Failed,
                error.to_string(),
            )),
        };
    }
    let session = Session::locate()?;
    match command {
        Command::Daemon(DaemonCommand::Status { output }) => {
            return daemon::status(&session, output.json);
        }
        Command::Daemon(DaemonCommand::Stop) => return daemon::stop(&session),
        Command::Transfer(args) => return transfer::run(&session, &args),
        Command::Upload(args) => return transfer::run(&session, &args.into_transfer()),
        _ => {}
    }
    let client = session.connect()?;
    match command {
        Command::Create { name, output } => jobs::create(&client, &name, output.json),
        Command::Addfile { job, url, path } => jobs::add_file(&client, &job, &url, &path),
        Command::Addfileset { job, file } => jobs::add_file_set(&client, &job, &file),
        Command::Resume(args) => jobs::change_state(&client, &args.jobs, StateAction::Resume),
        Command::Suspend(args) => jobs::change_state(&client, &args.jobs, StateAction::Suspend),
        Command::Cancel(args) => jobs::change_state(&client, &args.jobs, StateAction::Cancel),
        Command::Complete(args) => jobs::change_state(&client, &args.jobs, StateAction::Complete),
        Command::List(args) => list::run(&client, &args),
        Command::Info { job, output } => info::run(&client, &job, output.json),
        Command::Setcostflags { job, flags } => jobs::set(
            &client,
            &job,
            JobChange::CostFlags(flags.0),
            &flags.0.map_or_else(
                || "cost flags: the priority's default".to_owned(),
                |mask| format!("cost flags {mask:#010x}"),
            ),
        ),
        Command::Setidle { job, mode } => {
            let on = mode == crate::cli::OnOffArg::On;
            jobs::set(
                &client,
                &job,
                JobChange::IdleMode(on),
                if on { "idle mode on" } else { "idle mode off" },
            )
        }
        Command::Policy { output } => policy::run(&client, output.json),
        Command::Setpriority { job, priority } => {
            let priority = qmgr_core::JobPriority::from(priority);
            jobs::set(
                &client,
                &job,
                JobChange::Priority(priority),
                &format!("priority {}", priority.name()),
            )
        }
        Command::Setretrydelay { job, delay } => jobs::set(
            &client,
            &job,
            JobChange::MinimumRetryDelay(delay),
            &format!("retry delay {}", human::duration(delay)),
        ),
        Command::Setnoprogresstimeout { job, timeout } => jobs::set(
            &client,
            &job,
            JobChange::NoProgressTimeout(timeout),
            &format!("no-progress timeout {}", human::duration(timeout)),
        ),
        Command::Setnotifycmdline {
            job,
            program,
            parameters,
            clear: _,
        } => {
            let what = match &program {
                Some(program) => format!("notification command {}", human::clean(program)),
                None => "no notification command".to_owned(),
            };
            jobs::set(
                &client,
                &job,
                jobs::notify_command(program, parameters),
                &what,
            )
        }
        Command::Setheaders {
            job,
            headers,
            clear: _,
        } => {
            let what = if headers.is_empty() {
                "no extra headers".to_owned()
            } else {
                human::plural(
                    u64::try_from(headers.len()).unwrap_or(u64::MAX),
                    "extra header",
                    "extra headers",
                )
            };
            let text = (!headers.is_empty()).then(|| headers.join("\r\n"));
            jobs::set(&client, &job, JobChange::CustomHeaders(text), &what)
        }
        Command::Setproxy {
            job,
            usage,
            list,
            bypass,
        } => {
            let change = jobs::proxy(usage, list, bypass)?;
            jobs::set(&client, &job, change, "proxy settings changed")
        }
        Command::Setcredentials {
            job,
            target,
            scheme,
            user,
        } => jobs::set_credentials(&client, &job, target.into(), scheme.into(), user),
        Command::Removecredentials {
            job,
            target,
            scheme,
        } => jobs::remove_credentials(&client, &job, target.into(), scheme.into()),
        Command::TakeOwnership { job } => jobs::take_ownership(&client, &job),
        Command::Groups { output } => groups::run(&client, output.json),
        Command::Monitor { interval, count } => monitor::run(&client, interval, count),
        Command::Transfer(_)
        | Command::Upload(_)
        | Command::Daemon(_)
        | Command::Completions { .. }
        | Command::Manpages { .. } => {
            unreachable!("handled before connecting")
        }
    }
}
