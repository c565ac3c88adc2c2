"""Auditors in a browser, through the real server: sign-in sessions (cookie flags, CSRF, expiry, sign-out,
revocation), signed report links (expiry, tampering, another path, revocation) and role checks.

The server shares its session key with the test (``PROVENANCE_SESSION_SECRET``), so a test can sign a
session or link that has already expired (nothing waits for a clock); 127.0.0.1 is a trusted proxy, so
``X-Forwarded-Proto: https`` makes a request count as HTTPS.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from provenance.keys import init_dev_keys
from service.security import sessions
from service.settings import Settings, load_settings
from service.store.db import ServiceState

from . import images
from .databases import Database
from .server_support import Server, create_token, serve
from .service_support import running, service_settings

SECRET = "a shared session secret for the tests, 40+ characters long"
HTML = {"Accept": "text/html"}
HTTPS = {"X-Forwarded-Proto": "https"}


@dataclass
class Site:
    server: Server
    tokens: dict[str, str]
    assets: list[str]  # two stamped images
    settings: Settings  # what the server runs with, as far as signing goes

    def url(self, path: str) -> str:
        return self.server.base + path

    def report(self, index: int = 0) -> str:
        return f"/v1/assets/{self.assets[index]}/report"


@pytest.fixture(scope="module")
def site(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("sessions")
    keys, data = root / "keys", root / "var"
    init_dev_keys(keys, "Session Newsroom")
    env = {
        "PROVENANCE_SESSION_SECRET": SECRET,
        "PROVENANCE_TRUSTED_PROXIES": "127.0.0.1",
        "PROVENANCE_PUBLIC_VERIFY_PER_MINUTE": "1000",
    }
    with serve(database, data, keys, env=env) as server:
        tokens = {role: create_token(server, role) for role in ("newsroom", "auditor", "admin")}
        assets = []
        for seed in (31, 32):
            response = httpx.post(
                f"{server.base}/v1/assets",
                headers={"Authorization": f"Bearer {tokens['newsroom']}"},
                files={"file": ("a.jpg", images.jpeg(seed=seed), "image/jpeg")},
                data={"declaration": json.dumps({"source": "ai_generated", "title": f"Picture {seed}"})},
                timeout=30,
            )
            assert response.status_code == 201, response.text
            assets.append(response.json()["id"])
        yield Site(server, tokens, assets, load_settings(data_dir=data, keys_dir=keys, session_secret=SECRET))


def set_cookies(response: httpx.Response) -> dict[str, tuple[str, set[str]]]:
    """Each Set-Cookie of ``response`` by name: its value and its attributes (lower case, ``name=value``)."""
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        cookies[name] = (value, {a.lower() for a in attributes})
    return cookies


def sign_in_form(site: Site, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """GET /signin: the CSRF cookie's value and the form's CSRF token."""
    form = httpx.get(site.url("/signin"), headers=headers or {}, timeout=10)
    assert form.status_code == 200
    nonce = set_cookies(form)[sessions.CSRF_COOKIE][0]
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert match, form.text
    return nonce, match.group(1)


def sign_in(
    site: Site, token: str, *, next_path: str = "/signin", headers: dict[str, str] | None = None
) -> httpx.Response:
    nonce, csrf = sign_in_form(site, headers)
    return httpx.post(
        site.url("/signin"),
        data={"csrf": csrf, "token": token, "next": next_path},
        headers={**(headers or {}), "Cookie": f"{sessions.CSRF_COOKIE}={nonce}"},
        timeout=10,
    )


def session_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    cookies = set_cookies(response)
    name = next(n for n in cookies if n in (sessions.COOKIE, sessions.SECURE_COOKIE))
    return f"{name}={cookies[name][0]}"


def get(site: Site, path: str, cookie: str | None = None, **headers: str) -> httpx.Response:
    return httpx.get(site.url(path), headers={**headers, **({"Cookie": cookie} if cookie else {})}, timeout=30)


# --------------------------------------------------------------------------------------------------
# Sign-in: the cookie and its flags
# --------------------------------------------------------------------------------------------------


def test_sign_in_form_sets_a_strict_http_only_csrf_cookie(site: Site) -> None:
    form = httpx.get(site.url("/signin"), timeout=10)
    value, flags = set_cookies(form)[sessions.CSRF_COOKIE]
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain HTTP
    assert form.headers["cache-control"] == "no-store"
    assert form.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in form.text
    assert value not in form.text  # the page carries the HMAC of the nonce, never the nonce itself


def test_sign_in_exchanges_the_token_for_a_session_cookie(site: Site) -> None:
    token = site.tokens["auditor"]
    response = sign_in(site, token, next_path=site.report())
    assert response.headers["location"] == site.report()
    value, flags = set_cookies(response)[sessions.COOKIE]
    assert {"httponly", "samesite=strict", "path=/", f"max-age={site.settings.session_seconds}"} <= flags
    assert "secure" not in flags
    assert token not in value
    assert token.removeprefix("pv_")[:20] not in value
    assert not any("domain" in f for f in flags)
    cookie = session_of(response)
    page = get(site, site.report(), cookie, **HTML)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "auditor test (auditor)" in page.text  # who is signed in
    assert get(site, site.report(), cookie).json()["id"] == site.assets[0]  # JSON with the session too


def test_over_https_the_session_cookie_is_secure_and_host_prefixed(site: Site) -> None:
    form = httpx.get(site.url("/signin"), headers=HTTPS, timeout=10)
    assert "secure" in set_cookies(form)[sessions.CSRF_COOKIE][1]
    response = sign_in(site, site.tokens["auditor"], next_path=site.report(), headers=HTTPS)
    cookies = set_cookies(response)
    assert sessions.COOKIE not in cookies
    _value, flags = cookies[sessions.SECURE_COOKIE]
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags
    assert get(site, site.report(), session_of(response), **HTML, **HTTPS).status_code == 200


@pytest.mark.parametrize(
    ("role", "status", "word"),
    [("newsroom", 403, "does not have the auditor role"), ("admin", 303, "")],
    ids=["newsroom token: refused", "admin token: admitted"],
)
def test_sign_in_roles(site: Site, role: str, status: int, word: str) -> None:
    response = sign_in(site, site.tokens[role])
    assert response.status_code == status
    if status == 303:
        assert sessions.COOKIE in set_cookies(response)
    else:
        assert word in response.text
        assert sessions.COOKIE not in set_cookies(response)


@pytest.mark.parametrize(
    "token", ["pv_" + "A" * 43, "not a token", "", "pv_" + "x" * 300], ids=["unknown", "garbage", "empty", "long"]
)
def test_sign_in_with_a_bad_token_is_refused(site: Site, token: str) -> None:
    response = sign_in(site, token)
    assert response.status_code == 401
    assert "This token is not valid" in response.text
    assert sessions.COOKIE not in set_cookies(response)
    assert "Traceback" not in response.text


# --------------------------------------------------------------------------------------------------
# CSRF: the sign-in form (login CSRF) and the sign-out form
# --------------------------------------------------------------------------------------------------

CSRF_CASES: dict[str, Callable[[str, str], tuple[dict[str, str], dict[str, str]]]] = {
    # (nonce of the form's cookie, the form's token) -> (form fields, extra headers)
    "no CSRF cookie (a cross-site post)": lambda nonce, csrf: ({"csrf": csrf}, {}),
    "no CSRF field": lambda nonce, csrf: ({}, {"Cookie": f"{sessions.CSRF_COOKIE}={nonce}"}),
    "field of another form": lambda nonce, csrf: (
        {"csrf": csrf[:-2] + ("AA" if csrf[-2:] != "AA" else "BB")},
        {"Cookie": f"{sessions.CSRF_COOKIE}={nonce}"},
    ),
    "cookie of another form": lambda nonce, csrf: (
        {"csrf": csrf},
        {"Cookie": f"{sessions.CSRF_COOKIE}={sessions.new_csrf_nonce()}"},
    ),
}


@pytest.mark.parametrize("case", CSRF_CASES.values(), ids=list(CSRF_CASES))
def test_sign_in_without_its_csrf_token_is_refused(
    site: Site, case: Callable[[str, str], tuple[dict[str, str], dict[str, str]]]
) -> None:
    nonce, csrf = sign_in_form(site)
    fields, headers = case(nonce, csrf)
    response = httpx.post(
        site.url("/signin"), data={**fields, "token": site.tokens["auditor"]}, headers=headers, timeout=10
    )
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    assert sessions.COOKIE not in set_cookies(response)


def test_sign_out_needs_its_csrf_token_and_ends_the_session_on_the_server(site: Site) -> None:
    cookie = session_of(sign_in(site, site.tokens["auditor"]))
    page = get(site, "/signin", cookie)
    assert "Signed in as auditor test" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    refused = httpx.post(site.url("/signout"), data={"csrf": "forged"}, headers={"Cookie": cookie}, timeout=10)
    assert refused.status_code == 403
    assert get(site, site.report(), cookie, **HTML).status_code == 200  # still signed in
    done = httpx.post(site.url("/signout"), data={"csrf": csrf.group(1)}, headers={"Cookie": cookie}, timeout=10)
    assert done.status_code == 303
    assert done.headers["location"] == "/signin?why=signed-out"
    value, flags = set_cookies(done)[sessions.COOKIE]
    assert value in ("", '""')
    assert "max-age=0" in flags
    replayed = get(site, site.report(), cookie, **HTML)  # a copy of the cookie kept after sign-out
    assert replayed.status_code == 303
    assert parse_qs(urlsplit(replayed.headers["location"]).query)["why"] == ["expired"]


# --------------------------------------------------------------------------------------------------
# Sessions that must not open a report
# --------------------------------------------------------------------------------------------------


def test_a_browser_without_a_session_is_sent_to_sign_in_and_back(site: Site) -> None:
    response = get(site, site.report(), **HTML)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/signin"
    assert parse_qs(location.query) == {"next": [site.report()]}
    form = get(site, response.headers["location"])
    assert f'name="next" value="{site.report()}"' in form.text
    # An API client gets the 401 problem, as before.
    api = get(site, site.report())
    assert api.status_code == 401
    assert api.headers["content-type"] == "application/problem+json"


def test_sign_in_never_redirects_off_site(site: Site) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        response = sign_in(site, site.tokens["auditor"], next_path=target)
        assert response.headers["location"] == "/signin", target


def _session_refused(site: Site, cookie: str) -> None:
    page = get(site, site.report(), cookie, **HTML)
    assert page.status_code == 303
    assert parse_qs(urlsplit(page.headers["location"]).query)["why"] == ["expired"]
    assert get(site, site.report(), cookie).status_code == 401


def test_an_expired_or_forged_session_is_refused(site: Site) -> None:
    live = session_of(sign_in(site, site.tokens["auditor"]))
    name, _, value = live.partition("=")
    token_id = int(value.split(".")[1])
    expired = sessions.sign_session(site.settings, token_id, int(time.time()) - 1)
    _session_refused(site, f"{name}={expired}")
    other_key = load_settings(data_dir=site.settings.data_dir, keys_dir=site.settings.keys_dir, session_secret="x" * 40)
    _session_refused(site, f"{name}={sessions.sign_session(other_key, token_id, int(time.time()) + 600)}")
    later = value.split(".")
    later[2] = str(int(later[2]) + 3600)  # a longer session than was granted
    _session_refused(site, f"{name}={'.'.join(later)}")
    unknown_id = token_id + 100  # no such token
    _session_refused(site, f"{name}={sessions.sign_session(site.settings, unknown_id, int(time.time()) + 600)}")


def test_revoking_the_token_ends_its_sessions_and_links(site: Site) -> None:
    token = site.server.command("tokens", "create", "--role", "auditor", "--name", "soon revoked").stdout.strip()
    cookie = session_of(sign_in(site, token))
    link = mint(site, token)
    assert get(site, site.report(), cookie, **HTML).status_code == 200
    assert get(site, link, **HTML).status_code == 200
    site.server.command("tokens", "revoke", "--name", "soon revoked")
    _session_refused(site, cookie)
    assert get(site, link, **HTML).status_code == 303
    assert get(site, link).status_code == 401


# --------------------------------------------------------------------------------------------------
# Signed report links
# --------------------------------------------------------------------------------------------------


def mint(site: Site, token: str, index: int = 0) -> str:
    """A signed link to asset ``index``'s report, minted with ``token`` (its path and query)."""
    response = httpx.post(
        site.url(f"/v1/assets/{site.assets[index]}/report-link"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    url = urlsplit(body["url"])
    assert url.path == site.report(index)
    expires = body["expires_at"]
    assert 0 < _epoch(expires) - time.time() <= site.settings.report_link_seconds
    return f"{url.path}?{url.query}"


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def test_a_signed_link_opens_its_report_without_a_token(site: Site) -> None:
    link = mint(site, site.tokens["auditor"])
    page = get(site, link, **HTML)
    assert page.status_code == 200, page.text
    assert "Shared link, valid until" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "private, no-store"
    assert get(site, link).json()["id"] == site.assets[0]  # and its JSON
    download = re.search(r'href="([^"]+format=json[^"]*)"', page.text)
    assert download
    report = get(site, download.group(1).replace("&amp;", "&"))
    assert report.status_code == 200
    assert report.headers["content-disposition"] == f'attachment; filename="{site.assets[0]}-report.json"'
    assert report.json()["verification"]["labels"] == ["ai_generated"]


def _link_refused(site: Site, path_and_query: str) -> None:
    page = get(site, path_and_query, **HTML)
    assert page.status_code == 303, page.text
    assert parse_qs(urlsplit(page.headers["location"]).query)["why"] == ["link"]
    api = get(site, path_and_query)
    assert api.status_code == 401
    assert api.headers["content-type"] == "application/problem+json"


LINK_TAMPERING: dict[str, Callable[[str, Site], str]] = {
    "another asset's report": lambda link, site: link.replace(site.assets[0], site.assets[1]),
    "expiry moved later": lambda link, site: re.sub(
        r"l1\.(\d+)\.(\d+)\.", lambda m: f"l1.{m.group(1)}.{int(m.group(2)) + 3600}.", link
    ),
    "another token's id": lambda link, site: re.sub(r"l1\.(\d+)\.", lambda m: f"l1.{int(m.group(1)) + 1}.", link),
    "signature changed": lambda link, site: link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"),
    "signature cut": lambda link, site: link[:-1],
    "not a link at all": lambda link, site: site.report() + "?link=" + "x" * 80,
}


@pytest.mark.parametrize("tamper", LINK_TAMPERING.values(), ids=list(LINK_TAMPERING))
def test_a_tampered_link_is_refused(site: Site, tamper: Callable[[str, Site], str]) -> None:
    link = mint(site, site.tokens["auditor"])
    assert get(site, link, **HTML).status_code == 200
    _link_refused(site, tamper(link, site))


def test_an_expired_link_is_refused(site: Site) -> None:
    link = mint(site, site.tokens["auditor"])
    token_id = int(re.search(r"l1\.(\d+)\.", link).group(1))  # type: ignore[union-attr]
    expired = sessions.sign_link(site.settings, site.report(), token_id, int(time.time()) - 1)
    _link_refused(site, f"{site.report()}?link={expired.value}")
    # Signed with the right key for a later time, it opens: only the expiry made the difference.
    valid = sessions.sign_link(site.settings, site.report(), token_id, int(time.time()) + 60)
    assert get(site, f"{site.report()}?link={valid.value}", **HTML).status_code == 200


def test_a_link_does_not_open_other_pages(site: Site) -> None:
    link = mint(site, site.tokens["auditor"])
    query = urlsplit(link).query
    other = get(site, f"{site.report(1)}?{query}")
    assert other.status_code == 401
    # Minting needs an auditor (or admin) token; a session or a link does not mint.
    response = httpx.post(site.url(f"/v1/assets/{site.assets[0]}/report-link?{query}"), timeout=10)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 401), ("newsroom", 403), ("auditor", 201), ("admin", 201)],
    ids=["no token", "newsroom", "auditor", "admin"],
)
def test_minting_a_link_is_for_auditors(site: Site, role: str | None, status: int) -> None:
    headers = {"Authorization": f"Bearer {site.tokens[role]}"} if role else {}
    response = httpx.post(site.url(f"/v1/assets/{site.assets[0]}/report-link"), headers=headers, timeout=10)
    assert response.status_code == status, response.text
    unknown = httpx.post(site.url("/v1/assets/img_000000000000000000000000/report-link"), headers=headers, timeout=10)
    assert unknown.status_code == (404 if status == 201 else status)


SIGN_IN_ANOTHER_PROCESS = (
    "import sys; from pathlib import Path; from service.security import sessions; "
    "from service.settings import load_settings; "
    "s = load_settings(data_dir=Path(sys.argv[1]), keys_dir=Path(sys.argv[2])); "
    "print(sessions.sign_link(s, '/v1/assets/x/report', 1, 2_000_000_000).value)"
)


def test_the_session_key_file_is_private_and_shared(tmp_path: Path) -> None:
    """Without a configured secret, the key is made once in the data directory, mode 0600, and every
    process reading that directory signs with it."""
    settings = load_settings(data_dir=tmp_path / "var", keys_dir=tmp_path / "keys")
    link = sessions.sign_link(settings, "/v1/assets/x/report", 1, 2_000_000_000)
    key_file = tmp_path / "var" / sessions.KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(bytes.fromhex(key_file.read_text())) == 32
    another_process = subprocess.run(
        [sys.executable, "-c", SIGN_IN_ANOTHER_PROCESS, str(tmp_path / "var"), str(tmp_path / "keys")],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert another_process.stdout.strip() == link.value
    other = load_settings(data_dir=tmp_path / "other", keys_dir=tmp_path / "keys")
    assert sessions.sign_link(other, "/v1/assets/x/report", 1, 2_000_000_000).value != link.value


def test_cookies_are_secure_when_the_service_is_published_on_https(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    settings = service_settings(tmp_path / "var", keys_dir, database, public_base_url="https://news.example")
    with running(settings) as svc:
        form = svc.client.get("/signin")
        nonce = set_cookies(form)[sessions.CSRF_COOKIE][0]
        assert "secure" in set_cookies(form)[sessions.CSRF_COOKIE][1]
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf
        response = svc.client.post(
            "/signin",
            data={"csrf": csrf.group(1), "token": svc.tokens["auditor"]},
            headers={"Cookie": f"{sessions.CSRF_COOKIE}={nonce}"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        _value, flags = set_cookies(response)[sessions.SECURE_COOKIE]
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags


def test_signing_out_forgets_the_records_of_sessions_that_have_expired_anyway(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    settings = service_settings(tmp_path / "var", keys_dir, database)
    with running(settings) as svc, svc.session() as db:
        expired = [f"{sessions._ENDED}{n:012d}:old{n}" for n in (100, 200)]
        db.add_all(ServiceState(key=key, value=key.split(":")[1].lstrip("0")) for key in expired)
        db.commit()
        value = sessions.sign_session(settings, svc.token_id("auditor"), int(time.time()) + 3600)
        sid = value.split(".")[3]
        assert sessions.sign_out(settings, db, value, sessions.csrf_token(settings, sid))
        db.commit()
        left = [row.key for row in db.query(ServiceState).filter(ServiceState.key.startswith(sessions._ENDED))]
        assert len(left) == 1  # this sign-out's own record: the expired ones are gone
        assert left[0].endswith(sid)
        assert sessions.session_viewer(settings, db, value) is None  # and the session stays ended
