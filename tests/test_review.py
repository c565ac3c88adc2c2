"""Editorial review of article text: signed into the article assertion, shown only from a verified manifest,
never a reason to drop an AI label. The library (payload -> signed -> verdict) and the service (report JSON,
badge JSON, the popover words in both languages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance import FileKeySigner, InputError, TrustConfig, inspect
from provenance.articles import ArticleVersion, StampedArticle, inspect_article, parse_payload, stamp_article
from provenance.models import Review
from provenance.vocabulary import review_text

from .databases import Database
from .service_support import Service, assert_problem, running, service_settings

REVIEW: dict[str, Any] = {"editor": "The Harbour Gazette", "reviewed_at": "2026-11-28T09:30:00Z", "scope": "full text"}
PAYLOAD: dict[str, Any] = {
    "external_id": "2026/11/28/tides",
    "version": 1,
    "headline": "Spring tides expected this weekend",
    "byline": "Automated Desk",
    "language": "en",
    "url": "https://news.example.com/tides",
    "body_text": "High water at 06:12 and 18:40 on Saturday.",
    "source": "ai_generated",
    "review": REVIEW,
}


def payload(**changes: Any) -> bytes:
    doc = {**PAYLOAD, **changes}
    # ASCII JSON: a lone surrogate travels as the escape \ud800, as a hostile CMS would send it
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


def stamp(
    signer: FileKeySigner, trust: TrustConfig, previous: StampedArticle | None = None, **changes: Any
) -> StampedArticle:
    prior = ArticleVersion(previous.text, previous.manifest) if previous else None
    return stamp_article(parse_payload(payload(**changes)), signer, trust, previous=prior)


# --- the payload ---------------------------------------------------------------------------------------------

MALFORMED: dict[str, tuple[Any, str]] = {
    "review is a string": ("checked by the desk", "'review' must be an object"),
    "review is a list": ([REVIEW], "'review' must be an object"),
    "no editor": ({"reviewed_at": "2026-11-28T09:30:00Z"}, "missing 'review.editor'"),
    "empty editor": ({**REVIEW, "editor": "  "}, "'review.editor' is empty"),
    "editor not a string": ({**REVIEW, "editor": 7}, "'review.editor' must be a string"),
    "editor too long": ({**REVIEW, "editor": "x" * 201}, "'review.editor' is longer than 200"),
    "editor with a control character": ({**REVIEW, "editor": "Desk\x1b[31m"}, "'review.editor' has a control"),
    "editor with a lone surrogate": ({**REVIEW, "editor": "\ud800"}, "'review.editor' has a lone surrogate"),
    "no reviewed_at": ({"editor": "Desk"}, "missing 'review.reviewed_at'"),
    "reviewed_at a date only": ({**REVIEW, "reviewed_at": "2026-11-28"}, "'review.reviewed_at' must be an ISO 8601"),
    "reviewed_at without offset": (
        {**REVIEW, "reviewed_at": "2026-11-28T09:30:00"},
        "'review.reviewed_at' must be an ISO 8601",
    ),
    "reviewed_at not a time": ({**REVIEW, "reviewed_at": "yesterday"}, "'review.reviewed_at' must be an ISO 8601"),
    "reviewed_at a number": ({**REVIEW, "reviewed_at": 1764322200}, "'review.reviewed_at' must be a string"),
    "scope too long": ({**REVIEW, "scope": "s" * 201}, "'review.scope' is longer than 200"),
    "scope empty": ({**REVIEW, "scope": ""}, "'review.scope' must be text"),
    "unknown field": ({**REVIEW, "approved": True}, "'review.approved' is not known"),
}


@pytest.mark.parametrize(("review", "message"), MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_review_is_refused_naming_the_field(review: Any, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        parse_payload(payload(review=review))


ACCEPTED: dict[str, tuple[dict[str, Any], Review]] = {
    "UTC with Z": (REVIEW, Review("The Harbour Gazette", "2026-11-28T09:30:00Z", "full text")),
    "offset, no scope": (
        {"editor": "港口日报", "reviewed_at": "2026-11-28T17:30:00+08:00"},
        Review("港口日报", "2026-11-28T17:30:00+08:00", None),
    ),
    "fractional seconds": (
        {"editor": "Desk", "reviewed_at": "2026-11-28T09:30:00.250-05:00", "scope": "headline and summary"},
        Review("Desk", "2026-11-28T09:30:00.250-05:00", "headline and summary"),
    ),
}


@pytest.mark.parametrize(("review", "expected"), ACCEPTED.values(), ids=list(ACCEPTED))
def test_review_is_parsed(review: dict[str, Any], expected: Review) -> None:
    assert parse_payload(payload(review=review)).review == expected


def test_no_review_is_none() -> None:
    assert parse_payload(payload(review=None)).review is None


# --- signed, then verified -----------------------------------------------------------------------------------


def test_review_is_signed_and_exposed_without_removing_the_ai_label(signer: FileKeySigner, trust: TrustConfig) -> None:
    stamped = stamp(signer, trust)
    expected = Review("The Harbour Gazette", "2026-11-28T09:30:00Z", "full text")
    assert (stamped.verdict.state.value, stamped.verdict.labels) == ("trusted", ("ai_reported",))
    assert stamped.verdict.review == expected
    # Read back from the files alone: the review lives in the signed article assertion.
    verdict = inspect(stamped.text, trust, sidecar=stamped.manifest)
    assert verdict.labels == ("ai_reported",)
    assert verdict.review == expected
    assert verdict.active_manifest is not None
    assert verdict.active_manifest.article is not None
    assert verdict.active_manifest.article.review == expected
    as_json = verdict.to_dict()
    assert as_json["review"] == {
        "editor": "The Harbour Gazette",
        "reviewed_at": "2026-11-28T09:30:00Z",
        "scope": "full text",
    }
    assert as_json["article"]["review"] == as_json["review"]
    assert as_json["labels"] == ["ai_reported"]


def test_without_review_the_verdict_has_no_review_key(signer: FileKeySigner, trust: TrustConfig) -> None:
    stamped = stamp(signer, trust, review=None)
    assert stamped.verdict.review is None
    assert "review" not in stamped.verdict.to_dict()
    assert stamped.verdict.labels == ("ai_reported",)


def test_review_of_a_human_article_is_allowed_and_shown(signer: FileKeySigner, trust: TrustConfig) -> None:
    stamped = stamp(signer, trust, source="human")
    assert (stamped.verdict.state.value, stamped.verdict.labels) == ("trusted", ())
    assert stamped.verdict.review is not None
    assert stamped.verdict.review.editor == "The Harbour Gazette"


def test_review_of_an_ai_assisted_article_keeps_its_label(signer: FileKeySigner, trust: TrustConfig) -> None:
    stamped = stamp(signer, trust, source="ai_assisted")
    assert stamped.verdict.labels == ("ai_assisted",)
    assert stamped.verdict.review is not None


def test_an_untrusted_manifest_shows_no_review(
    signer: FileKeySigner, trust: TrustConfig, no_trust: TrustConfig
) -> None:
    stamped = stamp(signer, trust)
    verdict = inspect(stamped.text, no_trust, sidecar=stamped.manifest)
    assert verdict.state.value == "untrusted"
    assert verdict.review is None
    assert "review" not in verdict.to_dict()


def test_a_payload_review_is_never_taken_without_a_signature(signer: FileKeySigner, trust: TrustConfig) -> None:
    signed_without = stamp(signer, trust, review=None)
    # The same article shown with a review its manifest does not carry: the unsigned review is not shown.
    verdict = inspect_article(parse_payload(payload()), signed_without.manifest, trust)
    assert verdict.labels == ("ai_reported",)
    assert verdict.review is None


def test_a_manifest_shown_as_another_article_shows_no_review(signer: FileKeySigner, trust: TrustConfig) -> None:
    stamped = stamp(signer, trust)
    other = parse_payload(payload(external_id="2026/11/28/another"))
    verdict = inspect_article(other, stamped.manifest, trust)
    assert (verdict.state.value, verdict.labels, verdict.review) == ("trusted", (), None)
    same = inspect_article(parse_payload(payload()), stamped.manifest, trust)
    assert same.review is not None
    assert same.labels == ("ai_reported",)


def test_a_correction_carries_its_own_review_and_keeps_the_label(signer: FileKeySigner, trust: TrustConfig) -> None:
    first = stamp(signer, trust)
    second = stamp(signer, trust, first, version=2, body_text="High water at 06:15 and 18:42.", review=None)
    assert (second.verdict.labels, second.verdict.review) == (("ai_reported",), None)
    later = {"editor": "Night Desk", "reviewed_at": "2026-11-28T23:00:00+00:00"}
    third = stamp(signer, trust, second, version=3, body_text="High water at 06:16.", review=later)
    assert third.verdict.labels == ("ai_reported",)
    assert third.verdict.review == Review("Night Desk", "2026-11-28T23:00:00+00:00", None)


POPOVER = {
    "en": "Reviewed by the editors of The Harbour Gazette",
    "zh-Hans": "经 The Harbour Gazette 编辑部审核",
}


@pytest.mark.parametrize("lang", POPOVER)
def test_review_words(lang: str) -> None:
    assert review_text("The Harbour Gazette", lang) == POPOVER[lang]


def test_review_words_refuse_an_unknown_language() -> None:
    with pytest.raises(InputError, match="unsupported language"):
        review_text("Desk", "fr")


# --- through the service -------------------------------------------------------------------------------------


@pytest.fixture
def service(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        yield svc


def test_review_from_payload_to_report_and_badge(service: Service) -> None:
    posted = service.post_article(payload())
    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert (body["state"], body["labels"]) == ("trusted", ["ai_reported"])

    report = service.client.get(f"/v1/articles/{body['id']}/v1/report", headers=service.bearer("auditor"))
    assert report.status_code == 200, report.text
    verification = report.json()["verification"]
    assert verification["labels"] == ["ai_reported"]
    assert verification["review"] == REVIEW
    assert verification["article"]["review"] == REVIEW

    for lang, words in POPOVER.items():
        badge = service.client.get(f"/v1/badges/{body['id']}.json", params={"lang": lang}).json()
        assert [label["id"] for label in badge["labels"]] == ["ai_reported"]  # the review removes no label
        assert badge["review"] == {**REVIEW, "text": words}
        batch = service.client.get("/v1/badges", params={"refs": body["id"], "lang": lang}).json()
        assert batch["badges"][body["id"]]["review"]["text"] == words
    # The SVG still says what the label says.
    assert "Reported by AI" in service.client.get(f"/v1/badges/{body['id']}.svg").text


def test_review_of_a_human_article_is_shown_on_its_badge(service: Service) -> None:
    posted = service.post_article(payload(source="human", external_id="2026/11/28/human-tides"))
    assert posted.status_code == 201, posted.text
    badge = service.client.get(f"/v1/badges/{posted.json()['id']}.json", params={"lang": "zh-Hans"}).json()
    assert (badge["state"], badge["labels"], badge["marking"]) == ("trusted", [], None)
    assert badge["review"]["text"] == POPOVER["zh-Hans"]


def test_article_without_review_has_none_on_its_badge(service: Service) -> None:
    posted = service.post_article(payload(review=None))
    assert posted.status_code == 201, posted.text
    badge = service.client.get(f"/v1/badges/{posted.json()['id']}.json").json()
    assert badge["review"] is None
    assert badge["labels"] == [{"id": "ai_reported", "text": "Reported by AI"}]


def test_hidden_characters_of_a_signed_editor_are_made_visible(service: Service) -> None:
    review = {"editor": "Gazette\u202eetteza", "reviewed_at": "2026-11-28T09:30:00Z"}
    posted = service.post_article(payload(review=review))
    assert posted.status_code == 201, posted.text
    badge = service.client.get(f"/v1/badges/{posted.json()['id']}.json").json()
    assert badge["review"]["editor"] == "Gazette⟨U+202E⟩etteza"
    assert "\u202e" not in badge["review"]["text"]


def test_malformed_review_is_a_422_storing_nothing(service: Service) -> None:
    before = service.stored()
    response = service.post_article(payload(review={"editor": "Desk", "reviewed_at": "soon"}))
    problem = assert_problem(response, 422, "input-error")
    assert "review.reviewed_at" in problem["detail"]
    assert service.stored() == before


def test_the_same_version_with_another_review_is_a_conflict(service: Service) -> None:
    assert service.post_article(payload()).status_code == 201
    assert service.post_article(payload()).status_code == 200  # a repeat
    other = {**REVIEW, "editor": "Another Desk"}
    assert_problem(service.post_article(payload(review=other)), 409, "version-conflict")
