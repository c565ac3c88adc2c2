"""The transparency log's key: Ed25519, separate from the C2PA signing key and kept like it.

In a keys directory: ``log.vkey`` (the verifier key auditors pin: the log's origin, a key id and the
public key) and either ``log.key`` (PEM, mode 0600) or ``log.pkcs11.json`` (the module, token and key
labels of a key generated on a PKCS#11 token; never the PIN). A log keeps its key for life: rotating the
signing key leaves it alone, and a new log key is a new log (a new origin).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provenance.errors import KeyMaterialError
from provenance.keys.files import write_file
from provenance.keys.pkcs11 import Pkcs11Config, Pkcs11LogKey, generate_log_key
from provenance.notes import FileLogKey, LogKey, NoteError, Verifier, verifier_key

LOG_KEY_FILE: Final = "log.key"
LOG_VKEY_FILE: Final = "log.vkey"
LOG_PKCS11_CONFIG: Final = "log.pkcs11.json"


def default_log_origin(org: str) -> str:
    """The origin a development log is named by (``example-newsroom.example/provenance/log``); a deployment
    names its log by its own host (``provenance keys init-log --origin news.example.com/provenance/log``)."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in org.lower()).split()) or "newsroom"
    return f"{slug}.example/provenance/log"


def _vkey(origin: str, public: bytes) -> str:
    try:
        return verifier_key(origin, public)
    except NoteError as exc:
        raise KeyMaterialError(f"invalid log origin {origin!r}: {exc}") from exc


def _refuse_existing(keys_dir: Path, force: bool) -> None:
    existing = [keys_dir / n for n in (LOG_KEY_FILE, LOG_VKEY_FILE, LOG_PKCS11_CONFIG) if (keys_dir / n).exists()]
    if existing and not force:
        raise KeyMaterialError(
            f"a log key already exists: {', '.join(str(p) for p in existing)}",
            hint="a log keeps its key for life (a new key is a new log); pass --force to replace it",
        )


def init_log_key(keys_dir: Path, origin: str, *, force: bool = False) -> Verifier:
    """Create the log's key file and its verifier key, named by the log's ``origin``."""
    _refuse_existing(keys_dir, force)
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    vkey = _vkey(origin, public)
    keys_dir.mkdir(parents=True, exist_ok=True)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_file(keys_dir / LOG_KEY_FILE, pem, 0o600)
    (keys_dir / LOG_PKCS11_CONFIG).unlink(missing_ok=True)
    write_file(keys_dir / LOG_VKEY_FILE, (vkey + "\n").encode(), 0o644)
    return Verifier.parse(vkey)


def init_pkcs11_log_key(keys_dir: Path, config: Pkcs11Config, origin: str, *, force: bool = False) -> Verifier:
    """Generate the log's key on a PKCS#11 token (Ed25519, never extractable); write ``log.pkcs11.json``
    and ``log.vkey``."""
    _refuse_existing(keys_dir, force)
    _vkey(origin, bytes(32))  # a bad origin is refused before the token is touched
    public = generate_log_key(config)
    vkey = _vkey(origin, public)
    keys_dir.mkdir(parents=True, exist_ok=True)
    (keys_dir / LOG_KEY_FILE).unlink(missing_ok=True)  # the key now lives on the token
    description = {"module": str(config.module), "token_label": config.token_label, "key_label": config.key_label}
    write_file(keys_dir / LOG_PKCS11_CONFIG, (json.dumps(description, indent=2) + "\n").encode(), 0o644)
    write_file(keys_dir / LOG_VKEY_FILE, (vkey + "\n").encode(), 0o644)
    return Verifier.parse(vkey)


def ensure_log_key(keys_dir: Path, org: str) -> None:
    """The development identity includes a log key; an existing one is kept."""
    if not any((keys_dir / name).exists() for name in (LOG_VKEY_FILE, LOG_PKCS11_CONFIG)):
        init_log_key(keys_dir, default_log_origin(org))


def read_verifier(keys_dir: Path) -> Verifier:
    path = keys_dir / LOG_VKEY_FILE
    try:
        return Verifier.parse(path.read_text())
    except OSError as exc:
        raise KeyMaterialError(
            f"no transparency log key in {keys_dir}", hint=f"run `provenance keys init-log --keys-dir {keys_dir}`"
        ) from exc
    except NoteError as exc:
        raise KeyMaterialError(f"{path}: {exc}") from exc


def load_log_key(keys_dir: Path, pin: str | None = None) -> LogKey:
    """The log's key in ``keys_dir`` (the token's if ``log.pkcs11.json`` is there, else ``log.key``).
    Raises :class:`KeyMaterialError` when it is missing, or does not match ``log.vkey``."""
    verifier = read_verifier(keys_dir)
    token_file = keys_dir / LOG_PKCS11_CONFIG
    key: LogKey
    if token_file.exists():
        if not pin:
            raise KeyMaterialError(
                "the log key is on a PKCS#11 token but no PIN was given",
                hint="set PROVENANCE_PKCS11_PIN or pass --pin-file",
            )
        try:
            description = json.loads(token_file.read_text())
            config = Pkcs11Config(
                Path(description["module"]), description["token_label"], description["key_label"], pin
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyMaterialError(f"cannot read {token_file}: {exc}") from exc
        key = Pkcs11LogKey(config, verifier.name)
    else:
        path = keys_dir / LOG_KEY_FILE
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except OSError as exc:
            raise KeyMaterialError(f"cannot read {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise KeyMaterialError(f"{path} is not a PEM private key") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyMaterialError(f"{path} is not an Ed25519 key")
        key = FileLogKey(verifier.name, private)
    if key.public_key != verifier.public_key:
        raise KeyMaterialError(f"the log key does not match {keys_dir / LOG_VKEY_FILE}")
    return key
