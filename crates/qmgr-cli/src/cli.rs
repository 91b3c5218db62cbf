//! The command line as clap sees it: every subcommand, option and help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use qmgr_core::credentials::{AuthScheme, AuthTarget};
use qmgr_core::job::ProxyUsage;
use qmgr_core::{JobPriority, JobType};

use crate::failure::EXIT_CODES_HELP;

/// The most files a job transfers at once (the service's limit for `parallel_files`).
pub const MAX_PARALLEL_FILES: u32 = qmgr_core::config::MAX_CONCURRENT_TRANSFERS;

#[derive(Debug, Parser)]
#[command(
    name = "qmgr",
    version,
    about = "Background transfers that outlive the programs that start them",
    long_about = "qmgr drives qmgrd, the per-user transfer queue (Windows' Background Intelligent \
                  Transfer Service for Linux). Jobs keep going, resume after crashes and reboots, \
                  and retry through network trouble whether or not a qmgr command is watching. \
                  The first command that needs qmgrd starts it.\n\n\
                  Download now, with progress:   qmgr transfer URL -o FILE\n\
                  Queue for later:               qmgr transfer --background --priority low URL --dir DIR\n\
                  See what the queue is doing:   qmgr list, qmgr info JOB, qmgr monitor\n\n\
                  A JOB is named by its GUID, a unique prefix of its GUID, or its unique display \
                  name, in that order.",
    after_help = EXIT_CODES_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download URLs now, with progress, and finish the job (the one-shot command)
    #[command(after_help = TRANSFER_AFTER_HELP)]
    Transfer(TransferArgs),
    /// Upload FILE to URL (a BITS upload server) now, with progress, and finish the job
    Upload(UploadArgs),
    /// Create an empty, suspended download job and print its GUID
    Create {
        /// Display name of the job
        name: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Add one file to a job
    #[command(alias = "add-file")]
    Addfile {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        /// Where the file comes from: http, https, ftp, ftps or file URL, or an absolute path
        url: String,
        /// Where the file goes; a relative path is taken from the current directory
        path: PathBuf,
    },
    /// Add the files listed in FILE (lines of `URL PATH`; `-` reads standard input)
    #[command(alias = "add-file-set")]
    Addfileset {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        /// A file of `URL PATH` lines; blank lines and lines starting with `#` are skipped
        file: PathBuf,
    },
    /// Let jobs transfer (new jobs start suspended)
    #[command(after_help = JOBS_AFTER_HELP)]
    Resume(JobsArg),
    /// Stop jobs transferring, keeping what they have
    #[command(after_help = JOBS_AFTER_HELP)]
    Suspend(JobsArg),
    /// Remove jobs and delete their unfinished files
    #[command(after_help = JOBS_AFTER_HELP)]
    Cancel(JobsArg),
    /// Finish jobs: move their transferred files to their final names
    #[command(after_help = JOBS_AFTER_HELP)]
    Complete(JobsArg),
    /// List jobs in the queue
    #[command(alias = "ls")]
    List(ListArgs),
    /// Everything about one job: state, why it waits, files, error, recent attempts
    Info {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Set a job's priority
    #[command(alias = "set-priority")]
    Setpriority {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        #[arg(value_enum)]
        priority: PriorityArg,
    },
    /// Set how long a job waits before retrying after a transient error (at least 5 s)
    #[command(alias = "set-retry-delay")]
    Setretrydelay {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        /// Seconds, or a duration such as 90s, 5m, 1h30m
        #[arg(value_parser = parse_duration_arg)]
        delay: Duration,
    },
    /// Set how long a job may fail without progress before it gives up (0: never retry)
    #[command(alias = "set-no-progress-timeout")]
    Setnoprogresstimeout {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        /// Seconds, or a duration such as 90s, 5m, 14d
        #[arg(value_parser = parse_duration_arg)]
        timeout: Duration,
    },
    /// Set the program run when a job transfers or fails: an absolute path, run without a
    /// shell, with PATH=/usr/bin:/bin and only HOME, USER, LOGNAME and LANG besides
    #[command(alias = "set-notify-cmd-line")]
    Setnotifycmdline {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        /// Absolute path of the program (at most 260 characters; a relative one is refused)
        #[arg(required_unless_present = "clear")]
        program: Option<String>,
        /// Its command line, split as Windows splits one (CommandLineToArgvW); as on Windows
        /// the first word is the program's own name
        parameters: Option<String>,
        /// Remove the notification command
        #[arg(long, conflicts_with_all = ["program", "parameters"])]
        clear: bool,
    },
    /// Replace a job's extra HTTP request headers
    #[command(alias = "set-headers")]
    Setheaders {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        /// Header lines such as 'Authorization: Bearer x'
        #[arg(value_parser = parse_header_arg, required_unless_present = "clear")]
        headers: Vec<String>,
        /// Remove every extra header
        #[arg(long, conflicts_with = "headers")]
        clear: bool,
    },
    /// Choose how a job reaches servers: the environment's proxy, none, or an explicit one
    #[command(alias = "set-proxy")]
    Setproxy {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        #[arg(value_enum)]
        usage: ProxyArg,
        /// With `override`: the proxy, such as http://proxy.example:3128
        list: Option<String>,
        /// With `override`: hosts reached directly, separated by `;`, space or `,`
        /// (`<local>` means localhost)
        bypass: Option<String>,
    },
    /// Set the user name and password a job gives a server or proxy that asks for them;
    /// the password is typed at a prompt (or is the first line of standard input), never an
    /// argument
    #[command(alias = "set-credentials")]
    Setcredentials {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        /// Who asks: the server, or the proxy
        #[arg(long, value_enum, default_value = "server")]
        target: AuthTargetArg,
        /// How the server or proxy asks (its WWW-Authenticate or Proxy-Authenticate)
        #[arg(long, value_enum, default_value = "basic")]
        scheme: AuthSchemeArg,
        /// The user name (DOMAIN\user for NTLM)
        #[arg(long)]
        user: String,
    },
    /// Remove the credentials a job has for a target and scheme
    #[command(alias = "remove-credentials")]
    Removecredentials {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        #[arg(long, value_enum, default_value = "server")]
        target: AuthTargetArg,
        #[arg(long, value_enum, default_value = "basic")]
        scheme: AuthSchemeArg,
    },
    /// Set which network costs a job may transfer on (Job5 COST_FLAGS)
    #[command(alias = "set-cost-flags")]
    Setcostflags {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        /// A BITS_JOB_TRANSFER_POLICY name — `unrestricted` (0x80000021: not on a metered
        /// network), `standard` (0x80000067), `no-surcharge` (0x8000006F), `not-roaming`
        /// (0x8000007F), `always` (0x800000FF) — or `default` (the priority's), or a mask
        #[arg(value_parser = parse_cost_flags_arg)]
        flags: CostFlagsArg,
    },
    /// Turn idle mode on or off for a job (on by default: background jobs use only
    /// bandwidth nobody else uses)
    #[command(alias = "set-idle")]
    Setidle {
        /// The job (GUID, GUID prefix or display name)
        job: String,
        #[arg(value_enum)]
        mode: OnOffArg,
    },
    /// The transfer policy in effect: network cost (metered or not, and who says), the
    /// bandwidth schedule's caps now and next, idle mode
    Policy {
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Make one of your jobs yours again after a change of identity (another user's: not supported)
    #[command(alias = "takeownership")]
    TakeOwnership {
        /// The job (GUID, GUID prefix or display name)
        job: String,
    },
    /// List legacy groups (the BITS 1.x qmgr.h API) with their status bits
    Groups {
        #[command(flatten)]
        output: JsonFlag,
    },
    /// A live, full-screen view of every job, moving ones first; ↑/↓, PgUp/PgDn, Home/End
    /// scroll; q or Ctrl-C quits
    Monitor {
        /// Time between refreshes, such as 1s or 500ms
        #[arg(long, default_value = "1s", value_parser = parse_interval_arg)]
        interval: Duration,
        /// Stop after this many refreshes (plain-text mode is handy in scripts)
        #[arg(long)]
        count: Option<u64>,
    },
    /// The qmgrd service: status, stop
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (qmgr.1 and qmgr-SUB.1 for each subcommand) into DIR, which
    /// must exist; used by `cargo xtask install`
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Whether qmgrd runs, its version, socket, pid and number of jobs (exit 3: not running)
    Status {
        #[command(flatten)]
        output: JsonFlag,
    },
    /// Stop qmgrd with SIGTERM (its pid is in <state dir>/store.lock); jobs resume when it
    /// next starts
    Stop,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON (a stable schema, documented in the README under "JSON output")
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JobsArg {
    /// Jobs (GUID, GUID prefix or display name)
    #[arg(required = true)]
    pub jobs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Every user's jobs, with an OWNER column (root only): root's own and those of every
    /// user whose qmgrd is running
    #[arg(long = "all-users", visible_alias = "all")]
    pub all_users: bool,
    /// Only jobs in these states (comma-separated or repeated), named as `list` prints them
    /// or in lower case, with `_` or `-`: TRANSIENT_ERROR, transient-error …
    #[arg(long, value_delimiter = ',', value_parser = StateParser)]
    pub state: Vec<StateArg>,
    #[command(flatten)]
    pub output: JsonFlag,
}

const JOBS_AFTER_HELP: &str = "\
Every JOB is tried, even after one fails. Each job done is reported on stdout, each one
not done on stderr, and with several JOBs a last line counts them and names those not
found. Exit code: 0 when every JOB was done, 4 when any JOB was not found (the others are
still done), 2 for an ambiguous name, 1 when qmgrd refused one (wrong state).";

const TRANSFER_AFTER_HELP: &str = "\
Examples:
  qmgr transfer https://example.com/big.iso -o big.iso
  qmgr transfer --dir downloads https://example.com/a.tar https://example.com/b.tar
  qmgr transfer file:///etc/hostname -o /tmp/hostname
  qmgr transfer --background --priority low https://example.com/nightly.tar --dir /srv/cache

The service moves the files into place when the transfer is done, also if qmgr is killed,
its terminal closes or qmgrd restarts meanwhile. Ctrl-C (or SIGTERM) suspends the job and
keeps every byte: `qmgr resume JOB` continues it in the background. A transient error is
retried within 5 s, then after twice as long each time up to --retry-delay; after
--no-progress-timeout (2 minutes) without progress, or on a permanent error, the job stays
in the queue (`qmgr info JOB` explains, `qmgr resume JOB` retries, `qmgr cancel JOB`
removes it) and qmgr exits 1. --background jobs keep BITS' retry defaults and queue at
normal priority. More URLs than the service's max_files_per_job (config.toml, default 200)
are split into several jobs that share the --parallel budget.";

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// What to download: http, https, ftp, ftps or file URLs, or absolute paths
    #[arg(required_unless_present = "input_file", value_name = "URL")]
    pub urls: Vec<String>,
    /// Read more URLs from FILE, one a line (`-`: standard input); blank lines and lines
    /// starting with `#` are skipped. More URLs than max_jobs_per_user × max_files_per_job
    /// are queued as earlier jobs finish
    #[arg(short = 'i', long = "input-file", value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Save the (single) URL to this file
    #[arg(short, long, value_name = "PATH", conflicts_with = "dir")]
    pub output: Option<PathBuf>,
    /// Save every URL into this directory under the last segment of its path [default: .]
    #[arg(short, long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the job's GUID and return at once; the job goes on in qmgrd
    #[arg(short, long)]
    pub background: bool,
    /// With --background: print the created jobs as JSON (the `list --json` schema)
    #[arg(long, requires = "background")]
    pub json: bool,
    /// Job priority; foreground is never throttled and never waits for a slot [default:
    /// foreground, normal with --background]
    #[arg(long, value_enum)]
    pub priority: Option<PriorityArg>,
    /// Files transferred at once, shared among the jobs of a split transfer (1-64)
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PARALLEL_FILES)))]
    pub parallel: u32,
    /// Extra request header such as 'Authorization: Bearer x' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'", value_parser = parse_header_arg)]
    pub headers: Vec<String>,
    /// Longest wait before retrying after a transient error [default: config, 10m]; without
    /// --background the first retry comes within 5 s, each later one waits twice as long
    /// up to this
    #[arg(long, value_name = "DUR", value_parser = parse_duration_arg)]
    pub retry_delay: Option<Duration>,
    /// Give up after failing this long without progress [default: 2m; with --background:
    /// config, 14d]
    #[arg(long, value_name = "DUR", value_parser = parse_duration_arg)]
    pub no_progress_timeout: Option<Duration>,
    /// Bandwidth cap for this transfer, e.g. 20MB/s or 512KiB/s (shared by the jobs when the
    /// URLs are split into several); applies at any priority
    #[arg(long, value_name = "RATE", value_parser = parse_rate_arg)]
    pub limit: Option<RateArg>,
    /// Refuse to overwrite files that exist (checked before the job is created and again
    /// before its files are moved into place)
    #[arg(long)]
    pub no_clobber: bool,
    /// Turn idle mode off for this job: as a background job it takes its share of the
    /// link instead of yielding to other traffic
    #[arg(long)]
    pub no_idle: bool,
    /// Display name of the job [default: the first file's name, e.g. "a.iso (qmgr transfer)"]
    #[arg(long)]
    pub name: Option<String>,
    /// No progress display
    #[arg(short, long)]
    pub quiet: bool,
    /// Log in to the server as USER (Basic, Digest or NTLM, whichever it asks for); the
    /// password is read from a prompt without echo, or from the first line of standard input
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Log in with the user name and password ~/.netrc gives for the server's host
    #[arg(long, conflicts_with = "user")]
    pub netrc: bool,
    /// What the jobs do: download (`qmgr transfer`) or upload (`qmgr upload`).
    #[arg(skip = JobType::Download)]
    pub job_type: JobType,
    /// `qmgr upload --reply FILE`: where the server's reply goes.
    #[arg(skip)]
    pub reply: Option<PathBuf>,
}

/// `qmgr upload FILE URL`: what `transfer` takes that means something for an upload.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The file to upload (it must not change until the upload is done)
    pub file: PathBuf,
    /// Where it goes: the http or https URL of a BITS upload server (IIS, qmgr-upload-server)
    pub url: String,
    /// Ask the server for a reply (an upload-reply job) and save it as FILE when the
    /// upload is done (the server must be set up to answer, e.g. qmgr-upload-server's
    /// reply_command)
    #[arg(long, value_name = "FILE")]
    pub reply: Option<PathBuf>,
    /// Print the job's GUID and return at once; the job goes on in qmgrd
    #[arg(short, long)]
    pub background: bool,
    /// With --background: print the created job as JSON (the `list --json` schema)
    #[arg(long, requires = "background")]
    pub json: bool,
    /// Job priority [default: foreground, normal with --background]
    #[arg(long, value_enum)]
    pub priority: Option<PriorityArg>,
    /// Extra request header such as 'Authorization: Bearer x' (repeatable)
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'", value_parser = parse_header_arg)]
    pub headers: Vec<String>,
    /// Longest wait before retrying after a transient error (see `transfer`)
    #[arg(long, value_name = "DUR", value_parser = parse_duration_arg)]
    pub retry_delay: Option<Duration>,
    /// Give up after failing this long without progress (see `transfer`)
    #[arg(long, value_name = "DUR", value_parser = parse_duration_arg)]
    pub no_progress_timeout: Option<Duration>,
    /// Bandwidth cap for this upload, e.g. 2MB/s or 512KiB/s; applies at any priority
    #[arg(long, value_name = "RATE", value_parser = parse_rate_arg)]
    pub limit: Option<RateArg>,
    /// Display name of the job [default: "FILE (qmgr upload)"]
    #[arg(long)]
    pub name: Option<String>,
    /// No progress display
    #[arg(short, long)]
    pub quiet: bool,
    /// Log in to the server as USER (the password from a prompt or standard input)
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Log in with the user name and password ~/.netrc gives for the server's host
    #[arg(long, conflicts_with = "user")]
    pub netrc: bool,
}

impl UploadArgs {
    /// The same job as `transfer` would make, of type upload: one file, URL to FILE.
    pub fn into_transfer(self) -> TransferArgs {
        TransferArgs {
            urls: vec![self.url],
            input_file: None,
            output: Some(self.file),
            dir: None,
            background: self.background,
            json: self.json,
            priority: self.priority,
            parallel: 1,
            headers: self.headers,
            retry_delay: self.retry_delay,
            no_progress_timeout: self.no_progress_timeout,
            limit: self.limit,
            no_clobber: false,
            no_idle: false,
            name: self.name,
            quiet: self.quiet,
            user: self.user,
            netrc: self.netrc,
            job_type: if self.reply.is_some() {
                JobType::UploadReply
            } else {
                JobType::Upload
            },
            reply: self.reply,
        }
    }
}

/// A parsed `--limit`: bytes per second, or no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateArg(pub Option<u64>);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PriorityArg {
    Foreground,
    High,
    Normal,
    Low,
}

impl From<PriorityArg> for JobPriority {
    fn from(priority: PriorityArg) -> Self {
        match priority {
            PriorityArg::Foreground => JobPriority::Foreground,
            PriorityArg::High => JobPriority::High,
            PriorityArg::Normal => JobPriority::Normal,
            PriorityArg::Low => JobPriority::Low,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthTargetArg {
    Server,
    Proxy,
}

impl From<AuthTargetArg> for AuthTarget {
    fn from(target: AuthTargetArg) -> Self {
        match target {
            AuthTargetArg::Server => AuthTarget::Server,
            AuthTargetArg::Proxy => AuthTarget::Proxy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuthSchemeArg {
    Basic,
    Digest,
    Ntlm,
    Negotiate,
}

impl From<AuthSchemeArg> for AuthScheme {
    fn from(scheme: AuthSchemeArg) -> Self {
        match scheme {
            AuthSchemeArg::Basic => AuthScheme::Basic,
            AuthSchemeArg::Digest => AuthScheme::Digest,
            AuthSchemeArg::Ntlm => AuthScheme::Ntlm,
            AuthSchemeArg::Negotiate => AuthScheme::Negotiate,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProxyArg {
    /// The proxy of the environment (http_proxy, https_proxy, no_proxy)
    Preconfig,
    /// No proxy
    #[value(name = "no_proxy", alias = "no-proxy")]
    NoProxy,
    /// The proxy LIST, except for the hosts in BYPASS
    Override,
    /// As preconfig (there is no WPAD on Linux)
    Autodetect,
}

impl From<ProxyArg> for ProxyUsage {
    fn from(usage: ProxyArg) -> Self {
        match usage {
            ProxyArg::Preconfig => ProxyUsage::Preconfig,
            ProxyArg::NoProxy => ProxyUsage::NoProxy,
            ProxyArg::Override => ProxyUsage::Override,
            ProxyArg::Autodetect => ProxyUsage::Autodetect,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum StateArg {
    Queued,
    Connecting,
    Transferring,
    Suspended,
    Error,
    TransientError,
    Transferred,
    Acknowledged,
    Cancelled,
}

/// Parses a `--state` name in any case, with `_` or `-` between words, offering the
/// canonical names for completion and help.
#[derive(Clone, Copy, Debug)]
struct StateParser;

impl clap::builder::TypedValueParser for StateParser {
    type Value = StateArg;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<StateArg, clap::Error> {
        let normalized = value
            .to_str()
            .map(|text| text.trim().to_ascii_lowercase().replace('-', "_"));
        if let Some(state) = normalized
            .as_deref()
            .and_then(|text| StateArg::from_str(text, false).ok())
        {
            return Ok(state);
        }
        // Anything else: clap's own message, listing the valid names.
        clap::builder::EnumValueParser::<StateArg>::new().parse_ref(command, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            StateArg::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

impl StateArg {
    pub fn matches(self, state: qmgr_core::JobState) -> bool {
        use qmgr_core::JobState as S;
        let wanted = match self {
            Self::Queued => S::Queued,
            Self::Connecting => S::Connecting,
            Self::Transferring => S::Transferring,
            Self::Suspended => S::Suspended,
            Self::Error => S::Error,
            Self::TransientError => S::TransientError,
            Self::Transferred => S::Transferred,
            Self::Acknowledged => S::Acknowledged,
            Self::Cancelled => S::Cancelled,
        };
        wanted == state
    }
}

/// A COST_FLAGS argument: a mask, or `None` for the priority's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CostFlagsArg(pub Option<u32>);

fn parse_cost_flags_arg(text: &str) -> Result<CostFlagsArg, String> {
    let text = text.trim();
    let named = match text.to_ascii_lowercase().replace('_', "-").as_str() {
        "default" => return Ok(CostFlagsArg(None)),
        "always" => Some(qmgr_core::policy::COST_FLAGS_TRANSFER_ALWAYS),
        "not-roaming" => Some(0x8000_007F),
        "no-surcharge" => Some(0x8000_006F),
        "standard" => Some(0x8000_0067),
        "unrestricted" => Some(qmgr_core::policy::COST_FLAGS_TRANSFER_UNRESTRICTED),
        _ => None,
    };
    if named.is_some() {
        return Ok(CostFlagsArg(named));
    }
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map(|flags| CostFlagsArg(Some(flags))).map_err(|_| {
        format!(
            "{text:?} is not a cost mask (unrestricted, standard, no-surcharge, not-roaming, \
             always, default or a number such as 0x80000021)"
        )
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOffArg {
    On,
    Off,
}

fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    qmgr_core::config::parse_duration(text).map_err(|error| error.description)
}

/// Monitor intervals may be shorter than a second: `500ms` is accepted besides durations.
fn parse_interval_arg(text: &str) -> Result<Duration, String> {
    let interval = match text.trim().strip_suffix("ms") {
        Some(millis) => millis
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("invalid interval {text:?}: write 500ms, 2s, 1m …"))?,
        None => parse_duration_arg(text)?,
    };
    if interval < Duration::from_millis(100) {
        return Err(format!("the interval {text:?} is shorter than 100ms"));
    }
    Ok(interval)
}

fn parse_rate_arg(text: &str) -> Result<RateArg, String> {
    qmgr_core::config::parse_rate(text)
        .map(RateArg)
        .map_err(|error| error.description)
}

/// A header line as the service stores it: `Name: value`, no CR or LF.
fn parse_header_arg(text: &str) -> Result<String, String> {
    if text.contains(['\r', '\n']) {
        return Err(format!("the header {text:?} contains a line break"));
    }
    match text.split_once(':') {
        Some((name, _)) if !name.trim().is_empty() && !name.contains(char::is_whitespace) => {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "the header {text:?} is not of the form 'Name: value'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cost_flags_take_names_masks_or_default() {
        let parse = |text| parse_cost_flags_arg(text).map(|flags| flags.0);
        assert_eq!(parse("default"), Ok(None));
        assert_eq!(parse("Always"), Ok(Some(0x8000_00FF)));
        assert_eq!(parse("unrestricted"), Ok(Some(0x8000_0021)));
        assert_eq!(parse("no_surcharge"), Ok(Some(0x8000_006F)));
        assert_eq!(parse("not-roaming"), Ok(Some(0x8000_007F)));
        assert_eq!(parse("standard"), Ok(Some(0x8000_0067)));
        assert_eq!(parse("0x40"), Ok(Some(0x40)));
        assert_eq!(parse("65"), Ok(Some(65)));
        assert!(parse("metered").unwrap_err().contains("not a cost mask"));
        assert!(parse("0x1FFFFFFFF").is_err());
    }

    #[test]
    fn headers_must_have_a_name_and_no_line_breaks() {
        assert_eq!(parse_header_arg("X-A: 1").unwrap(), "X-A: 1");
        assert_eq!(parse_header_arg("X-Empty:").unwrap(), "X-Empty:");
        for bad in ["no colon", ": value", "Two Words: x", "X: a\r\nY: b"] {
            assert!(parse_header_arg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn intervals_take_milliseconds_and_durations() {
        assert_eq!(
            parse_interval_arg("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_interval_arg("2s").unwrap(), Duration::from_secs(2));
        assert!(parse_interval_arg("10ms").is_err());
        assert!(parse_interval_arg("0").is_err());
        assert!(parse_interval_arg("fast").is_err());
    }

    #[test]
    fn state_filters_take_the_names_list_prints_in_any_case_and_spelling() {
        for spelling in [
            "TRANSIENT_ERROR",
            "transient_error",
            "transient-error",
            "Transient-Error",
            "TRANSIENT-ERROR",
        ] {
            let cli = Cli::try_parse_from(["qmgr", "list", "--state", spelling])
                .unwrap_or_else(|error| panic!("{spelling}: {error}"));
            let Command::List(args) = cli.command else {
                panic!("not a list command")
            };
            assert_eq!(args.state, [StateArg::TransientError], "{spelling}");
        }
        let cli = Cli::try_parse_from([
            "qmgr",
            "list",
            "--state",
            "QUEUED,suspended",
            "--state",
            "ERROR",
        ])
        .unwrap();
        let Command::List(args) = cli.command else {
            panic!("not a list command")
        };
        assert_eq!(
            args.state,
            [StateArg::Queued, StateArg::Suspended, StateArg::Error]
        );
        let error = Cli::try_parse_from(["qmgr", "list", "--state", "sleeping"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(error.to_string().contains("transient_error"), "{error}");
    }

    #[test]
    fn state_filters_use_the_bitsadmin_names_in_lower_case() {
        let cli =
            Cli::try_parse_from(["qmgr", "list", "--state", "transient_error,queued"]).unwrap();
        let Command::List(args) = cli.command else {
            panic!("not a list command")
        };
        assert_eq!(args.state, [StateArg::TransientError, StateArg::Queued]);
        assert!(StateArg::TransientError.matches(qmgr_core::JobState::TransientError));
        assert!(!StateArg::Queued.matches(qmgr_core::JobState::Suspended));
    }
}
