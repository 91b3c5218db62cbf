//! qmgr configuration.
