"""Service configuration: ``PROVENANCE_*`` environment variables, an optional TOML file, CLI flags.

Settings are built once at start-up and passed down (never imported as a global). Secrets are never
logged; the signing key is read from ``keys_dir`` and must exist, or the service refuses to start.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from provenance import Limits, TrustConfig
from provenance.keys import DevKeyPaths, retired_roots
from provenance.selfcheck import SelfCheck
from provenance.timestamps import Timestamping


class Settings(BaseSettings):
    """Everything the service needs to run."""

    model_config = SettingsConfigDict(env_prefix="PROVENANCE_", extra="forbid", toml_file=None)

    data_dir: Path = Path("var")
    keys_dir: Path = Path("keys")
    #: Extra trust anchors (PEM files); the service's own root (``keys_dir/root.pem``) is always trusted.
    trust_anchors: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    #: SQLAlchemy URL (``PROVENANCE_DATABASE_URL`` or ``DATABASE_URL``); default: SQLite in ``data_dir``.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("database_url", "PROVENANCE_DATABASE_URL", "DATABASE_URL")
    )
    #: RFC 3161 timestamp authority used at every signing (the only host signing may reach).
    tsa_url: str | None = None
    #: True: a stamp fails when the TSA does not answer; False: sign without a timestamp and flag it.
    tsa_required: bool = True
    tsa_timeout: float = 5.0  # seconds
    #: Roots of the timestamp authorities whose timestamps count (colon-separated in the environment).
    tsa_anchors: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    #: Operator's revocation list: serials of signing certificates whose manifests must count as invalid
    #: (one per line, decimal or hex); changing it re-verifies stored items at the next start or reverify.
    revoked_serials_file: Path | None = None
    #: PKCS#11 user PIN when the signing key is on a token (``keys_dir/pkcs11.json``).
    pkcs11_pin: SecretStr | None = None
    #: Seconds a client may take to send a request body (slow uploads are cut off with 408).
    request_body_timeout: float = 60.0
    max_upload_bytes: int = 50 * 1024 * 1024  # bytes
    max_pixels: int = 120_000_000
    #: Requests per minute per API token on authenticated endpoints.
    rate_limit_per_minute: int = 120
    #: Public verify-page posts per minute per client address (verification costs CPU).
    public_verify_per_minute: int = 30
    #: How often the change feed is read (seconds): a changed badge shows everywhere within it (0: no cache).
    badge_cache_seconds: float = 1.0
    #: ``Cache-Control: max-age`` of badge responses, for browsers and CDNs (seconds).
    badge_max_age: int = 60
    #: Badge decisions kept in memory per process (about 400 bytes each); the least recently used go first.
    badge_cache_entries: int = Field(default=250_000, ge=1)
    #: Decisions of the newest images loaded into the badge cache at start (0: none; never more than it holds).
    badge_preload: int = Field(default=100_000, ge=0)

    # Isolation of hostile parsing: every C2PA SDK read or sign of uploaded bytes runs in a worker
    # process with an address-space cap and a deadline of ``parse_timeout + parse_timeout_per_mb * MiB``.
    #: Address-space cap of each parsing worker (bytes).
    parse_max_memory: int = 512 * 1024 * 1024
    #: Deadline of one SDK call on a file of size 0 (seconds).
    parse_timeout: float = 1.0
    #: Deadline added per MiB of input (seconds).
    parse_timeout_per_mb: float = 2.0
    #: Parsing worker processes (per service process); further parses wait for a free worker.
    parse_workers: int = 2
    #: How a stamp re-verifies what it signed: ``cached_chain`` (the SDK re-reads the signature and every hash
    #: of each stamp; the signing chain's trust is decided in full on a signer's first stamp, then at most
    #: hourly, and whenever trust or the chain changes) or ``full`` (trust decided again on every stamp).
    stamp_self_check: SelfCheck = SelfCheck.CACHED_CHAIN

    # Connections (see README "Deployment behind a proxy"; enforced by service/server.py).
    #: Seconds a client may take to send the request line and headers, counted from its connect or from
    #: the end of its previous response; the whole head, not per byte (slow-loris connections are closed).
    header_timeout: float = Field(default=10.0, gt=0)
    #: Open connections per service process; at the cap the connection waiting longest for its headers is
    #: dropped to make room, or the new one is refused (503) when none is waiting. Lowered at start-up when
    #: the open-file limit (``ulimit -n``) cannot hold that many sockets.
    max_connections: int = Field(default=4096, ge=1)
    #: Seconds an idle keep-alive connection stays open.
    keep_alive_timeout: float = Field(default=5.0, gt=0)
    #: Addresses (or CIDR networks) of reverse proxies whose ``X-Forwarded-For``/``-Proto`` are believed;
    #: empty: those headers are ignored and the peer address is the client (comma-separated).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    #: Absolute base of the links in responses (``https://provenance.example.org``); never taken from the
    #: request's ``Host`` header. Unset: links are absolute paths (``/v1/assets/…``).
    public_base_url: str | None = None
    #: Audit rows written per minute (per process) for refused requests (missing or bad token, wrong role);
    #: beyond, they are counted and one summary row per minute records how many were left out.
    audit_refusals_per_minute: int = 20
    #: Collect orphan blobs and temporary files of interrupted uploads at start-up (best-effort: skipped when
    #: the blob store stays busy; ``provenance gc`` does the same at any time).
    gc_at_startup: bool = True

    # Observation (service/ops/): JSON log lines on standard error, Prometheus metrics.
    #: Lowest level of the diagnostic log lines written (the request lines are switched by ``access_log``).
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    #: One JSON line per request (request id, route, status, duration, token name).
    access_log: bool = True
    #: ``host:port`` of a separate listener that serves only ``GET /metrics`` (the main port then answers
    #: 404 there); bind it to an address only the scraper reaches. Unset: ``/metrics`` on the main port.
    metrics_bind: str | None = None
    #: Set: ``/metrics`` (on either listener) answers only ``Authorization: Bearer <metrics_token>``.
    metrics_token: SecretStr | None = None

    # Auditors in a browser (service/security/sessions.py): sign-in sessions and signed report links.
    #: HMAC key of session cookies, CSRF tokens and signed report links; every process and worker serving
    #: one deployment must share it. Unset: a random key created once in ``data_dir/session.key`` (0600).
    session_secret: SecretStr | None = None
    #: Seconds a browser sign-in lasts (then the auditor signs in again).
    session_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 86400)
    #: Seconds a signed report link stays valid after it is minted.
    report_link_seconds: int = Field(default=15 * 60, ge=60, le=7 * 86400)

    # Object storage (service/store/): where blobs live; SQLite + local files stay the embedded default.
    #: Where blobs live: ``local`` (fsynced files under ``data_dir/blobs``, one host) or ``s3`` (an
    #: S3-compatible bucket shared by every host; credentials from the usual ``AWS_*`` variables or files).
    blob_store: Literal["local", "s3"] = "local"
    #: Bucket of the ``s3`` store (required with it; start-up checks it answers ``HeadBucket``).
    s3_bucket: str | None = None
    #: Prefix of every key in the bucket (e.g. ``provenance/``); keys are ``<prefix><aa>/<rest of sha256>``.
    s3_prefix: str = ""
    #: Endpoint of an S3-compatible server (MinIO, R2, Ceph RGW: ``https://host:port``). Unset: AWS S3.
    s3_endpoint_url: str | None = None
    #: Region of the bucket. Unset: boto3's own (``AWS_REGION``/``AWS_DEFAULT_REGION``, the config file).
    s3_region: str | None = None
    #: Public content, article texts and detached manifests: ``stream`` (the service sends the bytes) or
    #: ``redirect`` (307 to a presigned URL of the bucket; needs ``blob_store = "s3"``, refused otherwise).
    content_delivery: Literal["stream", "redirect"] = "stream"
    #: Seconds a presigned download URL stays valid (redirects are cached for at most half of it).
    presigned_url_seconds: int = Field(default=300, ge=10, le=7 * 86400)
    #: Seconds an unreferenced object of the ``s3`` store is kept before ``gc`` removes it (no lock spans
    #: hosts: an upload in progress has PUT objects no row references yet). At least the longest an upload
    #: can take (``request_body_timeout`` + the parse deadline of ``max_upload_bytes`` + 600 s of PUTs).
    gc_grace_seconds: float = 3600.0

    @field_validator("s3_bucket")
    @classmethod
    def _check_s3_bucket(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}", value):
            raise ValueError("s3_bucket: want a bucket name (letters, digits, '.', '-', '_'), not a URL or path")
        return value

    @field_validator("s3_prefix")
    @classmethod
    def _check_s3_prefix(cls, value: str) -> str:
        if value.startswith("/") or len(value) > 512 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("s3_prefix: no leading '/', no control characters, at most 512 characters")
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _check_s3_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s?#]*)?", value):
            raise ValueError("s3_endpoint_url: want http(s)://host[:port] (no credentials, query or fragment)")
        return value

    # Background jobs (service/jobs/): re-verification, webhook delivery, garbage collection.
    #: PostgreSQL: also run background jobs in a worker thread of each serve process (SQLite always does;
    #: PostgreSQL otherwise leaves them to ``provenance worker`` processes).
    jobs_in_process: bool = False
    #: Stored items re-verified per ``reverify_batch`` job (one transaction each).
    reverify_batch_size: int = Field(default=500, ge=1, le=10_000)
    #: Seconds between a worker's heartbeats.
    job_heartbeat_seconds: float = Field(default=10.0, gt=0)
    #: Seconds without a heartbeat after which a worker counts as dead and its running jobs are retried
    #: by another worker (keep it a few heartbeats long).
    job_stalled_seconds: float = Field(default=30.0, gt=0)
    #: Attempts of a job that fails (an error, not a dead worker) before it stays ``failed``.
    job_attempts: int = Field(default=5, ge=1)

    # Purge webhook (service/badges/webhooks.py): called whenever an item's badge changes.
    #: ``http(s)://`` URL POSTed a signed JSON list of changed items (for a CDN purge or the CMS); never
    #: redirected. Unset: no webhook (and no network use for it).
    webhook_url: str | None = None
    #: HMAC-SHA256 key of the ``X-Provenance-Signature`` header (at least 16 characters); required with
    #: ``webhook_url``.
    webhook_secret: SecretStr | None = None
    #: Seconds one webhook call may take in all (connect, send, answer); then it fails and is retried.
    webhook_timeout: float = Field(default=5.0, gt=0, le=60)

    # Soft bindings (service/resolver/): the fingerprint index and the Soft Binding Resolution API.
    #: Public fingerprint lookups (``/matches/...``, ``POST /v1/badges/match``) per minute per client address,
    #: shared by every process of the deployment.
    match_per_minute: int = Field(default=60, ge=1)
    #: Largest image or text (bytes) ``POST /matches/byContent`` and ``POST /v1/badges/match`` fingerprint.
    match_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)

    # Signed renditions (service/renditions/): resized copies stamped with the original as ingredient.
    #: Widths (pixels) a rendition may be asked for (``GET /v1/assets/{id}/renditions/{width}.{jpg|webp}``;
    #: any other width is a 404): what a public GET can make the service sign is bounded by these. Default:
    #: WordPress's image sub-sizes (comma-separated in the environment).
    rendition_widths: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [150, 300, 768, 1024, 1536, 2048], min_length=1, max_length=32
    )
    #: JPEG and WebP quality of renditions (Pillow's scale, 1-100).
    rendition_quality: int = Field(default=82, ge=1, le=100)

    # The transparency log (service/log/): every stamp, version, rendition, withdrawal and reinstatement.
    #: Seconds between two sequencing rounds of a process (each process tries; one at a time sequences): an
    #: acknowledged event is in a signed checkpoint within about this long (a commit in this process wakes
    #: its sequencer, which starts its round ``log_gather_seconds`` later).
    log_sequence_seconds: float = Field(default=1.0, gt=0, le=60)
    #: Seconds a sequencer woken by a commit of its process waits before its round, so that the commits of
    #: that moment share one round: one log transaction and one signed checkpoint for all of them, not one
    #: per upload (0: a round per commit).
    log_gather_seconds: float = Field(default=0.25, ge=0, le=5)
    #: Most events one sequencing round puts in the log (the rest wait for the next round, which follows
    #: at once).
    log_batch: int = Field(default=4096, ge=1, le=65536)

    @field_validator("rendition_widths", mode="before")
    @classmethod
    def _split_widths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.replace(" ", ",").split(",") if p.strip()]
        return value

    @field_validator("rendition_widths")
    @classmethod
    def _check_widths(cls, value: list[int]) -> list[int]:
        if any(not 16 <= width <= 8192 for width in value):
            raise ValueError("rendition_widths: each width is between 16 and 8192 pixels")
        return sorted(set(value))

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit  # only here: the one setting that is a URL to call

        if value is None:
            return None
        try:
            url = urlsplit(value)
            port_ok = url.port is None or url.port > 0
        except ValueError:
            url, port_ok = None, False
        if url is None or url.scheme not in ("http", "https") or not url.hostname or not port_ok:
            raise ValueError("webhook_url: want an http:// or https:// URL with a host, like https://cms.example/purge")
        if url.username is not None or url.password is not None or url.fragment:
            raise ValueError("webhook_url: no credentials or fragment in the URL (the signature authenticates)")
        if len(value) > 2000 or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("webhook_url: at most 2000 characters, no spaces or control characters")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("webhook_secret: want at least 16 characters")
        return value

    @model_validator(mode="after")
    def _check_together(self) -> Settings:
        """Settings that only make sense with others (refused at start-up, where the operator sees it)."""
        if self.blob_store == "s3" and self.s3_bucket is None:
            raise ValueError("s3_bucket: required when blob_store is s3 (PROVENANCE_S3_BUCKET)")
        if self.content_delivery == "redirect" and self.blob_store != "s3":
            raise ValueError("content_delivery: redirect needs blob_store = s3 (local blobs have no URL to send)")
        parse = self.parse_timeout + self.parse_timeout_per_mb * self.max_upload_bytes / (1024 * 1024)
        longest = self.request_body_timeout + parse + 600.0
        if self.gc_grace_seconds < longest:
            raise ValueError(f"gc_grace_seconds: at least {longest:.0f} s, the longest an upload can take")
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("webhook_secret: required when webhook_url is set (receivers check the signature)")
        return self

    @field_validator("trust_anchors", "tsa_anchors", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [Path(p) for p in value.split(":") if p]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_addresses(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p.strip() for p in value.replace(" ", ",").split(",") if p.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_addresses(cls, value: list[str]) -> list[str]:
        # uvicorn would silently treat a malformed entry (or "10.0.0.1/8") as a name that never matches,
        # and "*" as "everyone": refuse both here, where the operator sees it.
        checked = []
        for entry in value:
            try:
                checked.append(str(ipaddress.ip_network(entry) if "/" in entry else ipaddress.ip_address(entry)))
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {exc} (want an IP address or a network like 10.0.0.0/8)") from None
        return checked

    @field_validator("metrics_bind")
    @classmethod
    def _check_bind(cls, value: str | None) -> str | None:
        if value is not None:
            host_port(value)  # refused at start-up, not at the first scrape
        return value

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """``metrics_bind`` as (host, port), or ``None``."""
        return host_port(self.metrics_bind) if self.metrics_bind else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        toml_file = settings_cls.model_config.get("toml_file")
        if toml_file:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file),)
        return sources

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'provenance.sqlite3'}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def key_paths(self) -> DevKeyPaths:
        return DevKeyPaths.in_dir(self.keys_dir)

    def trust(self) -> TrustConfig:
        """The service's trust: its own roots (active and retired identities) plus the configured anchors,
        minus revoked signers."""
        trust = TrustConfig.from_files([self.key_paths.root_cert, *retired_roots(self.keys_dir), *self.trust_anchors])
        if self.tsa_anchors:
            trust = trust.with_tsa_anchors(self.tsa_anchors)
        return trust.with_revocations(self.revoked_serials_file) if self.revoked_serials_file else trust

    def timestamping(self) -> Timestamping | None:
        if not self.tsa_url:
            return None
        return Timestamping(self.tsa_url, required=self.tsa_required, timeout=self.tsa_timeout)

    @property
    def limits(self) -> Limits:
        return Limits(
            max_bytes=self.max_upload_bytes,
            max_pixels=self.max_pixels,
            parse_max_memory=self.parse_max_memory,
            parse_timeout=self.parse_timeout,
            parse_timeout_per_mb=self.parse_timeout_per_mb,
            parse_workers=self.parse_workers,
        )


def load_settings(toml_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from (highest first) ``overrides``, the environment, then ``toml_file``."""
    cls: type[Settings] = Settings
    if toml_file is not None:
        cls = type("FileSettings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": toml_file}})
    return cls(**{k: v for k, v in overrides.items() if v is not None})


def host_port(bind: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as (host, port); raises ``ValueError`` naming the setting."""
    host, sep, port = bind.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics_bind: want host:port (e.g. 127.0.0.1:9100), not {bind!r}")
    return host, int(port)
