"""Tests of patient-level data loading and its data dictionary (generators.data)."""

from __future__ import annotations

import re
import textwrap

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pydantic
import pytest
from hypothesis import HealthCheck, assume, given, settings
from lifelines.datasets import load_gbsg2

from generators.data import DatasetError, load_dataset
from generators.dictionary import (
    ColumnSpec,
    DataDictionary,
    dictionary_to_yaml,
    infer_dictionary,
    load_dictionary,
)
from trials.exceptions import DataError, ProtocolError

N_PATIENTS = 40


def _dictionary() -> DataDictionary:
    return DataDictionary(
        columns=[
            ColumnSpec(name="patient", role="id", type="categorical"),
            ColumnSpec(name="arm", role="arm", type="categorical", categories=["control", "drug"]),
            ColumnSpec(name="time", role="time", type="continuous", unit="months"),
            ColumnSpec(name="event", role="event", type="binary"),
            ColumnSpec(name="age", type="integer", unit="years", minimum=18, maximum=90),
            ColumnSpec(name="weight", type="continuous", unit="kg", allow_missing=True),
            ColumnSpec(name="smoker", type="binary"),
            ColumnSpec(name="grade", type="ordinal", categories=["low", "mid", "high"]),
        ]
    )


def _frame(rng: np.random.Generator, n: int = N_PATIENTS) -> pd.DataFrame:
    weight = rng.normal(75, 10, n).round(1)
    weight[3] = np.nan
    return pd.DataFrame(
        {
            "patient": [f"P{i:03d}" for i in range(n)],
            "arm": rng.choice(["control", "drug"], n),
            "time": rng.exponential(12, n).round(2) + 0.01,
            "event": np.r_[np.ones(n - 5, dtype=int), np.zeros(5, dtype=int)],
            "age": rng.integers(18, 91, n),
            "weight": weight,
            "smoker": rng.integers(0, 2, n),
            "grade": rng.choice(["low", "mid", "high"], n),
        }
    )


def _write_csv(tmp_path, frame: pd.DataFrame, name: str = "trial.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _problems(path, dictionary=None, **kwargs) -> list[str]:
    with pytest.raises(DataError) as info:
        load_dataset(path, dictionary, **kwargs)
    assert isinstance(info.value, DatasetError)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# ----------------------------------------------------------------------------- good files
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_good_file_round_trips_with_types(tmp_path, rng, suffix):
    frame = _frame(rng)
    path = tmp_path / f"trial{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    dictionary = _dictionary()
    data = load_dataset(path, dictionary)

    assert list(data.columns) == list(frame.columns)
    assert data.attrs["dictionary"] is dictionary
    assert data.attrs["source"] == str(path)
    assert data["patient"].tolist() == frame["patient"].tolist()
    assert isinstance(data["arm"].dtype, pd.CategoricalDtype)
    assert list(data["arm"].cat.categories) == ["control", "drug"]
    assert not data["arm"].cat.ordered
    assert data["grade"].cat.ordered
    assert list(data["grade"].cat.categories) == ["low", "mid", "high"]
    assert data["time"].dtype == np.float64
    assert data["event"].dtype == np.int64
    assert data["smoker"].dtype == np.int64
    assert data["age"].dtype == np.int64
    assert data["weight"].dtype == np.float64
    np.testing.assert_allclose(data["time"], frame["time"])
    np.testing.assert_array_equal(data["event"], frame["event"])
    np.testing.assert_array_equal(data["age"], frame["age"])
    np.testing.assert_allclose(data["weight"], frame["weight"])
    assert data["weight"].isna().sum() == 1
    assert data["arm"].astype(str).tolist() == frame["arm"].tolist()
    assert data["grade"].astype(str).tolist() == frame["grade"].tolist()


def test_csv_and_parquet_load_equal(tmp_path, rng):
    frame = _frame(rng)
    frame.to_parquet(tmp_path / "trial.parquet", index=False)
    from_csv = load_dataset(_write_csv(tmp_path, frame), _dictionary())
    from_parquet = load_dataset(tmp_path / "trial.parquet", _dictionary())
    pd.testing.assert_frame_equal(from_csv, from_parquet)


def test_without_dictionary_infers_one(tmp_path, rng):
    data = load_dataset(_write_csv(tmp_path, _frame(rng)))
    dictionary = data.attrs["dictionary"]
    roles = {c.name: c.role for c in dictionary.columns}
    assert roles == {
        "patient": "id",
        "arm": "arm",
        "time": "time",
        "event": "event",
        "age": "covariate",
        "weight": "covariate",
        "smoker": "covariate",
        "grade": "covariate",
    }
    assert dictionary.column("weight").allow_missing
    assert dictionary.column("smoker").type == "binary"
    assert data["time"].dtype == np.float64


def test_missing_values_allowed_in_integer_column_are_nullable(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("count,x\n1,a\n\n2,b\nNA,c\n,\n")  # blank lines are skipped
    dictionary = DataDictionary(
        columns=[
            ColumnSpec(name="count", type="integer", allow_missing=True),
            ColumnSpec(name="x", type="categorical", categories=["a", "b", "c"]),
        ]
    )
    data = load_dataset(path, dictionary)
    assert str(data["count"].dtype) == "Int64"
    assert data["count"].isna().tolist() == [False, False, True]


# ----------------------------------------------------------------------------- each problem
def test_missing_column(tmp_path, rng):
    path = _write_csv(tmp_path, _frame(rng).drop(columns=["age"]))
    [problem] = _problems(path, _dictionary())
    assert problem.startswith(f"{path}: column 'age': missing from the file")


def test_missing_column_suggests_close_name(tmp_path, rng):
    path = _write_csv(tmp_path, _frame(rng).rename(columns={"age": "Age"}))
    with pytest.raises(DataError, match=r"column 'age': missing .* did you mean 'Age'\?"):
        load_dataset(path, _dictionary())


def test_column_not_in_dictionary(tmp_path, rng):
    path = _write_csv(tmp_path, _frame(rng).assign(site="A"))
    with pytest.raises(DataError, match=r"column 'site': not in the data dictionary"):
        load_dataset(path, _dictionary())


def test_missing_values_name_rows(tmp_path, rng):
    frame = _frame(rng).astype({"age": object})
    frame.loc[[1, 5], "age"] = ""
    frame.loc[10, "age"] = "NA"
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError, match=re.escape(f"{path}: column 'age': rows 3, 7, 12: missing value;")
    ):
        load_dataset(path, _dictionary())


def test_many_rows_are_shortened(tmp_path, rng):
    frame = _frame(rng).astype({"smoker": object})
    frame.loc[2:20, "smoker"] = "yes"  # 19 rows: 4..22
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'smoker': rows 4, 5, 6, 7, 8 (and 14 more): not a number (got 'yes'); "
            "expected 0 or 1"
        ),
    ):
        load_dataset(path, _dictionary())


def test_nonpositive_times(tmp_path, rng):
    frame = _frame(rng)
    frame.loc[0, "time"] = 0.0
    frame.loc[4, "time"] = -3.5
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'time': rows 2, 6: zero or negative time (got 0, -3.5); a time to event "
            "or censoring must be greater than 0"
        ),
    ):
        load_dataset(path, _dictionary())


def test_event_not_zero_or_one(tmp_path, rng):
    frame = _frame(rng)
    frame.loc[7, "event"] = 2
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'event': row 9: an event indicator must be 1 (event) or 0 (censored) (got 2)"
        ),
    ):
        load_dataset(path, _dictionary())


def test_values_out_of_range(tmp_path, rng):
    frame = _frame(rng)
    frame.loc[[0, 39], "age"] = [12, 101]
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'age': rows 2, 41: out of range (got 12, 101); allowed: between 18 and 90"
        ),
    ):
        load_dataset(path, _dictionary())


def test_unknown_categories(tmp_path, rng):
    frame = _frame(rng)
    frame.loc[2, "arm"] = "placebo"
    frame.loc[3, "grade"] = "severe"
    path = _write_csv(tmp_path, frame)
    problems = _problems(path, _dictionary())
    assert problems == [
        f"{path}: column 'arm': row 4: unknown category 'placebo'; allowed: 'control', 'drug'",
        f"{path}: column 'grade': row 5: unknown category 'severe'; allowed: 'low', 'mid', 'high'",
    ]


def test_text_in_numeric_column(tmp_path, rng):
    frame = _frame(rng).astype({"weight": object})
    frame.loc[8, "weight"] = "seventy"
    frame.loc[9, "weight"] = "75kg"
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'weight': rows 10, 11: not a number (got 'seventy', '75kg'); expected a number"
        ),
    ):
        load_dataset(path, _dictionary())


def test_fraction_in_integer_column(tmp_path, rng):
    frame = _frame(rng).astype({"age": float})
    frame.loc[6, "age"] = 40.5
    path = _write_csv(tmp_path, frame)
    with pytest.raises(DataError, match=re.escape("column 'age': row 8: not a whole number")):
        load_dataset(path, _dictionary())


def test_duplicated_ids(tmp_path, rng):
    frame = _frame(rng)
    frame.loc[[4, 30], "patient"] = "P001"
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'patient': rows 3, 6, 32: duplicated id 'P001'; each patient must appear once"
        ),
    ):
        load_dataset(path, _dictionary())


def test_binary_not_zero_or_one(tmp_path, rng):
    frame = _frame(rng)
    frame.loc[[1, 2], "smoker"] = [3, -1]
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError,
        match=re.escape("column 'smoker': rows 3, 4: a binary column must be 0 or 1 (got 3, -1)"),
    ):
        load_dataset(path, _dictionary())


def test_too_few_events(tmp_path, rng):
    frame = _frame(rng)
    frame["event"] = 0
    frame.loc[:2, "event"] = 1
    path = _write_csv(tmp_path, frame)
    with pytest.raises(
        DataError,
        match=re.escape(
            "column 'event': too few events to fit a model: 3 events (rows with 1), "
            "at least 10 needed (min_events)"
        ),
    ):
        load_dataset(path, _dictionary())
    assert len(load_dataset(path, _dictionary(), min_events=3)) == N_PATIENTS


def test_no_data_rows(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("time,event\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: no data rows")):
        load_dataset(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("trial.xlsx", b"", r"trial\.xlsx: cannot read files ending '\.xlsx'; use a \.csv"),
        ("trial", b"", r"trial: cannot read files ending '\(no extension\)'"),
        ("trial.csv", b"", r"trial\.csv: the file is empty"),
        ("trial.csv", b"a,b\n1,2\n3,4,5\n", r"trial\.csv: cannot read as CSV: .*line 3"),
        ("trial.csv", b"a\n\xff\xfe\n", r"trial\.csv: not UTF-8 text"),
        ("trial.csv", b"a,a\n1,2\n", r"trial\.csv: column names must be unique: 'a' repeated"),
        ("trial.csv", b"a,\n1,2\n", r"trial\.csv: column 2 has no name"),
        ("trial.parquet", b"not parquet", r"trial\.parquet: cannot read as Parquet"),
    ],
)
def test_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_dataset(path)


def test_absent_file(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.csv: no such file"):
        load_dataset(tmp_path / "nothere.csv")


def test_all_problems_reported_together(tmp_path, rng):
    frame = _frame(rng).drop(columns=["grade"]).astype({"age": object})
    frame.loc[0, "time"] = -1.0
    frame.loc[1, "event"] = 5
    frame.loc[2, "age"] = "old"
    frame.loc[3, "arm"] = "Drug"
    frame.loc[5, "patient"] = "P004"
    path = _write_csv(tmp_path, frame)
    problems = _problems(path, _dictionary())
    assert problems == [
        f"{path}: column 'grade': missing from the file; the data dictionary names it (columns "
        "in the file: 'patient', 'arm', 'time', 'event', 'age', 'weight', 'smoker')",
        f"{path}: column 'patient': rows 6, 7: duplicated id 'P004'; each patient must appear once",
        f"{path}: column 'arm': row 5: unknown category 'Drug'; allowed: 'control', 'drug'",
        f"{path}: column 'time': row 2: zero or negative time (got -1); a time to event or "
        "censoring must be greater than 0",
        f"{path}: column 'event': row 3: an event indicator must be 1 (event) or 0 (censored) "
        "(got 5)",
        f"{path}: column 'age': row 4: not a number (got 'old'); expected a whole number",
    ]


def test_parquet_rows_are_numbered_like_csv(tmp_path, rng):
    frame = _frame(rng)
    frame.loc[4, "time"] = -1.0
    frame.to_parquet(tmp_path / "trial.parquet", index=False)
    with pytest.raises(DataError, match=r"column 'time': row 6: zero or negative time"):
        load_dataset(tmp_path / "trial.parquet", _dictionary())


# ----------------------------------------------------------------------------- the dictionary
def test_gbsg2_inference():
    dictionary = infer_dictionary(load_gbsg2())
    spec = {c.name: c for c in dictionary.columns}
    assert (spec["time"].role, spec["time"].type) == ("time", "integer")
    assert (spec["cens"].role, spec["cens"].type) == ("event", "binary")
    assert "not done automatically" in spec["cens"].description
    assert (spec["horTh"].role, spec["horTh"].type) == ("arm", "categorical")
    assert spec["horTh"].categories == ["no", "yes"]
    assert spec["tgrade"].type == "ordinal"
    assert spec["tgrade"].categories == ["I", "II", "III"]
    assert (spec["menostat"].type, spec["menostat"].categories) == ("categorical", ["Post", "Pre"])
    assert (spec["age"].type, spec["age"].minimum, spec["age"].maximum) == ("integer", 21, 80)
    assert all(spec[name].role == "covariate" for name in ("age", "tsize", "pnodes", "estrec"))
    assert not any(c.allow_missing for c in dictionary.columns)


def test_gbsg2_loads_from_csv(tmp_path):
    frame = load_gbsg2()
    frame.to_csv(tmp_path / "gbsg2.csv", index=False)
    data = load_dataset(tmp_path / "gbsg2.csv")
    assert len(data) == len(frame)
    assert data["tgrade"].cat.ordered
    assert int(data["cens"].sum()) == int(frame["cens"].sum())


def test_inference_rules():
    frame = pd.DataFrame(
        {
            "subject_id": ["a", "b", "c", "d"],
            "futime": [1.5, 2.0, 3.0, 4.0],
            "status": [0, 1, 1, 0],
            "trt": [1, 2, 1, 2],
            "dose": [1, 2, 3, np.nan],
            "score": [0.5, 1.5, 2.5, 3.5],
        }
    )
    spec = {c.name: c for c in infer_dictionary(frame).columns}
    assert spec["subject_id"].role == "id"
    assert (spec["futime"].role, spec["futime"].type) == ("time", "continuous")
    assert (spec["status"].role, spec["status"].description) == ("event", None)
    assert (spec["trt"].role, spec["trt"].categories) == ("arm", ["1", "2"])
    assert (spec["dose"].type, spec["dose"].categories) == ("categorical", ["1", "2", "3"])
    assert spec["dose"].allow_missing
    assert (spec["score"].minimum, spec["score"].maximum) == (0.5, 3.5)


def test_event_needs_zero_one_and_time_needs_event():
    frame = pd.DataFrame({"time": [1.0, 2.0], "event": [1, 2]})
    spec = {c.name: c for c in infer_dictionary(frame).columns}
    assert spec["time"].role == spec["event"].role == "covariate"


def test_dictionary_yaml_round_trip(tmp_path):
    dictionary = infer_dictionary(load_gbsg2())
    text = dictionary_to_yaml(dictionary)
    (tmp_path / "dictionary.yaml").write_text(text)
    assert load_dictionary(tmp_path / "dictionary.yaml") == dictionary
    (tmp_path / "mine.yaml").write_text(dictionary_to_yaml(_dictionary()))
    assert load_dictionary(tmp_path / "mine.yaml") == _dictionary()


def test_dictionary_file_problems_name_lines(tmp_path):
    path = tmp_path / "dictionary.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            columns:
              - name: time
                role: time
                type: continuous
              - name: arm
                role: arm
                type: categorical
              - name: grade
                type: ordinal
                categories: [low, high]
                colour: red
              - name: sex
                type: categorical
                categories: [no, yes]
            """
        )
    )
    with pytest.raises(ProtocolError) as info:
        load_dictionary(path)
    text = str(info.value)
    assert re.search(r":5:\d+: columns\[1\]: a categorical column needs 'categories'", text)
    assert re.search(r":11:\d+: columns\[2\]\.colour: unknown key 'colour'", text)
    assert re.search(r":14:\d+: columns\[3\]\.categories: category false was read as a", text)


def test_dictionary_file_role_problems(tmp_path):
    path = tmp_path / "dictionary.yaml"
    path.write_text("columns:\n  - {name: time, role: time, type: continuous}\n")
    with pytest.raises(
        ProtocolError,
        match=re.escape(f"{path}:1:1: columns: a 'time' column needs an 'event' column"),
    ):
        load_dictionary(path)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([{"name": "a", "type": "categorical"}], "needs 'categories'"),
        ([{"name": "a", "type": "binary", "categories": ["x"]}], "'categories' are for"),
        ([{"name": "a", "type": "ordinal", "categories": ["x", "x"]}], "more than once"),
        ([{"name": "a", "type": "binary", "minimum": 0}], "'minimum' and 'maximum' are for"),
        ([{"name": "a", "type": "integer", "minimum": 2, "maximum": 1}], "greater than"),
        ([{"name": "a", "role": "event", "type": "integer"}], "role 'event' must have type"),
        (
            [{"name": "a", "type": "binary"}, {"name": "a", "type": "binary"}],
            "names must be unique",
        ),
        (
            [
                {"name": "t", "role": "time", "type": "continuous"},
                {"name": "e", "role": "event", "type": "binary"},
                {"name": "f", "role": "event", "type": "binary"},
            ],
            "at most one column may have role 'event'",
        ),
        ([{"name": "e", "role": "event", "type": "binary"}], "needs a 'time' column"),
        ([], "at least 1 item"),
    ],
)
def test_invalid_dictionaries(columns, message):
    with pytest.raises(pydantic.ValidationError, match=message):
        DataDictionary.model_validate({"columns": columns})


# ----------------------------------------------------------------------------- robustness
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["", " ", "NA", "nan", "1e400", "0", "1", "-0", "a,b", '"', "\n", "I", "II"]),
)
_NAMES = st.sampled_from(["id", "arm", "time", "event", "cens", "x", "grade", "", "a b"])


@st.composite
def _junk_frame(draw) -> pd.DataFrame:
    names = draw(st.lists(_NAMES, min_size=1, max_size=5))
    n_rows = draw(st.integers(0, 6))
    return pd.DataFrame(
        {i: draw(st.lists(_JUNK, min_size=n_rows, max_size=n_rows)) for i in range(len(names))}
    ).set_axis(names, axis=1)


@st.composite
def _junk_dictionary(draw, names: list[str]) -> DataDictionary | None:
    if draw(st.booleans()):
        return None
    columns = []
    for name in dict.fromkeys(names):
        kind = draw(st.sampled_from(["continuous", "integer", "binary", "categorical", "ordinal"]))
        fields = {"name": name, "type": kind, "allow_missing": draw(st.booleans())}
        fields["role"] = draw(st.sampled_from(["covariate", "outcome", "id", "time", "event"]))
        if kind in ("categorical", "ordinal"):
            fields["categories"] = draw(st.lists(st.sampled_from(["0", "1", "I", "a"]), max_size=3))
        if kind in ("continuous", "integer") and draw(st.booleans()):
            fields["minimum"] = -1.0
            fields["maximum"] = 1.0
        columns.append(fields)
    try:
        return DataDictionary.model_validate({"columns": columns})
    except pydantic.ValidationError:
        assume(False)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(frame=_junk_frame(), data=st.data(), suffix=st.sampled_from([".csv", ".parquet"]))
def test_junk_raises_only_data_error(tmp_path, frame, data, suffix):
    path = tmp_path / f"junk{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        # Parquet needs one type per column: write the cells as text (missing stays null).
        frame = frame.astype(object).map(lambda v: None if v is None else str(v))
        try:
            frame.to_parquet(path, index=False)
        except ValueError:  # pandas refuses duplicate or empty column names
            assume(False)
    dictionary = data.draw(_junk_dictionary(list(frame.columns)))
    try:
        loaded = load_dataset(path, dictionary, min_events=data.draw(st.integers(0, 2)))
    except DataError as error:
        problems = error.problems
    else:
        assert isinstance(loaded, pd.DataFrame)
        assert isinstance(loaded.attrs["dictionary"], DataDictionary)
        return
    assert problems
    assert all(isinstance(p, str) and p.startswith(str(path)) for p in problems)


def test_infinite_values_in_parquet(tmp_path, rng):
    frame = _frame(rng)
    frame.loc[2, "weight"] = np.inf
    frame.to_parquet(tmp_path / "trial.parquet", index=False)
    with pytest.raises(
        DataError, match=re.escape("column 'weight': row 4: not a finite number (got inf)")
    ):
        load_dataset(tmp_path / "trial.parquet", _dictionary())


def test_inference_needs_named_columns():
    with pytest.raises(DataError, match="the DataFrame: column 2 has no name"):
        infer_dictionary(pd.DataFrame({"a": [1], "": [2]}))
