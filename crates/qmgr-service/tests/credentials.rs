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

/// A job of one file behind `auth=basic` for `user`/`password`, using stored credentials.
fn stored_credentials_job(
    instance: &Instance,
    server: &TestServer,
    name: &str,
) -> (qmgr_core::Guid, std::path::PathBuf) {
    let client = instance.client();
    let local = instance.downloads().join(name);
    let url = server.url(&format!(
        "/data/3k/{name}?auth=basic&user=netrc-user&password=netrc-pass"
    ));
    let id = common::one_file_job(&client, &url, &local);
    client
        .set_job(id, JobChange::UseStoredCredentials(true))
        .unwrap();
    client.resume(id).unwrap();
    (id, local)
}

#[test]
fn stored_credentials_come_from_a_trusted_netrc_and_an_untrusted_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;

    let home = tempfile::tempdir().unwrap();
    let instance = Instance::with_env(vec![("HOME".into(), home.path().into())]);
    let server = TestServer::start();
    let netrc = home.path().join(".netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1\n  login netrc-user\n  password netrc-pass\n",
    )
    .unwrap();
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();

    let (id, local) = stored_credentials_job(&instance, &server, "from-netrc");
    let client = instance.client();
    let done = common::wait_for_state(&client, id, JobState::Transferred);
    assert_eq!(
        done.job.state,
        JobState::Transferred,
        "{:?}",
        done.job.error
    );
    assert!(done.job.settings.use_stored_credentials);
    client.complete(id).unwrap();
    assert_eq!(std::fs::read(&local).unwrap().len(), 3 * 1024);

    // A netrc others may write could send the password anywhere: the job stops, saying why.
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (id, _) = stored_credentials_job(&instance, &server, "refused");
    let failed = common::wait_for_state(&client, id, JobState::Error);
    let error = failed.job.error.expect("an error").error;
    assert!(
        error.description.contains(".netrc"),
        "the error names the file: {error:?}"
    );
}
