//! The second-user helper that the security tests rely on.

use qmgr_tests::users::OtherUser;

#[test]
fn a_second_user_runs_programs_as_itself_and_is_removed_afterwards() {
    let Some(user) = OtherUser::create("a_second_user_runs_programs_as_itself") else {
        return;
    };
    let output = user.command("/usr/bin/id").arg("-u").output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        user.uid().to_string()
    );
    assert_ne!(user.uid(), 0);
    let name = user.name().to_owned();
    drop(user);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(
        !passwd
            .lines()
            .any(|line| line.starts_with(&format!("{name}:"))),
        "{name} is still in /etc/passwd"
    );
}
