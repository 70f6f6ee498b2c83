"""The generator contract: every virtual-patient generator follows it.

As in scikit-learn, the constructor stores configuration only; ``fit(data)`` learns from
a patient-level DataFrame and returns ``self``; learned state ends in ``_``;
``sample(n_patients, rng)`` returns virtual patients as a DataFrame. ``save`` writes one
versioned JSON file — the kind, the configuration, the learned state, the SHA-256 of the
data it was fitted on and the package version, never raw rows — and :func:`load` reads it
back so that the loaded generator samples exactly what the saved one did.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from trials.exceptions import DataError

FORMAT = "insilico-trials generator"
FORMAT_VERSION = 1

#: Registered generator classes by kind.
REGISTRY: dict[str, type[Generator]] = {}


def register(kind: str):
    """Class decorator: make a generator loadable by its kind."""

    def decorate(cls):
        cls.kind = kind
        REGISTRY[kind] = cls
        return cls

    return decorate


def data_hash(data: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's content (columns, dtypes and values, row order included)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in data.columns]).encode())
    digest.update(json.dumps([str(t) for t in data.dtypes]).encode())
    digest.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class DataRoles:
    """The columns of a data set by their role in its data dictionary.

    ``outcomes`` and ``covariates`` keep the dictionary's column order. Without a
    dictionary every column is a covariate.
    """

    columns: tuple[str, ...]
    id: str | None = None
    arm: str | None = None
    time: str | None = None
    event: str | None = None
    outcomes: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()

    @classmethod
    def of(cls, frame: pd.DataFrame) -> DataRoles:
        """Roles of the columns of a frame read by :func:`generators.data.load_dataset`
        (its ``attrs["dictionary"]``)."""
        columns = tuple(str(c) for c in frame.columns)
        dictionary = frame.attrs.get("dictionary")
        if dictionary is None:
            return cls(columns=columns, covariates=columns)
        single = {}
        for role in ("id", "arm", "time", "event"):
            spec = dictionary.by_role(role)
            single[role] = None if spec is None else spec.name
        return cls(
            columns=columns,
            outcomes=tuple(c.name for c in dictionary.columns if c.role == "outcome"),
            covariates=tuple(c.name for c in dictionary.columns if c.role == "covariate"),
            **single,
        )


class Generator(ABC):
    """Base class of virtual-patient generators (see the module docstring)."""

    kind: ClassVar[str] = ""
    #: False for models that need no data (mechanistic models): their output is not a
    #: copy of the training columns.
    learns_from_data: ClassVar[bool] = True

    # -- the contract ----------------------------------------------------------------

    @classmethod
    def for_data(cls, roles: DataRoles, *, seed: int = 0) -> Generator:
        """A generator configured from the roles of the columns it will be fitted on
        (used by ``insilico fit``); the default takes its default configuration."""
        return cls()

    @abstractmethod
    def fit(self, data: pd.DataFrame) -> Generator:
        """Learn from patient-level data; returns ``self``."""

    @abstractmethod
    def sample(self, n_patients: int, rng: int | np.random.Generator | None = None) -> pd.DataFrame:
        """Draw ``n_patients`` virtual patients."""

    def get_params(self) -> dict[str, Any]:
        """The configuration given to the constructor: each constructor argument is kept
        as the attribute of the same name (JSON-serializable), as in scikit-learn."""
        names = inspect.signature(type(self).__init__).parameters
        return {name: to_jsonable(getattr(self, name)) for name in names if name != "self"}

    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """The learned state, JSON-serializable (see :func:`to_jsonable`)."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore the learned state written by :meth:`_get_state`."""

    # -- shared behaviour ------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        return getattr(self, "data_hash_", None) is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise DataError(f"this {self.kind} generator is not fitted: call fit(data) first")

    def _remember(self, data: pd.DataFrame) -> None:
        """Record what the generator was fitted on (hash and shape, no rows)."""
        self.data_hash_ = data_hash(data)
        self.n_rows_ = int(len(data))
        self.columns_ = [str(c) for c in data.columns]

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted generator to one versioned JSON file."""
        self._check_fitted()
        try:
            version = metadata.version("insilico-trials")
        except metadata.PackageNotFoundError:
            version = None
        content = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "package_version": version,
            "params": self.get_params(),
            "data": {"sha256": self.data_hash_, "n_rows": self.n_rows_, "columns": self.columns_},
            "state": to_jsonable(self._get_state()),
        }
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(content, allow_nan=True), encoding="utf-8")
        os.replace(tmp, path)


def sample_where(
    sample: Callable[[int, np.random.Generator], pd.DataFrame],
    n_patients: int,
    predicate: Callable[[pd.DataFrame], Any],
    rng: np.random.Generator,
    max_tries: int = 100,
) -> pd.DataFrame:
    """Draw ``n_patients`` rows meeting ``predicate`` by rejection from ``sample(m, rng)``.

    Candidates are drawn in batches sized by the acceptance rate so far and kept where
    ``predicate`` (one boolean per row; missing counts as False) holds; at most
    ``max_tries * n_patients`` candidates are drawn, so an acceptance rate below about
    ``1 / max_tries`` fails with a DataError. The rows are returned in the order drawn,
    indexed from 0.
    """
    kept: list[pd.DataFrame] = []
    n_kept = n_drawn = 0
    while n_kept < n_patients:
        if n_drawn >= max_tries * n_patients:
            raise DataError(
                f"the conditions are too unlikely: {n_kept} of {n_drawn} virtual patients "
                "met them"
            )
        rate = max(n_kept / n_drawn, 1 / max_tries) if n_drawn else 1.0
        batch = int(min(max(2 * (n_patients - n_kept) / rate, 100), max_tries * n_patients))
        candidates = sample(batch, rng)
        mask = np.asarray(pd.Series(predicate(candidates)).fillna(False), dtype=bool)
        kept.append(candidates[mask])
        n_kept += int(mask.sum())
        n_drawn += batch
    return pd.concat(kept, ignore_index=True).iloc[:n_patients]


def load(path: str | os.PathLike) -> Generator:
    """Read a generator written by :meth:`Generator.save`."""
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not a generator file ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise DataError(f"{path}: not an insilico-trials generator file")
    if content.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path}: generator file version {content.get('format_version')} is not supported "
            f"(this version reads {FORMAT_VERSION})"
        )
    kind = content.get("kind")
    if kind not in REGISTRY:
        raise DataError(f"{path}: unknown generator kind {kind!r} (known: {', '.join(REGISTRY)})")
    generator = REGISTRY[kind](**content["params"])
    generator._set_state(from_jsonable(content["state"]))
    generator.data_hash_ = content["data"]["sha256"]
    generator.n_rows_ = content["data"]["n_rows"]
    generator.columns_ = content["data"]["columns"]
    return generator


def to_jsonable(value: Any) -> Any:
    """numpy arrays and scalars as tagged JSON (floats round-trip exactly)."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype), "shape": value.shape}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"]).reshape(value["shape"])
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value
