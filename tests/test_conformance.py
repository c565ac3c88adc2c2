"""Conformance against C2PA files made by other implementations (tests/fixtures/external).

Every media row of MANIFEST.tsv is inspected under the three trust set-ups the manifest records
(no anchors; the c2pa-rs test roots; the official C2PA trust list with the c2pa-rs EKU config),
and must map to the state implied by what c2pa-python reported there, except for the documented
deviations below. Files are keyed by sha256, as the fixture README asks.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from provenance import InputError, ManifestError, State, TrustConfig, inspect

from .conftest import EXTERNAL, TEST_ANCHORS

TRUST_LIST = EXTERNAL / "conformance-public" / "certs" / "C2PA-TRUST-LIST.pem"
STORE_CFG = EXTERNAL / "c2pa-rs" / "certs" / "trust" / "store.cfg"

SETUPS = {
    "default": TrustConfig(),
    "test-anchors": TrustConfig.from_files([TEST_ANCHORS]),
    "C2PA-trust-list": TrustConfig.from_files([TRUST_LIST], trust_config=STORE_CFG),
}

# Where our state deliberately differs from the SDK's summary state, and why.
DEVIATIONS: dict[tuple[str, str], tuple[State, str]] = {
    ("c2pa-rs/video1.mp4", "test-anchors"): (
        State.TRUSTED,
        "the SDK rolls an untrusted *ingredient* signer up into 'Valid'; our state is the active signer's",
    ),
    ("c2pa-rs/C_with_CAWG_data.jpg", "test-anchors"): (
        State.TRUSTED,
        "only the CAWG identity credential is untrusted (cawg.x509.credential.untrusted); the C2PA signer is trusted",
    ),
}

ERROR = "error"  # the SDK could not read the file: we raise InputError or ManifestError (CLI exit 2)


@dataclass(frozen=True)
class Row:
    file: str
    sha256: str
    outcomes: dict[str, str]
    has_ai: str

    @property
    def path(self) -> Path:
        return EXTERNAL / self.file


def _expected(outcome: str) -> State | str:
    if outcome.startswith("NoManifest"):
        return State.ABSENT
    if outcome.startswith("RemoteOnly"):
        return State.UNAVAILABLE
    if outcome.startswith(("Unsupported", "Error")):
        return ERROR
    return {"Trusted": State.TRUSTED, "Valid": State.UNTRUSTED, "Invalid": State.INVALID}[outcome]


def _rows() -> list[Row]:
    rows = []
    with (EXTERNAL / "MANIFEST.tsv").open(newline="") as fh:
        for rec in csv.DictReader(fh, delimiter="\t"):
            state = rec["c2pa_python_state"]
            if state.startswith("n/a"):
                continue  # certificates and configuration files
            match = re.fullmatch(r"(\S+(?:\([^)]*\))?) \[test-anchors: ([^;]+); C2PA-trust-list: ([^\]]+)\]", state)
            assert match, f"unparsed state column for {rec['file']}: {state}"
            outcomes = dict(zip(SETUPS, match.groups(), strict=True))
            rows.append(Row(rec["file"], rec["sha256"], outcomes, rec["has_ai_source_type"]))
    return rows


ROWS = _rows()
CASES = [pytest.param(row, setup, id=f"{row.file}[{setup}]") for row in ROWS for setup in SETUPS]


def test_manifest_lists_the_corpus() -> None:
    # A guard that the table was read at all and covers every kind of outcome.
    kinds = {_expected(row.outcomes["default"]) for row in ROWS}
    assert len(ROWS) >= 80
    assert {State.ABSENT, State.UNAVAILABLE, State.INVALID, State.UNTRUSTED, ERROR} <= kinds


@pytest.mark.parametrize(("row", "setup"), CASES)
def test_external_file_maps_to_expected_state(row: Row, setup: str) -> None:
    data = row.path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == row.sha256, "fixture bytes changed"
    expected, _why = DEVIATIONS.get((row.file, setup), (_expected(row.outcomes[setup]), ""))
    if expected == ERROR:
        with pytest.raises((InputError, ManifestError)) as info:
            inspect(data, SETUPS[setup])
        assert info.value.diagnostics()
        return
    verdict = inspect(data, SETUPS[setup])
    assert verdict.state is expected
    assert verdict.sha256 == row.sha256
    if verdict.state is not State.TRUSTED:
        assert verdict.labels == ()


def test_deviations_are_real() -> None:
    # Each documented deviation must still differ from what the SDK summary alone would give.
    by_file = {row.file: row for row in ROWS}
    for (file, setup), (state, _why) in DEVIATIONS.items():
        assert _expected(by_file[file].outcomes[setup]) != state


AI_CASES = {
    "composite with a trained model, C2PA test signer, trusted": (
        "c2pa-js-legacy/composite-dst.jpg",
        "test-anchors",
        ("ai_edited",),
    ),
    "same file, no anchors: untrusted, no label": ("c2pa-js-legacy/composite-dst.jpg", "default", ()),
    "Photoshop generative fill, Adobe signer not anchored: no label": (
        "c2pa-js-legacy/gen-fill.jpg",
        "test-anchors",
        (),
    ),
    "legacy Firefly assertion without an IPTC source type: no label": (
        "c2pa-js-legacy/firefly-1.jpg",
        "test-anchors",
        (),
    ),
    "capture with CAWG identity, trusted: no label": ("c2pa-rs/C_with_CAWG_data.jpg", "test-anchors", ()),
    "algorithmicMedia (not trained) and trusted: no label": ("c2pa-rs/C.jpg", "test-anchors", ()),
}


@pytest.mark.parametrize(("file", "setup", "labels"), AI_CASES.values(), ids=AI_CASES.keys())
def test_labels_of_external_files(file: str, setup: str, labels: tuple[str, ...]) -> None:
    verdict = inspect((EXTERNAL / file).read_bytes(), SETUPS[setup])
    assert verdict.labels == labels


def test_ai_claims_of_untrusted_files_are_reported_not_dropped() -> None:
    verdict = inspect((EXTERNAL / "c2pa-js-legacy/gen-fill.jpg").read_bytes(), SETUPS["default"])
    assert verdict.labels == ()
    uncounted = [r for r in verdict.reasons if not r.counted]
    assert len(uncounted) == 3  # three c2pa.placed actions with trainedAlgorithmicMedia
    assert all("untrusted" in r.text and r.digital_source_type for r in uncounted)


def test_legacy_vendor_ai_assertion_is_reported_without_label() -> None:
    verdict = inspect((EXTERNAL / "c2pa-js-legacy/firefly-1.jpg").read_bytes(), SETUPS["default"])
    assert [r.text for r in verdict.reasons if "com.adobe.generative-ai" in r.text]
    assert verdict.labels == ()


@pytest.mark.parametrize(
    ("anchor", "state"),
    [("anchor-correct.pem", State.TRUSTED), ("anchor-incorrect.pem", State.UNTRUSTED)],
)
def test_c2pa_web_trust_anchor_expectations(anchor: str, state: State) -> None:
    # c2pa-web's reader.spec.ts: trusted with the correct anchor, untrusted with a same-subject impostor.
    trust = TrustConfig.from_files([EXTERNAL / "c2pa-js" / "certs" / anchor])
    verdict = inspect((EXTERNAL / "c2pa-rs/C_with_CAWG_data.jpg").read_bytes(), trust)
    assert verdict.state is state


def test_ingredient_tree_of_a_deep_chain() -> None:
    verdict = inspect(
        (EXTERNAL / "public-testfiles/adobe-20220124-CAIAIIICAICIICAIICICA.jpg").read_bytes(), SETUPS["test-anchors"]
    )
    assert verdict.active_manifest is not None
    ingredients = verdict.active_manifest.ingredients
    assert len(ingredients) == 7
    with_manifest = [i for i in verdict.active_manifest.walk()[1:] if i.label]
    assert len(with_manifest) == 6
    assert all(i.state is State.TRUSTED for i in with_manifest)


def test_tampered_ingredient_is_invalid_in_the_tree() -> None:
    verdict = inspect((EXTERNAL / "c2pa-python/CIE-sig-CA.jpg").read_bytes(), SETUPS["test-anchors"])
    assert verdict.state is State.INVALID
    assert verdict.active_manifest is not None
    assert State.INVALID in {node.state for node in verdict.active_manifest.walk()[1:]}
