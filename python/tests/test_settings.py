"""A job's connection settings: credentials, proxy, custom headers, security flags and its
notify command line, against the test server (as server and as proxy) and a private qmgrd."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

import qmgr
from qmgr import hresults

from .conftest import Server

WAIT_SECONDS = 60

USER = "alice"
PASSWORD = "s3cret pass ü"
#: Fault parameters that have the test server demand PASSWORD, and USER with it.
PASSWORD_QUERY = "password=s3cret%20pass%20%C3%BC"
CREDENTIALS_QUERY = f"user=alice&{PASSWORD_QUERY}"


def _download(job: qmgr.Job, url: str, destination: Path) -> qmgr.JobState:
    job.add_file(url, destination)
    job.resume()
    return job.wait(timeout=WAIT_SECONDS)


def test_server_credentials_answer_a_basic_challenge_and_removing_them_stops_that(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    url = server.url(f"/data/1k/guarded?auth=basic&{CREDENTIALS_QUERY}")
    with manager.create_job("with credentials") as job:
        job.set_credentials(qmgr.AuthTarget.SERVER, qmgr.AuthScheme.BASIC, USER, PASSWORD)
        assert _download(job, url, work / "granted.bin") is qmgr.JobState.TRANSFERRED, job.error
        job.complete()
    assert (work / "granted.bin").stat().st_size == 1024

    with manager.create_job("credentials removed") as job:
        job.set_credentials(qmgr.AuthTarget.SERVER, qmgr.AuthScheme.BASIC, USER, PASSWORD)
        job.remove_credentials(qmgr.AuthTarget.SERVER, qmgr.AuthScheme.BASIC)
        assert _download(job, url, work / "refused.bin") is qmgr.JobState.ERROR
        error = job.error
        assert error is not None
        assert error.code == hresults.BG_E_HTTP_ERROR_401
        job.cancel()


def test_ntlm_credentials_beyond_ascii_pass_the_servers_ntlmv2_handshake(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    # A user name and password beyond ASCII: NTLM hashes their UTF-16, not their UTF-8.
    url = server.url(f"/data/3k/ntlm?auth=ntlm&user=j%C3%BCrgen&{PASSWORD_QUERY}")
    with manager.create_job("NTLM") as job:
        job.set_credentials(qmgr.AuthTarget.SERVER, qmgr.AuthScheme.NTLM, "jürgen", PASSWORD)
        assert _download(job, url, work / "ntlm.bin") is qmgr.JobState.TRANSFERRED, job.error
        job.complete()
    assert (work / "ntlm.bin").stat().st_size == 3 * 1024
    with manager.create_job("NTLM, wrong password") as job:
        job.set_credentials(qmgr.AuthTarget.SERVER, qmgr.AuthScheme.NTLM, "jürgen", "not it")
        assert _download(job, url, work / "refused.bin") is qmgr.JobState.ERROR
        error = job.error
        assert error is not None
        assert error.code == hresults.BG_E_HTTP_ERROR_401
        job.cancel()


def test_ntlm_credentials_curl_cannot_send_are_refused_when_set(manager: qmgr.Manager) -> None:
    with manager.create_job("NTLM, Cyrillic") as job:
        with pytest.raises(qmgr.QmgrError) as raised:
            job.set_credentials(qmgr.AuthTarget.SERVER, qmgr.AuthScheme.NTLM, "ivan", "пароль")
        # Basic sends UTF-8: the same password is fine there.
        job.set_credentials(qmgr.AuthTarget.SERVER, qmgr.AuthScheme.BASIC, "ivan", "пароль")
        job.cancel()
    assert raised.value.hresult == hresults.E_INVALIDARG
    assert "U+00FF" in raised.value.description


def test_credentials_of_an_unknown_scheme_are_refused_with_a_description(
    manager: qmgr.Manager,
) -> None:
    with manager.create_job("bad scheme") as job:
        with pytest.raises(qmgr.QmgrError) as raised:
            job.set_credentials(qmgr.AuthTarget.SERVER, 99, USER, PASSWORD)
        job.cancel()
    assert raised.value.hresult == hresults.BG_E_INVALID_AUTH_SCHEME
    assert raised.value.operation == "SetCredentials"
    assert raised.value.description


def test_an_override_proxy_carries_the_download_and_gets_the_proxy_credentials(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    proxy = urlsplit(server.base_url).netloc
    # No such host: only the proxy can answer for it.
    url = f"http://qmgr-proxy-test.invalid/data/2k/proxied?proxy_auth=basic&{CREDENTIALS_QUERY}"
    with manager.create_job("through a proxy") as job:
        assert job.proxy == qmgr.ProxySettings(qmgr.ProxyUsage.PRECONFIG, None, None)
        job.set_proxy(qmgr.ProxyUsage.OVERRIDE, proxy)
        assert job.proxy == qmgr.ProxySettings(qmgr.ProxyUsage.OVERRIDE, proxy, None)
        job.set_credentials(qmgr.AuthTarget.PROXY, qmgr.AuthScheme.BASIC, USER, PASSWORD)
        assert _download(job, url, work / "proxied.bin") is qmgr.JobState.TRANSFERRED, job.error
        job.complete()
    assert (work / "proxied.bin").stat().st_size == 2048


def test_an_override_without_a_proxy_list_is_refused(manager: qmgr.Manager) -> None:
    with manager.create_job("override, no list") as job:
        with pytest.raises(qmgr.QmgrError) as raised:
            job.set_proxy(qmgr.ProxyUsage.OVERRIDE)
        assert job.proxy.usage is qmgr.ProxyUsage.PRECONFIG
        job.cancel()
    assert raised.value.hresult == hresults.E_INVALIDARG
    assert raised.value.description


def test_custom_headers_are_sent_read_back_and_removed(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    url = server.url("/data/1k/headed?require_header=X-Token:abc")
    with manager.create_job("without the header") as job:
        assert job.custom_headers is None
        assert _download(job, url, work / "refused.bin") is qmgr.JobState.ERROR
        error = job.error
        assert error is not None
        assert error.code == hresults.BG_E_HTTP_ERROR_403
        job.cancel()
    with manager.create_job("with the header") as job:
        job.custom_headers = "X-Token: abc\r\nX-Other: 1"
        assert job.custom_headers == "X-Token: abc\r\nX-Other: 1"
        assert _download(job, url, work / "granted.bin") is qmgr.JobState.TRANSFERRED, job.error
        job.complete()
    assert (work / "granted.bin").stat().st_size == 1024
    with manager.create_job("headers removed") as job:
        job.custom_headers = "X-Token: abc"
        job.custom_headers = None
        assert job.custom_headers is None
        with pytest.raises(qmgr.QmgrError) as raised:
            job.custom_headers = "no colon here"
        assert raised.value.hresult == hresults.E_INVALIDARG
        job.cancel()


def test_security_flags_and_the_notify_command_line_round_trip(manager: qmgr.Manager) -> None:
    with manager.create_job("settings") as job:
        assert job.security_flags == 0
        ignore_host_name = 0x0002  # BG_SSL_IGNORE_CERT_CN_INVALID
        job.security_flags = ignore_host_name
        assert job.security_flags == ignore_host_name
        with pytest.raises(qmgr.QmgrError) as raised:
            job.security_flags = 0x8000_0000
        assert raised.value.hresult == hresults.E_INVALIDARG

        assert job.notify_command_line is None
        job.set_notify_command_line("/bin/true", "true --job")
        assert job.notify_command_line == qmgr.NotifyCommandLine("/bin/true", "true --job")
        job.set_notify_command_line("/bin/true")
        assert job.notify_command_line == qmgr.NotifyCommandLine("/bin/true", None)
        job.set_notify_command_line(None)
        assert job.notify_command_line is None
        job.cancel()


def _expected_reply(uploaded: bytes, length: int) -> bytes:
    """The test server's reply to an upload of ``uploaded`` that asked for ``reply=length``."""
    return bytes(uploaded[i % len(uploaded)] ^ 0x5A for i in range(length))


def test_an_upload_reply_job_hands_over_the_reply_and_saves_it_where_asked(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    source = work / "request.bin"
    uploaded = bytes(range(7, 250)) * 40
    source.write_bytes(uploaded)
    reply_file = work / "reply.bin"
    expected = _expected_reply(uploaded, 5000)
    with manager.create_job("upload-reply", qmgr.JobType.UPLOAD_REPLY) as job:
        with pytest.raises(qmgr.QmgrError) as early:
            job.reply_data  # noqa: B018 - the property's call is the test
        assert early.value.hresult == hresults.BG_E_INVALID_STATE
        assert job.reply_progress.bytes_transferred == 0
        job.reply_file_name = reply_file
        assert job.reply_file_name == str(reply_file)
        job.add_file(server.url("/incoming/python-reply.bin?reply=5000"), source)
        job.resume()
        assert job.wait(timeout=WAIT_SECONDS) is qmgr.JobState.TRANSFERRED, job.error
        assert job.reply_progress == qmgr.ReplyProgress(5000, 5000)
        assert job.reply_data == expected
        job.complete()
    assert reply_file.read_bytes() == expected


def test_reply_settings_of_a_plain_upload_are_refused(
    manager: qmgr.Manager, server: Server, work: Path
) -> None:
    with manager.create_job("plain upload", qmgr.JobType.UPLOAD) as job:
        with pytest.raises(qmgr.QmgrError) as raised:
            job.reply_file_name = work / "reply.bin"
        job.cancel()
    assert raised.value.hresult == hresults.E_NOTIMPL  # as Windows answers for other jobs
    assert raised.value.description


def test_a_client_certificate_is_chosen_by_name_or_hash_read_back_and_removed(
    manager: qmgr.Manager,
) -> None:
    with manager.create_job("client certificate") as job:
        assert job.client_certificate is None
        job.set_client_certificate_by_name("MY", "client.example")
        assert job.client_certificate == qmgr.ClientCertificate(
            qmgr.CertStoreLocation.CURRENT_USER, "MY", bytes(20), "client.example"
        )
        sha1 = bytes(range(1, 21))
        job.set_client_certificate_by_id("Other", sha1, qmgr.CertStoreLocation.LOCAL_MACHINE)
        chosen = job.client_certificate
        assert chosen is not None
        assert chosen.store_location is qmgr.CertStoreLocation.LOCAL_MACHINE
        assert (chosen.store_name, chosen.sha1) == ("Other", sha1)
        with pytest.raises(ValueError):
            job.set_client_certificate_by_id("Other", sha1[:19])
        job.remove_client_certificate()
        assert job.client_certificate is None
        job.cancel()
