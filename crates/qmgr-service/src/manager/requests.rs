//! Dispatch of a client's [`Request`] to the operation that carries it out, and the
//! lookups every request makes (a job or group of the caller's).

use qmgr_core::error::{QmgrError, Result};
use qmgr_core::group::Group;
use qmgr_core::hresult;
use qmgr_core::job::{JobPriority, MAX_DESCRIPTION_CHARS, MAX_DISPLAY_NAME_CHARS, check_length};
use qmgr_core::service::{GroupChange, JobChange, LIST_PAGE_BYTES, ListCursor, Request, Response};
use qmgr_core::{Guid, Job, JobState, JobType, Timestamp};
use qmgr_ipc::frame::encoded_len;
use qmgr_transfer::{Engine, Overwrite};

use super::view::ViewContext;
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
            Request::GetJob { job } => self
                .jobs
                .get(job)
                .is_some_and(|e| e.job.state == JobState::Queued),
            Request::ListJobs { .. } | Request::GetGroup { .. } | Request::ListGroups { .. } => {
                true
            }
            _ => false,
        };
        if shows_the_line {
            self.number_the_line();
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
            Request::ListJobs { all_users, after } => {
                if all_users && uid != ROOT {
                    return Err(QmgrError::from_code(hresult::E_ACCESSDENIED)
                        .context("listing every user's jobs needs root"));
                }
                let cursor = |e: &Entry| ListCursor {
                    key: i64::try_from(e.seq).unwrap_or(i64::MAX),
                    id: e.job.id,
                };
                let mut entries: Vec<(ListCursor, &Entry)> = self
                    .jobs
                    .values()
                    .filter(|e| all_users || e.job.owner_uid == uid)
                    .map(|e| (cursor(e), e))
                    .filter(|(at, _)| after.is_none_or(|after| *at > after))
                    .collect();
                entries.sort_unstable_by_key(|(at, _)| *at);
                let context = self.view_context();
                let (jobs, next) = page(entries, |e| e.view(&context), encoded_len);
                Ok(Response::JobPage { jobs, next })
            }
            Request::AddFiles { job, files } => self.add_files(uid, job, &files, now),
            Request::Resume { job } => self.change(engine, uid, job, now, Job::resume),
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
            Request::CreateGroup { group } => {
                if self.groups.contains_key(&group) {
                    return Err(QmgrError::invalid_arg(format!(
                        "group {group} already exists"
                    )));
                }
                self.check_job_quota(uid)?;
                let new = Group::new(group, uid, now);
                self.store.save_group(&new)?;
                self.groups.insert(group, new);
                Ok(Response::Done(hresult::S_OK))
            }
            Request::GetGroup { group } => Ok(Response::Group(Box::new(
                self.group_view(self.group(uid, group)?, &self.view_context()),
            ))),
            Request::ListGroups { after } => {
                let mut groups: Vec<(ListCursor, &Group)> = self
                    .groups
                    .values()
                    .filter(|g| g.owner_uid == uid || uid == ROOT)
                    .map(|g| {
                        let at = ListCursor {
                            key: g.created.0,
                            id: g.id,
                        };
                        (at, g)
                    })
                    .filter(|(at, _)| after.is_none_or(|after| *at > after))
                    .collect();
                groups.sort_unstable_by_key(|(at, _)| *at);
                let context = self.view_context();
                let (groups, next) = page(groups, |g| self.group_view(g, &context), encoded_len);
                Ok(Response::GroupPage { groups, next })
            }
            Request::CreateGroupJob { group, job, umask } => {
                if self.group(uid, group)?.job.is_some() {
                    return Err(
                        QmgrError::from_code(hresult::E_NOTIMPL).context(format_args!(
                            "group {group} already has its job (a group holds one job)"
                        )),
                    );
                }
                if self.jobs.contains_key(&job) {
                    return Err(QmgrError::invalid_arg(format!(
                        "a job {job} already exists"
                    )));
                }
                self.create_job(uid, "", JobType::Download, Some((group, job)), umask, now)?;
                let mut updated = self.group(uid, group)?.clone();
                updated.job = Some(job);
                if let Err(error) = self.store.save_group(&updated) {
                    // The group does not get its job: the job goes again.
                    if let Err(again) = self.store.delete_job(job) {
                        eprintln!("qmgr: job {job}: {}", again.description);
                    }
                    if let Some(count) = self.owned.get_mut(&uid) {
                        *count = count.saturating_sub(1);
                    }
                    self.jobs.remove(&job);
                    return Err(error);
                }
                self.groups.insert(group, updated);
                Ok(Response::Done(hresult::S_OK))
            }
            Request::SetGroup { group, change } => {
                let mut updated = self.group(uid, group)?.clone();
                // The legacy API knows no BG_E_* codes: too long is E_INVALIDARG there.
                match change {
                    GroupChange::DisplayName(name) => {
                        check_length(
                            &name,
                            MAX_DISPLAY_NAME_CHARS,
                            "group display name",
                            hresult::E_INVALIDARG,
                        )?;
                        updated.display_name = name;
                    }
                    GroupChange::Description(text) => {
                        check_length(
                            &text,
                            MAX_DESCRIPTION_CHARS,
                            "group description",
                            hresult::E_INVALIDARG,
                        )?;
                        updated.description = text;
                    }
                    GroupChange::NotifyFlags(flags) => updated.notify_flags = flags,
                    GroupChange::NotifyClsid(clsid) => updated.notify_clsid = clsid,
                }
                self.store.save_group(&updated)?;
                self.groups.insert(group, updated);
                Ok(Response::Done(hresult::S_OK))
            }
            Request::ResumeGroup { group } => match self.group(uid, group)?.job {
                Some(job) => self.change(engine, uid, job, now, Job::resume),
                None => Ok(Response::Done(hresult::S_OK)),
            },
            Request::SuspendGroup { group } => match self.group(uid, group)?.job {
                Some(job) => self.change(engine, uid, job, now, Job::suspend),
                None => Ok(Response::Done(hresult::S_OK)),
            },
            Request::CancelGroup { group } => {
                if let Some(job) = self.group(uid, group)?.job {
                    // Files of a legacy group are finished one by one; only the rest goes.
                    if self.jobs.contains_key(&job) {
                        self.cancel(engine, uid, job, now)?;
                    }
                }
                self.store.delete_group(group)?;
                self.groups.remove(&group);
                Ok(Response::Done(hresult::S_OK))
            }
            Request::SwitchGroupToForeground { group } => {
                let mut updated = self.group(uid, group)?.clone();
                updated.foreground = true;
                self.store.save_group(&updated)?;
                self.groups.insert(group, updated.clone());
                match updated.job {
                    Some(job) => self.set_job(
                        engine,
                        uid,
                        job,
                        JobChange::Priority(JobPriority::Foreground),
                        now,
                    ),
                    None => Ok(Response::Done(hresult::S_OK)),
                }
            }
        }
    }

    pub(super) fn view_context(&self) -> ViewContext {
        ViewContext {
            global_cap: self.config.bandwidth_limit,
            network_up: std::cell::OnceCell::new(),
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

/// One page of a listing sorted by cursor: items while their encoded size stays within
/// [`LIST_PAGE_BYTES`] (at least one), and the cursor of the last one if more follow.
pub(super) fn page<T, V>(
    sorted: Vec<(ListCursor, T)>,
    view: impl Fn(T) -> V,
    encoded_len: impl Fn(&V) -> usize,
) -> (Vec<V>, Option<ListCursor>) {
    let total = sorted.len();
    let mut views = Vec::new();
    let mut bytes = 0usize;
    let mut last = None;
    for (at, item) in sorted {
        let item = view(item);
        bytes = bytes.saturating_add(encoded_len(&item));
        if !views.is_empty() && bytes > LIST_PAGE_BYTES {
            break;
        }
        views.push(item);
        last = Some(at);
    }
    let next = if views.len() < total { last } else { None };
    (views, next)
}
