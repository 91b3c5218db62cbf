//! The C ABI called exactly as C calls it: raw pointers and `lpVtbl`, against an in-process
//! queue and the test server.

#![expect(
    clippy::borrow_as_ptr,
    clippy::macro_metavars_in_unsafe,
    reason = "the tests write calls as C does: `&IID_X` for a REFIID, arguments inside the call"
)]

mod common;
mod files;
mod job;
mod legacy;
mod manager;
mod oleaut;
mod transfer;
mod unknown;
