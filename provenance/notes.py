"""Signed notes and checkpoints (C2SP signed-note and tlog-checkpoint), with Ed25519 log keys.

A checkpoint names a log (its *origin*), a tree size and the tree's root hash; the log signs it as a note:

    example.org/provenance/log
    1024
    lDeU9ZS3UvoeVRk0wzC7vV7UJvqlX3hk9uCixHGDXSM=

    — example.org/provenance/log Az3grnLxhGRaYnkjXn7J+V0tUGbrhJ3R6zF1+yY1qANNCjAB8ZE5Jq+...

The signature line carries the key's name and, base64 in one, a 4-byte key id
(SHA-256(name || "\\n" || 0x01 || public key)[:4]) and the 64-byte Ed25519 signature of the text above the
blank line. Anyone holding the *verifier key* ``<name>+<key id, 8 hex digits>+<base64(0x01 || public key)>``
can check it offline; Go's ``golang.org/x/mod/sumdb/note`` reads the same format.

The log key is not the C2PA signing key: it signs checkpoints only, and is kept like it (a file with mode
0600, or a PKCS#11 token: :class:`provenance.keys.pkcs11.Pkcs11LogKey`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provenance.errors import InputError, KeyMaterialError
from provenance.tlog import HASH_SIZE, MAX_SIZE

ED25519: Final = 0x01
SIGNATURE_PREFIX: Final = "\u2014 "  # an em dash and a space
#: Bounds on what is parsed (a checkpoint is a few hundred bytes; a note with many cosignatures a few KB).
MAX_NOTE: Final = 64 * 1024
MAX_SIGNATURES: Final = 100


class NoteError(InputError):
    """A note or checkpoint that is malformed, or not signed by the key it is checked with."""


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError("a key name is printable, without spaces or '+'")


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key string for an Ed25519 public key of 32 bytes."""
    _check_name(name)
    encoded = base64.b64encode(bytes([ED25519]) + public_key).decode()
    return f"{name}+{key_id(name, public_key).hex()}+{encoded}"


@dataclass(frozen=True)
class Verifier:
    """A parsed verifier key."""

    name: str
    id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is <name>+<hash>+<key>")
        name, hash_hex, encoded = parts
        _check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
            wanted = bytes.fromhex(hash_hex)
        except (binascii.Error, ValueError) as exc:
            raise NoteError("a verifier key is <name>+<hash>+<key>") from exc
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 verifier keys are supported")
        public = raw[1:]
        if len(wanted) != 4 or key_id(name, public) != wanted:
            raise NoteError("the verifier key's hash does not match its name and key")
        return cls(name, wanted, public)

    @property
    def vkey(self) -> str:
        return verifier_key(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


class LogKey(Protocol):
    """What signs checkpoints: a name, the Ed25519 public key and a signing operation."""

    @property
    def name(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class FileLogKey:
    """An Ed25519 log key in a PEM (PKCS#8) file; its name in the verifier key file beside it."""

    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        _check_name(name)
        self._name = name
        self._private = private
        self._public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def __repr__(self) -> str:
        return f"FileLogKey({self._name!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


# --- notes ---


@dataclass(frozen=True)
class Signature:
    name: str
    id: bytes
    signature: bytes


def sign_note(text: str, key: LogKey) -> str:
    """``text`` (lines ending in newlines) signed by ``key`` as a note."""
    _check_text(text)
    signature = key.sign(text.encode())
    if len(signature) != 64:
        raise KeyMaterialError("the log key gave a signature that is not Ed25519")
    encoded = base64.b64encode(key_id(key.name, key.public_key) + signature).decode()
    return f"{text}\n{SIGNATURE_PREFIX}{key.name} {encoded}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or "\r" in text:
        raise NoteError("a note's text is non-empty lines, each ending in a newline")
    if any(not line.isprintable() for line in text[:-1].split("\n")):
        raise NoteError("a note's text holds no control characters")


def split_note(note: str) -> tuple[str, list[Signature]]:
    """A note's text and its signatures (any key's; none checked yet)."""
    if len(note.encode()) > MAX_NOTE:
        raise NoteError("note too long")
    text, sep, block = note.rpartition("\n\n")
    if not sep:
        raise NoteError("a note is its text, a blank line and signature lines")
    text += "\n"
    _check_text(text)
    if not block.endswith("\n"):
        raise NoteError("a note ends with a newline")
    signatures: list[Signature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("malformed signature line")
        name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise NoteError("malformed signature line") from exc
        if not space or len(raw) < 5:
            raise NoteError("malformed signature line")
        signatures.append(Signature(name, raw[:4], raw[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError("too many signatures")
    return text, signatures


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text, once its signature by ``verifier`` checks; raises :class:`NoteError` otherwise."""
    text, signatures = split_note(note)
    for signature in signatures:
        if signature.name == verifier.name and signature.id == verifier.id:
            if verifier.verify(text.encode(), signature.signature):
                return text
            raise NoteError(f"the signature by {verifier.name} does not verify: the note was altered")
    raise NoteError(f"the note is not signed by {verifier.name}")


# --- checkpoints ---


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is its origin, size and root hash, one to a line")
        origin, size, root, *extensions = lines[:-1]
        if not (size.isascii() and size.isdigit()) or size != str(int(size)) or int(size) > MAX_SIZE:
            raise NoteError("a checkpoint's size is a decimal number")
        try:
            raw = base64.b64decode(root, validate=True)
        except binascii.Error as exc:
            raise NoteError("a checkpoint's root is base64") from exc
        if len(raw) != HASH_SIZE or not origin:
            raise NoteError("a checkpoint's root is a SHA-256 hash")
        if "" in extensions:
            raise NoteError("a checkpoint's extension lines are not empty")
        return cls(origin, int(size), raw, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, key: LogKey) -> str:
    return sign_note(checkpoint.text(), key)


def open_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """The checkpoint in a signed note, once the signature checks and its origin is the log's."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != (origin or verifier.name):
        raise NoteError(f"the checkpoint is of the log {checkpoint.origin!r}, not {origin or verifier.name!r}")
    return checkpoint
