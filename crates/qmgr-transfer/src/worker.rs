//! The engine thread's loop: apply commands, hand out bandwidth, let curl work, report
//! progress and endings, sleep until curl, a bucket or a command needs attention.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::os::unix::fs::FileExt;

use curl::easy::{Easy2, Handler};
use curl::multi::{Easy2Handle, Multi};
use qmgr_core::ranges;
use qmgr_core::{ErrorContext, hresult};

use crate::attempt::{Attempt, Verdict, judge, local_source_url};
use crate::engine::{Command, EngineConfig};
use crate::error::TransferError;
use crate::event::EngineEvent;
use crate::handle::{CAPPED_READS, FREE_READS, HandleDefaults, Target, build, set_read_size};
use crate::idle::{ConnectionPool, IdleRegulator, StatusBoard, transfer_socket};
use crate::lanes::{Lanes, Waiting};
use crate::outbox::Outbox;
use crate::priority_limit::PriorityLimits;
use crate::request::{CheckedRequest, TransferId};
use crate::response::{Expectation, Ranged};
use crate::sink::{Sink, SinkFailure, SinkSetup};
use crate::source::{parse_source, same_origin};
use crate::throttle::{TokenBucket, fair_share};
use crate::tls;

/// How long the engine sleeps when nothing needs it; a command wakes it at once.
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// The shortest sleep while waiting for a bandwidth bucket, so debt is not polled in a spin.
const MIN_THROTTLE_WAIT: Duration = Duration::from_millis(1);
/// How long to back off when curl cannot even wait, so a broken multi handle cannot spin.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Bytes a local copy moves per round of the engine loop, so one large local file neither
/// holds up the other transfers nor overshoots a bandwidth allowance by much.
const LOCAL_CHUNK: usize = 256 * 1024;

/// How a transfer's bytes arrive: through curl, or — for a local (`file`) source — read by
/// the engine itself from the descriptor it opened and checked. curl's file protocol
/// copies a whole file in one call and cannot pause, so it could neither be throttled nor
/// share the engine thread.
enum Handle {
    Curl(Easy2Handle<Sink>),
    Local(Box<Sink>),
}

impl Handle {
    fn sink(&self) -> &Sink {
        match self {
            Handle::Curl(handle) => handle.get_ref(),
            Handle::Local(sink) => sink,
        }
    }

    fn sink_mut(&mut self) -> &mut Sink {
        match self {
            Handle::Curl(handle) => handle.get_mut(),
            Handle::Local(sink) => sink,
        }
    }
}

/// One transfer in flight.
struct Transfer {
    handle: Handle,
    checked: Box<CheckedRequest>,
    own_limit: Option<TokenBucket>,
    reported_bytes: u64,
    reported_at: Instant,
    /// Already asked again from zero once because of an inconsistent answer.
    restarted_here: bool,
    hop: Hop,
}

impl Transfer {
    /// The attempt's handle, and what outlives the attempt.
    fn into_parts(self) -> (Handle, Rest) {
        let Transfer {
            handle,
            checked,
            own_limit,
            reported_bytes,
            restarted_here,
            hop,
            ..
        } = self;
        let rest = Rest {
            checked,
            own_limit,
            reported_bytes,
            restarted_here,
            hop,
        };
        (handle, rest)
    }
}

/// What a finished attempt hands on to the next one, or to its end.
struct Rest {
    checked: Box<CheckedRequest>,
    own_limit: Option<TokenBucket>,
    reported_bytes: u64,
    restarted_here: bool,
    hop: Hop,
}

/// Where a transfer's current request goes: the caller's URL, or the target of the last
/// redirect followed.
#[derive(Clone, Debug)]
struct Hop {
    url: String,
    redirects: u32,
}

/// HTTP statuses whose `Location` the engine follows, as curl would.
const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// The most finished transfers' easy handles kept for the next ones (more than the usual
/// number of transfers at once would only hold memory).
const SPARE_HANDLES: usize = 64;

pub(crate) struct Worker {
    multi: Multi,
    defaults: HandleDefaults,
    progress_interval: Duration,
    commands: Receiver<Command>,
    /// Set by a sender that woke this thread, cleared here before the commands are taken:
    /// while it is set, further senders need not wake it again.
    wake_pending: Arc<AtomicBool>,
    events: Outbox,
    transfers: foldhash::HashMap<TransferId, Transfer>,
    global_limit: Option<TokenBucket>,
    /// A bandwidth schedule's caps per background priority.
    priority_limits: PriorityLimits,
    /// Where local copies read into.
    copy_buffer: Vec<u8>,
    idle: IdleRegulator,
    /// Easy handles of finished transfers, reset and used again by the next ones: making
    /// and freeing one per file is a good part of what a burst of small files costs.
    /// Only handles that were never attached to `idle_pool` are kept.
    spare_handles: Vec<Easy2<Sink>>,
    /// Transfers handed over ahead of time, waiting for room in their lane.
    lanes: Lanes,
    /// The connections of idle transfers, made on first use. Declared last: it must
    /// outlive every easy handle attached to it.
    idle_pool: Option<ConnectionPool>,
}

impl Worker {
    pub fn new(
        multi: Multi,
        config: EngineConfig,
        commands: Receiver<Command>,
        wake_pending: Arc<AtomicBool>,
        events: Sender<EngineEvent>,
        idle_statuses: StatusBoard,
    ) -> Self {
        let now = Instant::now();
        let waker = multi.waker();
        let wake: crate::durable::Wake = Arc::new(move || {
            let _ = waker.wakeup();
        });
        Self {
            multi,
            defaults: HandleDefaults {
                user_agent: config.user_agent,
                connect_timeout: config.connect_timeout,
                stall_timeout: config.stall_timeout,
            },
            progress_interval: config.progress_interval,
            commands,
            wake_pending,
            events: Outbox::new(events, wake),
            transfers: foldhash::HashMap::default(),
            global_limit: config.global_limit.map(|rate| TokenBucket::new(rate, now)),
            priority_limits: PriorityLimits::default(),
            copy_buffer: vec![0; LOCAL_CHUNK],
            idle: IdleRegulator::new(config.idle_target, idle_statuses),
            spare_handles: Vec::new(),
            lanes: Lanes::default(),
            idle_pool: None,
        }
    }

    pub fn run(mut self) {
        loop {
            // Cleared before the commands are taken: a command sent after this wakes the
            // thread again. A swap (not a store), so the sender's command is seen.
            self.wake_pending.swap(false, Ordering::AcqRel);
            if !self.take_commands() {
                break;
            }
            self.start_waiting();
            self.grant_allowances(Instant::now());
            if let Err(error) = self.multi.perform() {
                self.fail_everything(&format!("curl's multi handle failed: {error}"));
            }
            self.copy_local_files();
            self.regulate_idle_transfers(Instant::now());
            self.charge_consumption();
            self.finish_done_transfers();
            // A lane's next transfer starts in this turn, as its last one ended in it.
            self.start_waiting();
            self.report_progress(Instant::now());
            self.events.deliver();
            let wait = self.next_wake(Instant::now());
            if let Err(error) = self.multi.poll(&mut [], wait) {
                self.fail_everything(&format!("waiting on curl's multi handle failed: {error}"));
                std::thread::sleep(ERROR_BACKOFF);
            }
        }
        self.stop_everything();
    }

    /// Applies queued commands; false when the engine must stop.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => return false,
                Ok(command) => self.apply(command),
                Err(TryRecvError::Empty) => return true,
            }
        }
    }

    fn apply(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Start(id, checked) => match checked.request.lane {
                Some(lane) => self.lanes.enqueue(
                    lane,
                    Waiting {
                        id,
                        checked,
                        held: false,
                        limit: None,
                    },
                ),
                None => self.start(id, checked),
            },
            Command::Pause(id) => self.hold(id, true),
            // The next allowance round unpauses it.
            Command::Resume(id) => self.hold(id, false),
            Command::Cancel(id) => {
                if let Some(transfer) = self.transfers.remove(&id) {
                    self.retire(id, transfer);
                    self.emit(EngineEvent::Cancelled { id });
                } else if self.lanes.remove(id).is_some() {
                    self.emit(EngineEvent::Cancelled { id });
                }
            }
            Command::SetLaneWidth(key, width) => self.lanes.set_width(key, width),
            Command::SetGlobalLimit(rate) => {
                self.global_limit = update_limit(self.global_limit.take(), rate, now);
            }
            Command::SetPriorityLimit(class, rate) => self.priority_limits.set(class, rate, now),
            Command::SetTransferLimit(id, rate) => {
                if let Some(transfer) = self.transfers.get_mut(&id) {
                    transfer.own_limit = update_limit(transfer.own_limit.take(), rate, now);
                } else if let Some(waiting) = self.lanes.get_mut(id) {
                    waiting.limit = rate;
                }
            }
            Command::Barrier(done) => {
                // Whatever happened before the barrier is reported before it is passed.
                self.events.deliver();
                let _ = done.send(());
            }
            Command::Shutdown => {}
        }
    }

    /// Pauses (or lets go of) a transfer, under way or waiting in its lane.
    fn hold(&mut self, id: TransferId, held: bool) {
        if let Some(transfer) = self.transfers.get_mut(&id) {
            transfer.handle.sink_mut().held = held;
        } else if let Some(waiting) = self.lanes.get_mut(id) {
            waiting.held = held;
        }
    }

    /// Starts the waiting transfers their lanes have room for. A start that failed at once
    /// left its room free: the next waiting transfer takes it in the same call.
    fn start_waiting(&mut self) {
        while !self.lanes.is_empty() {
            let mut running: HashMap<u64, usize> = HashMap::new();
            for transfer in self.transfers.values() {
                if let Some(lane) = transfer.checked.request.lane {
                    *running.entry(lane.key).or_default() += 1;
                }
            }
            let ready = self
                .lanes
                .ready(|key| running.get(&key).copied().unwrap_or(0));
            let mut all_under_way = true;
            if ready.is_empty() {
                return;
            }
            for Waiting {
                id,
                checked,
                held,
                limit,
            } in ready
            {
                self.start(id, checked);
                match self.transfers.get_mut(&id) {
                    Some(transfer) => {
                        transfer.handle.sink_mut().held = held;
                        transfer.own_limit = update_limit(None, limit, Instant::now());
                    }
                    None => all_under_way = false,
                }
            }
            if all_under_way {
                return;
            }
        }
    }

    /// Queues `event`; the loop hands the turn's events over at its end.
    fn emit(&self, event: EngineEvent) {
        self.events.push(event);
    }

    /// Prepares the first attempt and hands it to curl.
    fn start(&mut self, id: TransferId, checked: Box<CheckedRequest>) {
        match Attempt::first(&checked) {
            Ok(attempt) => {
                self.emit(EngineEvent::Started {
                    id,
                    temp_path: attempt.temp_path.clone(),
                });
                let hop = Hop {
                    url: checked.source.url.clone(),
                    redirects: 0,
                };
                self.add_attempt(id, checked, attempt, None, false, hop);
            }
            Err(error) => self.emit(EngineEvent::Failed { id, error }),
        }
    }

    /// Builds an easy handle for an attempt and adds it to the multi handle.
    fn add_attempt(
        &mut self,
        id: TransferId,
        checked: Box<CheckedRequest>,
        attempt: Attempt,
        own_limit: Option<TokenBucket>,
        restarted_here: bool,
        hop: Hop,
    ) {
        let mut attempt = attempt;
        if !checked.request.ranges.is_empty() {
            let ranges = &checked.request.ranges;
            let expectation = &mut attempt.expectation;
            let remote_total = expectation
                .total
                .and_then(|total| ranges::remote_total(ranges, total));
            let Some((span, _)) = ranges::next_span(ranges, remote_total, expectation.offset)
            else {
                // Every range is on disk already (a resumed file that was complete).
                self.events.push_once_durable(
                    attempt.file,
                    EngineEvent::Completed {
                        id,
                        temp_path: attempt.temp_path,
                        bytes: attempt.expectation.offset,
                        validator: attempt.expectation.validator,
                    },
                );
                return;
            };
            expectation.ranged = Some(Ranged {
                ranges: ranges.clone(),
                span,
                remote_total,
            });
        }
        let offset = attempt.expectation.offset;
        let span = attempt
            .expectation
            .ranged
            .as_ref()
            .map(|ranged| ranged.span);
        let if_range = attempt.expectation.validator.if_range().map(str::to_owned);
        let url = attempt
            .source_file
            .as_ref()
            .map_or_else(|| hop.url.clone(), local_source_url);
        let sink = Sink::new(SinkSetup {
            id,
            scheme: checked.source.scheme,
            url: checked.source.url.clone(),
            temp_path: attempt.temp_path,
            file: attempt.file,
            expectation: attempt.expectation,
            prior_restart: attempt.prior_restart,
            known_source: attempt.known_source,
            source_file: attempt.source_file,
            max_size: checked.request.max_size,
            events: self.events.clone(),
        });
        let added = if sink.source_file.is_some() {
            Ok(Handle::Local(Box::new(sink)))
        } else {
            let target = Target {
                url: &url,
                send_headers: same_origin(&checked.source.url, &hop.url),
                offset,
                if_range: if_range.as_deref(),
                span,
            };
            build(
                sink,
                target,
                checked.source.scheme,
                &checked.request,
                &self.defaults,
                self.spare_handles.pop(),
            )
            .and_then(|easy| self.pool_idle(easy, checked.request.idle))
            .map_err(|error| describe_setup_error(&error, &checked.source.url))
            .and_then(|easy| self.add_to_multi(id, easy, &checked.source.url))
            .map(Handle::Curl)
        };
        match added {
            Ok(handle) => {
                let transfer = Transfer {
                    handle,
                    checked,
                    own_limit,
                    reported_bytes: offset,
                    reported_at: Instant::now(),
                    restarted_here,
                    hop,
                };
                self.transfers.insert(id, transfer);
            }
            Err(error) => self.emit(EngineEvent::Failed { id, error }),
        }
    }

    /// Puts an idle transfer's handle in the idle connection pool.
    fn pool_idle(&mut self, easy: Easy2<Sink>, idle: bool) -> Result<Easy2<Sink>, curl::Error> {
        if !idle {
            return Ok(easy);
        }
        let pool = match self.idle_pool.take() {
            Some(pool) => pool,
            None => ConnectionPool::new()?,
        };
        let attached = pool.attach(&easy);
        self.idle_pool = Some(pool);
        attached.map(|()| easy)
    }

    /// Lets idle mode look at the connections of idle transfers that are receiving.
    fn regulate_idle_transfers(&mut self, now: Instant) {
        if self.idle.next_tick().is_some_and(|due| now < due) {
            return;
        }
        let sockets: Vec<(TransferId, std::os::fd::RawFd)> = self
            .transfers
            .iter()
            .filter(|(_, transfer)| transfer.checked.request.idle)
            .filter_map(|(id, transfer)| match &transfer.handle {
                Handle::Curl(handle) => {
                    transfer_socket(handle.get_ref().easy).map(|socket| (*id, socket))
                }
                Handle::Local(_) => None,
            })
            .collect();
        self.idle.tick(now, &sockets);
    }

    fn add_to_multi(
        &self,
        id: TransferId,
        easy: Easy2<Sink>,
        url: &str,
    ) -> Result<Easy2Handle<Sink>, TransferError> {
        let mut handle = self.multi.add2(easy).map_err(|error| {
            TransferError::permanent(
                hresult::E_FAIL,
                ErrorContext::GeneralQueueManager,
                format!("{url}: curl refused the transfer: {error}"),
            )
        })?;
        let token = usize::try_from(id.0).unwrap_or(usize::MAX);
        handle
            .set_token(token)
            .map_err(|error| describe_setup_error(&error, url))?;
        Ok(handle)
    }

    /// Gives every transfer its bandwidth allowance for the next round and unpauses those
    /// that may go on.
    fn grant_allowances(&mut self, now: Instant) {
        if let Some(global) = self.global_limit.as_mut() {
            global.refill(now);
        }
        let participants = self
            .transfers
            .values_mut()
            .filter(|transfer| transfer.checked.request.throttled && !transfer.handle.sink().held)
            .count();
        let share = self
            .global_limit
            .as_ref()
            .map(|global| fair_share(global.available(), participants));
        self.priority_limits.start_round(
            now,
            self.transfers
                .values()
                .filter(|transfer| !transfer.handle.sink().held)
                .filter_map(|transfer| transfer.checked.request.priority_class),
        );
        for transfer in self.transfers.values_mut() {
            let mut allowance = if transfer.checked.request.throttled {
                share
            } else {
                None
            };
            allowance = self
                .priority_limits
                .narrow(transfer.checked.request.priority_class, allowance);
            if let Some(own) = transfer.own_limit.as_mut() {
                own.refill(now);
                let own_available = own.available();
                allowance = Some(allowance.map_or(own_available, |a| a.min(own_available)));
            }
            if let Handle::Curl(handle) = &mut transfer.handle {
                fit_read_size(handle, allowance.is_some() || transfer.checked.request.idle);
            }
            let sink = transfer.handle.sink_mut();
            sink.allowance = allowance;
            if sink.paused && !sink.held && allowance != Some(0) {
                sink.paused = false;
                // curl may deliver the held data right here; the write callback sees the
                // new allowance. A local copy simply goes on in the next round.
                if let Handle::Curl(handle) = &mut transfer.handle
                    && let Err(error) = handle.unpause_write()
                {
                    let failure = TransferError::permanent(
                        hresult::E_FAIL,
                        ErrorContext::GeneralQueueManager,
                        format!("resuming a paused transfer failed: {error}"),
                    );
                    handle.get_mut().failure = Some(SinkFailure::Failed(failure));
                }
            }
        }
    }

    fn charge_consumption(&mut self) {
        for transfer in self.transfers.values_mut() {
            let consumed = transfer.handle.sink_mut().take_consumed();
            if consumed == 0 {
                continue;
            }
            if let Some(global) = self
                .global_limit
                .as_mut()
                .filter(|_| transfer.checked.request.throttled)
            {
                global.charge(consumed);
            }
            if let Some(own) = transfer.own_limit.as_mut() {
                own.charge(consumed);
            }
            self.priority_limits
                .charge(transfer.checked.request.priority_class, consumed);
        }
    }

    fn finish_done_transfers(&mut self) {
        let mut done = Vec::new();
        self.multi.messages(|message| {
            if let (Ok(token), Some(result)) = (message.token(), message.result()) {
                done.push((TransferId(token as u64), result));
            }
        });
        for (id, result) in done {
            if let Some(transfer) = self.transfers.remove(&id) {
                self.finish(id, transfer, result);
            }
        }
    }

    /// Moves every local copy on by one chunk (within its allowance) and finishes those
    /// that reached the end of their source or failed.
    fn copy_local_files(&mut self) {
        let mut done = Vec::new();
        for (id, transfer) in &mut self.transfers {
            let Handle::Local(sink) = &mut transfer.handle else {
                continue;
            };
            if sink.failure.is_some() {
                done.push(*id);
                continue;
            }
            if sink.held {
                continue;
            }
            let want = match sink.allowance {
                Some(0) => {
                    // Held until the buckets refill (see `grant_allowances`).
                    sink.paused = true;
                    continue;
                }
                Some(allowance) => {
                    usize::try_from(allowance).map_or(LOCAL_CHUNK, |a| a.min(LOCAL_CHUNK))
                }
                None => LOCAL_CHUNK,
            };
            let Some(source) = sink.source_file.as_ref() else {
                done.push(*id);
                continue;
            };
            let buffer = &mut self.copy_buffer[..want];
            match source.read_at(buffer, sink.length) {
                Ok(0) => done.push(*id),
                Ok(read) => {
                    let written = sink.write(&buffer[..read]);
                    if !matches!(written, Ok(count) if count == read) {
                        // The sink recorded why (size limit, disk error).
                        done.push(*id);
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let mut failure = TransferError::local(&error, "reading", &sink.temp_path);
                    failure.error.context = ErrorContext::RemoteFile;
                    failure.error.description = format!(
                        "{}: {}",
                        transfer.checked.source.url, failure.error.description
                    );
                    sink.failure = Some(SinkFailure::Failed(failure));
                    done.push(*id);
                }
            }
        }
        for id in done {
            if let Some(transfer) = self.transfers.remove(&id) {
                self.finish_local(id, transfer);
            }
        }
    }

    /// The end of a local copy: judged like a curl transfer that ended cleanly.
    fn finish_local(&mut self, id: TransferId, transfer: Transfer) {
        let (handle, rest) = transfer.into_parts();
        let Handle::Local(mut sink) = handle else {
            return;
        };
        let url = rest.checked.source.url.clone();
        let verdict = judge(&mut sink, Ok(()), &url, None, None, None);
        self.conclude(id, &mut sink, rest, verdict);
    }

    fn finish(&mut self, id: TransferId, transfer: Transfer, result: Result<(), curl::Error>) {
        let (handle, rest) = transfer.into_parts();
        let Handle::Curl(handle) = handle else {
            return;
        };
        let mut easy = match self.multi.remove2(handle) {
            Ok(easy) => easy,
            Err(error) => {
                let error = TransferError::permanent(
                    hresult::E_FAIL,
                    ErrorContext::GeneralQueueManager,
                    format!(
                        "{}: curl could not release the transfer: {error}",
                        rest.checked.source.url
                    ),
                );
                self.emit(EngineEvent::Failed { id, error });
                return;
            }
        };
        let reusable = !rest.checked.request.idle;
        self.settle(id, &mut easy, rest, result);
        if reusable && easy.get_ref().is_spent() && self.spare_handles.len() < SPARE_HANDLES {
            self.spare_handles.push(easy);
        }
    }

    /// Decides what comes after a curl transfer that ended: the next hop of a redirect,
    /// another attempt, or the report of its end.
    fn settle(
        &mut self,
        id: TransferId,
        easy: &mut Easy2<Sink>,
        rest: Rest,
        result: Result<(), curl::Error>,
    ) {
        let detail = easy.take_error_buf();
        let verify_result = tls::verify_result(easy.raw());
        let redirect_url = easy.redirect_url().ok().flatten().map(str::to_owned);
        let url = rest.checked.source.url.clone();
        let sink = easy.get_mut();
        if let Some(next) = redirect_to_follow(sink, result.as_ref(), redirect_url.as_deref()) {
            match next_hop(&rest.checked, &rest.hop, next) {
                Ok(next) => {
                    let attempt = sink.take_file().map(|file| Attempt {
                        file,
                        temp_path: sink.temp_path.clone(),
                        expectation: sink.expectation.clone(),
                        prior_restart: sink.prior_restart,
                        known_source: None,
                        source_file: None,
                    });
                    match attempt {
                        Ok(attempt) => {
                            let held = sink.held;
                            let Rest {
                                checked,
                                own_limit,
                                restarted_here,
                                ..
                            } = rest;
                            self.add_attempt(id, checked, attempt, own_limit, restarted_here, next);
                            self.keep_hold(id, held);
                        }
                        Err(error) => self.end(id, sink, rest.reported_bytes, Err(error)),
                    }
                }
                Err(error) => self.end(id, sink, rest.reported_bytes, Err(error)),
            }
            return;
        }
        let redirect_target =
            redirect_url.or_else(|| sink.head.redirect_target().map(str::to_owned));
        let verdict = judge(
            sink,
            result,
            &url,
            detail.as_deref(),
            redirect_target.as_deref(),
            verify_result,
        );
        self.conclude(id, sink, rest, verdict);
    }

    /// Acts on how an attempt ended: ask again from zero, or report the end.
    fn conclude(&mut self, id: TransferId, sink: &mut Sink, rest: Rest, verdict: Verdict) {
        let Rest {
            checked,
            own_limit,
            reported_bytes,
            restarted_here,
            hop,
        } = rest;
        let url = checked.source.url.clone();
        match verdict {
            Verdict::StartOver(reason) if !restarted_here => {
                let temp_path = sink.temp_path.clone();
                match sink.take_emptied_file() {
                    Ok(file) => {
                        let known_source = sink.known_source.take();
                        let source_file = sink.source_file.take();
                        let attempt =
                            Attempt::over_again(file, temp_path, reason, known_source, source_file);
                        let held = sink.held;
                        self.add_attempt(id, checked, attempt, own_limit, true, hop);
                        self.keep_hold(id, held);
                    }
                    Err(error) => self.emit(EngineEvent::Failed { id, error }),
                }
            }
            Verdict::StartOver(_) => {
                let error = TransferError::transient(
                    hresult::BG_E_INVALID_SERVER_RESPONSE,
                    ErrorContext::RemoteFile,
                    format!(
                        "{url}: the server's partial answers do not match the file, even after starting over"
                    ),
                );
                self.end(id, sink, reported_bytes, Err(error));
            }
            Verdict::Complete if sink.span_end.is_some() && more_spans(&checked, sink) => {
                // One range arrived; the next one continues the same file.
                let expectation = Expectation {
                    offset: sink.length,
                    validator: sink.validator.clone(),
                    total: sink.responded_total,
                    ranged: None,
                };
                let temp_path = sink.temp_path.clone();
                match sink.take_file() {
                    Ok(file) => {
                        let held = sink.held;
                        let attempt = Attempt::next_span(file, temp_path, expectation);
                        self.add_attempt(id, checked, attempt, own_limit, restarted_here, hop);
                        self.keep_hold(id, held);
                    }
                    Err(error) => self.emit(EngineEvent::Failed { id, error }),
                }
            }
            Verdict::Complete => self.end(id, sink, reported_bytes, Ok(())),
            Verdict::Fail(error) => self.end(id, sink, reported_bytes, Err(error)),
        }
    }

    /// A transfer the caller paused stays paused in its next request (after a redirect or
    /// a start over), which curl knows nothing of.
    fn keep_hold(&mut self, id: TransferId, held: bool) {
        if let Some(transfer) = self.transfers.get_mut(&id) {
            transfer.handle.sink_mut().held = held;
        }
    }

    /// Flushes the file and reports how the transfer ended: a completed file with its
    /// length, a failed one after a `Progress` with what reached the file (a burst of small
    /// files thus costs one event less each).
    fn end(
        &self,
        id: TransferId,
        sink: &mut Sink,
        reported_bytes: u64,
        outcome: Result<(), TransferError>,
    ) {
        let (on_disk, file) = match outcome {
            Ok(()) => sink.close_keeping_file(),
            Err(error) => (sink.close().0, Err(error)),
        };
        if file.is_err() && on_disk != reported_bytes {
            self.emit(EngineEvent::Progress {
                id,
                bytes_on_disk: on_disk,
                throttled: std::mem::take(&mut sink.throttled),
            });
        }
        match file {
            Ok(file) => self.events.push_once_durable(
                file,
                EngineEvent::Completed {
                    id,
                    temp_path: sink.temp_path.clone(),
                    bytes: sink.length,
                    validator: sink.validator.clone(),
                },
            ),
            Err(error) => self.emit(EngineEvent::Failed { id, error }),
        }
    }

    /// Takes a transfer out of curl, flushing its file and reporting its length.
    fn retire(&mut self, id: TransferId, transfer: Transfer) {
        let closed = match transfer.handle {
            Handle::Curl(handle) => self.multi.remove2(handle).ok().map(|mut easy| {
                let sink = easy.get_mut();
                (sink.close().0, std::mem::take(&mut sink.throttled))
            }),
            Handle::Local(mut sink) => Some((sink.close().0, std::mem::take(&mut sink.throttled))),
        };
        // The caller learns from the Progress below what reached the file, also when the
        // last flush failed.
        if let Some((on_disk, throttled)) = closed
            && on_disk != transfer.reported_bytes
        {
            self.emit(EngineEvent::Progress {
                id,
                bytes_on_disk: on_disk,
                throttled,
            });
        }
    }

    fn report_progress(&mut self, now: Instant) {
        let interval = self.progress_interval;
        let mut reports = Vec::new();
        for (id, transfer) in &mut self.transfers {
            let due = now.saturating_duration_since(transfer.reported_at) >= interval;
            let sink = transfer.handle.sink_mut();
            if !due || sink.length == transfer.reported_bytes || !sink.is_writing() {
                continue;
            }
            if sink.flush().is_err() {
                continue;
            }
            transfer.reported_bytes = sink.length;
            transfer.reported_at = now;
            reports.push(EngineEvent::Progress {
                id: *id,
                bytes_on_disk: sink.length,
                throttled: std::mem::take(&mut sink.throttled),
            });
        }
        for report in reports {
            self.emit(report);
        }
    }

    /// How long to sleep: until a progress report is due, or a bucket holding back a paused
    /// transfer has refilled. curl's own timers shorten the wait further by themselves.
    fn next_wake(&mut self, now: Instant) -> Duration {
        let mut wait = IDLE_WAIT;
        if let Some(tick) = self.idle.next_tick() {
            wait = wait.min(tick.saturating_duration_since(now));
        }
        for transfer in self.transfers.values_mut() {
            let local = matches!(transfer.handle, Handle::Local(_));
            let sink = transfer.handle.sink_mut();
            if local && !sink.paused && !sink.held {
                // A local copy with bytes to move goes on at once.
                return Duration::ZERO;
            }
            if sink.length != transfer.reported_bytes {
                let due = transfer.reported_at + self.progress_interval;
                wait = wait.min(due.saturating_duration_since(now));
            }
            if sink.paused && !sink.held {
                let global = if transfer.checked.request.throttled {
                    self.global_limit.as_ref().map(TokenBucket::wait)
                } else {
                    None
                };
                let own = transfer.own_limit.as_ref().map(TokenBucket::wait);
                let class = self
                    .priority_limits
                    .wait(transfer.checked.request.priority_class);
                let refill = [global, own, class]
                    .into_iter()
                    .flatten()
                    .try_fold(Duration::ZERO, |longest, wait| wait.map(|w| longest.max(w)));
                if let Some(refill) = refill {
                    wait = wait.min(refill.max(MIN_THROTTLE_WAIT));
                }
            }
        }
        wait
    }

    fn fail_everything(&mut self, why: &str) {
        let failure = || {
            TransferError::transient(
                hresult::E_FAIL,
                ErrorContext::GeneralQueueManager,
                why.to_owned(),
            )
        };
        for waiting in self.lanes.drain() {
            self.emit(EngineEvent::Failed {
                id: waiting.id,
                error: failure(),
            });
        }
        let ids: Vec<TransferId> = self.transfers.keys().copied().collect();
        for id in ids {
            if let Some(transfer) = self.transfers.remove(&id) {
                self.retire(id, transfer);
                self.emit(EngineEvent::Failed {
                    id,
                    error: failure(),
                });
            }
        }
    }

    fn stop_everything(&mut self) {
        for waiting in self.lanes.drain() {
            self.emit(EngineEvent::Cancelled { id: waiting.id });
        }
        let ids: Vec<TransferId> = self.transfers.keys().copied().collect();
        for id in ids {
            if let Some(transfer) = self.transfers.remove(&id) {
                self.retire(id, transfer);
                self.emit(EngineEvent::Cancelled { id });
            }
        }
        self.events.finish();
    }
}

/// Reads large for a transfer nothing holds back, small for one under a cap (see
/// [`FREE_READS`]). A failed change leaves the reads as they were: both sizes work.
fn fit_read_size(handle: &mut Easy2Handle<Sink>, capped: bool) {
    let wanted = if capped { CAPPED_READS } else { FREE_READS };
    let sink = handle.get_mut();
    if sink.read_size != wanted && set_read_size(sink.easy, wanted).is_ok() {
        sink.read_size = wanted;
    }
}

fn update_limit(
    current: Option<TokenBucket>,
    rate: Option<u64>,
    now: Instant,
) -> Option<TokenBucket> {
    match (current, rate) {
        (_, None) => None,
        (Some(mut bucket), Some(rate)) => {
            bucket.set_rate(rate, now);
            Some(bucket)
        }
        (None, Some(rate)) => Some(TokenBucket::new(rate, now)),
    }
}

/// The redirect an ended request asks the engine to follow, if it is one: a complete
/// redirect answer with a `Location` curl resolved against the request's URL.
fn redirect_to_follow<'a>(
    sink: &Sink,
    result: Result<&(), &curl::Error>,
    redirect_url: Option<&'a str>,
) -> Option<&'a str> {
    let redirects = sink
        .head
        .status
        .is_some_and(|status| REDIRECT_STATUSES.contains(&status));
    let clean = result.is_ok() && sink.failure.is_none();
    redirect_url.filter(|_| redirects && clean && sink.scheme_is_http())
}

/// The next request after a redirect to `location`, within the transfer's redirect limit
/// and allowed schemes (http may move to https; https to http only if the caller allows
/// it). A refused redirect fails the transfer with `ERROR_WINHTTP_REDIRECT_FAILED`.
fn next_hop(checked: &CheckedRequest, hop: &Hop, location: &str) -> Result<Hop, TransferError> {
    let url = &checked.source.url;
    let refuse = |why: String| {
        TransferError::permanent(
            hresult::HRESULT_WINHTTP_REDIRECT_FAILED,
            ErrorContext::RemoteFile,
            format!("{url}: {why}"),
        )
    };
    let max = checked.request.max_redirects;
    if hop.redirects >= max {
        return Err(refuse(if max == 0 {
            format!("the server redirected to {location}, and this transfer may not be redirected")
        } else {
            format!("too many redirects (more than {max}); the last pointed to {location}")
        }));
    }
    let allowed = checked
        .source
        .scheme
        .allowed_protocols(checked.request.allow_https_to_http);
    let scheme_allowed = parse_source(location).is_ok_and(|target| {
        target.scheme.is_http()
            && allowed
                .split(',')
                .any(|name| name == target.scheme.as_str())
    });
    if !scheme_allowed {
        return Err(refuse(format!(
            "the redirect to {location} was refused: its scheme is not allowed for this transfer"
        )));
    }
    Ok(Hop {
        url: location.to_owned(),
        redirects: hop.redirects + 1,
    })
}

fn describe_setup_error(error: &curl::Error, url: &str) -> TransferError {
    TransferError::permanent(
        hresult::E_INVALIDARG,
        ErrorContext::GeneralQueueManager,
        format!("{url}: curl refused a setting: {error}"),
    )
}

/// Whether a ranged file has ranges left after what `sink` holds.
fn more_spans(checked: &CheckedRequest, sink: &Sink) -> bool {
    let ranges = &checked.request.ranges;
    let remote_total = sink
        .responded_total
        .and_then(|total| ranges::remote_total(ranges, total));
    ranges::next_span(ranges, remote_total, sink.length).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Scheme;

    fn sink_writing_to(dir: &std::path::Path) -> Sink {
        let temp_path = dir.join("file.part");
        let (events, _) = crossbeam_channel::unbounded();
        Sink::new(SinkSetup {
            id: TransferId(1),
            scheme: Scheme::Http,
            url: "http://127.0.0.1:9/file".to_owned(),
            file: std::fs::File::create(&temp_path).unwrap(),
            temp_path,
            expectation: Expectation::default(),
            prior_restart: None,
            known_source: None,
            source_file: None,
            max_size: None,
            events: Outbox::new(events, Arc::new(|| {})),
        })
    }

    #[test]
    fn a_transfer_under_way_reads_large_without_a_cap_and_small_under_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut easy = Easy2::new(sink_writing_to(dir.path()));
        easy.buffer_size(CAPPED_READS).unwrap();
        let raw = easy.raw();
        easy.get_mut().easy = raw;
        easy.get_mut().read_size = CAPPED_READS;
        let multi = Multi::new();
        let mut handle = multi.add2(easy).unwrap();
        fit_read_size(&mut handle, false);
        assert_eq!(handle.get_ref().read_size, FREE_READS);
        fit_read_size(&mut handle, true);
        assert_eq!(handle.get_ref().read_size, CAPPED_READS);
        multi.remove2(handle).unwrap();
    }
}
