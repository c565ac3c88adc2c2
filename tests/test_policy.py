"""The label policy: a table of single-action cases plus properties over random manifest trees."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import LABEL_IDS, LANGUAGES, POLICY_VERSION, InputError, State, decide, label_text
from provenance.models import Action, ManifestNode, SignerInfo
from provenance.policy import IPTC, AssetKind

IMAGE = AssetKind.IMAGE
ARTICLE = AssetKind.ARTICLE

AI = frozenset({"ai_generated", "ai_edited"})
SOURCE_TYPES = [
    "trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
    "compositeSynthetic",
    "algorithmicMedia",
    "digitalCapture",
    "humanEdits",
    "digitalCreation",
    "composite",
    "compositeCapture",
]
ACTIONS = [
    "c2pa.created",
    "c2pa.opened",
    "c2pa.edited",
    "c2pa.placed",
    "c2pa.cropped",
    "c2pa.published",
    "c2pa.resized",
]

RULE_TABLE = {
    "created + trained -> AI-generated": ("c2pa.created", IPTC + "trainedAlgorithmicMedia", ("ai_generated",)),
    "https IPTC URI reads the same": (
        "c2pa.created",
        "https://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
        ("ai_generated",),
    ),
    "opened + trained (newsroom re-signing an AI upload) -> AI-generated": (
        "c2pa.opened",
        IPTC + "trainedAlgorithmicMedia",
        ("ai_generated",),
    ),
    "placed + trained (generative fill) -> AI-edited": (
        "c2pa.placed",
        IPTC + "trainedAlgorithmicMedia",
        ("ai_edited",),
    ),
    "edited + trained -> AI-edited": ("c2pa.edited", IPTC + "trainedAlgorithmicMedia", ("ai_edited",)),
    "edited + composite with trained -> AI-edited": (
        "c2pa.edited",
        IPTC + "compositeWithTrainedAlgorithmicMedia",
        ("ai_edited",),
    ),
    "created + compositeSynthetic -> AI-edited": ("c2pa.created", IPTC + "compositeSynthetic", ("ai_edited",)),
    "algorithmicMedia (not trained) -> none": ("c2pa.created", IPTC + "algorithmicMedia", ()),
    "digitalCapture -> none": ("c2pa.created", IPTC + "digitalCapture", ()),
    "humanEdits -> none": ("c2pa.edited", IPTC + "humanEdits", ()),
    "bare term without the IPTC URI -> none": ("c2pa.created", "trainedAlgorithmicMedia", ()),
    "other vocabulary -> none": ("c2pa.created", "http://example.com/trainedAlgorithmicMedia", ()),
    "no source type -> none": ("c2pa.created", None, ()),
}


def node(
    actions: tuple[Action, ...] = (),
    *,
    state: State = State.TRUSTED,
    relationship: str | None = None,
    ingredients: tuple[ManifestNode, ...] = (),
    title: str | None = "t",
) -> ManifestNode:
    return ManifestNode(
        label="urn:c2pa:x",
        state=state,
        title=title,
        relationship=relationship,
        actions=actions,
        ingredients=ingredients,
    )


@pytest.mark.parametrize(("action", "dst", "labels"), RULE_TABLE.values(), ids=RULE_TABLE.keys())
def test_rule_table(action: str, dst: str | None, labels: tuple[str, ...]) -> None:
    decision = decide(State.TRUSTED, node((Action(action, dst),)), kind=IMAGE)
    assert decision.labels == labels
    assert decision.policy_version == POLICY_VERSION
    assert [r.label for r in decision.reasons if r.counted] == list(labels)


def test_ai_generated_wins_over_ai_edited() -> None:
    tree = node(
        (Action("c2pa.created", IPTC + "trainedAlgorithmicMedia"), Action("c2pa.placed", IPTC + "compositeSynthetic"))
    )
    assert decide(State.TRUSTED, tree, kind=IMAGE).labels == ("ai_generated",)


TRAINED_ORIGIN = (Action("c2pa.created", IPTC + "trainedAlgorithmicMedia"),)
CAPTURE_ORIGIN = (Action("c2pa.created", IPTC + "digitalCapture"),)
OPENED = (Action("c2pa.opened", None),)

#: name: (tree, kind, labels) — where an AI origin sits decides between "generated" and "contains AI".
AI_ORIGIN_PLACEMENT = {
    "AI origin in the active manifest -> generated": (node(TRAINED_ORIGIN), IMAGE, ("ai_generated",)),
    "AI parent, re-published -> generated": (
        node(OPENED, ingredients=(node(TRAINED_ORIGIN, relationship="parentOf"),)), IMAGE, ("ai_generated",)
    ),
    "AI element placed into a photo (componentOf) -> edited": (
        node(CAPTURE_ORIGIN, ingredients=(node(TRAINED_ORIGIN, relationship="componentOf"),)), IMAGE, ("ai_edited",)
    ),
    "collage with one generated tile -> edited": (
        node(CAPTURE_ORIGIN, ingredients=(
            node(CAPTURE_ORIGIN, relationship="componentOf"), node(TRAINED_ORIGIN, relationship="componentOf"),
        )), IMAGE, ("ai_edited",),
    ),
    "component whose own parent is AI -> edited": (
        node(CAPTURE_ORIGIN, ingredients=(
            node(OPENED, relationship="componentOf", ingredients=(node(TRAINED_ORIGIN, relationship="parentOf"),)),
        )), IMAGE, ("ai_edited",),
    ),
    "parent whose component is AI -> edited": (
        node(OPENED, ingredients=(
            node(CAPTURE_ORIGIN, relationship="parentOf", ingredients=(
                node(TRAINED_ORIGIN, relationship="componentOf"),
            )),
        )), IMAGE, ("ai_edited",),
    ),
    "AI-written article quoted as a component -> assisted": (
        node(CAPTURE_ORIGIN, ingredients=(node(TRAINED_ORIGIN, relationship="componentOf"),)), ARTICLE,
        ("ai_assisted",),
    ),
    "AI-written previous version (parentOf) -> reported": (
        node(OPENED, ingredients=(node(TRAINED_ORIGIN, relationship="parentOf"),)), ARTICLE, ("ai_reported",)
    ),
}  # fmt: skip


@pytest.mark.parametrize(("tree", "kind", "labels"), AI_ORIGIN_PLACEMENT.values(), ids=AI_ORIGIN_PLACEMENT.keys())
def test_an_ai_origin_is_generated_only_along_parents(
    tree: ManifestNode, kind: AssetKind, labels: tuple[str, ...]
) -> None:
    decision = decide(State.TRUSTED, tree, kind=kind)
    assert decision.labels == labels
    counted = [r for r in decision.reasons if r.counted]
    assert [r.label for r in counted] == list(labels)
    if labels in (("ai_edited",), ("ai_assisted",)):
        assert "component" in counted[0].text


def test_input_to_ingredients_do_not_count() -> None:
    ai = node((Action("c2pa.created", IPTC + "trainedAlgorithmicMedia"),), relationship="inputTo")
    decision = decide(
        State.TRUSTED, node((Action("c2pa.created", IPTC + "digitalCreation"),), ingredients=(ai,)), kind=IMAGE
    )
    assert decision.labels == ()
    assert [r.text for r in decision.reasons if not r.counted]


def test_vocabulary_is_complete_and_closed() -> None:
    for label in LABEL_IDS:
        for lang in LANGUAGES:
            assert label_text(label, lang)
    assert label_text("ai_generated", "zh-Hans") == "AI 生成的图像"
    assert label_text("ai_reported", "zh-Hans") == "由 AI 报道"
    with pytest.raises(InputError):
        label_text("ai_generated", "fr")
    with pytest.raises(InputError):
        label_text("Made by AI", "en")


# --- properties over random trees -------------------------------------------------------------

source_types = st.one_of(st.none(), st.sampled_from(SOURCE_TYPES).map(lambda t: IPTC + t))
actions = st.builds(Action, st.sampled_from(ACTIONS), source_types)
free_text = st.text(max_size=40)


@st.composite
def trees(draw: st.DrawFn, depth: int = 3) -> ManifestNode:
    kids: tuple[ManifestNode, ...] = ()
    if depth > 0:
        kids = tuple(
            dataclasses.replace(
                draw(trees(depth=depth - 1)),
                relationship=draw(st.sampled_from(["parentOf", "componentOf", "inputTo"])),
            )
            for _ in range(draw(st.integers(0, 2)))
        )
    return ManifestNode(
        label=draw(st.text(min_size=1, max_size=10)),
        state=draw(st.sampled_from(list(State))),
        title=draw(st.one_of(st.none(), free_text)),
        actions=tuple(draw(st.lists(actions, max_size=4))),
        ingredients=kids,
    )


def _with_free_text(tree: ManifestNode, text: str) -> ManifestNode:
    """The same claims with every free-text field rewritten to ``text`` (e.g. "AI generated")."""
    return dataclasses.replace(
        tree,
        title=text,
        claim_generator=text,
        signer=SignerInfo(text, text, None, None, None),
        assertion_labels=(*tree.assertion_labels, "stds.schema-org.CreativeWork", "org.example.caption"),
        actions=tuple(dataclasses.replace(a, software_agent=text) for a in tree.actions),
        ingredients=tuple(_with_free_text(i, text) for i in tree.ingredients),
    )


@settings(max_examples=300)
@given(trees(), st.sampled_from(list(State)))
def test_labels_never_appear_unless_trusted(tree: ManifestNode, state: State) -> None:
    decision = decide(state, tree, kind=IMAGE)
    if state is not State.TRUSTED:
        assert decision.labels == ()
    for reason in decision.reasons:
        assert reason.counted == (reason.label is not None)


@settings(max_examples=300)
@given(trees(), st.sampled_from(list(State)), free_text)
def test_free_text_never_changes_labels(tree: ManifestNode, state: State, text: str) -> None:
    for words in (text, "AI generated", "由 AI 报道", "trainedAlgorithmicMedia"):
        assert decide(state, _with_free_text(tree, words), kind=IMAGE).labels == decide(state, tree, kind=IMAGE).labels


HUMAN_STEPS = st.lists(
    st.sampled_from(
        [
            Action("c2pa.cropped"),
            Action("c2pa.published"),
            Action("c2pa.resized"),
            Action("c2pa.edited", IPTC + "humanEdits"),
            Action("c2pa.color_adjustments"),
        ]
    ),
    max_size=4,
)


@settings(max_examples=300)
@given(trees(), HUMAN_STEPS, st.integers(1, 3))
def test_ai_ingredient_survives_publish_and_edit(tree: ManifestNode, steps: list[Action], generations: int) -> None:
    before = set(decide(State.TRUSTED, tree, kind=IMAGE).labels)
    current = tree
    for _ in range(generations):
        parent = dataclasses.replace(current, state=State.TRUSTED, relationship="parentOf")
        current = node((Action("c2pa.opened"), *steps), ingredients=(parent,))
    after = set(decide(State.TRUSTED, current, kind=IMAGE).labels)
    if "ai_generated" in before:
        assert "ai_generated" in after
    if before & AI:
        assert after & AI
    assert after <= before  # human steps add no AI label


def test_truncated_tree_is_reported_not_silent() -> None:
    tree = dataclasses.replace(node((Action("c2pa.opened"),)), truncated=True)
    decision = decide(State.TRUSTED, tree, kind=IMAGE)
    assert decision.labels == ()
    assert any("not evaluated" in r.text for r in decision.reasons)


@pytest.mark.parametrize(
    ("label", "labels", "kept"),
    [
        ("ai_generated", ("ai_generated",), True),
        ("ai_edited", ("ai_generated",), True),  # outranked, not lost
        ("ai_generated", ("ai_edited",), False),
        ("ai_edited", (), False),
    ],
)
def test_kept_respects_precedence(label: str, labels: tuple[str, ...], kept: bool) -> None:
    from provenance.policy import kept as is_kept

    assert is_kept(label, labels) is kept
