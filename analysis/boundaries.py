"""Group-sequential boundaries by recursive numerical integration.

The z statistics at information fractions ``t_1 < ... < t_K`` follow the canonical joint
distribution: ``Z_k ~ N(drift sqrt(t_k), 1)``, ``cov(Z_j, Z_k) = sqrt(t_j / t_k)`` for
``j <= k``, where ``drift`` is the expected z statistic at the maximum information (0 under
the null hypothesis). Crossing probabilities come from the recursive numerical integration
of Armitage, McPherson & Rowe (1969) on the grid of Jennison & Turnbull (2000, section 19.2):
at each look ``6r - 1`` points centred on the mean of ``Z_k`` (spaced ``3 / 2r`` within 3,
then logarithmically out to about 15), trimmed to the continuation region, completed with
the midpoints and weighted by Simpson's rule. No simulation.

Conventions: ``alpha`` is one-sided unless ``sided=2`` (symmetric boundaries ``+-efficacy``,
``alpha / 2`` spent on each side, as rpact's ``sided``); boundaries are upper z boundaries,
large z favouring the experimental arm (log-rank: ``z = -log(HR) sqrt(r D) / (1 + r)``);
futility bounds (one-sided designs) spend beta under the design drift, and enter the
efficacy boundaries only when binding (rpact's ``bindingFutility``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, special

from analysis.design_inputs import _check_test, _finite, _positive, _unit_open, _z
from analysis.spending import SpendingFunction
from trials.exceptions import DesignError

_GRID_R = 24  # Jennison & Turnbull's r: 12r - 3 grid points per look
_CHUNK = 4  # replicates integrated together (small enough for the arrays to stay in cache)
_SQRT_2PI = math.sqrt(2 * math.pi)
_EXP_FLOOR = math.exp(-400.0)
_EFFICACY_TYPES = ("asOF", "asP", "asKD", "asHSD", "OF", "P")
_FUTILITY_TYPES = ("bsOF", "bsP", "bsKD", "bsHSD")
_PARAMETRIC = ("asKD", "asHSD", "bsKD", "bsHSD")

# -------------------------------------------------------- recursive numerical integration


@lru_cache(maxsize=4)
def _grid_offsets(r: int) -> np.ndarray:
    """Jennison & Turnbull's (19.2) ``6r - 1`` points around the mean, before trimming."""
    i = np.arange(1, 6 * r, dtype=float)
    inner = -3 + 3 * (i - r) / (2 * r)
    left = -3 - 4 * np.log(r / np.minimum(i, r))
    right = 3 + 4 * np.log(r / np.maximum(6 * r - i, 1))
    offsets = np.where(i < r, left, np.where(i <= 5 * r, inner, right))
    offsets.flags.writeable = False
    return offsets


def _grid(mean: np.ndarray, lower: np.ndarray, upper: np.ndarray, r: int = _GRID_R):
    """Grid points and Simpson weights on ``[lower, upper]``, one row per replicate.

    Points of the J&T grid outside the interval are moved onto its ends; the duplicated
    points bound panels of zero width, hence zero weight, and are dropped as far as the
    rows allow (rows keep a common length, padded with zero-weight points).
    """
    x = mean[:, None] + _grid_offsets(r)[None, :]
    empty = ~(lower < upper)  # no trial continues: keep the points finite, zero weights
    lower, upper = np.where(empty, mean, lower), np.where(empty, mean, upper)
    x = np.minimum(np.maximum(x, lower[:, None]), upper[:, None])
    n, m = x.shape
    z = np.empty((n, 2 * m - 1))
    z[:, 0::2] = x
    z[:, 1::2] = 0.5 * (x[:, :-1] + x[:, 1:])
    width = np.diff(x, axis=1) / 6
    w = np.zeros_like(z)
    w[:, 0:-1:2] += width
    w[:, 2::2] += width
    w[:, 1::2] = 4 * width
    # drop the zero-weight points (those trimmed onto an end): move the others to the front
    keep = w > 0
    order = np.argsort(~keep, axis=1, kind="stable")[:, : max(int(keep.sum(axis=1).max()), 1)]
    return np.take_along_axis(z, order, axis=1), np.take_along_axis(w, order, axis=1)


def _phi0(u: np.ndarray) -> np.ndarray:
    """``exp(-u^2 / 2)``, set to 0 below ``exp(-400)`` without computing it: exponentials
    that underflow, and subnormal products of them, are several times slower."""
    x = 0.5 * u * u
    np.minimum(x, 400.0, out=x)
    np.negative(x, out=x)
    e = np.exp(x, out=x)
    e[e <= _EXP_FLOOR] = 0.0
    return e


@dataclass
class _State:
    """Sub-density of ``Z_k`` among trials still running after look ``k``, on a grid.

    ``wh`` holds Simpson weight times density; before the first look the state is the point
    mass ``Z_0 = 0`` at information 0, which makes look 1 a special case of the recursion.
    """

    z: np.ndarray  # (n, m)
    wh: np.ndarray  # (n, m)
    t: np.ndarray  # (n,)
    drift: np.ndarray  # (n,)

    @classmethod
    def start(cls, n: int, drift) -> _State:
        drift = np.broadcast_to(np.asarray(drift, dtype=float), (n,))
        return cls(np.zeros((n, 1)), np.ones((n, 1)), np.zeros(n), drift)

    def _scaled(self, t_next: np.ndarray):
        delta = t_next - self.t
        sd = np.sqrt(delta)[:, None]
        # Z_next sqrt(t_next) = Z sqrt(t) + N(drift delta, delta)
        centre = (self.z * np.sqrt(self.t)[:, None] + (self.drift * delta)[:, None]) / sd
        return centre, np.sqrt(t_next)[:, None] / sd

    def exit(self, t_next, bound, upper: bool):
        """P(Z_next above ``bound`` (``upper``) or below it, still running), and the
        sub-density of Z_next at ``bound``."""
        centre, scale = self._scaled(t_next)
        u = centre - scale * bound[:, None]
        if not upper:
            u = -u
        prob = (self.wh * special.ndtr(u)).sum(axis=1)
        density = (self.wh * _phi0(u)).sum(axis=1) * scale[:, 0] / _SQRT_2PI
        return prob, density

    def advance(self, t_next, lower, upper) -> _State:
        """The state after a look at ``t_next`` that continues on ``(lower, upper)``."""
        z_new, w_new = _grid(self.drift * np.sqrt(t_next), lower, upper)
        centre, scale = self._scaled(t_next)
        density = np.empty_like(z_new)
        for s in range(0, len(t_next), _CHUNK):
            c = slice(s, s + _CHUNK)
            # exp(-u^2 / 2) in place, floored at exp(-400) (which adds nothing measurable)
            u = scale[c, :, None] * z_new[c, None, :] - centre[c, :, None]
            np.square(u, out=u)
            u *= -0.5
            np.maximum(u, -400.0, out=u)
            density[c] = np.einsum("ni,nij->nj", self.wh[c], np.exp(u, out=u))
        density *= scale / _SQRT_2PI
        return _State(z_new, w_new * density, t_next, self.drift)

    def mass(self) -> np.ndarray:
        return self.wh.sum(axis=1)


def _solve_bound(state: _State, t_next, target, side: str, tol: float = 1e-12):
    """The bound at which the exit probability on ``side`` equals ``target``, per replicate.

    Newton's method on ``log P(bound) - log target`` (nearly linear in the tails), kept
    inside a shrinking bracket by bisection. A target of 0 gives an infinite bound (no
    exit); a target of at least the probability of still running gives the bound that
    stops every trial (``-inf`` upper, ``+inf`` lower).
    """
    upper = side == "upper"
    sign = -1.0 if upper else 1.0  # direction in which P increases with the bound
    mass = state.mass()
    none = target <= 0
    every = ~none & (target >= mass)
    solve = ~(none | every)
    mean = state.drift * np.sqrt(t_next)
    q = np.clip(target / np.where(mass > 0, mass, 1.0), 1e-300, 1 - 1e-16)
    x = mean + sign * special.ndtri(q)  # as if the earlier looks did not exist
    lo, hi = mean - 60.0, mean + 60.0
    x = np.where(solve, np.clip(x, lo + 1, hi - 1), 0.0)
    log_target = np.log(np.where(solve, target, 1.0))
    last_step = hi - lo
    active = solve.copy()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(300):
            prob, density = state.exit(t_next, x, upper)
            f = np.log(prob) - log_target  # increasing in x when sign > 0
            above = (f > 0) == (sign > 0)  # the root lies below x
            hi = np.where(above, x, hi)
            lo = np.where(above, lo, x)
            new = x - f / (sign * density / prob)
            inside = np.isfinite(new) & (new >= lo) & (new <= hi)
            active &= ~(inside & (np.abs(new - x) <= tol * (1 + np.abs(x))))
            # bisect when Newton leaves the bracket or its steps stop shrinking (rtsafe)
            bad = ~inside | (np.abs(new - x) > 0.5 * np.abs(last_step))
            new = np.where(bad, 0.5 * (lo + hi), new)
            last_step = new - x
            x = np.where(active, new, x)
            if not active.any():
                break
        else:  # pragma: no cover - bisection alone converges in about 50 steps
            raise DesignError("the boundary search did not converge")
    x = np.where(none, -sign * np.inf, x)
    return np.where(every, sign * np.inf, x)


def _exits(t: np.ndarray, lower: np.ndarray, upper: np.ndarray, drift: np.ndarray):
    """Per-look probabilities of reaching the look and of leaving it below ``lower`` or
    above ``upper`` (arrays ``(n, K)``), for fixed boundaries."""
    n, k_max = t.shape
    state = _State.start(n, drift)
    reach, below, above = (np.zeros((n, k_max)) for _ in range(3))
    for k in range(k_max):
        reach[:, k] = state.mass()
        below[:, k] = state.exit(t[:, k], lower[:, k], upper=False)[0]
        above[:, k] = state.exit(t[:, k], upper[:, k], upper=True)[0]
        if k < k_max - 1:
            state = state.advance(t[:, k], lower[:, k], upper[:, k])
    return reach, below, above


def _spending_bounds(t, alpha_inc, beta_inc, drift, binding, sided, last="meet"):
    """Efficacy and futility bounds look by look from the error to spend at each look.

    ``alpha_inc``: upper-tail probability under the null to spend at each look (per side);
    ``beta_inc``: lower-tail probability under ``drift`` to spend (``None``: no futility).
    Returns ``(efficacy, futility, capped)``, arrays ``(n, K)``; ``capped`` marks futility
    bounds lowered onto the efficacy bound. The last futility bound is ``"meet"``: the last
    efficacy bound (a final analysis); ``"solve"``: solved from ``beta_inc`` and left as it
    is (the design's drift search); ``"interim"``: solved and capped as at the other looks.
    """
    n, k_max = t.shape
    null = _State.start(n, 0.0)
    alt = _State.start(n, drift) if beta_inc is not None else None
    efficacy = np.empty((n, k_max))
    futility = np.full((n, k_max), -np.inf)
    capped = np.zeros((n, k_max), dtype=bool)
    for k in range(k_max):
        tk = t[:, k]
        efficacy[:, k] = _solve_bound(null, tk, alpha_inc[:, k], "upper")
        is_last = k == k_max - 1
        if alt is not None:
            if is_last and last == "meet":
                futility[:, k] = efficacy[:, k]
            else:
                futility[:, k] = _solve_bound(alt, tk, beta_inc[:, k], "lower")
                if not (is_last and last == "solve"):
                    capped[:, k] = futility[:, k] > efficacy[:, k]
                    futility[:, k] = np.minimum(futility[:, k], efficacy[:, k])
        if is_last:
            break
        if sided == 2:
            null_lower = -efficacy[:, k]
        else:
            null_lower = futility[:, k] if binding else np.full(n, -np.inf)
        null = null.advance(tk, null_lower, efficacy[:, k])
        if alt is not None:
            alt = alt.advance(tk, futility[:, k], efficacy[:, k])
    return efficacy, futility, capped


def _increments(spending: SpendingFunction | None, s: np.ndarray, total: float) -> np.ndarray:
    """Error to spend at each look (rows of spending times ``s``, the last being 1 when it
    is the final analysis). ``spending=None``: everything at the last look."""
    if spending is None:
        inc = np.zeros_like(s)
        inc[:, -1] = np.where(s[:, -1] >= 1, total, 0.0)
        return inc
    cumulative = spending(s, total)
    return np.diff(cumulative, axis=1, prepend=0.0)


# ------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class StoppingProbabilities:
    """Per-look probabilities of stopping at one ``drift``
    (:meth:`GroupSequentialDesign.stopping_probabilities`).

    ``efficacy``: stopping with ``Z_k >= efficacy_k`` (rejecting the null hypothesis in
    favour of the experimental arm); ``efficacy_lower``: with ``Z_k <= -efficacy_k``
    (two-sided designs; zeros otherwise); ``futility``: below the futility bound, and at the
    last look ending without rejecting the null hypothesis. The three arrays sum to 1.
    """

    drift: float
    information_fractions: np.ndarray
    efficacy: np.ndarray
    efficacy_lower: np.ndarray
    futility: np.ndarray

    @property
    def rejection(self) -> float:
        """Probability of rejecting the null hypothesis (type I error at drift 0, power at
        the design drift; both tails for a two-sided design)."""
        return float(self.efficacy.sum() + self.efficacy_lower.sum())

    @property
    def expected_information(self) -> float:
        """Expected information at stopping, as a fraction of the maximum."""
        stop = self.efficacy + self.efficacy_lower + self.futility
        return float(np.dot(stop, self.information_fractions))

    def summary(self) -> pd.DataFrame:
        """One row per look: the stopping probabilities and their cumulative sums."""
        return pd.DataFrame(
            {
                "information_fraction": self.information_fractions,
                "efficacy": self.efficacy,
                "efficacy_lower": self.efficacy_lower,
                "futility": self.futility,
                "cumulative_rejection": np.cumsum(self.efficacy + self.efficacy_lower),
            },
            index=pd.RangeIndex(1, len(self.efficacy) + 1, name="look"),
        )


@dataclass(frozen=True)
class ObservedBoundaries:
    """Boundaries at observed information fractions (:func:`boundaries_at`), each array of
    shape ``(n_looks,)`` or ``(n_replicates, n_looks)`` as the fractions given.

    ``efficacy``: upper z boundaries (``inf``: no efficacy stop); ``futility``: futility z
    bounds (``-inf``: none; at the final analysis equal to the efficacy boundary);
    ``futility_capped``: where beta spending asked for a futility bound above the efficacy
    boundary, so that the bound was set to the efficacy boundary (every trial stops there;
    the later looks are never reached and their boundaries mean nothing).
    """

    information_fractions: np.ndarray
    efficacy: np.ndarray
    futility: np.ndarray
    futility_capped: np.ndarray


def _frozen(x) -> np.ndarray:
    x = np.array(x, dtype=float)
    x.flags.writeable = False
    return x


@dataclass(frozen=True)
class GroupSequentialDesign:
    """A group-sequential design: boundaries at planned information fractions.

    Built by :func:`group_sequential_design`. Assumes the canonical joint distribution
    (independent increments, information proportional to the fractions, e.g. events for a
    log-rank test).

    Attributes
    ----------
    information_fractions : numpy.ndarray
        Planned looks, increasing, the last 1.
    efficacy, futility : numpy.ndarray
        Upper z boundaries (``inf``: no efficacy stop at that look; two-sided designs also
        reject at ``Z_k <= -efficacy_k``) and futility z bounds (stop when
        ``Z_k < futility_k``; ``-inf`` for none; the last equals ``efficacy[-1]``).
    alpha_spent, beta_spent : numpy.ndarray
        Cumulative probability of rejecting by each look under the null hypothesis
        (with the futility bounds when binding), and of stopping without rejecting under
        :attr:`drift` (``beta`` by the last look).
    drift : float
        Expected z statistic at the maximum information giving power ``1 - beta`` (rpact's
        ``sqrt(shift)``).
    inflation_factor : float
        Maximum information over that of the fixed design with the same ``alpha`` and
        power: ``drift**2 / (z_{1-alpha/sided} + z_{1-beta})**2``.
    alpha, beta, sided, binding
        As given to :func:`group_sequential_design`.
    efficacy_type, futility_type : str or None
        The boundary types (``"asOF"``, ..., ``"bsHSD"``).
    efficacy_spending, futility_spending : SpendingFunction or None
        Their spending functions (``None`` for ``"OF"`` / ``"P"`` and for none).
    """

    information_fractions: np.ndarray
    efficacy: np.ndarray
    futility: np.ndarray
    alpha_spent: np.ndarray
    beta_spent: np.ndarray
    drift: float
    inflation_factor: float
    alpha: float
    beta: float
    sided: int
    efficacy_type: str | None
    futility_type: str | None
    efficacy_spending: SpendingFunction | None = field(repr=False)
    futility_spending: SpendingFunction | None = field(repr=False)
    binding: bool = False

    @property
    def n_looks(self) -> int:
        return len(self.information_fractions)

    def _lower_bounds(self, ignore_futility: bool) -> np.ndarray:
        if self.sided == 2:
            return -self.efficacy
        lower = self.futility.copy() if not ignore_futility else np.full(self.n_looks, -np.inf)
        lower[-1] = self.efficacy[-1]
        return lower

    def stopping_probabilities(
        self, drift: float, *, ignore_futility: bool = False
    ) -> StoppingProbabilities:
        """Per-look probabilities of stopping for efficacy or futility at ``drift`` (0 under
        the null hypothesis, :attr:`drift` under the design alternative); with
        ``ignore_futility`` as if there were no futility bounds (the type I error of
        non-binding bounds). Their ``rejection`` is the type I error at drift 0 and the
        power at :attr:`drift`."""
        drift = _finite("drift", drift)
        t = self.information_fractions[None, :]
        lower = self._lower_bounds(ignore_futility)
        reach, below, above = _exits(t, lower[None, :], self.efficacy[None, :], np.array([drift]))
        reach, below, above = reach[0], below[0], above[0]
        if self.sided == 2:
            futility = np.zeros(self.n_looks)
            futility[-1] = max(reach[-1] - below[-1] - above[-1], 0.0)
            lower_rejection = below
        else:
            futility, lower_rejection = below, np.zeros(self.n_looks)
        return StoppingProbabilities(
            drift, _frozen(self.information_fractions), _frozen(above),
            _frozen(lower_rejection), _frozen(futility),
        )  # fmt: skip

    def expected_information(self, drift: float, *, ignore_futility: bool = False) -> float:
        """Expected information at stopping, as a fraction of the maximum information.

        Multiply by :attr:`inflation_factor` for rpact's ``averageSampleNumber`` (relative
        to the fixed design).
        """
        return self.stopping_probabilities(
            drift, ignore_futility=ignore_futility
        ).expected_information

    def boundaries_p(self) -> pd.DataFrame:
        """Nominal one-sided p-values of the boundaries, per look.

        ``efficacy_p`` (reject when the one-sided p-value is at most it) and ``futility_p``
        (stop for futility when the p-value exceeds it; 1 where there is no futility bound).
        """
        return pd.DataFrame(
            {
                "efficacy_p": special.ndtr(-self.efficacy),
                "futility_p": special.ndtr(-self.futility),
            },
            index=self._look_index(),
        )

    def boundaries_hazard_ratio(self, events, allocation_ratio: float = 1.0) -> pd.DataFrame:
        r"""Hazard ratios (experimental / control) at the boundaries of a log-rank test:
        :math:`\exp(-z (1 + r) / \sqrt{r D})` with ``D`` the ``events`` at each look and
        ``r = allocation_ratio`` (Schoenfeld's variance of the log hazard ratio). An
        observed hazard ratio below ``efficacy_hazard_ratio`` crosses the efficacy
        boundary, one above ``futility_hazard_ratio`` the futility bound.

        Raises
        ------
        DesignError
            For other than one positive event count per look, or a non-positive
            allocation ratio.
        """
        allocation_ratio = _positive("allocation_ratio", allocation_ratio)
        events = np.asarray(events, dtype=float)
        if events.shape != (self.n_looks,):
            raise DesignError(
                f"events must give one count per look ({self.n_looks}), got shape {events.shape}"
            )
        if not (np.isfinite(events) & (events > 0)).all():
            raise DesignError(f"events must be positive, got {events.tolist()}")
        scale = (1 + allocation_ratio) / np.sqrt(allocation_ratio * events)
        return pd.DataFrame(
            {
                "events": events,
                "efficacy_hazard_ratio": np.exp(-self.efficacy * scale),
                "futility_hazard_ratio": np.exp(-self.futility * scale),
            },
            index=self._look_index(),
        )

    def summary(self) -> pd.DataFrame:
        """One row per look: fraction, boundaries (z and nominal p), error spent and the
        cumulative power at the design drift."""
        h1 = self.stopping_probabilities(self.drift)
        return pd.DataFrame(
            {
                "information_fraction": self.information_fractions,
                "efficacy_z": self.efficacy,
                "futility_z": self.futility,
                "efficacy_p": special.ndtr(-self.efficacy),
                "alpha_spent": self.alpha_spent,
                "beta_spent": self.beta_spent,
                "cumulative_power": np.cumsum(h1.efficacy),
            },
            index=self._look_index(),
        )

    def _look_index(self) -> pd.RangeIndex:
        return pd.RangeIndex(1, self.n_looks + 1, name="look")


# ------------------------------------------------------------------------------- designs


def _check_fractions(fractions, name: str, matrix: bool = False) -> np.ndarray:
    """Fractions as a 2-D array of rows of looks (one row unless ``matrix``)."""
    try:
        t = np.array(fractions, dtype=float)
    except (TypeError, ValueError):
        raise DesignError(f"{name} must be numbers, got {fractions!r}") from None
    if t.ndim not in ((1, 2) if matrix else (1,)) or t.size == 0:
        shape = "a vector (looks) or a matrix (replicates x looks)" if matrix else "a vector"
        raise DesignError(f"{name} must be {shape} of numbers, got shape {t.shape}")
    t = np.atleast_2d(t)
    for problem, rows in (
        ("positive and finite", ~(np.isfinite(t) & (t > 0)).all(axis=1)),
        ("strictly increasing", (np.diff(t, axis=1) <= 0).any(axis=1)),
    ):
        if rows.any():
            raise DesignError(f"{name} must be {problem}, got {t[rows.argmax()].tolist()}")
    return t


def _spending_for(kind: str, code: str | None, parameter, allowed) -> SpendingFunction | None:
    if code is None:
        if parameter is not None:
            raise DesignError(f"{kind}_parameter given without a {kind} spending function")
        return None
    if code not in allowed:
        raise DesignError(f"{kind} must be one of {', '.join(map(repr, allowed))}, got {code!r}")
    if code in ("OF", "P"):
        if parameter is not None:
            raise DesignError(f"{kind}={code!r} takes no {kind}_parameter, got {parameter!r}")
        return None
    if code in _PARAMETRIC and parameter is None:
        name = "rho" if code.endswith("KD") else "gamma"
        raise DesignError(f"{kind}={code!r} needs {kind}_parameter ({name})")
    return SpendingFunction.from_code(code, parameter)


def _root(fun, lower: float, upper: float, what: str) -> float:
    """Root of an increasing ``fun`` with ``fun(lower) < 0``, widening ``upper`` if needed."""
    for _ in range(8):
        if fun(upper) > 0:
            return float(optimize.brentq(fun, lower, upper, xtol=1e-13, rtol=1e-15, maxiter=200))
        lower, upper = upper, 2 * upper
    raise DesignError(f"no {what} found")


def group_sequential_design(
    information_fractions,
    alpha: float = 0.025,
    beta: float | None = None,
    *,
    power: float | None = None,
    efficacy: str | None = "asOF",
    efficacy_parameter: float | None = None,
    futility: str | None = None,
    futility_parameter: float | None = None,
    binding: bool = False,
    sided: int = 1,
) -> GroupSequentialDesign:
    r"""Efficacy and futility boundaries of a group-sequential design.

    Efficacy boundaries either spend alpha (Lan & DeMets: the probability under the null
    hypothesis of first crossing at look ``k`` is :math:`f(t_k) - f(t_{k-1})`) or have the
    classical shape solved for an exact level: Pocock (``c_k = C``), O'Brien-Fleming
    (``c_k = C / \sqrt{t_k}``). Futility bounds spend beta (the probability under the
    drift of first falling below the bound at look ``k`` is :math:`g(t_k) - g(t_{k-1})`),
    with the drift at which the last futility bound meets the last efficacy boundary, so
    that the power is ``1 - beta``; binding bounds enter the efficacy boundaries (solved
    together with the drift), non-binding ones leave them as without futility (rpact's
    ``getDesignGroupSequential`` with ``typeBetaSpending``). Without futility bounds the
    drift is found from the power.

    Parameters
    ----------
    information_fractions : array_like
        Planned looks as fractions of the maximum information, strictly increasing, the
        last 1.
    alpha : float
        Significance level, one-sided unless ``sided=2``.
    beta : float, optional
        Type II error (default 0.2); give ``beta`` or ``power``, not both.
    power : float, optional
        ``1 - beta``.
    efficacy : {"asOF", "asP", "asKD", "asHSD", "OF", "P"} or None
        Alpha spending (:class:`~analysis.spending.SpendingFunction`: O'Brien-Fleming type,
        Pocock type, Kim-DeMets, Hwang-Shih-DeCani), classical O'Brien-Fleming or Pocock
        boundaries, or ``None``: no efficacy stop before the last look (needs futility).
    futility : {"bsOF", "bsP", "bsKD", "bsHSD"} or None
        Beta spending for futility bounds (one-sided, ``efficacy`` spending or ``None``).
    efficacy_parameter, futility_parameter : float, optional
        ``rho > 0`` for ``"asKD"`` / ``"bsKD"``, ``gamma`` for ``"asHSD"`` / ``"bsHSD"``.
    binding : bool
        Whether the futility bounds are binding.
    sided : {1, 2}
        One-sided, or two-sided with symmetric boundaries.

    Returns
    -------
    GroupSequentialDesign

    Raises
    ------
    DesignError
        For fractions that are not strictly increasing in ``(0, 1]`` ending at 1, ``alpha``,
        ``beta`` or a spending parameter out of range, an unknown boundary type, futility
        bounds on a two-sided or classical (``"OF"``, ``"P"``) design, or beta spending
        that puts a futility bound above an efficacy boundary.

    Notes
    -----
    Boundaries are solved to 1e-12 (z scale) for the integrated probabilities; the
    integration (J&T's grid with ``r = 24``, at most 285 points per look) is within about
    2e-7 of a much finer grid in the probabilities, and 6e-7 of rpact in the boundaries.
    With ``efficacy=None`` and binding futility bounds the last boundary is lowered so that
    the type I error is ``alpha`` (rpact's ``"noEarlyEfficacy"`` keeps
    :math:`z_{1-\alpha}` there).

    References
    ----------
    .. [1] Armitage, P., McPherson, C. K. & Rowe, B. C. (1969). Repeated significance tests
       on accumulating data. *Journal of the Royal Statistical Society A*, 132(2), 235-244.
    .. [2] Jennison, C. & Turnbull, B. W. (2000). *Group Sequential Methods with Applications
       to Clinical Trials*, ch. 2, 7 and 19. Chapman & Hall/CRC.
    .. [3] Lan, K. K. G. & DeMets, D. L. (1983). *Biometrika*, 70(3), 659-663.
    .. [4] Pocock, S. J. (1977). *Biometrika*, 64(2), 191-199; O'Brien, P. C. & Fleming,
       T. R. (1979). *Biometrics*, 35(3), 549-556.
    .. [5] rpact, ``getDesignGroupSequential``, ``getDesignCharacteristics``,
       https://www.rpact.org.

    Examples
    --------
    >>> d = group_sequential_design([1 / 3, 2 / 3, 1], alpha=0.025, efficacy="OF")
    >>> d.efficacy.round(3).tolist()
    [3.471, 2.454, 2.004]
    >>> d = group_sequential_design([0.5, 1], futility="bsOF", binding=True)
    >>> round(d.stopping_probabilities(0.0).rejection, 6)
    0.025
    """
    t = _check_fractions(information_fractions, "information_fractions")[0]
    if abs(t[-1] - 1) > 1e-12:
        raise DesignError(f"information_fractions must end at 1, got {t.tolist()}")
    t[-1] = 1.0
    if beta is not None and power is not None:
        raise DesignError("give beta or power, not both")
    if power is not None:
        beta = 1 - _unit_open("power", power)
    beta = _unit_open("beta", 0.2 if beta is None else beta)
    alpha, sided = _check_test(alpha, sided, 1 - beta)
    alpha_spending = _spending_for("efficacy", efficacy, efficacy_parameter, _EFFICACY_TYPES)
    beta_spending = _spending_for("futility", futility, futility_parameter, _FUTILITY_TYPES)
    if futility is not None and sided == 2:
        raise DesignError("futility bounds are supported for one-sided designs only (sided=1)")
    if futility is not None and efficacy in ("OF", "P"):
        raise DesignError(
            f"futility bounds need an alpha-spending efficacy boundary, not {efficacy!r}: "
            "use 'asOF' or 'asP'"
        )
    if efficacy is None and futility is None:
        raise DesignError("efficacy=None (no early efficacy stop) needs futility bounds")
    binding = bool(binding) and futility is not None
    side_alpha = alpha / sided
    z_fixed = _z(side_alpha) + _z(beta)
    tt = t[None, :]

    if efficacy in ("OF", "P"):
        shape = t ** (-0.5 if efficacy == "OF" else 0.0)

        def size(c: float) -> float:
            upper = c * shape[None, :]
            lower = -upper if sided == 2 else np.full_like(upper, -np.inf)
            _, below, above = _exits(tt, lower, upper, np.zeros(1))
            return side_alpha - above.sum()  # symmetric: each tail holds alpha / sided

        c_const = _root(size, 0.0, 8.0, "boundary constant")
        bounds = c_const * shape
        futility_bounds = np.full(len(t), -np.inf)
    else:
        alpha_inc = _increments(alpha_spending, tt, side_alpha)
        if beta_spending is None:
            bounds, futility_bounds, _ = _spending_bounds(tt, alpha_inc, None, 0.0, False, sided)
            bounds, futility_bounds = bounds[0], futility_bounds[0]
        else:
            beta_inc = _increments(beta_spending, tt, beta)
            bounds, futility_bounds, drift = _beta_spending_design(
                tt, alpha_inc, beta_inc, binding, z_fixed
            )

    design = GroupSequentialDesign(
        information_fractions=_frozen(t), efficacy=_frozen(bounds),
        futility=_frozen(futility_bounds), alpha_spent=_frozen(np.zeros(len(t))),
        beta_spent=_frozen(np.zeros(len(t))), drift=0.0, inflation_factor=1.0, alpha=alpha,
        beta=beta, sided=sided, efficacy_type=efficacy, futility_type=futility,
        efficacy_spending=alpha_spending, futility_spending=beta_spending, binding=binding,
    )  # fmt: skip
    if beta_spending is None:

        def shortfall(d: float) -> float:
            return design.stopping_probabilities(d).efficacy.sum() - (1 - beta)

        drift = _root(shortfall, 0.0, 2 * z_fixed + 2, "drift")
    null = design.stopping_probabilities(0.0, ignore_futility=not binding)
    alt = design.stopping_probabilities(drift)
    return replace(
        design,
        alpha_spent=_frozen(np.cumsum(null.efficacy + null.efficacy_lower)),
        beta_spent=_frozen(np.cumsum(alt.futility)),
        drift=float(drift),
        inflation_factor=float(drift**2 / z_fixed**2),
    )


def _beta_spending_design(tt, alpha_inc, beta_inc, binding, z_fixed):
    """Drift at which the last futility bound meets the last efficacy boundary."""

    def gap(drift: float) -> float:
        eff, fut, _ = _spending_bounds(tt, alpha_inc, beta_inc, drift, binding, 1, "solve")
        g = fut[0, -1] - eff[0, -1]
        return float(np.clip(np.nan_to_num(g, nan=50.0), -50.0, 50.0))

    drift = _root(gap, 0.0, 2 * z_fixed + 2, "drift at which the boundaries meet")
    eff, fut, capped = _spending_bounds(tt, alpha_inc, beta_inc, drift, binding, 1, "solve")
    eff, fut = eff[0], fut[0]
    if capped[0].any():
        k = int(np.argmax(capped[0]))
        raise DesignError(
            f"beta spending puts the futility bound at look {k + 1} above the efficacy "
            f"boundary ({eff[k]:.4f}): spend less beta early (or more alpha)"
        )
    fut[-1] = eff[-1]
    return eff, fut, drift


# ----------------------------------------------------------------- observed information


def boundaries_at(
    design: GroupSequentialDesign, observed_fractions, *, final: bool = True
) -> ObservedBoundaries:
    """Boundaries at the information fractions actually observed, keeping the spending
    functions of ``design`` (Lan & DeMets' error spending).

    The efficacy boundary at look ``k`` spends ``f(t_k) - f(t_{k-1})`` of alpha under the
    null hypothesis, the futility bound ``g(t_k) - g(t_{k-1})`` of beta under the design's
    drift, with the joint distribution at the observed fractions and binding bounds used as
    in the design. The final analysis spends all the alpha left (spending time 1 whatever
    its fraction) and its futility bound is its efficacy boundary. A look's boundaries
    depend only on the looks up to it.

    Parameters
    ----------
    design : GroupSequentialDesign
        A design with spending functions (efficacy ``"as*"`` or ``None``).
    observed_fractions : array_like
        Observed over planned maximum information (e.g. events / planned maximum events) at
        each look, strictly increasing, interim looks below 1; a 2-D array has one row per
        replicate, integrated together (about 0.3-0.5 ms per replicate for three looks).
    final : bool
        Whether the last look is the final analysis; if not, all looks are interim looks.

    Returns
    -------
    ObservedBoundaries

    Raises
    ------
    DesignError
        For a classical ``"OF"`` / ``"P"`` design (no spending function), fractions that are
        not positive and strictly increasing, or an interim look at or beyond the maximum.

    References
    ----------
    .. [1] Lan, K. K. G. & DeMets, D. L. (1983). *Biometrika*, 70(3), 659-663.
    .. [2] Jennison, C. & Turnbull, B. W. (2000), ch. 7 and 19.

    Examples
    --------
    >>> d = group_sequential_design([0.5, 1], efficacy="asOF")
    >>> boundaries_at(d, [0.45, 1.02]).efficacy.round(4).tolist()
    [3.1438, 1.9649]
    """
    if design.efficacy_type in ("OF", "P"):
        raise DesignError(
            f"boundaries_at needs a spending-function design; {design.efficacy_type!r} "
            "boundaries are defined only at their planned looks (use 'asOF' or 'asP')"
        )
    single = np.ndim(observed_fractions) == 1
    t = _check_fractions(observed_fractions, "observed_fractions", matrix=True)
    interim = t if not final else t[:, :-1]
    if (interim >= 1).any():
        raise DesignError(
            "an interim look must come before the maximum information (fraction below 1); "
            f"got {interim[interim >= 1][:5].tolist()}"
        )
    s = t.copy()
    if final:
        s[:, -1] = 1.0
    alpha_inc = _increments(design.efficacy_spending, s, design.alpha / design.sided)
    beta_inc = None
    if design.futility_spending is not None:
        beta_inc = _increments(design.futility_spending, s, design.beta)
    eff, fut, capped = _spending_bounds(
        t, alpha_inc, beta_inc, design.drift, design.binding, design.sided,
        "meet" if final else "interim",
    )  # fmt: skip
    if single:
        t, eff, fut, capped = t[0], eff[0], fut[0], capped[0]
    return ObservedBoundaries(_frozen(t), _frozen(eff), _frozen(fut), np.array(capped))
