"""Tests of the generic YAML-to-pydantic loader (trials.loader)."""

from __future__ import annotations

import copy
import textwrap
from typing import Annotated, Literal

import hypothesis.strategies as st
import pydantic
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from pydantic import BaseModel, ConfigDict, Field

from trials.exceptions import Problem, ProtocolError
from trials.loader import load_yaml_model, load_yaml_string
from trials.yamlsource import MAX_DEPTH, format_field, parse_field, parse_yaml


# ----------------------------------------------------------------------------- toy models
class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Arm(_Frozen):
    name: str
    allocation: float = Field(gt=0)


class Survival(_Frozen):
    kind: Literal["survival"]
    hazard_ratio: float = Field(gt=0)


class Binary(_Frozen):
    kind: Literal["binary"]
    rate: float = Field(gt=0, lt=1)


class Analysis(_Frozen):
    target_events: int = Field(gt=0)
    method: Literal["logrank", "cox"] = "logrank"
    alpha: float = Field(default=0.025, gt=0, lt=1, allow_inf_nan=False)


class Design(_Frozen):
    name: str
    n_patients: int = Field(gt=0)
    arms: list[Arm] = Field(min_length=1)
    endpoint: Annotated[Survival | Binary, Field(discriminator="kind")]
    analysis: Analysis
    cutoff: float | Literal["auto"] = "auto"


VALID = textwrap.dedent(
    """\
    name: toy trial
    n_patients: 500
    arms:
      - name: control
        allocation: 1
      - name: treatment
        allocation: 2
    endpoint:
      kind: survival
      hazard_ratio: 0.7
    analysis:
      target_events: 300
    """
)


def replace_line(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.fixture
def write(tmp_path):
    """Write a YAML text to a file and return its path."""

    def _write(text: str | bytes, name: str = "design.yaml"):
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return _write


def problems_of(text: str | bytes, model=Design, checks=()) -> list[Problem]:
    with pytest.raises(ProtocolError) as info:
        load_yaml_string(text, model, checks, source_name="design.yaml")
    return info.value.problems


# ----------------------------------------------------------------------------- valid input
def test_valid_file_returns_frozen_model(write):
    design = load_yaml_model(write(VALID), Design)
    assert isinstance(design, Design)
    assert design.arms[1].allocation == 2
    assert design.endpoint.hazard_ratio == 0.7
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        design.name = "other"


def test_anchors_and_merge_keys_are_supported():
    text = textwrap.dedent(
        """\
        name: toy trial
        n_patients: 500
        arms:
          - &control {name: control, allocation: 1}
          - <<: *control
            name: treatment
        endpoint: {kind: survival, hazard_ratio: 0.7}
        analysis: {target_events: 300}
        """
    )
    design = load_yaml_string(text, Design)
    assert design.arms[1].name == "treatment"
    assert design.arms[1].allocation == 1


# ----------------------------------------------------------------------------- schema errors
def test_wrong_type_names_line_column_and_field(write):
    path = write(replace_line(VALID, "n_patients: 500", "n_patients: abc"))
    with pytest.raises(
        ProtocolError,
        match=r"design\.yaml:2:13: n_patients: expected an integer, "
        r"got 'abc'",
    ) as info:
        load_yaml_model(path, Design, source_name="design.yaml")
    [problem] = info.value.problems
    assert (problem.file, problem.field, problem.line, problem.column) == (
        "design.yaml",
        "n_patients",
        2,
        13,
    )


def test_source_name_defaults_to_the_path(write):
    path = write(replace_line(VALID, "n_patients: 500", "n_patients: abc"))
    with pytest.raises(ProtocolError) as info:
        load_yaml_model(path, Design)
    assert info.value.problems[0].file == str(path)


def test_unknown_key_suggests_the_close_field_name():
    text = replace_line(VALID, "  hazard_ratio: 0.7", "  hazzard_ratio: 0.7")
    with pytest.raises(
        ProtocolError, match="unknown key 'hazzard_ratio'; did you mean 'hazard_ratio'"
    ):
        load_yaml_string(text, Design)
    problems = problems_of(text)
    unknown = [p for p in problems if "unknown key" in p.message]
    assert len(unknown) == 1
    # The union tag 'survival' of the discriminated union is not part of the field path.
    assert unknown[0].field == "endpoint.hazzard_ratio"
    assert (unknown[0].line, unknown[0].column) == (10, 3)  # the unknown key itself
    missing = [p for p in problems if p.message == "missing required field"]
    assert [(p.field, p.line) for p in missing] == [("endpoint.hazard_ratio", 8)]


def test_unknown_key_without_close_match_lists_the_allowed_keys():
    text = VALID + "colour: red\n"
    [problem] = problems_of(text)
    assert problem.message == (
        "unknown key 'colour'; allowed keys: analysis, arms, cutoff, endpoint, n_patients, name"
    )
    assert (problem.field, problem.line, problem.column) == ("colour", 13, 1)


def test_missing_field_points_at_the_parent_mapping():
    text = replace_line(VALID, "  target_events: 300", "  method: cox")
    [problem] = problems_of(text)
    assert problem.field == "analysis.target_events"
    assert problem.message == "missing required field"
    assert (problem.line, problem.column) == (11, 1)  # the line of 'analysis:'


def test_error_inside_a_list_element():
    text = replace_line(VALID, "allocation: 2", "allocation: -1")
    with pytest.raises(
        ProtocolError,
        match=r"arms\[1\]\.allocation: must be greater than 0 "
        r"\(got -1\)",
    ):
        load_yaml_string(text, Design)
    [problem] = problems_of(text)
    assert (problem.field, problem.line, problem.column) == ("arms[1].allocation", 7, 17)


def test_literal_error_lists_the_allowed_values_and_suggests_one():
    text = VALID + "  method: logrnk\n"
    [problem] = problems_of(text)
    assert problem.field == "analysis.method"
    assert problem.message == (
        "must be one of 'logrank', 'cox' (got 'logrnk'); did you mean 'logrank'?"
    )


def test_discriminator_value_is_reported_on_the_tag_key():
    text = replace_line(VALID, "kind: survival", "kind: survivl")
    [problem] = problems_of(text)
    assert problem.field == "endpoint.kind"
    assert problem.line == 9
    assert "'kind' must be one of 'survival', 'binary' (got 'survivl')" in problem.message
    assert "did you mean 'survival'?" in problem.message


def test_plain_union_gives_one_problem_for_all_members():
    [problem] = problems_of(VALID + "cutoff: soon\n")
    assert problem.field == "cutoff"
    assert problem.line == 13
    assert problem.message == (
        "does not match any of the allowed forms: expected a number, got 'soon'; "
        "or must be one of 'auto' (got 'soon')"
    )


Positive = Annotated[float, Field(gt=0)]


class ByArm(_Frozen):
    kind: Literal["by_arm"]
    ratio: Positive | dict[str, Positive]
    times: list[Positive] | Positive = 1.0


class Effects(_Frozen):
    effect: Annotated[ByArm | Survival, Field(discriminator="kind")]


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("-0.7", "effect.ratio", "must be greater than 0 (got -0.7)"),
        ("abc", "effect.ratio", "expected a number, got 'abc'"),
        ("{a: -1}", "effect.ratio.a", "must be greater than 0 (got -1)"),
        ("{a: abc}", "effect.ratio.a", "expected a number, got 'abc'"),
    ],
)
def test_scalar_or_mapping_union_reports_the_member_of_the_value_shape(value, field, message):
    # the union sits inside a discriminated union, whose tag is dropped from the path
    [problem] = problems_of(f"effect:\n  kind: by_arm\n  ratio: {value}\n", model=Effects)
    assert (problem.field, problem.line, problem.message) == (field, 3, message)


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("[1, -2]", "effect.times[1]", "must be greater than 0 (got -2)"),
        ("-2", "effect.times", "must be greater than 0 (got -2)"),
        ("{a: 1}", "effect.times", "does not match any of the allowed forms: "),
    ],
)
def test_scalar_or_list_union_reports_the_member_of_the_value_shape(value, field, message):
    text = f"effect:\n  kind: by_arm\n  ratio: 1\n  times: {value}\n"
    [problem] = problems_of(text, model=Effects)
    assert (problem.field, problem.line) == (field, 4)
    assert problem.message.startswith(message)


@pytest.mark.parametrize(
    ("value", "got"), [("[1]", "a list"), ("", "an empty value"), ("null", "an empty value")]
)
def test_scalar_or_mapping_union_with_a_value_of_neither_shape_lists_both(value, got):
    [problem] = problems_of(f"effect:\n  kind: by_arm\n  ratio: {value}\n", model=Effects)
    assert problem.field == "effect.ratio"
    assert problem.message == (
        f"does not match any of the allowed forms: expected a number, got {got}; "
        f"or expected a mapping of keys to values, got {got}"
    )


def test_loader_reexports_the_reading_half():
    import trials.loader
    import trials.yamlsource

    for name in ("MAX_DEPTH", "MAX_VALUES", "LocatedYAML", "format_field", "parse_field"):
        assert getattr(trials.loader, name) is getattr(trials.yamlsource, name)
    assert trials.loader.parse_yaml is parse_yaml


def test_nan_is_left_to_the_model():
    [problem] = problems_of(VALID + "  alpha: .nan\n")
    assert problem.field == "analysis.alpha"
    assert problem.message == "must be a finite number (got nan)"
    # where the model allows it, .inf is just a (too large) number
    assert (
        "hazard_ratio"
        in load_yaml_string(
            replace_line(VALID, "hazard_ratio: 0.7", "hazard_ratio: .inf"), Design
        ).endpoint.model_dump()
    )


def test_several_problems_are_reported_together_in_line_order():
    text = textwrap.dedent(
        """\
        name: toy trial
        n_patients: -5
        arms:
          - name: control
            allocation: 1
          - name: treatment
            allocaton: 2
        endpoint:
          kind: binary
          rate: 1.5
        analysis:
          target_events: many
        """
    )
    with pytest.raises(ProtocolError) as info:
        load_yaml_string(text, Design, source_name="design.yaml")
    problems = info.value.problems
    assert [(p.line, p.field) for p in problems] == [
        (2, "n_patients"),
        (6, "arms[1].allocation"),
        (7, "arms[1].allocaton"),
        (10, "endpoint.rate"),
        (12, "analysis.target_events"),
    ]
    assert problems[2].message == "unknown key 'allocaton'; did you mean 'allocation'?"
    assert problems[3].message == "must be less than 1 (got 1.5)"
    # the exception text names every problem, one a line
    assert str(info.value).splitlines() == [str(p) for p in problems]


# ----------------------------------------------------------------------------- YAML errors
def test_yaml_syntax_error_names_the_line():
    text = "name: toy\narms: [1, 2\nn_patients: 3\n"
    [problem] = problems_of(text)
    assert problem.line == 3
    assert problem.message.startswith("invalid YAML: ")
    assert "Traceback" not in problem.message


def test_tab_indentation_gets_a_hint():
    with pytest.raises(ProtocolError, match=r"design\.yaml:2:1: invalid YAML: .*spaces, not tabs"):
        load_yaml_string("analysis:\n\ttarget_events: 3\n", Design, source_name="design.yaml")


def test_duplicate_key_names_both_lines():
    text = VALID + "n_patients: 600\n"
    with pytest.raises(
        ProtocolError,
        match=r"design\.yaml:13:1: n_patients: duplicate key "
        r"'n_patients' \(first given at line 2\)",
    ):
        load_yaml_string(text, Design, source_name="design.yaml")


def test_duplicate_key_in_a_nested_mapping():
    text = replace_line(VALID, "  hazard_ratio: 0.7", "  hazard_ratio: 0.7\n  hazard_ratio: 0.8")
    [problem] = problems_of(text)
    assert (problem.field, problem.line) == ("endpoint.hazard_ratio", 11)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the document is empty"),
        ("# only a comment\n", "the document is empty"),
        ("---\n", "the document is empty"),
        ("- a\n- b\n", "expected a mapping of keys to values at the top level, got a list"),
        ("just text\n", "expected a mapping of keys to values at the top level, got a single"),
    ],
)
def test_top_level_must_be_a_mapping(text, message):
    with pytest.raises(ProtocolError, match=message):
        load_yaml_string(text, Design)


@pytest.mark.parametrize(
    ("key", "read_as"),
    [("1", "a number"), ("null", "null"), ("on", "the boolean true"), ("2.5", "a number")],
)
def test_keys_must_be_strings(key, read_as):
    problems = problems_of(VALID + f"{key}: x\n")
    [problem] = problems
    assert problem.line == 13
    assert f"key '{key}' is read by YAML as {read_as}" in problem.message
    assert f"quote it ('{key}')" in problem.message


def test_unsafe_tags_are_rejected():
    text = VALID + "name2: !!python/object/apply:os.system ['echo hacked']\n"
    problems = problems_of(text)
    assert any(
        "unsupported YAML tag '!!python/object/apply:os.system'" in p.message and p.line == 13
        for p in problems
    )


def test_recursive_alias_is_a_problem():
    with pytest.raises(ProtocolError, match="recursive alias"):
        load_yaml_string("a: &a [*a]\n", Design)


def test_alias_bomb_is_stopped():
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    with pytest.raises(ProtocolError, match="expands to more than"):
        load_yaml_string("\n".join(lines) + "\n", Design)


def test_deep_nesting_is_a_problem():
    text = "a: " + "[" * 10_000 + "]" * 10_000 + "\n"
    with pytest.raises(ProtocolError, match=f"nesting deeper than {MAX_DEPTH} levels"):
        load_yaml_string(text, Design)


def test_huge_integer_is_a_problem_not_a_crash():
    problems = problems_of(replace_line(VALID, "n_patients: 500", "n_patients: " + "9" * 5000))
    assert [p.field for p in problems] == ["n_patients"]
    assert "too many digits" in problems[0].message


# ----------------------------------------------------------------------------- files
def test_missing_file_is_a_problem(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ProtocolError, match=r"nowhere\.yaml: cannot read the file") as info:
        load_yaml_model(path, Design)
    [problem] = info.value.problems
    assert problem.file == str(path)
    assert problem.line is None


def test_directory_is_a_problem(tmp_path):
    with pytest.raises(ProtocolError, match="cannot read the file"):
        load_yaml_model(tmp_path, Design)


def test_file_that_is_not_utf8(write):
    path = write(b"name: caf\xe9\n")
    with pytest.raises(ProtocolError, match=r":1:10: the file is not UTF-8 text"):
        load_yaml_model(path, Design)


def test_byte_order_mark_is_accepted(write):
    assert load_yaml_model(write(b"\xef\xbb\xbf" + VALID.encode()), Design).name == "toy trial"


# ----------------------------------------------------------------------------- checks
def events_within_patients(design: Design):
    if design.analysis.target_events > design.n_patients:
        yield (
            ("analysis", "target_events"),
            f"{design.analysis.target_events} target events but only {design.n_patients} patients",
        )


def arms_named_apart(design: Design):
    names = [arm.name for arm in design.arms]
    return [
        (f"arms[{i}].name", f"arm name {name!r} is used twice")
        for i, name in enumerate(names)
        if name in names[:i]
    ]


def test_checks_are_mapped_to_lines():
    text = replace_line(VALID, "target_events: 300", "target_events: 600")
    text = replace_line(text, "name: treatment", "name: control")
    checks = (events_within_patients, arms_named_apart)
    with pytest.raises(ProtocolError, match="600 target events but only 500 patients") as info:
        load_yaml_string(text, Design, checks, source_name="design.yaml")
    assert [(p.field, p.line, p.column) for p in info.value.problems] == [
        ("arms[1].name", 6, 11),
        ("analysis.target_events", 12, 18),
    ]


def test_check_on_a_field_left_to_its_default_points_at_the_parent():
    def method_check(design):
        yield ("analysis", "method"), "logrank is not allowed here"

    [problem] = problems_of(VALID, checks=(method_check,))
    assert (problem.field, problem.line) == ("analysis.method", 11)


def test_checks_do_not_run_on_an_invalid_model():
    def must_not_run(design):
        raise AssertionError("ran on an invalid model")

    problems = problems_of(
        replace_line(VALID, "n_patients: 500", "n_patients: 0"), checks=(must_not_run,)
    )
    assert [p.field for p in problems] == ["n_patients"]


def test_checks_pass_returns_the_model():
    assert load_yaml_string(VALID, Design, (events_within_patients,)).n_patients == 500


# ----------------------------------------------------------------------------- helpers
@pytest.mark.parametrize(
    ("loc", "text"),
    [
        ((), ""),
        (("a",), "a"),
        (("arms", 1, "allocation"), "arms[1].allocation"),
        (("a", 0, 2), "a[0][2]"),
    ],
)
def test_field_paths_round_trip(loc, text):
    assert format_field(loc) == text
    assert parse_field(text) == loc


def test_located_yaml_marks():
    located = parse_yaml(VALID, source_name="design.yaml")
    assert located.data["arms"][1]["name"] == "treatment"
    assert located.mark(("arms", 1, "name")) == (6, 11)
    assert located.mark(("arms", 1, "name"), key=True) == (6, 5)
    assert located.mark(("arms",)) == (3, 1)
    assert located.mark(("analysis", "nothing_here")) == (11, 1)
    assert located.problems == ()


# ----------------------------------------------------------------------------- fuzzing
def assert_loader_contract(text: str | bytes) -> None:
    """The loader returns a model or raises a ProtocolError with proper problems."""
    result: Design | ProtocolError
    try:
        result = load_yaml_string(text, Design, (events_within_patients,), source_name="f.yaml")
    except ProtocolError as error:
        result = error
    if isinstance(result, Design):
        return
    assert result.problems
    for problem in result.problems:
        assert isinstance(problem, Problem)
        assert problem.file == "f.yaml"
        assert problem.message
        assert problem.line is None or problem.line >= 1
        assert problem.column is None or problem.column >= 1


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(
    [
        "name",
        "n_patients",
        "arms",
        "allocation",
        "endpoint",
        "kind",
        "hazard_ratio",
        "rate",
        "analysis",
        "target_events",
        "method",
        "alpha",
        "cutoff",
    ]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["survival", "binary", "logrank", "auto", "1e400", ".nan", "on"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=20,
)


@FUZZ
@given(st.text())
def test_fuzz_arbitrary_text(text):
    assert_loader_contract(text)


@FUZZ
@given(st.binary())
def test_fuzz_arbitrary_bytes(raw):
    assert_loader_contract(raw)


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_fuzz_yaml_structures(document):
    assert_loader_contract(yaml.safe_dump(document))


def _mutate(document: dict, data) -> dict:
    """Rename, drop or replace a random entry somewhere in the document."""
    node: object = document
    while True:
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)))
            if data.draw(st.booleans()) and isinstance(node[key], dict | list):
                node = node[key]
                continue
            action = data.draw(st.sampled_from(["rename", "drop", "replace"]))
            if action == "rename":
                node[key + data.draw(st.sampled_from(["z", "_", "s"]))] = node.pop(key)
            elif action == "drop":
                del node[key]
            else:
                node[key] = data.draw(VALUES)
            return document
        if isinstance(node, list) and node:
            index = data.draw(st.integers(0, len(node) - 1))
            if isinstance(node[index], dict | list) and data.draw(st.booleans()):
                node = node[index]
                continue
            node[index] = data.draw(VALUES)
            return document
        return document


@FUZZ
@given(st.data())
def test_fuzz_mutated_valid_documents(data):
    document = copy.deepcopy(yaml.safe_load(VALID))
    for _ in range(data.draw(st.integers(1, 3))):
        document = _mutate(document, data)
    text = yaml.safe_dump(document, sort_keys=data.draw(st.booleans()))
    assert_loader_contract(text)
