"""The ``provenance`` command line: keys init, inspect, stamp.

Exit codes: 0 done (for inspect: whatever the verdict), 1 signing or verification of our own
output failed, 2 bad input or configuration, 3 the declaration contradicts an upstream AI claim.
Errors are one line on stderr; a traceback is never shown.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from cryptography import x509
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from provenance import __version__, tlog
from provenance.articles import ArticleVersion, inspect_article, looks_like_payload, parse_payload, stamp_article
from provenance.display import visible
from provenance.errors import (
    InputError,
    KeyMaterialError,
    ManifestError,
    ProvenanceError,
    SigningError,
    UpstreamConflictError,
    VerificationError,
)
from provenance.inspect import inspect
from provenance.keys import (
    Algorithm,
    DevKeyPaths,
    Pkcs11Config,
    Pkcs11Signer,
    init_dev_keys,
    init_pkcs11_keys,
    load_signer,
    retired_roots,
    rotate_keys,
)
from provenance.keys.logkey import LOG_VKEY_FILE, init_log_key, init_pkcs11_log_key
from provenance.media import DEFAULT_LIMITS
from provenance.models import ManifestNode, State, Verdict
from provenance.notes import NoteError, Verifier, open_checkpoint
from provenance.stamp import Source, StampRequest, stamp
from provenance.timestamps import Timestamping
from provenance.transparency import (
    DirectoryLog,
    audit_log,
    check_consistency,
    check_inclusion,
    find_entries,
    sha256_file,
)
from provenance.trust import TrustConfig
from provenance.vocabulary import LANGUAGES, label_text

EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_CONFLICT = 3

app = typer.Typer(
    name="provenance",
    help="Check, stamp and label images with signed C2PA provenance manifests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Manage signing keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

# Piped output keeps whole lines (a terminal gets its own width).
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)
err = Console(stderr=True, highlight=False, soft_wrap=True)

T = TypeVar("T")

KeysDir = Annotated[Path, typer.Option("--keys-dir", help="Directory holding the signing key and dev CA.")]
TrustAnchors = Annotated[
    list[Path] | None,
    typer.Option(
        "--trust-anchors",
        help="PEM file of trusted root certificates (repeatable), besides KEYS_DIR/root.pem and retired roots.",
    ),
]
Lang = Annotated[str, typer.Option("--lang", help=f"Label language: {' or '.join(LANGUAGES)}.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a summary.")]
TsaAnchors = Annotated[
    list[Path] | None,
    typer.Option("--tsa-anchors", help="PEM roots of timestamp authorities whose timestamps count (repeatable)."),
]
TsaUrl = Annotated[str | None, typer.Option("--tsa-url", help="RFC 3161 timestamp authority to use when signing.")]
TsaOptional = Annotated[
    bool, typer.Option("--tsa-optional", help="Sign without a timestamp (and say so) if the TSA does not answer.")
]
PinFile = Annotated[
    Path | None,
    typer.Option("--pin-file", help="File holding the PKCS#11 user PIN (else env PROVENANCE_PKCS11_PIN)."),
]


def _timestamping(url: str | None, optional: bool) -> Timestamping | None:
    return Timestamping(url, required=not optional) if url else None


def _release(signer: object) -> None:
    """Log out of a token (a PKCS#11 login lasts for the whole process otherwise)."""
    if isinstance(signer, Pkcs11Signer):
        signer.close()


def read_pin(pin_file: Path | None) -> str | None:
    """The PKCS#11 PIN from ``pin_file`` or the ``PROVENANCE_PKCS11_PIN`` environment variable (CLI layer only)."""
    if pin_file is not None:
        try:
            return pin_file.read_text().strip()
        except OSError as exc:
            raise InputError(f"cannot read the PIN file {pin_file}: {exc.strerror or exc}") from exc
    return os.environ.get("PROVENANCE_PKCS11_PIN")


def _shown(text: str) -> str:
    """Text for the terminal: hidden characters (bidi overrides, zero-widths, ESC and other controls, which a
    manifest could use to rewrite what is shown) as visible tokens, then escaped from rich markup."""
    return escape(visible(text))


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"error: {_shown(message)}")
    raise typer.Exit(code)


def run_command(action: Callable[[], T]) -> T:
    """Run ``action``, turning every error into one line on stderr and an exit code."""
    try:
        return action()
    except UpstreamConflictError as exc:
        _fail(exc.diagnostics(), EXIT_CONFLICT)
    except (SigningError, VerificationError) as exc:
        _fail(exc.diagnostics(), EXIT_FAILED)
    except (InputError, ManifestError, KeyMaterialError, ProvenanceError) as exc:
        _fail(exc.diagnostics(), EXIT_INPUT)
    except MemoryError:
        _fail("out of memory while processing the input", EXIT_INPUT)
    except Exception as exc:  # a bug: still no traceback for the user, but say it is ours
        _fail(f"internal error ({type(exc).__name__}: {exc}); please report it", EXIT_FAILED)


def _read_input(path: Path, what: str = "input") -> bytes:
    try:
        if path.is_dir():
            raise InputError(f"{what} {path} is a directory")
        size = path.stat().st_size
        if size > DEFAULT_LIMITS.max_bytes:
            raise InputError(f"{what} {path} is {size} bytes; the limit is {DEFAULT_LIMITS.max_bytes}")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _trust(anchors: list[Path] | None, keys_dir: Path, tsa_anchors: list[Path] | None = None) -> TrustConfig:
    """The anchors given, plus the signer's own root and retired roots in ``keys_dir`` (as the service does)."""
    own = DevKeyPaths.in_dir(keys_dir).root_cert
    files = [*([own, *retired_roots(keys_dir)] if own.exists() else []), *(anchors or [])]
    trust = TrustConfig.from_files(files)
    return trust.with_tsa_anchors(tsa_anchors) if tsa_anchors else trust


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise InputError(f"unsupported language {lang!r}", hint=f"use one of {', '.join(LANGUAGES)}")


def _write_files(files: dict[Path, bytes]) -> None:
    """Write every file durably or none: temp files in the target directory, fsync, then rename."""
    temps: dict[Path, Path] = {}
    renamed: list[Path] = []
    try:
        for path, data in files.items():
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps[path] = Path(tmp_name)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for path, temp in temps.items():
            os.replace(temp, path)
            renamed.append(path)
    except BaseException:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        for path in renamed:
            path.unlink(missing_ok=True)
        raise
    for directory in {path.parent for path in files}:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _refuse_existing(paths: list[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} already exists", hint="pass --force to replace it")


_STATE_STYLE = {
    State.TRUSTED: "bold green",
    State.UNTRUSTED: "bold yellow",
    State.INVALID: "bold red",
    State.ABSENT: "dim",
    State.UNAVAILABLE: "yellow",
}


def _node_line(node: ManifestNode) -> str:
    title = _shown(node.title or node.label or "untitled")
    who = f" — {_shown(node.signer.display())}" if node.signer else ""
    rel = f"{node.relationship}: " if node.relationship else ""
    return f"{rel}[{_STATE_STYLE[node.state]}]{node.state.value}[/] {title}{who}"


def _add_tree(tree: Tree, node: ManifestNode) -> None:
    for action in node.actions:
        source = f" ({_shown(action.digital_source_type)})" if action.digital_source_type else ""
        tree.add(f"[dim]action[/] {_shown(action.action)}{source}")
    for ingredient in node.ingredients:
        _add_tree(tree.add(_node_line(ingredient)), ingredient)


def _print_verdict(path: Path, verdict: Verdict, lang: str) -> None:
    out.print(f"[bold]{_shown(str(path))}[/]  {verdict.media_type}, {verdict.size} bytes, sha256 {verdict.sha256}")
    out.print(f"state: [{_STATE_STYLE[verdict.state]}]{verdict.state.value}[/]")
    if verdict.labels:
        out.print("labels: " + ", ".join(f"[bold]{_shown(label_text(lbl, lang))}[/] ({lbl})" for lbl in verdict.labels))
    else:
        out.print("labels: none")
    if verdict.remote_manifest_url:
        out.print(f"remote manifest (not fetched): {_shown(verdict.remote_manifest_url)}")
    if verdict.active_manifest is not None:
        active = verdict.active_manifest
        if active.signer:
            out.print(f"signer: {_shown(active.signer.display())} ({active.signer.alg or 'unknown alg'})")
        if active.claim_generator:
            out.print(f"claim generator: {_shown(active.claim_generator)}")
        tree = Tree(_node_line(active))
        _add_tree(tree, active)
        out.print(tree)
    for reason in verdict.reasons:
        out.print(f"  why: {_shown(reason.text)}")
    failures = sorted(verdict.codes.failure_codes())
    if failures:
        out.print("failures: " + _shown(", ".join(failures)))
    out.print(f"[dim]{verdict.sdk_version}; policy {verdict.policy_version}[/]")


def _emit_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")


@app.command("inspect")
def inspect_command(
    path: Annotated[Path, typer.Argument(help="File to inspect.")],
    sidecar: Annotated[Path | None, typer.Option("--sidecar", help="Detached C2PA manifest (.c2pa) for PATH.")] = None,
    trust_anchors: TrustAnchors = None,
    keys_dir: KeysDir = Path("keys"),
    as_json: AsJson = False,
    lang: Lang = "en",
    tsa_anchors: TsaAnchors = None,
) -> None:
    """Verify the C2PA provenance of a file and show the labels it earns."""

    def run() -> None:
        _check_lang(lang)
        trust = _trust(trust_anchors, keys_dir, tsa_anchors)
        data = _read_input(path)
        manifest = _read_input(sidecar, "sidecar manifest") if sidecar else None
        is_payload = manifest is not None and looks_like_payload(data)
        if manifest is not None and is_payload:
            verdict = inspect_article(parse_payload(data), manifest, trust)
        else:
            verdict = inspect(data, trust, sidecar=manifest)
        if as_json:
            payload = verdict.to_dict()
            payload["path"] = str(path)
            if is_payload:  # the verdict is about the payload's canonical text
                payload["payload_sha256"] = hashlib.sha256(data).hexdigest()
            payload["label_text"] = {lbl: label_text(lbl, lang) for lbl in verdict.labels}
            payload["trust_anchors"] = trust.anchor_subjects()
            _emit_json(payload)
        else:
            if is_payload:
                out.print("[dim]article payload: verified through its canonical text[/]")
            _print_verdict(path, verdict, lang)

    run_command(run)


@app.command("stamp")
def stamp_command(
    path: Annotated[Path, typer.Argument(help="Image to stamp.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the stamped image.")],
    source: Annotated[Source, typer.Option("--source", help="What the newsroom declares about the image.")],
    title: Annotated[
        str | None, typer.Option("--title", help="Title recorded in the manifest (never used for labels).")
    ] = None,
    override_upstream: Annotated[
        str | None,
        typer.Option(
            "--override-upstream", help="Reason for contradicting an AI claim in the upload's own provenance."
        ),
    ] = None,
    keys_dir: KeysDir = Path("keys"),
    trust_anchors: TrustAnchors = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
    as_json: AsJson = False,
    lang: Lang = "en",
    pin_file: PinFile = None,
    tsa_url: TsaUrl = None,
    tsa_optional: TsaOptional = False,
    tsa_anchors: TsaAnchors = None,
) -> None:
    """Sign an image with the publisher's manifest, keeping any upstream manifest as its parent."""

    def run() -> None:
        _check_lang(lang)
        _refuse_existing([output], force)
        if output.exists() and output.resolve() == path.resolve():
            raise InputError("the output must not overwrite the input")
        signer = load_signer(keys_dir, read_pin(pin_file))
        trust = _trust(trust_anchors, keys_dir, tsa_anchors)
        data = _read_input(path)
        request = StampRequest(source=source, title=title, override_upstream=override_upstream, upload_name=path.name)
        try:
            result = stamp(data, request, signer, trust, timestamping=_timestamping(tsa_url, tsa_optional))
        finally:
            _release(signer)
        try:
            _write_files({output: result.data})
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror or exc}") from exc
        if as_json:
            _emit_json(
                {
                    "output": str(output),
                    "verdict": result.verdict.to_dict(),
                    "label_text": {lbl: label_text(lbl, lang) for lbl in result.verdict.labels},
                    "upstream": result.upstream.to_dict(),
                    "timestamp_note": result.timestamp_note,
                }
            )
        else:
            out.print(f"wrote {_shown(str(output))}")
            if result.timestamp_note:
                out.print(f"[yellow]{_shown(result.timestamp_note)}[/]")
            _print_verdict(output, result.verdict, lang)

    run_command(run)


@app.command("stamp-article")
def stamp_article_command(
    path: Annotated[Path, typer.Argument(help="CMS article payload (JSON).")],
    outdir: Annotated[Path, typer.Option("-o", "--output-dir", help="Directory for NAME.txt and NAME.c2pa.")],
    previous: Annotated[
        Path | None, typer.Option("--previous", help="The previous version's .txt: makes this version a correction.")
    ] = None,
    previous_manifest: Annotated[
        Path | None,
        typer.Option("--previous-manifest", help="The previous version's manifest (default: .c2pa beside --previous)."),
    ] = None,
    override_upstream: Annotated[
        str | None,
        typer.Option(
            "--override-upstream", help="Reason for declaring 'human' a correction of an AI-labelled article."
        ),
    ] = None,
    keys_dir: KeysDir = Path("keys"),
    trust_anchors: TrustAnchors = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing output files.")] = False,
    as_json: AsJson = False,
    lang: Lang = "en",
    pin_file: PinFile = None,
    tsa_url: TsaUrl = None,
    tsa_optional: TsaOptional = False,
    tsa_anchors: TsaAnchors = None,
) -> None:
    """Sign an article's canonical text with a detached manifest (a correction with --previous)."""

    def run() -> None:
        _check_lang(lang)
        payload = parse_payload(_read_input(path, "article payload"))
        text_path, manifest_path = outdir / f"{payload.file_stem}.txt", outdir / f"{payload.file_stem}.c2pa"
        _refuse_existing([text_path, manifest_path], force)
        prior = None
        if previous is not None:
            prior_manifest = previous_manifest or previous.with_suffix(".c2pa")
            prior = ArticleVersion(
                _read_input(previous, "previous version"), _read_input(prior_manifest, "previous manifest")
            )
        elif previous_manifest is not None:
            raise InputError("--previous-manifest needs --previous")
        signer = load_signer(keys_dir, read_pin(pin_file))
        trust = _trust(trust_anchors, keys_dir, tsa_anchors)
        try:
            result = stamp_article(
                payload,
                signer,
                trust,
                previous=prior,
                override_upstream=override_upstream,
                timestamping=_timestamping(tsa_url, tsa_optional),
            )
        finally:
            _release(signer)
        try:
            outdir.mkdir(parents=True, exist_ok=True)
            _write_files({text_path: result.text, manifest_path: result.manifest})
        except OSError as exc:
            raise InputError(f"cannot write to {outdir}: {exc.strerror or exc}") from exc
        if as_json:
            _emit_json(
                {
                    "text": str(text_path),
                    "manifest": str(manifest_path),
                    "verdict": result.verdict.to_dict(),
                    "label_text": {lbl: label_text(lbl, lang) for lbl in result.verdict.labels},
                    "previous": result.previous.to_dict() if result.previous else None,
                }
            )
        else:
            out.print(f"wrote {_shown(str(text_path))} and {_shown(str(manifest_path))}")
            _print_verdict(text_path, result.verdict, lang)

    run_command(run)


@keys_app.command("init")
def keys_init_command(
    keys_dir: KeysDir = Path("keys"),
    org: Annotated[str, typer.Option("--org", help="Organisation name in the certificates.")] = "Example Newsroom",
    alg: Annotated[Algorithm, typer.Option("--alg", help="Signing algorithm of the leaf key.")] = Algorithm.ES256,
    force: Annotated[bool, typer.Option("--force", help="Replace existing key material.")] = False,
    pkcs11_module: Annotated[
        Path | None, typer.Option("--pkcs11", help="PKCS#11 module: generate the key on a token instead of a file.")
    ] = None,
    token_label: Annotated[str, typer.Option("--token-label", help="PKCS#11 token label.")] = "newsroom",  # noqa: S107
    key_label: Annotated[str, typer.Option("--key-label", help="Label of the key on the token.")] = "c2pa-signer",
    pin_file: PinFile = None,
) -> None:
    """Create a development root CA, intermediate and signing key (never for production).

    With --pkcs11 the key is generated on the token (it never leaves it) and only the certificates
    and the token's description are written.
    """

    def run() -> None:
        if pkcs11_module is not None:
            pin = read_pin(pin_file)
            if not pin:
                raise InputError("a PKCS#11 token needs a PIN", hint="set PROVENANCE_PKCS11_PIN or pass --pin-file")
            config = Pkcs11Config(pkcs11_module, token_label, key_label, pin)
            paths = init_pkcs11_keys(keys_dir, config, org, alg, force=force)
            out.print(
                _shown(f"created key {key_label!r} on token {token_label!r}, {paths.chain} and {paths.root_cert}")
            )
            return
        paths = init_dev_keys(keys_dir, org, alg, force=force)
        out.print(
            _shown(f"created {paths.signer_key} (0600), {paths.chain} and trust anchor {paths.root_cert} ({alg.value})")
        )

    run_command(run)


@keys_app.command("init-log")
def keys_init_log_command(
    origin: Annotated[
        str, typer.Option("--origin", help="The log's name, a URL without scheme: news.example.com/provenance/log.")
    ],
    keys_dir: KeysDir = Path("keys"),
    force: Annotated[bool, typer.Option("--force", help="Replace the log key (a new key is a new log).")] = False,
    pkcs11_module: Annotated[
        Path | None, typer.Option("--pkcs11", help="PKCS#11 module: generate the key on a token instead of a file.")
    ] = None,
    token_label: Annotated[str, typer.Option("--token-label", help="PKCS#11 token label.")] = "newsroom",  # noqa: S107
    key_label: Annotated[str, typer.Option("--key-label", help="Label of the key on the token.")] = "log-signer",
    pin_file: PinFile = None,
) -> None:
    """Create the transparency log's Ed25519 key (log.key, or on a token) and its verifier key (log.vkey)."""

    def run() -> None:
        if pkcs11_module is not None:
            pin = read_pin(pin_file)
            if not pin:
                raise InputError("a PKCS#11 token needs a PIN", hint="set PROVENANCE_PKCS11_PIN or pass --pin-file")
            verifier = init_pkcs11_log_key(
                keys_dir, Pkcs11Config(pkcs11_module, token_label, key_label, pin), origin, force=force
            )
        else:
            verifier = init_log_key(keys_dir, origin, force=force)
        out.print(_shown(f"log key for {verifier.name}; publish its verifier key ({keys_dir / LOG_VKEY_FILE}):"))
        out.print(_shown(verifier.vkey), soft_wrap=True)

    run_command(run)


@keys_app.command("rotate")
def keys_rotate_command(
    keys_dir: KeysDir = Path("keys"),
    org: Annotated[str, typer.Option("--org", help="Organisation name in the new certificates.")] = "Example Newsroom",
    alg: Annotated[Algorithm, typer.Option("--alg", help="Signing algorithm of the new key.")] = Algorithm.ES256,
) -> None:
    """Make a new signing identity active; the old one is retired but its root stays trusted."""

    def run() -> None:
        retired = rotate_keys(keys_dir, org, alg)
        out.print(_shown(f"new active signing identity in {keys_dir}; the previous one is in {retired}"))

    run_command(run)


@keys_app.command("status")
def keys_status_command(
    keys_dir: KeysDir = Path("keys"),
    warn_days: Annotated[int, typer.Option("--warn-days", help="Warn when a certificate expires within N days.")] = 30,
    as_json: AsJson = False,
) -> None:
    """Show the signing chain and trust anchor with their expiry; exit 1 if one has expired."""

    def run() -> int:
        paths = DevKeyPaths.in_dir(keys_dir)
        now = dt.datetime.now(dt.UTC)
        rows = []
        files = [("signing chain", paths.chain), ("trust anchor", paths.root_cert)]
        files += [(f"retired anchor {p.parent.name}", p) for p in retired_roots(keys_dir)]
        for role, path in files:
            try:
                certs = x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise KeyMaterialError(f"cannot read {path}: {exc}", hint="run `provenance keys init`") from exc
            for cert in certs:
                days = (cert.not_valid_after_utc - now).total_seconds() / 86400
                status = "expired" if days < 0 else ("expires soon" if days < warn_days else "ok")
                rows.append(
                    {
                        "file": role,
                        "subject": cert.subject.rfc4514_string(),
                        "serial": format(cert.serial_number, "x"),
                        "not_after": cert.not_valid_after_utc.isoformat(),
                        "days_left": int(days),
                        "status": status,
                    }
                )
        where = "PKCS#11 token" if (keys_dir / "pkcs11.json").exists() else "key file"
        if as_json:
            _emit_json({"keys_dir": str(keys_dir), "key": where, "certificates": rows})
        else:
            out.print(f"signing key: {where}")
            for row in rows:
                mark = {"ok": "", "expires soon": " [yellow]WARNING: expires soon[/]", "expired": " [red]EXPIRED[/]"}
                out.print(
                    f"{_shown(str(row['file']))}: {_shown(str(row['subject']))} — until {row['not_after']} "
                    f"({row['days_left']} days){mark[str(row['status'])]}"
                )
        return 1 if any(row["status"] == "expired" for row in rows) else 0

    code = run_command(run)
    if code:
        raise typer.Exit(code)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"provenance {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Check, stamp and label images with signed C2PA provenance manifests."""


audit_app = typer.Typer(help="Check the transparency log, offline.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(_read_text(path, what))
    except json.JSONDecodeError as exc:
        raise InputError(f"the {what} {path} is not JSON") from exc


def _evidence_entries(evidence: Any) -> tuple[str | None, list[dict[str, Any]]]:
    """(checkpoint note or None, entries with index/entry/proof) of an item report, its ``transparency_log``
    section or one ``/log/proof/inclusion`` answer."""
    if isinstance(evidence, dict) and isinstance(evidence.get("transparency_log"), dict):
        evidence = evidence["transparency_log"]
    if isinstance(evidence, dict) and isinstance(evidence.get("entries"), list):
        note = evidence.get("checkpoint")
        return (note if isinstance(note, str) else None), [e for e in evidence["entries"] if isinstance(e, dict)]
    if isinstance(evidence, dict) and "index" in evidence:
        return None, [evidence]
    raise InputError("the evidence is an item report, its transparency_log, or a /log/proof/inclusion answer")


@audit_app.command("verify-log")
def audit_verify_log_command(
    key: Annotated[Path, typer.Option("--key", help="The log's verifier key (log.vkey, or as published).")],
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="A saved signed checkpoint (default: the evidence's, else the copy's)."),
    ] = None,
    log_dir: Annotated[
        Path | None, typer.Option("--log", help="A copy of the log's files (checkpoint, tile/...): audit it all.")
    ] = None,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="An earlier saved checkpoint the log must extend.")
    ] = None,
    proof: Annotated[
        Path | None, typer.Option("--proof", help="A consistency proof (GET /log/proof/consistency) for --previous.")
    ] = None,
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", help="An item report (JSON) or an inclusion proof (GET /log/proof/inclusion)."),
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", help="A file that must be in the log (its sha256).")] = None,
    manifest: Annotated[
        Path | None, typer.Option("--manifest", help="A manifest store (.c2pa) that must be in the log.")
    ] = None,
) -> None:
    """Check a transparency log offline: a checkpoint's signature, that a later checkpoint extends an earlier
    one, that a file or manifest is included, and (with --log) every entry of a copy of the log.

    Exit 0 when everything checks, 1 when the log misbehaves (altered, removed or re-ordered entries, a fork,
    back-dating), 2 for unreadable input."""

    def run() -> int:
        verifier = Verifier.parse(_read_text(key, "verifier key"))
        copy = DirectoryLog(log_dir) if log_dir is not None else None
        wanted = sha256_file(file) if file else sha256_file(manifest) if manifest else None
        proven: list[dict[str, Any]] = []
        note: str | None = None
        if evidence is not None:
            note, proven = _evidence_entries(_read_json(evidence, "evidence"))
        if checkpoint is not None:
            note = _read_text(checkpoint, "checkpoint")
        elif note is None and copy is not None:
            note = copy.checkpoint()
        if note is None:
            raise InputError("no checkpoint to check against", hint="pass --checkpoint, --evidence or --log")
        failures: list[str] = []
        found = False
        try:
            current = open_checkpoint(note, verifier)
        except NoteError as exc:
            out.print(f"FAIL checkpoint: {_shown(str(exc))}")
            return EXIT_FAILED
        out.print(_shown(f"OK checkpoint of {current.origin}: {current.size} entries, signed by {verifier.name}"))
        if copy is not None:
            audit = audit_log(copy, verifier, note)
            failures += [f"log: {finding}" for finding in audit.findings]
            if audit.ok:
                counts = ", ".join(f"{n} {event}" for event, n in sorted(audit.by_event.items())) or "none"
                out.print(_shown(f"OK every entry of the copy checks ({audit.entries}: {counts})"))
        if previous is not None:
            try:
                older = open_checkpoint(_read_text(previous, "checkpoint"), verifier)
                if older.size > current.size:
                    check_consistency(older, current, [])  # a log that shrank: named as the fork it is
                if proof is not None:
                    consistency = _read_json(proof, "consistency proof")
                    steps = consistency.get("proof") if isinstance(consistency, dict) else None
                elif copy is not None:
                    steps = [
                        base64.b64encode(h).decode()
                        for h in tlog.Tree(copy, current.size).consistency_proof(older.size)
                    ]
                else:
                    raise InputError("checking --previous needs --proof or --log")
                check_consistency(older, current, steps)
                out.print(f"OK the log of {current.size} extends the saved log of {older.size}")
            except (NoteError, tlog.LogError) as exc:
                failures.append(f"consistency: {exc}")
        for item in proven:
            try:
                record = check_inclusion(item, current, None)
                out.print(
                    _shown(f"OK entry {item.get('index')} ({record['event']} of {record.get('item')}) is included")
                )
                found = found or wanted in (record.get("content_sha256"), record.get("manifest_sha256"))
            except tlog.LogError as exc:
                failures.append(f"inclusion: {exc}")
        if wanted is not None and copy is not None and not found:
            for index, entry, record in find_entries(copy, current.size, wanted):
                try:
                    path = tlog.Tree(copy, current.size).inclusion_proof(index)
                    tlog.verify_inclusion(index, current.size, tlog.leaf_hash(entry), path, current.root)
                except tlog.LogError as exc:
                    failures.append(f"inclusion: entry {index}: {exc}")
                    continue
                out.print(_shown(f"OK entry {index} ({record['event']} of {record.get('item')}) is included"))
                found = True
        if wanted is not None and not found:
            failures.append(f"inclusion: nothing in the log names sha256 {wanted}")
        for failure in failures:
            out.print(f"FAIL {_shown(failure)}")
        return EXIT_FAILED if failures else 0

    code = run_command(run)
    if code:
        raise typer.Exit(code)


if __name__ == "__main__":
    app()
