"""External ids never reach the logs (issue 12): Django's request logging and the access log show a
keyed hash of the id instead, the same for the same viewer."""
import logging

import pytest

from campaigns.log_privacy import ExternalIdFilter, external_id_hash, redact_external_ids

pytestmark = pytest.mark.django_db

SECRET_ID = "carol-9"


def test_the_hash_is_keyed_stable_and_hides_the_id(settings):
    token = external_id_hash(SECRET_ID)
    assert token.startswith("h:") and SECRET_ID not in token
    assert external_id_hash(SECRET_ID) == token == external_id_hash("carol%2D9")  # percent-encoding aside
    assert external_id_hash("dave-1") != token
    settings.SECRET_KEY = "another-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
    assert external_id_hash(SECRET_ID) != token


def test_paths_and_queries_are_redacted():
    line = ('127.0.0.1 - - "GET /api/v1/campaigns/3/clip?profile=carol-9&x=1 HTTP/1.1" 200 | '
            '"DELETE /api/v1/profiles/carol-9 HTTP/1.1" | /api/v1/campaigns/3/vast?a=1&profile=carol-9')
    redacted = redact_external_ids(line)
    assert SECRET_ID not in redacted
    token = external_id_hash(SECRET_ID)
    assert redacted.count(token) == 3
    assert "/api/v1/profiles/" + token + " HTTP/1.1" in redacted and "&x=1" in redacted


def test_django_not_found_log_shows_the_hash(serve_client, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    response = serve_client.get(f"/api/v1/profiles/{SECRET_ID}")
    assert response.status_code == 404
    lines = [record.getMessage() for record in caplog.records if record.name == "django.request"]
    assert lines == [f"Not Found: /api/v1/profiles/{external_id_hash(SECRET_ID)}"]
    assert SECRET_ID not in caplog.text


def test_bad_request_log_on_the_clip_query_shows_the_hash(serve_client, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    serve_client.get(f"/api/v1/campaigns/999999/clip?profile={SECRET_ID}")
    serve_client.get("/api/v1/profiles/bad%20id%20carol-9")
    assert caplog.records and SECRET_ID not in caplog.text


def test_access_log_records_show_the_hash(caplog):
    """gunicorn's access logger formats its line from a dict of atoms; the filter sees the result."""
    caplog.set_level(logging.INFO, logger="gunicorn.access")
    logging.getLogger("gunicorn.access").info('%(h)s "%(r)s" %(s)s', {
        "h": "10.0.0.1", "r": f"GET /api/v1/campaigns/1/clip?profile={SECRET_ID} HTTP/1.1", "s": "200"})
    assert caplog.records[-1].getMessage() == (
        f'10.0.0.1 "GET /api/v1/campaigns/1/clip?profile={external_id_hash(SECRET_ID)} HTTP/1.1" 200')


def test_the_console_handler_filters_every_logger():
    from django.conf import settings

    assert settings.LOGGING["handlers"]["console"]["filters"] == ["external_ids"]
    record = logging.LogRecord("campaigns.anything", logging.ERROR, __file__, 1,
                               "unhandled error on %s %s", ("GET", f"/api/v1/profiles/{SECRET_ID}"), None)
    assert ExternalIdFilter().filter(record) and SECRET_ID not in record.getMessage()


@pytest.mark.slow
def test_gunicorn_access_log_shows_the_hash():
    """The real thing: gunicorn's access log of a request that names a viewer in the path and query."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "adplatform.settings_test"}
    server = subprocess.Popen([str(gunicorn), "adplatform.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "1",
                               "--graceful-timeout", "5", "--access-logfile", "-"], cwd=root, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=30)
                break
            except OSError:  # not listening yet
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.3)
        for path in (f"/api/v1/campaigns/1/clip?profile={SECRET_ID}", f"/api/v1/profiles/{SECRET_ID}"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert f"profile={external_id_hash(SECRET_ID)}" in output, output
    assert f"/api/v1/profiles/{external_id_hash(SECRET_ID)}" in output, output
    assert SECRET_ID not in output
