"""Mixed-type tabular variational autoencoder (torch).

A β-VAE (Kingma and Welling 2014; Higgins et al. 2017) on patient tables whose columns
are continuous, integer, binary, categorical, a censored survival time with its event
indicator, and may have missing values: the per-column likelihood heads are those of
:mod:`generators.tabular_heads`. Training maximises the β-weighted evidence lower bound
with Adam, gradient clipping and early stopping on a validation split; generation
decodes draws of the standard-normal prior, and the survival outcome's latent event and
censoring times are calibrated to the Kaplan-Meier estimates of the training rows
(:func:`generators.tabular_heads.calibrate_survival`).

torch is imported only when a model is fitted or sampled, so that the generator is
registered (and saved models are recognised) without it.

References
----------
Kingma, D. P. and Welling, M. (2014). Auto-encoding variational Bayes. ICLR.
Higgins, I. et al. (2017). beta-VAE: learning basic visual concepts with a constrained
variational framework. ICLR.
Xu, L., Skoularidou, M., Cuesta-Infante, A. and Veeramachaneni, K. (2019). Modeling
tabular data using conditional GAN. NeurIPS 32 (TVAE).
Nazábal, A., Olmos, P. M., Ghahramani, Z. and Valera, I. (2020). Handling incomplete
heterogeneous data using VAEs. *Pattern Recognition* 107, 107501.
Prechelt, L. (1998). Early stopping -- but when? In *Neural Networks: Tricks of the
Trade*, Springer, 55-69.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from generators.base import DataRoles, Generator, register
from trials.exceptions import DataError

if TYPE_CHECKING:
    import torch

#: Rows needed per latent dimension, and at least this many rows in all.
ROWS_PER_LATENT_DIM = 4
MIN_ROWS = 20
#: Largest norm of the gradient of a mini-batch loss (larger ones are scaled down).
GRADIENT_CLIP = 10.0
#: Bounds of the log-variance of the encoder.
LOGVAR_BOUNDS = (-12.0, 6.0)
#: Rows decoded at once when sampling.
SAMPLE_BLOCK = 65_536
#: Latent codes drawn after fitting to estimate the marginal CDFs of the survival heads.
CALIBRATION_DRAWS = 4096
#: Version of the saved state: 2 adds the survival calibration (version 1 files load and
#: sample as before, uncalibrated).
STATE_VERSION = 2


@register("vae")
class TabularVAE(Generator):
    """Mixed-type tabular β-VAE with censored survival and missing-value heads.

    Parameters
    ----------
    columns : list of str, optional
        The columns to model, in order; by default all columns of the fitted data.
    time, event : str, optional
        A time-to-event column and its event indicator (1 event, 0 censored), modelled
        together under independent censoring. Give both or neither.
    categorical : list of str, optional
        Columns forced to a categorical head. By default categorical, object, string
        columns and integer columns with at most 10 distinct values are categorical,
        numeric 0/1 and boolean columns binary, other integer-valued columns integer and
        the rest continuous.
    latent_dim : int, default 8
        Dimension of the latent code.
    hidden : sequence of int, default (128, 128)
        Widths of the hidden layers of the encoder (the decoder mirrors them).
    beta : float, default 1.0
        Weight of the Kullback-Leibler term of the evidence lower bound (β-VAE; 1 is the
        ordinary VAE, smaller values reconstruct more closely and regularise less).
    epochs : int, default 300
        Most passes over the training rows.
    batch_size : int, default 64
        Rows per mini-batch.
    learning_rate : float, default 1e-3
        Adam's step size.
    validation_fraction : float, default 0.2
        Share of the rows held out to stop early: training stops when the validation loss
        has not improved for ``patience`` epochs, and the weights of its best epoch are
        kept. ``0`` trains on every row for ``epochs`` epochs.
    patience : int, default 30
        Epochs without improvement before stopping.
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
        Where to train and sample; ``"auto"`` takes a CUDA GPU when torch sees one.
    seed : int, default 0
        Root of every random stream of the fit (initial weights, validation split,
        mini-batch order, the noise of the reparameterisation, the codes of the survival
        calibration): children of ``numpy.random.SeedSequence(seed)`` seed
        ``torch.Generator`` objects on the device; torch's and numpy's global random
        states are never used.
    calibrate_survival : bool, default True
        Map the latent event and censoring times of generated patients onto the
        Kaplan-Meier estimate of the event-time distribution and the reverse
        Kaplan-Meier estimate of the censoring distribution of the training rows
        (quantile mapping, which keeps their ranks; see Notes). ``False``: the heads'
        own draws.

    Attributes
    ----------
    units_ : list of dict
        One description per modelled unit (column, or time and event together): its
        ``kind``, dtype, missing rate, and its quantile function on the normal-score
        grid or its categories (see :mod:`generators.tabular_heads`).
    weights_ : dict of str to ndarray
        The network's weights (float32).
    history_ : dict
        Per epoch, the mean training loss and the validation loss (negative β-ELBO per
        row).
    best_epoch_ : int
        The epoch whose weights were kept (1-based).
    notes_ : list of str
        Fallbacks taken while fitting (each was also warned).
    survival_calibration_ : dict or None
        With a survival pair and ``calibrate_survival``: the marginal CDFs (``event``,
        ``censor``) of the latent scores of the heads under the sampling distribution of
        the code, on :data:`generators.tabular_heads.CALIBRATION_GRID`; else None.

    Notes
    -----
    Modelling assumptions:

    * **Latent structure.** Patients are decoded from a low-dimensional Gaussian code;
      given the code the columns are independent, so all dependence between columns
      passes through the code. The decoder is a multilayer perceptron with SiLU
      activations.
    * **Heads.** Continuous and integer columns are Gaussian in the normal-score scale of
      their empirical quantile function with one learned standard deviation per column,
      dequantized for integers and ties; binary Bernoulli; categorical softmax over the
      observed levels; time and event a pair of Gaussian latent event and censoring
      times in the normal-score scale of the observed times (independent censoring
      given the code); see :mod:`generators.tabular_heads`. Generated values stay within
      the observed range (integers, times) or half a spacing beyond it (continuous).
    * **Missing values** are ignored in the likelihood of their column and modelled by a
      Bernoulli head per column with missing values, so they may depend on the other
      columns through the code (missing at random given the code).
    * **Generation** decodes draws of the standard-normal prior, as the ELBO assumes;
      where the aggregate posterior of the training codes leaves holes in the prior,
      generated patients can be atypical (:class:`generators.rhvae.RHVAE` samples the
      latent space along a learned metric instead). On the benchmark data sets the
      aggregate posterior is close to the prior (per-dimension variance 0.94-1.02 on
      GBSG2) and decoding draws of it (or of a Gaussian mixture fitted to the encoder
      means, Ghosh et al. 2020) did not bring the Kaplan-Meier curve closer.
    * **Survival calibration.** A Gaussian latent event time in the score scale cannot
      hold the plateau of a Kaplan-Meier curve (patients event-free at the end of
      follow-up): the heads learn wide event-time distributions (on GBSG2 a mean
      standard deviation of 1.4 score units, where the observed times span a standard
      normal), which flatten the relation between the observed time and the event
      indicator (27% events among the latest fifth of generated times against 16% in
      the data; Kaplan-Meier curves 0.065 apart at the deciles). Decoding the training
      codes shows the same, so the heads, not the prior, are at fault. After training,
      ``CALIBRATION_DRAWS`` codes of the sampling distribution give the marginal CDFs
      of the heads' latent event and censoring times, and every generated pair is
      mapped through them onto the Kaplan-Meier and reverse Kaplan-Meier CDFs of the
      training rows (quantile mapping;
      :func:`generators.tabular_heads.calibrate_survival`). Ranks, hence the relations
      with the covariates, are the model's; the marginals are the nonparametric
      estimates. Were the mapped event and censoring times independent, the generated
      Kaplan-Meier curve and event rate would be the training rows'; they are
      independent only given the code, so the match is approximate (about 0.02 at the
      deciles on GBSG2 and Rossi). Event times beyond the last observed event are
      beyond follow-up: generated patients are never observed past the training
      follow-up. The model file holds the two Kaplan-Meier curves on the 401-point
      score grid, the information of a published Kaplan-Meier plot.
    * **Small data.** With a few hundred rows the network is the dominant source of
      error: early stopping, the β weight and the width are the levers. The
      validation rows are not used for gradients.
    * **Reproducibility.** With the same ``seed`` fits are identical on the CPU; on a
      GPU deterministic algorithms are requested during fit and sample (set
      ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` before CUDA starts for bitwise repeatable
      runs). Random streams differ between CPU and CUDA, so the same seed gives other
      (equally valid) patients on another device type.

    References
    ----------
    Kingma and Welling (2014); Higgins et al. (2017); Xu et al. (2019); Nazábal et al.
    (2020); Prechelt (1998) -- see the module docstring.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> data = pd.DataFrame({"age": rng.normal(60, 8, 200),
    ...                      "sex": rng.choice(["F", "M"], 200)})
    >>> vae = TabularVAE(epochs=5, device="cpu").fit(data)
    >>> virtual = vae.sample(100, rng=2)
    >>> list(virtual.columns), str(virtual["sex"].dtype)
    (['age', 'sex'], 'object')
    """

    #: Whether the loss needs gradients with respect to the latent code even when the
    #: weights are not being trained (validation).
    _loss_needs_gradients: ClassVar[bool] = False

    def __init__(
        self,
        columns: list[str] | None = None,
        *,
        time: str | None = None,
        event: str | None = None,
        categorical: list[str] | None = None,
        latent_dim: int = 8,
        hidden: tuple[int, ...] | list[int] = (128, 128),
        beta: float = 1.0,
        epochs: int = 300,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.2,
        patience: int = 30,
        device: str = "auto",
        seed: int = 0,
        calibrate_survival: bool = True,
    ):
        self.columns = columns
        self.time = time
        self.event = event
        self.categorical = categorical
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.beta = beta
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.seed = seed
        self.calibrate_survival = calibrate_survival

    @classmethod
    def for_data(cls, roles: DataRoles, *, seed: int = 0) -> TabularVAE:
        """Every column but the identifier; the time and event columns as the survival
        pair when the dictionary names both."""
        pair = roles.time is not None and roles.event is not None
        return cls(
            columns=[c for c in roles.columns if c != roles.id],
            time=roles.time if pair else None,
            event=roles.event if pair else None,
            seed=seed,
        )

    # -- fitting -------------------------------------------------------------------------

    def fit(self, data: pd.DataFrame) -> TabularVAE:
        """Train the autoencoder on patient-level data.

        Parameters
        ----------
        data : DataFrame
            One row per patient; missing values allowed.

        Returns
        -------
        self

        Raises
        ------
        DataError
            A requested column is absent, a column has no observed value or an
            unsupported dtype, invalid times or events, or too few rows for
            ``latent_dim``.
        ValueError
            An invalid setting, or ``device="cuda"`` without a GPU.
        FloatingPointError
            The loss became non-finite (lower ``learning_rate``).
        """
        import torch

        from generators import tabular_heads as th

        self._check_settings()
        frame = self._select(data)
        device = th.resolve_device(self.device)
        units = th.infer_schema(
            frame, time=self.time, event=self.event, categorical=self.categorical
        )
        notes = [u["note"] for u in units if "note" in u]
        layout = th.Layout.of(units)
        seeds = np.random.SeedSequence(self.seed).spawn(6)
        n = len(frame)
        order = np.random.default_rng(seeds[2]).permutation(n)
        n_validation = int(round(self.validation_fraction * n))
        previous = self.__dict__.get("_layout")
        self._layout = layout  # read by the loss
        try:
            with th.deterministic(device):
                data_t = th.to_tensors(th.encode(frame, units), device)
                net = self._build(layout, device, th.torch_generator(seeds[0], device))
                rows = torch.as_tensor(np.sort(order[n_validation:]), device=device)
                held = torch.as_tensor(np.sort(order[:n_validation]), device=device)
                history, best_epoch = self._train(net, data_t, rows, held, seeds, device)
                self._finish(net, data_t, device)
                calibration = self._calibrate(net, seeds[5], device)
        except BaseException:  # a failed refit leaves the previous fit usable
            self._layout = previous
            raise
        self.units_ = units
        self._remember(frame)
        self.weights_ = th.weights_to_numpy(net)
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.notes_ = notes
        self.survival_calibration_ = calibration
        self._networks = {str(device): net}
        return self

    def _check_settings(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

        for name in ("latent_dim", "epochs", "batch_size", "patience"):
            positive_int(name)
        hidden = self.hidden
        if (
            not isinstance(hidden, list | tuple)
            or not hidden
            or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden)
        ):
            raise ValueError(
                f"hidden must be a non-empty list of positive integers, got {hidden!r}"
            )
        for name in ("beta", "learning_rate"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        fraction = self.validation_fraction
        if not (isinstance(fraction, int | float) and 0 <= fraction < 0.5):
            raise ValueError(f"validation_fraction must be in [0, 0.5), got {fraction!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.calibrate_survival, bool):
            raise ValueError(
                f"calibrate_survival must be True or False, got {self.calibrate_survival!r}"
            )
        if (self.time is None) != (self.event is None):
            raise ValueError("give both time and event, or neither")

    def _select(self, data: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(data, pd.DataFrame):
            raise DataError(f"fit expects a pandas DataFrame, got {type(data).__name__}")
        bad = [c for c in data.columns if not isinstance(c, str)]
        if bad:
            raise DataError(f"column names must be strings, got {bad!r}")
        if self.columns is not None:
            absent = [c for c in self.columns if c not in data.columns]
            if absent:
                raise DataError(f"columns not in the data: {', '.join(map(repr, absent))}")
            data = data[list(self.columns)]
        for role in ("time", "event"):
            name = getattr(self, role)
            if name is not None and name not in data.columns:
                raise DataError(f"the {role} column {name!r} is not among the modelled columns")
        if data.shape[1] == 0:
            raise DataError("the data have no columns to model")
        need = max(MIN_ROWS, ROWS_PER_LATENT_DIM * self.latent_dim)
        if len(data) < need:
            raise DataError(
                f"{len(data)} rows are too few to fit a {self.kind} generator with "
                f"latent_dim={self.latent_dim}: at least {need} rows are needed "
                f"({ROWS_PER_LATENT_DIM} per latent dimension, {MIN_ROWS} at least); "
                "lower latent_dim or use the copula generator"
            )
        return data

    def _build(self, layout: Any, device: torch.device, generator: torch.Generator) -> Any:
        """The encoder, the decoder and the per-column standard deviations."""
        import torch
        from torch import nn

        from generators import tabular_heads as th

        hidden = [int(h) for h in self.hidden]
        net = nn.Module()
        net.encoder = th.mlp([layout.input_width, *hidden, 2 * self.latent_dim], device, generator)
        net.decoder = th.mlp(
            [self.latent_dim, *reversed(hidden), layout.output_width], device, generator
        )
        net.log_sigma = nn.Parameter(
            torch.full((len(layout.numeric),), math.log(0.3), device=device, dtype=th.DTYPE)
        )
        return net

    def _encode(self, net: Any, x_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = net.encoder(x_in).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_BOUNDS)

    def _loss(
        self, net: Any, batch: dict[str, torch.Tensor], generator: torch.Generator
    ) -> torch.Tensor:
        """Per-row negative β-ELBO: ``-(E_q log p(x|z) - beta * KL(q(z|x) || N(0, I)))``
        with one reparameterised draw of ``z``."""
        import torch

        from generators import tabular_heads as th

        mu, logvar = self._encode(net, th.encoder_input(batch, self._layout))
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * noise
        loglik = th.log_likelihood(net.decoder(z), batch, self._layout, net.log_sigma)
        kl = 0.5 * (mu**2 + torch.exp(logvar) - logvar - 1).sum(1)
        return -(loglik - self.beta * kl)

    def _train(
        self,
        net: Any,
        data: dict[str, torch.Tensor],
        rows: torch.Tensor,
        held: torch.Tensor,
        seeds: list[np.random.SeedSequence],
        device: torch.device,
    ) -> tuple[dict[str, list[float]], int]:
        import torch

        from generators import tabular_heads as th

        optimizer = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        noise = th.torch_generator(seeds[1], device)
        shuffle = th.torch_generator(seeds[3], device)
        held_batch = th.take(data, held) if len(held) else None
        history: dict[str, list[float]] = {"train": [], "validation": []}
        best, best_epoch, best_state, stale = math.inf, 0, None, 0
        n_rows = len(rows)
        for epoch in range(1, self.epochs + 1):
            net.train()
            order = rows[torch.randperm(n_rows, generator=shuffle, device=device)]
            total = 0.0
            for start in range(0, n_rows, self.batch_size):
                batch = th.dequantize(
                    th.take(data, order[start : start + self.batch_size]), self._layout, noise
                )
                loss = self._loss(net, batch, noise).mean()
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"the {self.kind} training loss became {loss.item()} at epoch {epoch}; "
                        "lower learning_rate (or beta) and refit"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), GRADIENT_CLIP)
                optimizer.step()
                total += loss.item() * min(self.batch_size, n_rows - start)
            history["train"].append(total / n_rows)
            if held_batch is None:
                monitored = history["train"][-1]
            else:
                monitored = self._validation_loss(net, held_batch, seeds[4], device)
                history["validation"].append(monitored)
            if not math.isfinite(monitored):
                raise FloatingPointError(
                    f"the {self.kind} validation loss became {monitored} at epoch {epoch}; "
                    "lower learning_rate (or beta) and refit"
                )
            if monitored < best:
                best, best_epoch, stale = monitored, epoch, 0
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if held_batch is not None and stale >= self.patience:
                    break
        net.load_state_dict(best_state)
        net.eval()
        return history, best_epoch

    def _validation_loss(
        self,
        net: Any,
        batch: dict[str, torch.Tensor],
        seed: np.random.SeedSequence,
        device: torch.device,
    ) -> float:
        """The loss of the validation rows with the same noise at every epoch."""
        import torch

        from generators import tabular_heads as th

        net.eval()
        generator = th.torch_generator(seed, device)
        context = contextlib.nullcontext() if self._loss_needs_gradients else torch.no_grad()
        with context:
            loss = self._loss(net, th.dequantize(batch, self._layout, generator), generator)
        return float(loss.mean().item())

    def _finish(self, net: Any, data: dict[str, torch.Tensor], device: torch.device) -> None:
        """Learn what sampling needs beyond the weights (nothing for the VAE)."""

    def _calibrate(
        self, net: Any, seed: np.random.SeedSequence, device: torch.device
    ) -> dict[str, np.ndarray] | None:
        """The marginal CDFs of the survival heads' latent times under the sampling
        distribution of the code (``CALIBRATION_DRAWS`` codes), or None without a
        survival unit or with ``calibrate_survival=False``."""
        import torch

        from generators import tabular_heads as th

        if self._layout.survival is None or not self.calibrate_survival:
            return None
        generator = th.torch_generator(seed, device)
        z = self._sample_latent(net, CALIBRATION_DRAWS, generator, device)
        if not bool(torch.isfinite(z).all()):
            raise FloatingPointError(
                f"the {self.kind} latent sampler produced non-finite codes; lower "
                "learning_rate and refit"
            )
        with torch.no_grad():
            cdfs = th.marginal_cdfs(net.decoder(z), self._layout)
        if not all(np.all(np.isfinite(v)) for v in cdfs.values()):
            raise FloatingPointError(
                f"the fitted {self.kind} has non-finite survival heads; lower learning_rate "
                "and refit"
            )
        return cdfs

    # -- sampling ------------------------------------------------------------------------

    def sample(self, n_patients: int, rng: int | np.random.Generator | None = None) -> pd.DataFrame:
        """Draw virtual patients.

        Parameters
        ----------
        n_patients : int
            Number of rows.
        rng : int or numpy.random.Generator, optional
            Seed or generator; one integer drawn from it seeds a ``torch.Generator`` on the
            device, which makes every draw of the call.

        Returns
        -------
        DataFrame
            The modelled columns in their training order and dtypes (categorical columns
            with their categories; only observed levels are generated).

        Raises
        ------
        DataError
            If the generator is not fitted.
        FloatingPointError
            If the model produces non-finite values.
        """
        import torch

        from generators import tabular_heads as th

        self._check_fitted()
        n = _check_count(n_patients)
        rng = np.random.default_rng(rng)
        device = th.resolve_device(self.device)
        generator = th.torch_generator(int(rng.integers(2**63 - 1)), device)
        net = self._network(device)
        with th.deterministic(device):
            z = self._sample_latent(net, n, generator, device)
            if not bool(torch.isfinite(z).all()):
                raise FloatingPointError(
                    f"the {self.kind} latent sampler produced non-finite codes; the fitted "
                    "model is unusable (refit with a smaller learning_rate)"
                )
            parts = []
            with torch.no_grad():
                for start in range(0, max(n, 1), SAMPLE_BLOCK):
                    out = net.decoder(z[start : start + SAMPLE_BLOCK])
                    parts.append(th.draw(out, self._layout, net.log_sigma, generator))
        draws = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        calibration = self.__dict__.get("survival_calibration_")
        if calibration is not None:
            unit = self.units_[self._layout.survival]
            draws = th.calibrate_survival(draws, unit, calibration)
        return th.decode(draws, self.units_, self.columns_)

    def _sample_latent(
        self, net: Any, n: int, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        """Latent codes to decode: draws of the standard-normal prior."""
        import torch

        from generators import tabular_heads as th

        return torch.randn((n, self.latent_dim), generator=generator, device=device, dtype=th.DTYPE)

    def _network(self, device: torch.device) -> Any:
        """The fitted network on ``device`` (built from ``weights_`` once per device)."""
        from generators import tabular_heads as th

        networks = self.__dict__.setdefault("_networks", {})
        key = str(device)
        if key not in networks:
            net = self._build(self._layout, device, th.torch_generator(0, device))
            th.weights_from_numpy(net, self.weights_)
            net.eval()
            networks[key] = net
        return networks[key]

    # -- state ---------------------------------------------------------------------------

    def _get_state(self) -> dict[str, Any]:
        return {
            "state_version": STATE_VERSION,
            "units": self.units_,
            "weights": self.weights_,
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "notes": self.notes_,
            "survival_calibration": self.survival_calibration_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        from generators.tabular_heads import Layout

        version = state.get("state_version", 1)
        if version not in (1, STATE_VERSION):
            raise DataError(
                f"saved {self.kind} state version {version!r} is not supported (this version "
                f"reads 1 and {STATE_VERSION})"
            )
        self.units_ = [dict(u) for u in state["units"]]
        self.weights_ = {k: np.asarray(v, dtype=np.float32) for k, v in state["weights"].items()}
        self.history_ = {k: [float(x) for x in v] for k, v in state["history"].items()}
        self.best_epoch_ = int(state["best_epoch"])
        self.notes_ = list(state["notes"])
        calibration = state.get("survival_calibration")  # absent from version 1 files
        self.survival_calibration_ = (
            None
            if calibration is None
            else {k: np.asarray(v, dtype=float) for k, v in calibration.items()}
        )
        self._layout = Layout.of(self.units_)
        if self.survival_calibration_ is not None:
            unit = self.units_[self._layout.survival] if self._layout.survival is not None else {}
            if "event_cdf" not in unit or "censor_cdf" not in unit:
                raise DataError("saved survival calibration without its Kaplan-Meier targets")
        self._networks = {}


def _check_count(n_patients: int) -> int:
    if isinstance(n_patients, bool) or not isinstance(n_patients, int | np.integer):
        raise ValueError(f"n_patients must be an integer, got {n_patients!r}")
    if n_patients < 0:
        raise ValueError(f"n_patients must be non-negative, got {n_patients}")
    return int(n_patients)


__all__ = ["TabularVAE"]
