"""The trial engine on torch tensors: ``insilico simulate --device cuda``.

The models are the CPU engine's own functions, which take numpy arrays or torch tensors
(:mod:`trials.arrays`): piecewise accrual (:func:`trials.accrual.enrollment_times`),
randomization (:func:`trials.randomization.assign`), event and dropout times
(:func:`trials.outcomes.event_times`, :func:`trials.engine.dropout_times`); and so are the
decisions: the per-replicate statistics come back to the CPU and go through
:func:`trials.analyse.comparison` and the multiplicity adjustment, into the same
per-replicate table. What is written here for tensors is what the CPU engine does with
numpy-only tools: the random draws, the analysis cut-off, the administrative censoring and
the log-rank test.

Random draws
------------
A tensor device cannot run one numpy generator per replicate, so the draws are a
counter-based stream that every device computes identically: draw ``k`` of replicate ``r``
is output ``k + 1`` of a SplitMix64 generator (Steele, Lea & Flood 2014, the generator of
Java's ``SplittableRandom``) seeded with output ``r + 1`` of a SplitMix64 generator seeded
with the run's seed, its top 53 bits made a uniform in (0, 1). A replicate's draws do not
depend on which other replicates are simulated with it, nor on the device: the CPU and a
GPU simulate the same patients, and their results agree up to the rounding of sums.
The streams differ from the CPU engine's (numpy PCG64), so the two engines' results agree
within Monte Carlo error, not draw by draw.

Replicates are simulated in fixed blocks (:data:`BLOCK` replicates, aligned on multiples
of it), whatever the chunk, so that every floating-point sum is taken over the same shapes
and a seed fixes every result bit for bit, whatever the chunking or the number of workers.

Scope
-----
Time-to-event primary endpoint analysed by the log-rank or stratified log-rank test, fixed
design, any number of arms; exponential, piecewise-exponential or Weibull control; a hazard
ratio per arm, or one drawn per trial from a normal or a fitted posterior (assurance), and
covariate effects; the protocol's own covariates (normal, log-normal, binary, categorical,
correlated) and eligibility criteria; simple, permuted-block or stratified-block
randomization; deterministic or Poisson accrual; dropout by arm; an analysis at a number
of events, a calendar time or a follow-up. Protocols outside it
are refused with the list of what is not supported (the CPU engine runs them all).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from trials.accrual import enrollment_times
from trials.analyse import adjust_for_multiplicity, comparison, comparison_alpha
from trials.engine import (
    Layout,
    _eligible,
    _randomize,
    arm_effects,
    dropout_times,
    has_cure,
    posterior_effect_draws,
    stratum_codes,
)
from trials.estimands import true_values
from trials.exceptions import DesignError
from trials.outcomes import event_times, linear_predictor
from trials.protocol import (
    CalendarTiming,
    EventsTiming,
    MinimizationRandomization,
    Protocol,
    TimeToEventEndpoint,
    effect_distribution,
)
from trials.validation import endpoint_analysis

#: Replicates simulated together, per device type: results are computed over these fixed
#: blocks, so they do not depend on the chunking.
BLOCK = {"cuda": 1 << 16, "cpu": 1 << 11}

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _signed(value: int) -> int:
    """A 64-bit pattern as the int64 that holds it."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(z, bits: int):
    """Logical right shift of int64 tensors (``>>`` is arithmetic), a new tensor."""
    shifted = z >> bits
    shifted &= (1 << (64 - bits)) - 1
    return shifted


def splitmix64(z):
    """The SplitMix64 output function of states ``z`` (int64 tensors; arithmetic wraps
    modulo 2**64 as it does in two's complement)."""
    return _splitmix64_(z.clone())


def _splitmix64_(z):
    """:func:`splitmix64` in place (at most one temporary as large as ``z``)."""
    for bits, multiplier in ((30, _MIX1), (27, _MIX2)):
        z ^= _shift_right(z, bits)
        z *= _signed(multiplier)
    z ^= _shift_right(z, 31)
    return z


def uniforms(seed: int, replicates, draws, device):
    """Uniforms in (0, 1): ``out[i, j]`` is draw ``draws[j]`` of replicate
    ``replicates[i]`` (see the module's notes)."""
    import torch

    replicates = torch.as_tensor(replicates, dtype=torch.int64, device=device)
    draws = torch.as_tensor(draws, dtype=torch.int64, device=device)
    golden = _signed(_GOLDEN)
    keys = splitmix64(_signed(seed) + (replicates + 1) * golden)
    bits = keys[:, None] + (draws[None, :] + 1) * golden
    bits = _splitmix64_(bits)
    bits >>= 11
    bits &= (1 << 53) - 1
    out = bits.to(torch.float64)
    del bits
    out += 0.5
    out *= 2.0**-53
    return out


def unsupported(protocol: Protocol) -> list[str]:
    """What in the protocol the torch engine does not simulate (empty: all of it)."""
    problems = []
    primary = protocol.endpoints.primary
    if protocol.endpoints.secondary:
        problems.append("secondary endpoints")
    if not isinstance(primary, TimeToEventEndpoint):
        problems.append(f"a {primary.type} primary endpoint (time-to-event only)")
    else:
        if primary.effect.hazard_ratio is None and effect_distribution(primary) is None:
            problems.append("an effect other than a hazard ratio per arm or its distribution")
        if has_cure(primary):
            problems.append("a cure fraction")
        if any(ice.annual_rate is not None for ice in primary.estimand.intercurrent_events):
            problems.append("simulated intercurrent events")
    population = protocol.population
    if population.generator is not None:
        problems.append("a population generator")
    if isinstance(protocol.randomization, MinimizationRandomization):
        problems.append("minimization")
    test = protocol.analysis.primary.test
    if test not in ("logrank", "stratified_logrank"):
        problems.append(f"the {test} test (log-rank and stratified log-rank only)")
    if protocol.analysis.group_sequential:
        problems.append("a group-sequential design")
    return problems


def check_supported(protocol: Protocol, device: str) -> None:
    problems = unsupported(protocol)
    if problems:
        raise DesignError(
            f"--device {device}: the torch engine does not simulate "
            + "; ".join(problems)
            + ". Run this protocol on the CPU engine (--device cpu)."
        )


class TorchEngine:
    """Simulate replicate blocks of one protocol on a torch device."""

    def __init__(self, layout: Layout, device: str):
        check_supported(layout.protocol, device)
        self.layout = layout
        self.protocol = layout.protocol
        self.device = torch_device(device)
        self.block = block_size(device)

    @cached_property
    def columns(self) -> dict[str, int]:
        names = ["arrival"] if self.protocol.population.accrual.process == "poisson" else []
        names += [f"latent:{name}" for name in self.layout.covariate_model.names]
        return {name: i for i, name in enumerate([*names, "dropout", "outcome"])}

    def frame(self, replicates: np.ndarray, seed: int, scenarios) -> pd.DataFrame:
        """The per-replicate table of ``replicates`` (a contiguous range), simulated
        block by block."""
        from trials.simulation import _comparison_frame

        first, stop = int(replicates[0]), int(replicates[-1]) + 1
        frames = []
        for start in range(first - first % self.block, stop, self.block):
            block = np.arange(start, start + self.block)
            keep = (block >= first) & (block < stop)
            for scenario, (comparisons, analysis_time, reached, screened) in self._block(
                block, seed, scenarios
            ).items():
                cutoff = _Cutoff(analysis_time[keep], reached[keep])
                for c in comparisons:
                    c = _rows(c, keep)
                    frame = _comparison_frame(scenario, block[keep], screened[keep], cutoff, c)
                    frame["stop_look"] = np.ones(len(frame), dtype=np.int64)
                    frame["stop_reason"] = "final"
                    frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def _block(self, block: np.ndarray, seed: int, scenarios) -> dict:
        import torch

        protocol, layout = self.protocol, self.layout
        n = layout.n_patients
        n_col = len(self.columns)
        n_candidates = layout.n_candidates if layout.eligibility else layout.n_draw
        cells = n_candidates * n_col
        draws = np.arange(cells + layout.n_randomization + len(layout.uncertain_effects))
        u = uniforms(seed, block, draws, self.device)
        candidates = u[:, :cells].reshape(len(block), n_candidates, n_col)
        u_rand = u[:, cells : cells + layout.n_randomization]
        u_effect = u[:, cells + layout.n_randomization :]
        if layout.eligibility:
            selected, n_screened = self._screen(block, seed, candidates, len(draws))
        else:
            selected = candidates
            n_screened = torch.full((len(block),), n, dtype=torch.int64)
        patients = selected[:, :n]

        def exponential(name):
            return -torch.log1p(-patients[:, :, self.columns[name]])

        accrual = protocol.population.accrual
        arrivals = exponential("arrival") if "arrival" in self.columns else None
        enrollment = torch.as_tensor(
            enrollment_times(accrual, n, arrivals), dtype=torch.float64, device=self.device
        ).expand(len(block), n)
        model = layout.covariate_model
        latent = [self.columns[f"latent:{name}"] for name in model.names]
        covariates = model.transform(torch.special.ndtri(patients[:, :, latent])) if latent else {}
        arm = _randomize(layout, covariates, u_rand)[:, :n]
        censor = dropout_times(protocol, exponential("dropout"), arm)
        endpoint = protocol.endpoints.primary
        linear = linear_predictor(endpoint.covariate_effects, covariates, model, arm.shape)
        if not isinstance(linear, torch.Tensor):
            linear = torch.as_tensor(linear, device=self.device)
        out = {}
        for scenario in scenarios:
            null = scenario == "null"
            if layout.uncertain_effects:
                effect = self._trial_effects(endpoint, arm, u_effect[:, 0], null)
            else:
                per_arm = arm_effects(protocol, endpoint, null)
                effect = torch.as_tensor(per_arm, device=self.device)[arm]
            time = event_times(endpoint.control, exponential("outcome"), linear + effect)
            analysis_time, reached, max_follow_up = self._cutoff(time, censor, enrollment)
            time, event, enrolled = administrative_censoring(
                time, censor, enrollment, analysis_time, max_follow_up
            )
            comparisons = self._compare(time, event, enrolled, arm, covariates, endpoint, null)
            out[scenario] = (
                comparisons,
                analysis_time.cpu().numpy(),
                reached.cpu().numpy(),
                n_screened.cpu().numpy(),
            )
        return out

    def _trial_effects(self, endpoint, arm, u, null: bool):
        """Per-patient log hazard ratio drawn per trial (as
        :func:`trials.engine.trial_effects`): a posterior draw picked by the trial's
        uniform, or ``mean + sd * Phi^-1(u)``; zero in the control arm and on the null."""
        import torch

        if null:
            return torch.zeros(arm.shape, dtype=torch.float64, device=self.device)
        spec = effect_distribution(endpoint)
        if spec.model is not None:
            draws = posterior_effect_draws(spec.model, spec.scale)
            pick = torch.clamp((u * len(draws)).to(torch.int64), max=len(draws) - 1)
            value = torch.as_tensor(draws, device=self.device)[pick]
        else:
            value = spec.mean + spec.sd * torch.special.ndtri(u)
        control = next(i for i, a in enumerate(self.protocol.arms) if a.control)
        return torch.where(arm == control, 0.0, value[:, None])

    def _latent(self, candidates):
        names = self.layout.covariate_model.names
        return candidates[..., [self.columns[f"latent:{name}"] for name in names]]

    def _eligible(self, candidates):
        import torch

        model = self.layout.covariate_model
        covariates = model.transform(torch.special.ndtri(self._latent(candidates)))
        return _eligible(self.layout.eligibility, covariates)

    def _screen(self, block, seed: int, candidates, first_extra: int):
        """The first ``n_draw`` eligible candidates of each replicate and the number
        screened to find the ``n_patients``-th (as :func:`trials.engine.draw_cohort`); a
        replicate with too few eligible candidates screens more from its own stream,
        from draw ``first_extra`` on."""
        import torch

        layout = self.layout
        n_draw, n = layout.n_draw, layout.n_patients
        eligible = self._eligible(candidates)
        order = torch.argsort((~eligible).to(torch.int8), dim=1, stable=True)[:, :n_draw]
        selected = torch.take_along_dim(candidates, order[:, :, None], dim=1)
        n_screened = order[:, n - 1] + 1
        n_candidates, n_col = candidates.shape[1:]
        for i in torch.nonzero(eligible.sum(dim=1) < n_draw).flatten().tolist():
            rows = [candidates[i][eligible[i]]]
            index = [torch.nonzero(eligible[i]).flatten()]
            for batch in range(10_000):
                if sum(len(k) for k in index) >= n_draw:
                    break
                start = first_extra + batch * n_candidates * n_col
                more = uniforms(
                    seed,
                    block[i : i + 1],
                    np.arange(start, start + n_candidates * n_col),
                    self.device,
                ).reshape(n_candidates, n_col)
                ok = self._eligible(more)
                rows.append(more[ok])
                index.append((batch + 1) * n_candidates + torch.nonzero(ok).flatten())
            else:
                raise DesignError(
                    "population.eligibility: too few screened patients are eligible to "
                    "enroll the trial"
                )
            selected[i] = torch.cat(rows)[:n_draw]
            n_screened[i] = torch.cat(index)[n - 1] + 1
        return selected, n_screened

    def _cutoff(self, time, censor, enrollment):
        """Calendar time of each replicate's analysis, whether the target was reached,
        and the longest follow-up (as :func:`trials.engine.analysis_cutoff`)."""
        import torch

        timing = self.protocol.analysis.timing
        n_rep = time.shape[0]
        everyone = torch.ones(n_rep, dtype=torch.bool, device=self.device)
        if isinstance(timing, EventsTiming):
            observable = time <= censor
            calendar = torch.where(observable, enrollment + time, torch.inf)
            kth = torch.kthvalue(calendar, timing.target_events, dim=1).values
            reached = torch.isfinite(kth)
            last = torch.where(observable, calendar, -torch.inf).amax(dim=1)
            return torch.where(reached, kth, last), reached, np.inf
        if isinstance(timing, CalendarTiming):
            full = torch.full((n_rep,), float(timing.months), dtype=torch.float64)
            return full.to(self.device), everyone, np.inf
        return enrollment.amax(dim=1) + timing.months, everyone, float(timing.months)

    def _compare(self, time, event, enrolled, arm, covariates, endpoint, null) -> list:
        protocol = self.protocol
        control = next(i for i, a in enumerate(protocol.arms) if a.control)
        truth = true_values(protocol, endpoint, null)
        alpha = comparison_alpha(protocol)
        spec = endpoint_analysis(protocol, endpoint)
        strata = None
        if spec.test == "stratified_logrank" and spec.strata:
            strata = stratum_codes(self.layout, covariates, spec.strata)
        out = []
        for k, experimental in enumerate(protocol.arms):
            if experimental.control:
                continue
            valid = enrolled & ((arm == control) | (arm == k))
            stats = stratified_logrank(time, event & valid, arm == k, valid, strata)
            o_minus_e, variance, events, n_analysed = (s.cpu().numpy() for s in stats)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = o_minus_e / np.sqrt(variance)
                log_hr = np.where(variance > 0, o_minus_e / variance, np.nan)
                se = 1.0 / np.sqrt(variance)
            out.append(
                comparison(
                    endpoint.name,
                    experimental.name,
                    "log_hazard_ratio",
                    truth[k],
                    log_hr,
                    se,
                    -z,
                    n_analysed,
                    events.astype(float),
                    sided=protocol.analysis.sided,
                    alpha=alpha,
                )
            )
        return adjust_for_multiplicity(protocol, out)


class _Cutoff:
    """The two fields of :class:`trials.engine.Cutoff` the per-replicate table reads."""

    def __init__(self, analysis_time, target_reached):
        self.analysis_time = analysis_time
        self.target_reached = target_reached


def _rows(c, keep):
    from dataclasses import replace

    arrays = (
        "estimate",
        "se",
        "ci_lower",
        "ci_upper",
        "statistic",
        "p_value",
        "reject",
        "n_analysed",
        "events",
    )
    return replace(c, **{name: getattr(c, name)[keep] for name in arrays})


def administrative_censoring(time, censor, entry, cutoff, max_follow_up=np.inf):
    """:func:`analysis.logrank_looks.administrative_censoring` on tensors."""
    import torch

    horizon = cutoff[:, None] - entry
    enrolled = horizon >= 0
    event = (time <= censor) & (entry + time <= cutoff[:, None]) & enrolled
    if np.isfinite(max_follow_up):
        event &= time <= max_follow_up
        horizon = torch.clamp(horizon, max=max_follow_up)
    observed = torch.minimum(torch.fmin(time, censor), horizon).clamp(min=0.0)
    observed = torch.where(event, time, observed)
    return observed, event, enrolled


def logrank(time, event, group, valid):
    """Two-sample log-rank sums per row of ``(R, N)`` tensors: observed minus expected
    events of ``group`` and its hypergeometric variance over the distinct event times
    (ties grouped), the events and the patients analysed.

    One sort per row; the risk sets at each distinct time come from the sorted times'
    first and last positions (``searchsorted``) and running counts.
    """
    import torch

    n_rep, n = time.shape
    key = torch.where(valid, time, torch.inf)
    t, order = torch.sort(key, dim=1, stable=True)
    e = torch.gather(event & valid, 1, order).to(torch.float64)
    g = torch.gather(group & valid, 1, order).to(torch.float64)
    first = torch.searchsorted(t, t, side="left")
    last = torch.searchsorted(t, t, side="right")
    zero = torch.zeros((n_rep, 1), dtype=torch.float64, device=time.device)
    at_or_after = torch.cat([zero, torch.cumsum(g, dim=1)], dim=1)
    events_before = torch.cat([zero, torch.cumsum(e, dim=1)], dim=1)
    group_events_before = torch.cat([zero, torch.cumsum(e * g, dim=1)], dim=1)
    n_valid = valid.sum(dim=1, keepdim=True).to(torch.float64)
    n_group = at_or_after[:, -1:]
    at_risk = n_valid - first.to(torch.float64)
    at_risk_group = n_group - torch.gather(at_or_after, 1, first)
    deaths = torch.gather(events_before, 1, last) - torch.gather(events_before, 1, first)
    group_deaths = torch.gather(group_events_before, 1, last) - torch.gather(
        group_events_before, 1, first
    )
    position = torch.arange(n, device=time.device)
    counted = (first == position) & (deaths > 0)
    share = torch.where(counted, at_risk_group / at_risk.clamp(min=1.0), 0.0)
    o_minus_e = torch.where(counted, group_deaths - deaths * share, 0.0).sum(dim=1)
    spread = (at_risk - deaths) / (at_risk - 1.0).clamp(min=1.0)
    variance = torch.where(counted, deaths * share * (1.0 - share) * spread, 0.0).sum(dim=1)
    return o_minus_e, variance, e.sum(dim=1), valid.sum(dim=1)


def stratified_logrank(time, event, group, valid, strata=None):
    """:func:`logrank` summed over the strata (codes ``0 .. S-1``; ``None``: one)."""
    if strata is None:
        return logrank(time, event, group, valid)
    sums = None
    for s in range(int(strata.max()) + 1):
        here = valid & (strata == s)
        part = logrank(time, event & here, group, here)
        sums = part if sums is None else tuple(a + b for a, b in zip(sums, part, strict=True))
    return sums


def simulate_replicates(layout: Layout, replicates, seed: int, scenarios, device: str):
    """The per-replicate table of one chunk on a torch device (see the module's notes)."""
    return TorchEngine(layout, device).frame(np.asarray(replicates), seed, scenarios)


#: ``--device`` values: the CPU engine, or the torch engine on a device.
DEVICES = "cpu (the numpy engine), cuda, cuda:N, or torch-cpu (the torch engine on the CPU)"


def engine_device(text: str | None) -> str | None:
    """Check a ``--device`` value: ``None`` for the CPU (numpy) engine, else the device
    string of the torch engine."""
    if text in (None, "cpu", "numpy"):
        return None
    if text == "torch-cpu":
        return text
    if text == "cuda" or text.startswith("cuda:"):
        try:
            import torch
        except ImportError:
            raise DesignError(f"--device {text}: torch is not installed") from None
        if not torch.cuda.is_available():
            raise DesignError(
                f"--device {text}: no CUDA GPU is available to torch "
                f"(torch {torch.__version__}); run on the CPU (--device cpu)"
            )
        index = text.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise DesignError(
                f"--device {text}: there are {torch.cuda.device_count()} CUDA devices"
            )
        return text
    raise DesignError(f"--device {text}: expected {DEVICES}")


def block_size(device: str) -> int:
    """Replicates per block on this device (see :data:`BLOCK`)."""
    return BLOCK["cuda" if device.startswith("cuda") else "cpu"]


def torch_device(text: str):
    import torch

    return torch.device("cpu" if text == "torch-cpu" else text)
