//! Where this user's qmgr instance lives and how to reach its qmgrd.

use qmgr_core::config::Config;
use qmgr_core::instance::{Instance, STORE_LOCK_FILE};
use qmgr_core::paths::StatePaths;
use qmgr_ipc::Client;

use crate::failure::Failure;

/// The instance's paths (with the config's `state_dir` applied, as qmgrd applies it) and
/// its configuration.
#[derive(Debug)]
pub struct Session {
    pub paths: StatePaths,
    pub config: Config,
}

impl Session {
    /// Reads the environment and the config file. A config file qmgrd would refuse
    /// (unreadable, invalid, or one another user could have written) is refused here too,
    /// with the same message.
    pub fn locate() -> Result<Session, Failure> {
        let (paths, config) = Instance::locate()?.into_parts();
        Ok(Session { paths, config })
    }

    /// A connection to qmgrd, starting it if it is not running.
    pub fn connect(&self) -> Result<Client, Failure> {
        Ok(Client::connect_or_spawn(&self.paths)?)
    }

    /// A connection to a qmgrd that already runs; never starts one.
    pub fn connect_running(&self) -> qmgr_core::Result<Client> {
        Client::connect(&self.paths)
    }

    /// The file in which qmgrd records its pid while it holds the store.
    pub fn store_lock_file(&self) -> std::path::PathBuf {
        self.paths.state_dir().join(STORE_LOCK_FILE)
    }
}
