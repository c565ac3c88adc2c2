"""Everything a request handler needs, built once at start-up from :class:`Settings`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from provenance import KeyMaterialError, Signer, SigningError, TrustConfig, keys
from provenance.keys.logkey import load_log_key, read_verifier
from provenance.notes import LogKey, Verifier
from provenance.timestamps import Timestamping
from service.security.limits import RateLimiter
from service.settings import Settings
from service.store.blobs import Blobs, LocalBlobStore
from service.store.db import ServiceState, make_engine, make_sessionmaker
from service.store.schema import upgrade

if TYPE_CHECKING:
    from service.jobs.engine import Jobs


@dataclass
class ServiceContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: Blobs  # the local store or object storage, by the blob_store setting
    signer: Signer
    trust: TrustConfig
    rate_limiter: RateLimiter
    public_limiter: RateLimiter  # keyed by client address, for the public verify page
    match_limiter: RateLimiter  # keyed by client address, for the public fingerprint lookups
    log_key: LogKey  # signs the transparency log's checkpoints (service.log)
    log_verifier: Verifier  # its verifier key, as published
    timestamping: Timestamping | None = None
    #: The rate limiters' engine (commits that do not wait for the disk); closed with the context.
    counters: Engine | None = None
    #: Where background jobs are queued (procrastinate on PostgreSQL, a thread of this process on SQLite).
    jobs: Jobs | None = None

    def session(self) -> Session:
        return self.sessions()

    def close(self) -> None:
        """Close the database connections (the service's lifespan does this at shutdown)."""
        if self.jobs is not None:
            self.jobs.close()
        self.engine.dispose()
        if self.counters is not None:
            self.counters.dispose()

    def reload_trust(self) -> None:
        """Read the trust configuration again (another process recorded a trust change)."""
        self.trust = self.settings.trust()


def load_signer(settings: Settings) -> Signer:
    """The configured signer (key file, or PKCS#11 token); raises :class:`KeyMaterialError` if unusable."""
    paths = settings.key_paths
    token = (settings.keys_dir / "pkcs11.json").exists()
    needed = (paths.chain, paths.root_cert) if token else (paths.signer_key, paths.chain, paths.root_cert)
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise KeyMaterialError(
            f"signing keys missing in {settings.keys_dir}: {', '.join(missing)}",
            hint=f"run `provenance keys init --keys-dir {settings.keys_dir}` first",
        )
    pin = settings.pkcs11_pin.get_secret_value() if settings.pkcs11_pin else None
    signer = keys.load_signer(settings.keys_dir, pin)
    if isinstance(signer, keys.Pkcs11Signer):
        try:
            signer.check()  # a wrong PIN or a missing key stops start-up, not the first upload
        except SigningError as exc:
            raise KeyMaterialError(exc.diagnostics()) from exc
    return signer


def open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """Engine and sessions for the configured database, migrated to the current schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database)
    upgrade(engine)
    return engine, make_sessionmaker(engine)


def open_blobs(settings: Settings) -> Blobs:
    """The configured blob store: local files under ``data_dir/blobs``, or the S3 bucket (checked reachable;
    raises :class:`~provenance.ConfigurationError` if it is not)."""
    if settings.blob_store == "s3":
        from service.store.objects import ObjectStore  # boto3 is imported only where it is configured

        return ObjectStore.from_settings(settings)
    return LocalBlobStore(settings.blob_dir)


def build_context(settings: Settings) -> ServiceContext:
    """Open storage, load keys and trust; raise :class:`KeyMaterialError` if keys are missing,
    :class:`~provenance.ConfigurationError` if the object store is unusable."""
    signer = load_signer(settings)
    log_key = load_log_key(settings.keys_dir, settings.pkcs11_pin.get_secret_value() if settings.pkcs11_pin else None)
    trust = settings.trust()
    timestamping = settings.timestamping()
    blobs = open_blobs(settings)
    engine, sessions = open_database(settings)  # last: nothing after it can fail and leave it open
    counters = make_engine(settings.database, durable=False)  # connects at its first use
    from service.jobs.engine import open_jobs  # the jobs' tasks import this module

    return ServiceContext(
        settings=settings,
        engine=engine,
        sessions=sessions,
        blobs=blobs,
        signer=signer,
        trust=trust,
        rate_limiter=RateLimiter(counters, "token", settings.rate_limit_per_minute),
        public_limiter=RateLimiter(counters, "client", settings.public_verify_per_minute),
        match_limiter=RateLimiter(counters, "match", settings.match_per_minute),
        log_key=log_key,
        log_verifier=read_verifier(settings.keys_dir),
        counters=counters,
        timestamping=timestamping,
        jobs=open_jobs(settings, engine),
    )


def get_state(session: Session, key: str) -> str | None:
    row = session.scalars(select(ServiceState).where(ServiceState.key == key)).first()
    return row.value if row else None


def set_state(session: Session, key: str, value: str) -> None:
    row = session.get(ServiceState, key)
    if row is None:
        session.add(ServiceState(key=key, value=value))
    else:
        row.value = value
