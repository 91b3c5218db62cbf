//! SetCredentials through qmgrd: the credentials outlive a SIGKILL of the service, reach
//! the server, and never come back out — not in a job's view, not in the log.

mod common;

use common::Instance;

use qmgr_core::JobState;
use qmgr_core::credentials::{AuthScheme, AuthTarget, Credential, Secret};
use qmgr_core::hresult;
use qmgr_core::service::{JobChange, QueueServiceExt};
use qmgr_tests::auth::{DEFAULT_PASSWORD, DEFAULT_USER};
use qmgr_tests::{INITIAL_VERSION, TestServer, expected_body};

#[test]
fn credentials_survive_a_restart_reach_the_server_and_never_come_back_out() {
    let instance = Instance::new();
    let server = TestServer::start();
    let client = instance.client();
    let local = instance.downloads().join("protected.bin");
    let path = "/data/16k/protected";
    let id = common::one_file_job(&client, &server.url(&format!("{path}?auth=digest")), &local);
    let credential = Credential {
        target: AuthTarget::Server,
        scheme: AuthScheme::Digest,
        user_name: DEFAULT_USER.to_owned(),
        password: Secret::new(DEFAULT_PASSWORD),
    };
    assert_eq!(
        client
            .set_job(id, JobChange::Credentials(credential))
            .unwrap(),
        hresult::S_OK
    );
    assert_eq!(
        client
            .set_job(
                id,
                JobChange::RemoveCredentials {
                    target: AuthTarget::Proxy,
                    scheme: AuthScheme::Basic
                }
            )
            .unwrap(),
        hresult::S_FALSE,
        "nothing to remove"
    );
    drop(client);
    instance.kill_daemons("-KILL");

    let client = instance.client();
    client.resume(id).unwrap();
    let done = common::wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    // The view came over the socket: what it holds is what any client could read.
    let shown = format!("{done:?}");
    assert!(
        !shown.contains(DEFAULT_PASSWORD),
        "the view carries the password: {shown}"
    );
    assert!(done.job.credentials.is_empty());
    client.complete(id).unwrap();
    assert_eq!(
        std::fs::read(&local).unwrap(),
        expected_body(path, INITIAL_VERSION, 16 * 1024)
    );
    drop(client);
    instance.stop();
    let log = instance.log();
    assert!(!log.is_empty());
    assert!(
        !log.contains(DEFAULT_PASSWORD),
        "the log has the password:\n{log}"
    );
}
