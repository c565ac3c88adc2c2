"""The label policy: verified claims in, badge labels out.

Pure data and a pure function: no I/O, no clock, no SDK. A label is derived only from the
IPTC ``digitalSourceType`` of actions in manifests whose state is ``trusted``: the active manifest,
and the ``parentOf`` / ``componentOf`` ingredients below it whose own manifests are trusted. Titles,
descriptions, file names, unsigned XMP and vendor assertions never produce a label. AI claims that
cannot count (their manifest is untrusted or invalid) are still reported as uncounted reasons, so
an AI claim is never dropped silently.

Images and articles share the mechanism but not the words: the same claims read as
``ai_generated`` / ``ai_edited`` on an image and ``ai_reported`` / ``ai_assisted`` on an article.

``ai_generated`` / ``ai_reported`` are reserved for content whose own origin is AI: an origin action
with ``trainedAlgorithmicMedia`` in the active manifest or along a chain of ``parentOf`` ingredients.
The same claim below a ``componentOf`` ingredient (an AI element placed into a photo, a collage with
one generated tile) means the asset *contains* AI content but was not completely AI-generated:
``ai_edited`` / ``ai_assisted``.

Changing any rule below changes ``POLICY_VERSION``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from provenance.models import Decision, ManifestNode, Reason, State

#: 1: images only; 2: adds the article rules; 3: an AI origin below a componentOf ingredient makes its asset
#: ai_edited / ai_assisted, not ai_generated / ai_reported.
POLICY_VERSION: Final = "labels/3"


class AssetKind(enum.StrEnum):
    """Which vocabulary applies: the asset's kind decides, for its whole ingredient tree."""

    IMAGE = "image"
    ARTICLE = "article"
    OTHER = "other"  # video, audio, documents: no badge vocabulary yet, so AI claims are reported only


IPTC: Final = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# IPTC terms are matched whatever the URI scheme: both http:// (canonical) and https:// occur in
# manifests made by real tools.
_IPTC_PREFIXES: Final = (IPTC, "https://cv.iptc.org/newscodes/digitalsourcetype/")
TRAINED: Final = "trainedAlgorithmicMedia"
COMPOSITE_TRAINED: Final = "compositeWithTrainedAlgorithmicMedia"
COMPOSITE_SYNTHETIC: Final = "compositeSynthetic"

# Actions that state where the asset itself came from. ``c2pa.created`` is the spec's; the SDK
# also puts a source type on ``c2pa.opened`` (its auto_opened_action.source_type setting), which
# is how a newsroom re-signing an upload declares the upload's nature, so it is read the same way.
ORIGIN_ACTIONS: Final = frozenset({"c2pa.created", "c2pa.opened"})

# Ingredient relationships whose content ends up in the asset (``inputTo`` does not).
COUNTED_RELATIONSHIPS: Final = frozenset({"parentOf", "componentOf"})

# Vendor assertions that talk about generative AI without an IPTC source type: reported, never labelled.
LEGACY_AI_ASSERTIONS: Final = ("com.adobe.generative-ai",)

# What an AI-origin label becomes for content that is only a component of the asset.
AS_COMPONENT: Final = {"ai_generated": "ai_edited", "ai_reported": "ai_assisted"}

# Labels that outrank others: when the key is present the values are dropped.
PRECEDENCE: Final = {"ai_generated": frozenset({"ai_edited"}), "ai_reported": frozenset({"ai_assisted"})}


@dataclass(frozen=True)
class Rule:
    """For assets of ``kind``: ``label`` applies when an action's name is (or is not) an origin
    action and its IPTC term is one of ``digital_source_types``."""

    kind: AssetKind
    name: str
    digital_source_types: frozenset[str]
    origin: bool | None  # True: origin actions only; False: all other actions; None: any action
    label: str


_AI_MIX: Final = frozenset({COMPOSITE_TRAINED, COMPOSITE_SYNTHETIC})
IMAGE, ARTICLE = AssetKind.IMAGE, AssetKind.ARTICLE

RULES: Final[tuple[Rule, ...]] = (
    Rule(IMAGE, "created by a trained model", frozenset({TRAINED}), True, "ai_generated"),
    Rule(IMAGE, "edited with a trained model", frozenset({TRAINED}), False, "ai_edited"),
    Rule(IMAGE, "composite with AI content", _AI_MIX, None, "ai_edited"),
    Rule(ARTICLE, "written by a trained model", frozenset({TRAINED}), True, "ai_reported"),
    Rule(ARTICLE, "edited with a trained model", frozenset({TRAINED}), False, "ai_assisted"),
    Rule(ARTICLE, "written with AI assistance", _AI_MIX, None, "ai_assisted"),
)

LABEL_ORDER: Final = ("ai_generated", "ai_edited", "ai_reported", "ai_assisted")


def iptc_term(digital_source_type: str | None) -> str | None:
    """The IPTC digital source type term of a URI (``None`` if it is not an IPTC source type)."""
    if digital_source_type:
        for prefix in _IPTC_PREFIXES:
            if digital_source_type.startswith(prefix):
                return digital_source_type[len(prefix) :]
    return None


def _matching_rule(kind: AssetKind, action: str, digital_source_type: str | None) -> Rule | None:
    term = iptc_term(digital_source_type)
    if term is None:
        return None
    for rule in RULES:
        if rule.kind is not kind or term not in rule.digital_source_types:
            continue
        if rule.origin is None or rule.origin == (action in ORIGIN_ACTIONS):
            return rule
    return None


def _why_not(node: ManifestNode, asset_state: State, is_active: bool) -> str:
    if is_active:
        return f"manifest is {asset_state.value}"
    if node.relationship not in COUNTED_RELATIONSHIPS:
        return f"ingredient relationship {node.relationship!r} does not count"
    return f"ingredient manifest is {node.state.value}"


def _visit(
    kind: AssetKind,
    node: ManifestNode,
    path: tuple[str, ...],
    counted: bool,
    why_not: str,
    accept: frozenset[State],
    found: dict[str, None],
    reasons: list[Reason],
    component: bool = False,
) -> None:
    """Collect the labels and reasons of ``node`` and its ingredients; ``component`` is true below a
    ``componentOf`` edge (the content is part of the asset, not its origin)."""
    signer = node.signer.display() if node.signer else None
    where = " > ".join(path)
    for action in node.actions:
        rule = _matching_rule(kind, action.action, action.digital_source_type)
        if rule is None:
            continue
        term = iptc_term(action.digital_source_type)
        claim = f"{action.action} with {term} ({rule.name}) in {where}, signed by {signer}"
        label = AS_COMPONENT.get(rule.label, rule.label) if component else rule.label
        if label != rule.label:
            claim += "; it is a component, so the asset contains AI content but is not wholly AI-made"
        if counted:
            found[label] = None
            text = f"{label}: {claim}"
        else:
            text = f"not counted ({why_not}): {claim}"
        reasons.append(
            Reason(
                label=label if counted else None,
                counted=counted,
                manifest=node.label,
                path=path,
                action=action.action,
                digital_source_type=action.digital_source_type,
                signer=signer,
                text=text,
            )
        )
    notes = [
        f"not counted (no IPTC digitalSourceType): vendor assertion {assertion} in {where}"
        for assertion in node.assertion_labels
        if assertion.startswith(LEGACY_AI_ASSERTIONS)
    ]
    if node.truncated:
        notes.append(f"not evaluated: the ingredients of {where} exceed the inspection limits")
    for text in notes:
        reasons.append(
            Reason(
                label=None,
                counted=False,
                manifest=node.label,
                path=path,
                action=None,
                digital_source_type=None,
                signer=signer,
                text=text,
            )
        )
    for ingredient in node.ingredients:
        child_counted = counted and ingredient.relationship in COUNTED_RELATIONSHIPS and ingredient.state in accept
        child_why = why_not if not counted else _why_not(ingredient, ingredient.state, is_active=False)
        title = ingredient.title or ingredient.label or "untitled ingredient"
        below_component = component or ingredient.relationship == "componentOf"
        _visit(kind, ingredient, (*path, title), child_counted, child_why, accept, found, reasons, below_component)


def evaluate(
    asset_state: State,
    active: ManifestNode | None,
    *,
    kind: AssetKind,
    accept: frozenset[State] = frozenset({State.TRUSTED}),
) -> Decision:
    """Apply the rules for ``kind`` to a manifest tree.

    ``accept`` is the set of manifest states whose claims count. The label policy uses only
    ``trusted``; the stamp guard also looks at ``untrusted`` (valid but unknown signer) claims.
    """
    if active is None:
        return Decision((), (), POLICY_VERSION)
    found: dict[str, None] = {}
    reasons: list[Reason] = []
    counted = asset_state in accept and kind is not AssetKind.OTHER
    why_not = (
        "no badge vocabulary for this media type" if kind is AssetKind.OTHER else _why_not(active, asset_state, True)
    )
    rules_kind = AssetKind.IMAGE if kind is AssetKind.OTHER else kind
    root_title = active.title or active.label or "active manifest"
    _visit(rules_kind, active, (root_title,), counted, why_not, accept, found, reasons)
    labels = set(found)
    for winner, losers in PRECEDENCE.items():
        if winner in labels:
            labels -= losers
    ordered = tuple(label for label in LABEL_ORDER if label in labels)
    return Decision(ordered, tuple(reasons), POLICY_VERSION)


def kept(label: str, labels: tuple[str, ...]) -> bool:
    """Whether ``label`` survives in ``labels``, itself or through a label that outranks it."""
    return label in labels or any(label in PRECEDENCE.get(other, ()) for other in labels)


def decide(asset_state: State, active: ManifestNode | None, *, kind: AssetKind) -> Decision:
    """Labels for display: only claims from trusted manifests count; none unless the asset is trusted."""
    return evaluate(asset_state, active, kind=kind, accept=frozenset({State.TRUSTED}))
