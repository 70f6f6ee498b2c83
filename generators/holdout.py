"""The real data of a cohort validation: the random training / holdout split, and the checks
of the real and virtual data shared by :func:`generators.validation.validate_cohort` and
:func:`generators.privacy.similarity_filter`.

The holdout comparisons are meaningful only if the generator never saw the holdout rows:
fit the generator on the first part of :func:`split_holdout` (same ``holdout_fraction`` and
``rng``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trials.exceptions import DataError

__all__ = ["split_holdout"]

RNG = int | np.random.Generator | None


def _split_rows(n: int, holdout_fraction: float, gen: np.random.Generator):
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1); got {holdout_fraction!r}")
    n_holdout = int(round(holdout_fraction * n))
    if n_holdout < 2 or n - n_holdout < 2:
        raise DataError(
            f"the real data need at least 2 training and 2 holdout rows; {n} rows with "
            f"holdout_fraction={holdout_fraction} give {n - n_holdout} and {n_holdout}"
        )
    order = gen.permutation(n)
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


def split_holdout(
    real: pd.DataFrame, holdout_fraction: float = 0.3, rng: RNG = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The random training / holdout split of :func:`generators.validation.validate_cohort`.

    With the same integer ``rng`` and ``holdout_fraction`` it is the split that
    :func:`~generators.validation.validate_cohort` and
    :func:`~generators.privacy.similarity_filter` use: fit the generator on the training part
    so that the holdout comparisons are honest.

    Returns
    -------
    training, holdout : DataFrame
        Rows of ``real``, in their original order.
    """
    training, holdout = _split_rows(len(real), holdout_fraction, np.random.default_rng(rng))
    return real.iloc[training], real.iloc[holdout]


def _check_frames(real: pd.DataFrame, virtual: pd.DataFrame, named: dict[str, str | None]):
    missing = [c for c in real.columns if c not in virtual.columns]
    extra = [c for c in virtual.columns if c not in real.columns]
    if missing or extra:
        raise DataError(
            f"real and virtual data must have the same columns; virtual lacks "
            f"{missing} and has extra {extra}"
        )
    for role, name in named.items():
        if name is not None and name not in real.columns:
            raise DataError(f"{role} column {name!r} is not in the data")
    for label, frame in (("real", real), ("virtual", virtual)):
        if len(frame) < 2:
            raise DataError(f"the {label} data need at least 2 rows; got {len(frame)}")
        na = frame.isna()
        for col in frame.columns[na.any().to_numpy()]:
            rows = np.flatnonzero(na[col].to_numpy())
            raise DataError(
                f"{label} column {col!r} has missing values at rows "
                f"{rows[:10].tolist()}{' ...' if len(rows) > 10 else ''}"
            )


def _categorical_columns(real: pd.DataFrame, categorical, event, outcome) -> tuple[str, ...]:
    if categorical is None:
        chosen = {
            c
            for c in real.columns
            if isinstance(real[c].dtype, pd.CategoricalDtype)
            or pd.api.types.is_object_dtype(real[c])
            or pd.api.types.is_bool_dtype(real[c])
            or pd.api.types.is_string_dtype(real[c])
        }
    else:
        unknown = [c for c in categorical if c not in real.columns]
        if unknown:
            raise DataError(f"categorical columns {unknown} are not in the data")
        chosen = set(categorical)
    chosen |= {c for c in (event, outcome) if c is not None}
    not_numeric = [
        c for c in real.columns if c not in chosen and not pd.api.types.is_numeric_dtype(real[c])
    ]
    if not_numeric:
        raise DataError(f"columns {not_numeric} are not numeric; list them as categorical")
    return tuple(c for c in real.columns if c in chosen)

