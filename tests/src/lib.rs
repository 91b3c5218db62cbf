//! The fault-injecting HTTP test server.
