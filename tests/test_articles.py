"""Articles: detached manifests over canonical text, the article labels, corrections, bad payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provenance import (
    FileKeySigner,
    InputError,
    State,
    TrustConfig,
    UpstreamConflictError,
    VerificationError,
    inspect,
)
from provenance.articles import (
    ArticleSource,
    ArticleVersion,
    StampedArticle,
    inspect_article,
    parse_payload,
    stamp_article,
)
from provenance.cli import app
from provenance.keys import Algorithm, issue_chain

PAYLOAD: dict[str, Any] = {
    "external_id": "2026/11/28/storm",
    "version": 1,
    "headline": "Storm warning for the coast",
    "standfirst": "Gusts up to 80 km/h from 22:00.",
    "byline": "Weather Desk",
    "language": "en",
    "url": "https://news.example.com/storm",
    "body_html": "<p>Rain starts at 22:00 tonight.</p><p>Gusts could reach 80&nbsp;km/h.</p>",
    "source": "ai_generated",
}


def payload(**changes: Any) -> bytes:
    doc = {**PAYLOAD, **changes}
    return json.dumps({k: v for k, v in doc.items() if v is not None}, ensure_ascii=False).encode()


def stamp(
    signer: FileKeySigner, trust: TrustConfig, previous: StampedArticle | None = None, **changes: Any
) -> StampedArticle:
    prior = ArticleVersion(previous.text, previous.manifest) if previous else None
    return stamp_article(parse_payload(payload(**changes)), signer, trust, previous=prior)


LABELS = {
    "AI-generated article -> Reported by AI": ("ai_generated", ("ai_reported",)),
    "AI-assisted article -> Written with AI assistance": ("ai_assisted", ("ai_assisted",)),
    "human article -> no label": ("human", ()),
}


@pytest.mark.parametrize(("source", "labels"), LABELS.values(), ids=LABELS.keys())
def test_round_trip_and_labels(source: str, labels: tuple[str, ...], signer: FileKeySigner, trust: TrustConfig) -> None:
    result = stamp(signer, trust, source=source)
    assert result.verdict.state is State.TRUSTED
    assert result.verdict.labels == labels
    again = inspect(result.text, trust, sidecar=result.manifest)
    assert again.state is State.TRUSTED
    assert again.labels == labels
    assert again.media_type == "text/plain"
    claim = again.active_manifest.article if again.active_manifest else None
    assert claim is not None
    assert (claim.external_id, claim.version, claim.byline, claim.language) == (
        "2026/11/28/storm", 1, "Weather Desk", "en",
    )  # fmt: skip
    assert claim.canonical_profile == "news-text-canonical/1"
    assert claim.url == "https://news.example.com/storm"


def test_manifest_records_the_declaration_as_a_created_action(signer: FileKeySigner, trust: TrustConfig) -> None:
    expected = {
        "ai_generated": "trainedAlgorithmicMedia",
        "ai_assisted": "compositeWithTrainedAlgorithmicMedia",
        "human": "digitalCreation",
    }
    for source, term in expected.items():
        verdict = stamp(signer, trust, source=source).verdict
        assert verdict.active_manifest is not None
        first = verdict.active_manifest.actions[0]
        assert first.action == "c2pa.created"
        assert (first.digital_source_type or "").endswith("/" + term)


def test_canonical_text_file_is_what_was_signed(signer: FileKeySigner, trust: TrustConfig) -> None:
    result = stamp(signer, trust)
    assert result.text == (
        b"Storm warning for the coast\n\nGusts up to 80 km/h from 22:00.\n\n"
        b"Rain starts at 22:00 tonight.\n\nGusts could reach 80 km/h.\n"
    )
    assert result.name == "2026-11-28-storm.v1"


EDITS = {
    "a word changed": (b"tonight", b"tomorrow"),
    "a number changed": (b"80 km/h.\n", b"90 km/h.\n"),
    "a time changed": (b"22:00 tonight", b"22:30 tonight"),
    "'not' inserted": (b"could reach", b"could not reach"),
    "full stop to question mark": (b"tonight.", b"tonight?"),
    "headline word changed": (b"Storm warning", b"Storm watch"),
    "two paragraphs merged": (b"tonight.\n\nGusts", b"tonight. Gusts"),
    "trailing newline removed": (b"km/h.\n", b"km/h."),
    "byte appended": (b"km/h.\n", b"km/h.\n\n"),
}


@pytest.mark.parametrize(("old", "new"), EDITS.values(), ids=EDITS.keys())
def test_every_edit_makes_the_text_invalid(old: bytes, new: bytes, signer: FileKeySigner, trust: TrustConfig) -> None:
    result = stamp(signer, trust)
    assert old in result.text
    verdict = inspect(result.text.replace(old, new, 1), trust, sidecar=result.manifest)
    assert verdict.state is State.INVALID
    assert verdict.labels == ()
    assert "assertion.dataHash.mismatch" in verdict.codes.failure_codes()


def test_untrusted_signer_gets_no_label(trust: TrustConfig) -> None:
    other = issue_chain("Content Farm", Algorithm.ES256)
    farm = FileKeySigner.from_pem(other.key_pem, other.chain_pem)
    result = stamp(farm, TrustConfig(other.root_pem.decode()))
    verdict = inspect(result.text, trust, sidecar=result.manifest)
    assert verdict.state is State.UNTRUSTED
    assert verdict.labels == ()
    assert [r for r in verdict.reasons if not r.counted and r.digital_source_type]


def test_stamping_with_a_signer_outside_the_anchors_is_refused(trust: TrustConfig) -> None:
    other = issue_chain("Content Farm", Algorithm.ES256)
    farm = FileKeySigner.from_pem(other.key_pem, other.chain_pem)
    with pytest.raises(VerificationError, match="not trusted"):
        stamp(farm, trust)


def test_payload_inspection_checks_the_article_id(signer: FileKeySigner, trust: TrustConfig) -> None:
    result = stamp(signer, trust, version=3)
    same = inspect_article(parse_payload(payload(version=3)), result.manifest, trust)
    assert same.labels == ("ai_reported",)
    # Same text, shown under another article id or version: intact manifest, but no label.
    for changes in ({"external_id": "2026/11/28/other", "version": 3}, {"version": 4}):
        shown = inspect_article(parse_payload(payload(**changes)), result.manifest, trust)
        assert shown.state is State.TRUSTED
        assert shown.labels == ()
        assert any("wrong article" in r.text for r in shown.reasons)
    # Re-templated HTML of the same article still verifies.
    retemplated = payload(version=3, body_html="<div>\r\n <p class='a'>Rain starts at 22:00 tonight.</p>\n"
                          "<p>Gusts could   reach 80 km/h.</p></div>")  # fmt: skip
    assert inspect_article(parse_payload(retemplated), result.manifest, trust).labels == ("ai_reported",)


def test_correction_chain_three_versions_deep(signer: FileKeySigner, trust: TrustConfig) -> None:
    v1 = stamp(signer, trust)
    v2 = stamp(
        signer, trust, v1, version=2, body_html="<p>Rain starts at 22:00 tonight.</p><p>Gusts up to 90 km/h.</p>"
    )
    v3 = stamp(signer, trust, v2, version=3, headline="Storm warning for the whole coast")
    verdict = inspect(v3.text, trust, sidecar=v3.manifest)
    assert verdict.state is State.TRUSTED
    assert verdict.labels == ("ai_reported",)  # AI-written stays Reported by AI through human fixes
    chain = verdict.active_manifest.walk() if verdict.active_manifest else []
    assert [(n.article.version if n.article else None, n.state) for n in chain] == [
        (3, State.TRUSTED), (2, State.TRUSTED), (1, State.TRUSTED),
    ]  # fmt: skip
    assert [n.relationship for n in chain] == [None, "parentOf", "parentOf"]
    actions = [(a.action, (a.digital_source_type or "").rsplit("/", 1)[-1]) for a in chain[0].actions]
    assert actions == [
        ("c2pa.opened", "trainedAlgorithmicMedia"), ("c2pa.edited", "humanEdits"), ("c2pa.published", ""),
    ]  # fmt: skip
    # Each version still verifies on its own.
    assert inspect(v1.text, trust, sidecar=v1.manifest).labels == ("ai_reported",)


def test_declared_edit_source_is_signed(signer: FileKeySigner, trust: TrustConfig) -> None:
    v1 = stamp(signer, trust, source="human")
    v2 = stamp(signer, trust, v1, version=2, source="ai_assisted", edit_source="ai_assisted")
    assert v2.verdict.labels == ("ai_assisted",)
    assert v2.verdict.active_manifest is not None
    edited = v2.verdict.active_manifest.actions[1]
    assert (edited.digital_source_type or "").endswith("compositeWithTrainedAlgorithmicMedia")


def test_correction_declared_human_on_ai_article(signer: FileKeySigner, trust: TrustConfig) -> None:
    v1 = stamp(signer, trust)
    with pytest.raises(UpstreamConflictError, match="ai_reported"):
        stamp(signer, trust, v1, version=2, source="human")
    v2 = stamp_article(
        parse_payload(payload(version=2, source="human")),
        signer,
        trust,
        previous=ArticleVersion(v1.text, v1.manifest),
        override_upstream="rewritten from scratch by the weather editor",
    )
    assert v2.verdict.labels == ("ai_reported",)  # the signed AI claim of version 1 is never erased
    assert v2.verdict.active_manifest is not None
    assert "org.newsroom-provenance.upstream-override" in v2.verdict.active_manifest.assertion_labels


CORRECTION_ERRORS = {
    "other article": ({"external_id": "2026/11/28/other", "version": 2}, "not '2026/11/28/other'"),
    "same version": ({"version": 1}, "version above 1"),
    "older version": ({"version": 1, "headline": "Old"}, "version above 1"),
}


@pytest.mark.parametrize(("changes", "message"), CORRECTION_ERRORS.values(), ids=CORRECTION_ERRORS.keys())
def test_correction_must_follow_its_previous_version(
    changes: dict[str, Any], message: str, signer: FileKeySigner, trust: TrustConfig
) -> None:
    v1 = stamp(signer, trust)
    with pytest.raises(InputError, match=message):
        stamp(signer, trust, v1, **changes)


def test_correction_of_a_tampered_previous_version_is_refused(signer: FileKeySigner, trust: TrustConfig) -> None:
    v1 = stamp(signer, trust)
    forged = ArticleVersion(v1.text.replace(b"80", b"40"), v1.manifest)
    with pytest.raises(InputError, match="does not verify as trusted: it is invalid"):
        stamp_article(parse_payload(payload(version=2)), signer, trust, previous=forged)


def test_chinese_and_mixed_script_articles(signer: FileKeySigner, trust: TrustConfig) -> None:
    result = stamp(
        signer,
        trust,
        headline="亚洲股市周五收高",
        standfirst=None,
        body_html=None,
        body_markdown="**恒生指数**收于 19,850 点，上涨 1.2%。\n\nTokyo 日经 225 指数上涨 0.8%。",
        language="zh-Hans",
        source="ai_assisted",
    )
    assert (
        result.text.decode()
        == "亚洲股市周五收高\n\n恒生指数收于 19,850 点，上涨 1.2%。\n\nTokyo 日经 225 指数上涨 0.8%。\n"
    )
    assert inspect(result.text, trust, sidecar=result.manifest).labels == ("ai_assisted",)
    changed = result.text.replace("上涨".encode(), "下跌".encode(), 1)
    assert inspect(changed, trust, sidecar=result.manifest).state is State.INVALID


BAD_PAYLOADS = {
    "not JSON": (b"{headline: nope", "not JSON"),
    "JSON but not an object": (b'["a"]', "JSON object"),
    "invalid UTF-8": (payload()[:-10] + b"\xff\xfe" + payload()[-10:], "UTF-8"),
    "empty file": (b"", "empty"),
    "missing headline": (payload(headline=None), "missing 'headline'"),
    "missing url": (payload(url=None), "missing 'url'"),
    "empty body": (payload(body_html="   "), "empty"),
    "body with no text": (payload(body_html="<script>x()</script><p> </p>"), "no text"),
    "two bodies": (payload(body_text="hello"), "exactly one"),
    "no body": (payload(body_html=None), "exactly one"),
    "unknown source": (payload(source="robot"), "must be one of"),
    "version as text": (payload(version="2"), "integer from 1"),
    "version zero": (payload(version=0), "integer from 1"),
    "version beyond 32 bits": (payload(version=2**63), "integer from 1"),
    "url not http": (payload(url="javascript:alert(1)"), "http"),
    "field of the wrong type": (payload(byline=["a"]), "must be a string"),
    "50 MB body": (payload(body_text="word " * 10_000_000), "limit"),
}


@pytest.mark.parametrize(("data", "message"), BAD_PAYLOADS.values(), ids=BAD_PAYLOADS.keys())
def test_bad_payloads_are_input_errors(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_payload(data)


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_stamp_article_correction_and_inspect(keys_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (tmp_path / "v1.json").write_bytes(payload())
    (tmp_path / "v2.json").write_bytes(payload(version=2, body_html="<p>Rain starts at 22:00 tonight.</p>"))
    code, stdout, _ = _cli(
        "stamp-article", str(tmp_path / "v1.json"), "-o", str(out), "--keys-dir", str(keys_dir), "--json"
    )
    assert code == 0
    first = json.loads(stdout)
    assert first["verdict"]["labels"] == ["ai_reported"]
    assert Path(first["text"]).name == "2026-11-28-storm.v1.txt"
    code, stdout, _ = _cli(
        "stamp-article", str(tmp_path / "v2.json"), "-o", str(out), "--keys-dir", str(keys_dir),
        "--previous", first["text"], "--json",
    )  # fmt: skip
    assert code == 0
    second = json.loads(stdout)
    assert second["previous"]["article"]["version"] == 1
    code, stdout, _ = _cli(
        "inspect",
        second["text"],
        "--sidecar",
        second["manifest"],
        "--keys-dir",
        str(keys_dir),
        "--json",
        "--lang",
        "zh-Hans",
    )
    verdict = json.loads(stdout)
    assert (code, verdict["state"], verdict["labels"]) == (0, "trusted", ["ai_reported"])
    assert verdict["label_text"] == {"ai_reported": "由 AI 报道"}
    assert verdict["ingredients"][0]["article"]["version"] == 1
    # The payload itself, against the manifest, with its id checked.
    code, stdout, _ = _cli(
        "inspect", str(tmp_path / "v2.json"), "--sidecar", second["manifest"], "--keys-dir", str(keys_dir), "--json"
    )
    assert json.loads(stdout)["labels"] == ["ai_reported"]
    code, stdout, _ = _cli(
        "inspect", str(tmp_path / "v1.json"), "--sidecar", second["manifest"], "--keys-dir", str(keys_dir), "--json"
    )
    assert json.loads(stdout)["labels"] == []  # v1's payload is not what v2's manifest signs
    # Existing outputs are not overwritten.
    code, _, err = _cli("stamp-article", str(tmp_path / "v1.json"), "-o", str(out), "--keys-dir", str(keys_dir))
    assert code == 2
    assert "already exists" in err


@pytest.mark.parametrize(
    "data", [b"not json", b"\xff\xfe{}", payload(body_html="")], ids=["not JSON", "not UTF-8", "empty body"]
)
def test_cli_bad_payload_exit_2_nothing_written(keys_dir: Path, tmp_path: Path, data: bytes) -> None:
    (tmp_path / "a.json").write_bytes(data)
    out = tmp_path / "out"
    code, stdout, err = _cli("stamp-article", str(tmp_path / "a.json"), "-o", str(out), "--keys-dir", str(keys_dir))
    assert code == 2
    assert stdout == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert not out.exists()


def test_cli_text_without_sidecar_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Headline\n\nBody.\n")
    code, _, err = _cli("inspect", str(tmp_path / "a.txt"))
    assert code == 2
    assert "--sidecar" in err


def test_article_sources_are_closed() -> None:
    assert [s.value for s in ArticleSource] == ["ai_generated", "ai_assisted", "human"]
