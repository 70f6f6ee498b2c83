"""Protocol files through the loader: the shipped examples, bad edits of one, and fuzzing.

Uses the real protocol model (:class:`trials.protocol.Protocol`) and its semantic checks
(:func:`trials.validation.check_protocol`), loaded the way the command line loads them.
"""

from __future__ import annotations

import copy
from pathlib import Path

import hypothesis.strategies as st
import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from trials.exceptions import Problem, ProtocolError
from trials.loader import load_yaml_model, load_yaml_string
from trials.protocol import Protocol
from trials.validation import check_protocol
from trials.yamlsource import parse_field

PROTOCOLS = Path(__file__).resolve().parent.parent / "protocols"
ONCOLOGY = PROTOCOLS / "oncology_os_phase3.yaml"
ONCOLOGY_TEXT = ONCOLOGY.read_text(encoding="utf-8")
ONCOLOGY_DATA = yaml.safe_load(ONCOLOGY_TEXT)


def load(path) -> Protocol:
    return load_yaml_model(path, Protocol, checks=(lambda p: check_protocol(p, path.parent),))


def edit(text: str, *replacements: tuple[str, str]) -> str:
    """Replace the first occurrence of each ``old`` by ``new`` (``old`` must be there)."""
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


# ----------------------------------------------------------------------------- shipped files
@pytest.mark.parametrize("path", sorted(PROTOCOLS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_protocol_loads_without_a_problem(path):
    protocol = load(path)
    assert isinstance(protocol, Protocol)
    assert len([arm for arm in protocol.arms if arm.control]) == 1


def test_the_examples_are_there():
    assert len(list(PROTOCOLS.glob("*.yaml"))) >= 3
    assert ONCOLOGY.is_file()


# ----------------------------------------------------------------------------- bad edits
HR = "      hazard_ratio: 0.70"
CONTROL_ALLOCATION = (
    "    control: true\n    allocation: 1",
    "    control: true\n    allocation: 0",
)

# (id, replacements, expected problems as (field, line, message fragment), in line order)
BAD_EDITS = [
    (
        "unknown key, did you mean",
        [(HR, "      hazzard_ratio: 0.70")],
        [
            (
                "endpoints.primary.effect.hazzard_ratio",
                78,
                "unknown key 'hazzard_ratio'; did you mean 'hazard_ratio'?",
            ),
        ],
    ),
    (
        "wrong type",
        [("n_patients: 600", "n_patients: many")],
        [("population.n_patients", 25, "expected an integer, got 'many'")],
    ),
    (
        "alpha above 1",
        [("alpha: 0.025", "alpha: 1.5")],
        [("analysis.alpha", 87, "must be less than 1 (got 1.5)")],
    ),
    (
        "alpha 0",
        [("alpha: 0.025", "alpha: 0")],
        [("analysis.alpha", 87, "must be greater than 0 (got 0)")],
    ),
    (
        "hazard ratio 0",
        [(HR, "      hazard_ratio: 0")],
        [("endpoints.primary.effect.hazard_ratio", 78, "must be greater than 0 (got 0)")],
    ),
    (
        "hazard ratio -1",
        [(HR, "      hazard_ratio: -1")],
        [("endpoints.primary.effect.hazard_ratio", 78, "must be greater than 0 (got -1)")],
    ),
    (
        # a number or a mapping by arm: the number's problem only, not "expected a mapping"
        "hazard ratio -0.7",
        [(HR, "      hazard_ratio: -0.7")],
        [("endpoints.primary.effect.hazard_ratio", 78, "must be greater than 0 (got -0.7)")],
    ),
    (
        "hazard ratio by arm, negative",
        [(HR, "      hazard_ratio: {drug_x: -0.7}")],
        [
            (
                "endpoints.primary.effect.hazard_ratio.drug_x",
                78,
                "must be greater than 0 (got -0.7)",
            )
        ],
    ),
    (
        "hazard ratio by arm, unknown arm",
        [(HR, "      hazard_ratio: {drug_z: 0.7}")],
        [
            ("endpoints.primary.effect.hazard_ratio", 78, "no value for arm 'drug_x'"),
            (
                "endpoints.primary.effect.hazard_ratio.drug_z",
                78,
                "'drug_z' is not an experimental arm (experimental arms: 'drug_x')",
            ),
        ],
    ),
    (
        "hazard ratio as a list",
        [(HR, "      hazard_ratio: [0.7]")],
        [
            (
                "endpoints.primary.effect.hazard_ratio",
                78,
                "does not match any of the allowed forms: expected a number, got a list; "
                "or expected a mapping of keys to values, got a list",
            )
        ],
    ),
    (
        "allocation 0",
        [CONTROL_ALLOCATION],
        [("arms[0].allocation", 19, "must be greater than 0 (got 0)")],
    ),
    (
        "more target events than patients",
        [("target_events: 390", "target_events: 700")],
        [("analysis.timing.target_events", 91, "700 target events but only 600 patients")],
    ),
    (
        "eligibility no patient meets",
        [('"18 <= age <= 85"', '"age > 200"')],
        [
            (
                "population.eligibility[0]",
                51,
                "no simulated patient meets this criterion (0 of 100,000 screened)",
            )
        ],
    ),
    (
        "eligibility unknown covariate",
        [('"ldh_ratio < 3"', '"weight < 90"')],
        [("population.eligibility[1]", 52, "unknown covariate 'weight'")],
    ),
    (
        "stratification factor not a covariate",
        [("strata: [ecog, region]", "strata: [ecog, site]")],
        [("randomization.strata[1]", 57, "unknown covariate 'site'")],
    ),
    (
        "block size not a multiple of the allocation total",
        [("block_sizes: [4]", "block_sizes: [3]")],
        [
            (
                "randomization.block_sizes[0]",
                56,
                "block size 3 is not a multiple of the allocation total 2",
            )
        ],
    ),
    (
        "two control arms",
        [("    label: Drug X\n", "    label: Drug X\n    control: true\n")],
        [("arms", 15, "exactly one arm must have 'control: true' (found 2)")],
    ),
    (
        "no control arm",
        [("    control: true\n", "")],
        [("arms", 15, "exactly one arm must have 'control: true' (found 0)")],
    ),
    (
        "YAML syntax error",
        [("block_sizes: [4]", "block_sizes: [4")],
        [("", 57, "invalid YAML: expected ',' or ']'")],
    ),
    (
        "NaN for alpha",
        [("alpha: 0.025", "alpha: .nan")],
        [("analysis.alpha", 87, "must be a finite number (got nan)")],
    ),
    (
        "NaN for a median",
        [("median: 12", "median: .nan")],
        [("endpoints.primary.control.median", 76, "must be a finite number (got nan)")],
    ),
    (
        "test does not fit the summary measure",
        [("test: stratified_logrank", "test: t_test")],
        [
            (
                "analysis.primary.test",
                85,
                "test 't_test' does not estimate the hazard ratio of endpoint 'os'",
            ),
            ("analysis.primary.strata", 86, "test 't_test' takes no strata"),
        ],
    ),
    (
        "several schema problems",
        [
            ("n_patients: 600", "n_patients: many"),
            ("alpha: 0.025", "alpha: 1.5"),
            (HR, "      hazzard_ratio: 0.70"),
            CONTROL_ALLOCATION,
        ],
        [
            ("arms[0].allocation", 19, "must be greater than 0"),
            ("population.n_patients", 25, "expected an integer"),
            ("endpoints.primary.effect.hazzard_ratio", 78, "did you mean 'hazard_ratio'?"),
            ("analysis.alpha", 87, "must be less than 1"),
        ],
    ),
    (
        "several semantic problems",
        [
            ("target_events: 390", "target_events: 700"),
            ("block_sizes: [4]", "block_sizes: [3]"),
            ('"ldh_ratio < 3"', '"weight < 90"'),
        ],
        [
            ("population.eligibility[1]", 52, "unknown covariate 'weight'"),
            ("randomization.block_sizes[0]", 56, "not a multiple of the allocation total 2"),
            ("analysis.timing.target_events", 91, "700 target events but only 600 patients"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("replacements", "expected"),
    [pytest.param(replacements, expected, id=name) for name, replacements, expected in BAD_EDITS],
)
def test_bad_edit_is_reported_with_field_and_line(tmp_path, replacements, expected):
    path = tmp_path / "protocol.yaml"
    path.write_text(edit(ONCOLOGY_TEXT, *replacements), encoding="utf-8")
    with pytest.raises(ProtocolError) as info:
        load(path)
    problems = info.value.problems
    assert [(p.field, p.line) for p in problems] == [(field, line) for field, line, _ in expected]
    for problem, (_, _, fragment) in zip(problems, expected, strict=True):
        assert fragment in problem.message
        assert problem.file == str(path)
        assert problem.column is not None
    # one exception names every problem, one a line, in line order
    assert str(info.value).splitlines() == [str(p) for p in problems]


def test_edit_of_the_parsed_document_is_located_in_the_dumped_file(tmp_path):
    document = copy.deepcopy(ONCOLOGY_DATA)
    document["population"]["covariates"][1]["categories"]["ecog1"] = 1.5
    text = yaml.safe_dump(document, sort_keys=False)
    path = tmp_path / "protocol.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ProtocolError, match=r"population\.covariates\[1\]\.categories\.ecog1: must be less than 1"
    ) as info:
        load(path)
    [problem] = info.value.problems
    line = text.splitlines()[problem.line - 1]
    assert line.strip() == "ecog1: 1.5"


# ----------------------------------------------------------------------------- fuzzing
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WORDS = st.sampled_from(
    [
        "control",
        "drug_x",
        "age",
        "ecog",
        "region",
        "ldh_ratio",
        "ecog1",
        "simple",
        "blocks",
        "minimization",
        "stratified_blocks",
        "normal",
        "lognormal",
        "binary",
        "categorical",
        "continuous",
        "time_to_event",
        "exponential",
        "weibull",
        "piecewise_exponential",
        "hazard_ratio",
        "odds_ratio",
        "difference_in_means",
        "logrank",
        "stratified_logrank",
        "cox",
        "cmh",
        "t_test",
        "ancova",
        "events",
        "calendar",
        "follow_up",
        "composite",
        "hypothetical",
        "age > 200",
        "age > 18 and ecog == 'ecog1'",
        "region in ['europe', 'asia']",
        "log(ldh_ratio) < 0",
        "ecog",
        "age +",
        "2/3",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.booleans(),
    WORDS,
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.dictionaries(WORDS | st.text(max_size=8), SCALARS, max_size=3),
)
NEW_KEYS = st.text(max_size=12) | WORDS


def _entries(node, path=()):
    """Every entry (mapping key or list index) of the document, as a path."""
    if isinstance(node, dict):
        children = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return
    for key, child in children:
        yield (*path, key)
        yield from _entries(child, (*path, key))


def _at(document, path):
    for key in path:
        document = document[key]
    return document


def _mutate(document: dict, data) -> None:
    """Delete, replace or rename one entry, anywhere in the document."""
    entries = list(_entries(document))
    if not entries:
        return
    path = data.draw(st.sampled_from(entries))
    parent = _at(document, path[:-1])
    key = path[-1]
    action = data.draw(st.sampled_from(["delete", "replace", "rename"]))
    if action == "delete":
        del parent[key]
    elif action == "replace" or isinstance(parent, list):
        parent[key] = data.draw(VALUES)
    else:
        parent[data.draw(NEW_KEYS)] = parent.pop(key)


def _exists(document, field: str) -> bool:
    node = document
    for key in parse_field(field):
        if isinstance(node, dict) and isinstance(key, str) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return False
    return True


def assert_protocol_or_problems(text: str, document=None) -> None:
    """The loader returns a Protocol or raises a ProtocolError of proper problems.

    With ``document`` (the data ``text`` was dumped from), a problem whose field is in
    the document must give its line.
    """
    result: Protocol | ProtocolError
    try:
        result = load_yaml_string(text, Protocol, (check_protocol,), source_name="p.yaml")
    except ProtocolError as error:
        result = error
    if isinstance(result, Protocol):
        return
    assert result.problems
    for problem in result.problems:
        assert isinstance(problem, Problem)
        assert problem.file == "p.yaml"
        assert problem.message
        assert problem.line is None or problem.line >= 1
        assert problem.column is None or problem.column >= 1
        if document is not None and _exists(document, problem.field):
            assert problem.line is not None, problem


@FUZZ
@given(st.data())
def test_fuzz_mutated_oncology_protocol(data):
    document = copy.deepcopy(ONCOLOGY_DATA)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(document, data)
    text = yaml.safe_dump(document, sort_keys=data.draw(st.booleans()))
    assert_protocol_or_problems(text, document)


@FUZZ
@given(st.text())
def test_fuzz_arbitrary_text(text):
    assert_protocol_or_problems(text)


@FUZZ
@given(st.data())
def test_fuzz_edited_lines_of_the_oncology_protocol(data):
    lines = ONCOLOGY_TEXT.splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "replace", "indent"]))
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "indent":
            lines[index] = " " * data.draw(st.integers(0, 4)) + lines[index].lstrip()
        else:
            head = lines[index].partition(":")[0]
            lines[index] = f"{head}: {data.draw(st.text(max_size=20) | WORDS)}"
    assert_protocol_or_problems("\n".join(lines) + "\n")


# Inputs that once escaped as other exceptions from the semantic checks (found by the
# fuzzing above and by hand); each must end as a Protocol or a ProtocolError.
SURVIVED_EDITS = [
    pytest.param([("sdlog: 0.4", "sdlog: 158")], id="lognormal sdlog overflows exp"),
    pytest.param([("meanlog: 0.0", "meanlog: 800")], id="lognormal meanlog overflows exp"),
    pytest.param([("      sd: 10", "      sd: 1e308")], id="normal sd overflows"),
    pytest.param(
        [("allocation: 1\n", "allocation: 1.7e308\n")] * 2, id="allocation total overflows"
    ),
    pytest.param([("    - name: age", "    - name: ecog")], id="covariate name twice"),
    pytest.param([('"18 <= age <= 85"', '"age in age"')], id="in without a list"),
    pytest.param([('"18 <= age <= 85"', "\"ecog in 'ecog1'\"")], id="in a string"),
    pytest.param([('"18 <= age <= 85"', '"1 / 0 > age"')], id="division by zero"),
    pytest.param([('"18 <= age <= 85"', '"0 ** -1 > age"')], id="zero to a negative power"),
    pytest.param([('"18 <= age <= 85"', '"age > 10 ** 400"')], id="integer beyond float"),
]


@pytest.mark.parametrize("replacements", SURVIVED_EDITS)
def test_semantic_checks_report_problems_and_never_raise(replacements):
    assert_protocol_or_problems(edit(ONCOLOGY_TEXT, *replacements))
