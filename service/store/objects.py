"""Content-addressed blobs in S3-compatible object storage (AWS S3, MinIO, Cloudflare R2, Ceph RGW), through boto3.

Invariants:

- **Stored before referenced.** :meth:`PendingObject.commit` returns only after ``PutObject`` has returned:
  the row that points at an object commits after the object is in the bucket. Every ``PutObject`` carries
  the blob's ``ChecksumSHA256``, so the server itself refuses bytes damaged on the way (and stores the
  checksum, which reads then ask it to check: ``ChecksumMode=ENABLED``).
- **Nothing from the request reaches a key.** Keys are ``<prefix><aa>/<the other 62 hex digits>`` of the
  sha256 the service computed (:meth:`ObjectStore.key`).
- **Every write is a PUT, even of an object already stored.** Content-addressed, so the PUT is idempotent;
  and it renews the object's ``LastModified``, which is what the collector's grace period counts from
  (:mod:`service.store.gc`): an object an upload is about to reference is never an old one.
- **Refusals are clear.** An unreachable endpoint, a timeout, a refusal (credentials, policy, a missing
  bucket) raise :class:`~service.store.errors.StorageUnavailableError` (503, ``Retry-After``); a server
  out of space or over a quota raises :class:`~service.store.errors.StorageFullError` (507).

There is no lock between hosts: a staged blob is held in memory and PUT at its commit, so a refused upload
leaves nothing in the bucket; a crash between a PUT and the row's commit leaves an orphan that the
collector removes once it is older than ``gc_grace_seconds``.

One boto3 client is made per store and shared by every thread (botocore clients are thread-safe; sessions
are not, so the session that makes the client is used once). Credentials come from boto3's usual chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, the shared files,
an instance or task role), never from the service's own settings.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from provenance import ConfigurationError
from service.store.blobs import Probe
from service.store.errors import StorageError, StorageFullError, StorageUnavailableError

if TYPE_CHECKING:
    from service.settings import Settings

log = logging.getLogger("provenance.service")

_HEX64 = re.compile(r"[0-9a-f]{64}")

#: Seconds to open a connection to the endpoint, and to wait for each read from it (a 50 MB PUT on a slow
#: link sends for longer than this, but no single socket operation blocks this long on a healthy server).
CONNECT_TIMEOUT: Final = 5.0
READ_TIMEOUT: Final = 30.0
#: Attempts per call, first included (botocore's "standard" mode: retries throttling, 5xx and connection
#: errors with exponential backoff and jitter). One call takes at most about 3 x (5 + 30) s plus backoff.
MAX_ATTEMPTS: Final = 3
#: Connections kept to the endpoint per process (request threads, the blob writer threads, the collector).
MAX_POOL_CONNECTIONS: Final = 32
#: Seconds a readiness probe's answer is reused (a probe is a PUT of a tiny object: a storm of probes, or
#: an orchestrator probing every second, costs one request per process per this many seconds).
PROBE_TTL: Final = 5.0
#: Error codes of a server out of space or over a quota (MinIO, Ceph RGW); AWS S3 has none.
FULL_CODES: Final = frozenset({"XMinioStorageFull", "QuotaExceeded", "InsufficientStorage"})
_MISSING_CODES: Final = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class StoredObject:
    """A blob as listed: its key, digest, size and the time of its last PUT (the server's clock)."""

    key: str
    digest: str
    size: int
    last_modified: float  # seconds since the epoch


class ObjectStore:
    """Blobs in ``bucket`` under ``<prefix><aa>/<rest of the sha256>``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        gc_grace: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``gc_grace``: seconds an unreferenced object must have been left untouched before the collector
        removes it; ``clock``: now, in seconds since the epoch (the collector compares it with the server's
        ``LastModified``)."""
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.gc_grace = gc_grace
        self.clock = clock
        config = Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
            signature_version="s3v4",
            # Path-style requests for a configured endpoint (MinIO, Ceph and most others expect them);
            # AWS picks virtual-hosted style itself.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )
        self._probe = Probe("object store", self._probe_once, PROBE_TTL)
        self._key = re.compile(re.escape(prefix) + r"([0-9a-f]{2})/([0-9a-f]{62})")

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        """The configured store, its bucket checked reachable (raises :class:`ConfigurationError` if not)."""
        if settings.s3_bucket is None:  # refused by the settings' validation already
            raise ConfigurationError("blob_store is s3 but s3_bucket is not set")
        store = cls(
            settings.s3_bucket,
            settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            gc_grace=settings.gc_grace_seconds,
        )
        store.check_bucket()
        return store

    @property
    def where(self) -> str:
        """``s3://bucket/prefix`` at its endpoint, for messages (never credentials)."""
        return f"s3://{self.bucket}/{self.prefix} at {self.endpoint_url or 'AWS S3'}"

    def key(self, digest: str) -> str:
        if not _HEX64.fullmatch(digest):
            raise ValueError("not a sha256 hex digest")
        return f"{self.prefix}{digest[:2]}/{digest[2:]}"

    def digest_of(self, key: str) -> str | None:
        """The digest a key of this store names; None for any other key (the store never touches those)."""
        match = self._key.fullmatch(key)
        return match.group(1) + match.group(2) if match else None

    def check_bucket(self) -> None:
        """Raise :class:`ConfigurationError` unless the bucket answers ``HeadBucket`` with these credentials."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise ConfigurationError(
                f"the object store {self.where} is not usable: {_describe(exc)}",
                hint="check s3_bucket, s3_endpoint_url, s3_region and the AWS credentials (AWS_ACCESS_KEY_ID, …)",
            ) from exc

    def get(self, digest: str) -> bytes:
        """The blob's bytes (the server checks its stored checksum); ``FileNotFoundError`` if absent,
        :class:`StorageUnavailableError` if the store cannot be read now."""
        key = self.key(digest)
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            data: bytes = answer["Body"].read()
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                raise FileNotFoundError(f"no object {key}") from exc
            raise _unreadable(exc, key) from exc
        except BotoCoreError as exc:
            raise _unreadable(exc, key) from exc
        return data

    def exists(self, digest: str) -> bool:
        return self.last_modified(digest) is not None

    def last_modified(self, digest: str) -> float | None:
        """The time of the object's last PUT (seconds since the epoch), or None if it is absent."""
        key = self.key(digest)
        try:
            answer = self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING_CODES:
                return None
            raise _unreadable(exc, key) from exc
        except BotoCoreError as exc:
            raise _unreadable(exc, key) from exc
        stamp: datetime = answer["LastModified"]
        return stamp.timestamp()

    @contextmanager
    def writing(self) -> Iterator[ObjectWriter]:
        """A writer (no lock: the collector's grace period protects what an open block wrote)."""
        writer = ObjectWriter(self)
        try:
            yield writer
        finally:
            writer.active = False

    def discard(self, digest: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self.key(digest))
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not remove an unused object (left to the collector): %s", _describe(exc))

    def download_url(self, digest: str, media_type: str, seconds: int) -> str:
        """A presigned ``GET`` of the blob, valid for ``seconds``, answered with ``media_type``. The bucket's
        origin is not the service's: nothing it serves runs with the service's cookies or pages."""
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.key(digest),
                "ResponseContentType": media_type,
                "ResponseCacheControl": f"public, max-age={seconds}",
            },
            ExpiresIn=seconds,
        )
        return url

    def check_writable(self) -> None:
        """Raise :class:`StorageError` unless a tiny object (``<prefix>.probe``) can be PUT now.

        The answer is reused for :data:`PROBE_TTL` seconds, and concurrent callers wait for one probe.
        """
        self._probe.check()

    def _probe_once(self) -> StorageError | None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=f"{self.prefix}.probe", Body=b"probe")
        except (BotoCoreError, ClientError) as exc:
            return _unwritable(exc, f"{self.prefix}.probe")
        return None

    def put(self, digest: str, data: bytes) -> None:
        """PUT ``data`` under ``digest``'s key with its SHA-256 checksum; returns once the server has stored it.
        Raises :class:`StorageError` when it is refused or the server cannot be reached."""
        key = self.key(digest)
        checksum = base64.b64encode(bytes.fromhex(digest)).decode()
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumSHA256=checksum)
        except (BotoCoreError, ClientError) as exc:
            raise _unwritable(exc, key) from exc

    def listing(self) -> Iterator[StoredObject]:
        """Every blob under the prefix (``ListObjectsV2``, page by page); keys of any other form are skipped."""
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for entry in page.get("Contents", ()):
                    digest = self.digest_of(entry["Key"])
                    if digest is not None:
                        yield StoredObject(entry["Key"], digest, entry["Size"], entry["LastModified"].timestamp())
        except (BotoCoreError, ClientError) as exc:
            raise _unreadable(exc, self.prefix) from exc

    def delete(self, keys: list[str]) -> None:
        """Remove ``keys`` (at most 1000, one ``DeleteObjects``); raises :class:`StorageUnavailableError`
        naming the first key the server refused to remove."""
        if not keys:
            return
        try:
            answer = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unwritable(exc, keys[0]) from exc
        refused = answer.get("Errors") or []
        if refused:
            first = refused[0]
            raise StorageUnavailableError(
                "the object store refused a removal",
                f"object store: {first.get('Code')} removing {first.get('Key')}: {first.get('Message')}",
            )


class ObjectWriter:
    """Writes into an :class:`ObjectStore`; made by :meth:`ObjectStore.writing`."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.active = True

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` (PUT, even if already stored); return its sha256. Raises :class:`StorageError`."""
        return self.stage(data, digest).commit()

    def stage(self, data: bytes, digest: str | None = None) -> PendingObject:
        """Hold ``data`` for :meth:`PendingObject.commit` (nothing reaches the bucket before the commit)."""
        if not self.active:
            raise RuntimeError("blob writer used after its block ended")
        return PendingObject(self.store, digest or hashlib.sha256(data).hexdigest(), data)


class PendingObject:
    """A blob held in memory until :meth:`commit` PUTs it."""

    def __init__(self, store: ObjectStore, digest: str, data: bytes) -> None:
        self.store = store
        self.digest = digest
        self._data: bytes | None = data

    def commit(self) -> str:
        if self._data is not None:
            self.store.put(self.digest, self._data)
            self._data = None
        return self.digest

    def discard(self) -> None:
        self._data = None


def _code(exc: ClientError) -> str:
    error: dict[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", ""))


def _describe(exc: BotoCoreError | ClientError) -> str:
    """What went wrong, for the operator's log: the server's error code and message, or the transport's."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = exc.response.get("Error", {}).get("Message", "")
        return f"{_code(exc) or 'error'} (HTTP {status}) {message}".strip()
    return f"{type(exc).__name__}: {exc}"


def _unwritable(exc: BotoCoreError | ClientError, key: str) -> StorageError:
    cause = f"object store: {_describe(exc)} (key {key})"
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if _code(exc) in FULL_CODES or status == 507:
            return StorageFullError("the object store is full; nothing was stored", cause)
        return StorageUnavailableError("the object store refused the write; nothing was stored", cause)
    return StorageUnavailableError("the object store is unreachable; nothing was stored", cause)


def _unreadable(exc: BotoCoreError | ClientError, key: str) -> StorageError:
    return StorageUnavailableError("the object store cannot be read now", f"object store: {_describe(exc)} (key {key})")
