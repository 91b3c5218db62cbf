//! A process with more than 1,024 open descriptors: sockets numbered past select()'s
//! FD_SETSIZE still transfer. libcurl must wait with poll(); built to wait with select(), it
//! refuses every such socket and the download fails to connect.
//!
//! A binary of its own, because it holds a thousand descriptors open while it runs.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;

use common::{Harness, assert_file_is};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

/// select() can watch descriptors below this number only.
const FD_SETSIZE: i32 = 1024;

#[test]
fn a_download_works_on_a_socket_numbered_past_fd_setsize() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let wanted = 2 * FD_SETSIZE as u64;
    if limit.maximum.is_some_and(|hard| hard < wanted) {
        eprintln!("skipped: the hard limit on open files is below {wanted}");
        return;
    }
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        },
    )
    .expect("raise the soft limit on open files");

    let server = TestServer::start();
    let harness = Harness::new();
    // Fill the low numbers, so the engine's socket and file get numbers above FD_SETSIZE.
    let mut held = Vec::new();
    loop {
        let file = File::open("/dev/null").unwrap();
        let number = file.as_raw_fd();
        held.push(file);
        if number > FD_SETSIZE + 16 {
            break;
        }
    }
    let finished = harness.run(harness.request(&server.url("/data/256k"), "far.bin"));
    let (temp, bytes, _) = finished.completed();
    assert_eq!(bytes, 256 << 10);
    assert_file_is(
        &temp,
        &expected_body("/data/256k", INITIAL_VERSION, 256 << 10),
    );
    drop(held);
}
