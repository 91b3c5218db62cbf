//! qmgr's queue manager and the per-user daemon `qmgrd`.
//!
//! [`QueueManager`] drives the domain (`qmgr-core`) and the transfer engine
//! (`qmgr-transfer`); [`LocalService`] exposes it through the service API in-process, the
//! way `qmgrd` exposes it over its socket.

#![deny(unsafe_code)]

mod clock;
mod command_line;
mod local;
mod manager;
mod metered;
mod network;

pub use clock::{Clock, ManualClock, OffsetClock, SystemClock};
pub use command_line::split_parameters;
pub use local::LocalService;
pub use manager::QueueManager;
pub use metered::watch_network_manager;
