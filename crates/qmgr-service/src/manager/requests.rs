//! Dispatch of a client's [`Request`] to the operation that carries it out, and the
//! lookups every request makes (a job or group of the caller's).

use qmgr_core::error::{QmgrError, Result};
use qmgr_core::group::Group;
use qmgr_core::hresult;
use qmgr_core::service::{Request, Response};
use qmgr_core::{Guid, Job, JobState, Timestamp};
use qmgr_transfer::{Engine, Overwrite};

use super::view::{ViewContext, files_page};
use super::{Entry, ROOT, State, not_found};

impl State {
    pub(super) fn handle(
        &mut self,
        engine: &Engine,
        uid: u32,
        request: Request,
        now: Timestamp,
    ) -> Result<Response> {
        // Only a view of a job waiting in line shows its place in it.
        let shows_the_line = match &request {
            Request::GetJob { job } | Request::GetJobSummary { job } => self
                .jobs
                .get(job)
                .is_some_and(|e| e.job.state == JobState::Queued),
            Request::ListJobs { .. }
            | Request::ListJobSummaries { .. }
            | Request::GetGroup { .. }
            | Request::ListGroups { .. } => true,
            _ => false,
        };
        if shows_the_line {
            self.number_the_line();
        }
        if let Some(id) = changed_job(&request) {
            self.entry(uid, id)?;
            self.refuse_if_completing(id)?;
        }
        match request {
            Request::Ping => Ok(Response::Pong {
                service_version: env!("CARGO_PKG_VERSION").to_owned(),
            }),
            Request::CreateJob {
                display_name,
                job_type,
                umask,
            } => self.create_job(uid, &display_name, job_type, None, umask, now),
            Request::GetJob { job } => {
                let entry = self.entry(uid, job)?;
                Ok(Response::Job(Box::new(entry.view(&self.view_context()))))
            }
            Request::ListJobs { all_users, after } => self.list_jobs(uid, all_users, after),
            Request::ListJobSummaries { all_users, after } => {
                self.list_job_summaries(uid, all_users, after)
            }
            Request::GetJobSummary { job } => {
                let entry = self.entry(uid, job)?;
                Ok(Response::JobSummary(Box::new(
                    self.summary(entry, &self.view_context()),
                )))
            }
            Request::GetJobFiles { job, start, max } => {
                Ok(files_page(&self.entry(uid, job)?.job, start, max))
            }
            Request::AddFiles { job, files } => self.add_files(uid, job, &files, now),
            Request::Resume { job } => {
                let response = self.change(engine, uid, job, now, Job::resume)?;
                self.restart_download_clock(job, now);
                Ok(response)
            }
            Request::Suspend { job } => self.change(engine, uid, job, now, Job::suspend),
            Request::Cancel { job } => self.cancel(engine, uid, job, now),
            Request::Complete { job } => self.complete(engine, uid, job, Overwrite::Replace, now),
            Request::CompleteWithoutReplacing { job } => {
                self.complete(engine, uid, job, Overwrite::NoClobber, now)
            }
            Request::TakeOwnership { job } => {
                let owner = self.entry(uid, job)?.job.owner_uid;
                if owner != uid {
                    return Err(QmgrError::from_code(hresult::E_NOTIMPL)
                        .context("taking over another user's job is not supported yet"));
                }
                self.change(engine, uid, job, now, |job, now| job.change_owner(uid, now))
            }
            Request::SetJob { job, change } => self.set_job(engine, uid, job, change, now),
            Request::CreateGroup { group } => self.create_group(uid, group, now),
            Request::GetGroup { group } => Ok(Response::Group(Box::new(
                self.group_view(self.group(uid, group)?, &self.view_context()),
            ))),
            Request::ListGroups { after } => Ok(self.list_groups(uid, after)),
            Request::CreateGroupJob { group, job, umask } => {
                self.create_group_job(uid, group, job, umask, now)
            }
            Request::SetGroup { group, change } => self.set_group(uid, group, change),
            Request::ResumeGroup { group } => match self.group(uid, group)?.job {
                Some(job) => {
                    let response = self.change(engine, uid, job, now, Job::resume)?;
                    self.restart_download_clock(job, now);
                    Ok(response)
                }
                None => Ok(Response::Done(hresult::S_OK)),
            },
            Request::SuspendGroup { group } => match self.group(uid, group)?.job {
                Some(job) => self.change(engine, uid, job, now, Job::suspend),
                None => Ok(Response::Done(hresult::S_OK)),
            },
            Request::CancelGroup { group } => self.cancel_group(engine, uid, group, now),
            Request::SwitchGroupToForeground { group } => {
                self.switch_group_to_foreground(engine, uid, group, now)
            }
            Request::GetFileResponseHeaders { job, file } => {
                let entry = self.entry(uid, job)?;
                let index = file as usize;
                if index >= entry.job.files.len() {
                    return Err(QmgrError::invalid_arg(format!(
                        "job {job} has no file {file}"
                    )));
                }
                match entry.job.pending_response_headers(index) {
                    Some(headers) => Ok(Response::Text(Some(headers.to_owned()))),
                    None => Ok(Response::Text(self.store.response_headers(job, index)?)),
                }
            }
            Request::GetReplyData { job } => Ok(Response::ReplyData(self.reply_data(uid, job)?)),
            Request::SetCertificateValidator { job, client } => {
                self.set_certificate_validator(uid, job, client)
            }
            Request::GetCertificateCheck { job, check } => self.certificate_check(uid, job, check),
            Request::CertificateVerdict {
                job,
                check,
                verdict,
            } => self.certificate_verdict(engine, uid, job, check, verdict, now),
            Request::RequestFileRanges { job, file, ranges } => {
                self.request_file_ranges(engine, uid, job, file, &ranges, now)
            }
            Request::UpdateDownloadPosition { job, file, offset } => {
                self.update_download_position(engine, uid, job, file, offset, now)
            }
            Request::GetPolicy => Ok(Response::Policy(Box::new(self.policy_view(now)))),
        }
    }

    pub(super) fn view_context(&self) -> ViewContext {
        ViewContext {
            global_cap: self.config.bandwidth_limit,
            schedule_caps: self.schedule_caps(),
            cost_state: self.cost_state().0,
            background_cost_flags: self.config.job_defaults.cost_flags,
            network_up: std::cell::OnceCell::new(),
            idle: self.idle.clone(),
        }
    }

    pub(super) fn entry(&self, uid: u32, id: Guid) -> Result<&Entry> {
        let entry = self.jobs.get(&id).ok_or_else(|| not_found("job", id))?;
        if entry.job.owner_uid != uid && uid != ROOT {
            return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                .context(format_args!("job {id} belongs to another user")));
        }
        Ok(entry)
    }

    pub(super) fn group(&self, uid: u32, id: Guid) -> Result<&Group> {
        let group = self.groups.get(&id).ok_or_else(|| {
            QmgrError::from_code(hresult::QM_E_ITEM_NOT_FOUND).context(format_args!("group {id}"))
        })?;
        if group.owner_uid != uid && uid != ROOT {
            return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                .context(format_args!("group {id} belongs to another user")));
        }
        Ok(group)
    }
}

/// The job a request changes, if it changes one (reads are answered for a job being
/// completed; changes are refused, see `completion.rs`).
fn changed_job(request: &Request) -> Option<Guid> {
    match request {
        Request::AddFiles { job, .. }
        | Request::Resume { job }
        | Request::Suspend { job }
        | Request::Cancel { job }
        | Request::Complete { job }
        | Request::CompleteWithoutReplacing { job }
        | Request::TakeOwnership { job }
        | Request::SetJob { job, .. }
        | Request::SetCertificateValidator { job, .. }
        | Request::CertificateVerdict { job, .. }
        | Request::RequestFileRanges { job, .. }
        | Request::UpdateDownloadPosition { job, .. } => Some(*job),
        _ => None,
    }
}
