//! The legacy group API (qmgr.h): a group holds one job; its calls are the job's calls
//! and its own properties.

use qmgr_core::error::{QmgrError, Result};
use qmgr_core::group::Group;
use qmgr_core::hresult;
use qmgr_core::job::{JobPriority, MAX_DESCRIPTION_CHARS, MAX_DISPLAY_NAME_CHARS, check_length};
use qmgr_core::service::{GroupChange, GroupView, JobChange, ListCursor, Response};
use qmgr_core::{Guid, JobType, Timestamp};
use qmgr_ipc::frame::encoded_len;
use qmgr_transfer::Engine;

use super::view::ViewContext;
use super::view::page;
use super::{ROOT, State};

impl State {
    pub(super) fn group_view(&self, group: &Group, context: &ViewContext) -> GroupView {
        let job = group
            .job
            .and_then(|id| self.jobs.get(&id))
            .map(|e| e.view(context));
        GroupView {
            group: group.clone(),
            job,
        }
    }

    pub(super) fn create_group(
        &mut self,
        uid: u32,
        group: Guid,
        now: Timestamp,
    ) -> Result<Response> {
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

    pub(super) fn list_groups(&self, uid: u32, after: Option<ListCursor>) -> Response {
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
        Response::GroupPage { groups, next }
    }

    pub(super) fn create_group_job(
        &mut self,
        uid: u32,
        group: Guid,
        job: Guid,
        umask: Option<u32>,
        now: Timestamp,
    ) -> Result<Response> {
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
            if let Err(again) = self.store.delete_job(job, &[]) {
                tracing::error!(job = %job, "{}", again.description);
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

    pub(super) fn set_group(
        &mut self,
        uid: u32,
        group: Guid,
        change: GroupChange,
    ) -> Result<Response> {
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

    pub(super) fn cancel_group(
        &mut self,
        engine: &Engine,
        uid: u32,
        group: Guid,
        now: Timestamp,
    ) -> Result<Response> {
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

    pub(super) fn switch_group_to_foreground(
        &mut self,
        engine: &Engine,
        uid: u32,
        group: Guid,
        now: Timestamp,
    ) -> Result<Response> {
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
