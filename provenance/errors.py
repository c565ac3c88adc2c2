"""Errors raised by the provenance library.

Every failure a user can cause surfaces as a subclass of :class:`ProvenanceError`, whose
``diagnostics()`` is the one line a CLI or web layer shows instead of a traceback.
Verification *verdicts* (tampered, untrusted, ...) are not errors: they are returned in a
:class:`~provenance.models.Verdict`. Errors mean "could not inspect / could not stamp".
"""

from __future__ import annotations


class ProvenanceError(Exception):
    """Root of every error this library raises on purpose."""

    #: Short machine-readable kind, stable across releases (used by the service's problem types).
    kind: str = "provenance-error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """One human-readable line (plus an optional hint) describing what went wrong."""
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InputError(ProvenanceError):
    """The input file is empty, unreadable, truncated, too large or of an unsupported type."""

    kind = "input-error"


class InputTooLargeError(InputError):
    """The input exceeds a configured size limit (bytes or pixels)."""

    kind = "input-too-large"


class InputTooComplexError(InputError):
    """The input is too complex to parse within the configured limits.

    Raised by the structural pre-check (:func:`provenance.media.check_input`: more segments, chunks,
    blocks or boxes, or deeper nesting, than real files have) and by the isolated parser
    (:mod:`provenance.isolation`) when it ran past its deadline, hit its memory cap, or died on the
    input (a native crash); the worker is replaced, nothing else is affected.
    """

    kind = "input-too-complex"


class UnsupportedMediaError(InputError):
    """The input's type is not one this operation handles."""

    kind = "unsupported-media"


class ManifestError(ProvenanceError):
    """A C2PA manifest is present but cannot be parsed at all (malformed or malicious container)."""

    kind = "manifest-error"


class VerificationError(ProvenanceError):
    """A result we produced did not verify as required (e.g. a freshly stamped file not trusted)."""

    kind = "verification-error"


class SigningError(ProvenanceError):
    """Signing failed: bad key or certificate, key/certificate mismatch, signer callback error."""

    kind = "signing-error"


class KeyMaterialError(ProvenanceError):
    """Key material is missing, unreadable, or would be overwritten."""

    kind = "key-material-error"


class UpstreamConflictError(ProvenanceError):
    """The newsroom's declaration contradicts an AI claim in the upload's own provenance.

    Raised by :func:`provenance.stamp.stamp` when the upload's manifest (or one of its
    ingredients) says the image is AI-generated or AI-edited and the declaration says
    ``camera`` or ``human``. Pass an override reason to stamp anyway; it is recorded.
    """

    kind = "upstream-conflict"


class VersionConflictError(InputError):
    """An article version that is already stored with other text or other declared facts.

    A stored version is immutable: a correction is the next version number. Raised by the service's
    ingest (the library keeps no store), also when another request stored that version a moment earlier.
    """

    kind = "version-conflict"


class ConfigurationError(ProvenanceError):
    """The operator's configuration is unusable (trust anchors, revocation list, timestamp authority URL).

    Not the client's fault: the service answers it as a 5xx and logs the diagnostics; the CLI exits 2.
    """

    kind = "configuration-error"


class ParserBusyError(ProvenanceError):
    """Every isolated parsing worker stayed busy for longer than the queue timeout (try again later)."""

    kind = "parser-busy"


class ParserUnavailableError(ProvenanceError):
    """An isolated parsing worker could not be started: a configuration or installation fault, not the input's."""

    kind = "parser-unavailable"
