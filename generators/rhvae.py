"""Riemannian Hamiltonian VAE with geometry-aware sampling (torch).

The mixed-type tabular autoencoder of :mod:`generators.vae` with a learned Riemannian
metric on its latent space (Chadebec, Mantoux and Allassonnière 2020; Chadebec,
Thibeau-Sutre, Burgos and Allassonnière 2022):

* the **metric** is a smooth mixture of local metric tensors at the latent centroids
  ``c_i`` (encoder means) of the training patients,
  ``G^-1(z) = sum_i L_i L_i^T exp(-|z - c_i|^2 / T^2) + lambda I``, with ``L_i`` lower
  triangular, output by a network of patient ``i``'s data (positive diagonal);
* **training** refines each encoder draw ``z_0`` by ``K`` steps of the generalized
  (implicit) leapfrog integrator of the Riemannian Hamiltonian
  ``H(z, rho) = -log p(x|z) - log p(z) + 1/2 log((2 pi)^d det G(z)) +
  1/2 rho^T G^-1(z) rho`` with quadratic tempering of the momentum (Caterini, Doucet and
  Sejdinovic 2018), and maximises the resulting evidence lower bound;
* **generation** samples the latent space from the distribution with density
  proportional to ``sqrt(det G^-1(z))`` -- the inverse of the Riemannian volume element
  of the learned metric, high where the training codes are -- restricted to a box around
  them, by Hamiltonian Monte Carlo run on all chains at once (one tensor), then decodes.

References
----------
Chadebec, C., Mantoux, C. and Allassonnière, S. (2020). Geometry-aware Hamiltonian
variational auto-encoder. arXiv:2010.11518.
Chadebec, C., Thibeau-Sutre, E., Burgos, N. and Allassonnière, S. (2022). Data
augmentation in high dimensional low sample size setting using a geometry-based
variational autoencoder. *IEEE TPAMI* 45(3), 2879-2896.
Chadebec, C. and Allassonnière, S. (2022). A geometric perspective on variational
autoencoders. NeurIPS 35.
Caterini, A. L., Doucet, A. and Sejdinovic, D. (2018). Hamiltonian variational
auto-encoder. NeurIPS 31.
Girolami, M. and Calderhead, B. (2011). Riemann manifold Langevin and Hamiltonian
Monte Carlo methods. *JRSS B* 73(2), 123-214 (the generalized leapfrog, eq. 16-18).
Neal, R. M. (2011). MCMC using Hamiltonian dynamics. In *Handbook of Markov Chain Monte
Carlo*, ch. 5, Chapman & Hall.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from generators.base import register
from generators.vae import TabularVAE
from trials.exceptions import DataError

if TYPE_CHECKING:
    import torch

#: Bound of the log-diagonal and of the off-diagonal entries of the metric factors.
FACTOR_BOUND = 4.0
#: Target acceptance rate of the step-size adaptation of the sampler.
TARGET_ACCEPTANCE = 0.65


@register("rhvae")
class RHVAE(TabularVAE):
    """Riemannian Hamiltonian VAE for mixed-type patient tables, with geometry-aware
    sampling of the latent space.

    Parameters
    ----------
    columns, time, event, categorical, hidden, beta, epochs, batch_size, \
learning_rate, validation_fraction, patience, device, seed, calibrate_survival
        As in :class:`generators.vae.TabularVAE`. ``beta`` weighs the latent part of the
        bound (all terms but ``log p(x|z_K)``); the survival calibration uses the
        marginal CDFs of the heads under the geometry-aware sampler of the code.
    latent_dim : int, default 4
        Dimension of the latent code. Smaller than the VAE's default: the sampling
        density behaves like a kernel estimate of the codes raised to the power
        ``latent_dim / 2`` (see Notes), and its cost grows as ``latent_dim ** 2``.
    n_leapfrog : int, default 3
        Leapfrog steps ``K`` of the Hamiltonian flow in training.
    leapfrog_step : float, default 0.05
        Step size of the training flow.
    beta_zero : float, default 0.3
        Initial inverse temperature ``beta_0`` of the momentum, in (0, 1]: the momentum
        starts as ``N(0, G(z_0) / beta_0)`` and is cooled to ``beta_K = 1`` by the
        quadratic schedule ``1 / sqrt(beta_k) = 1 / sqrt(beta_0) + (1 - 1 /
        sqrt(beta_0)) (k / K)^2``.
    temperature : float, default 1.5
        Width ``T`` of the kernels of the metric.
    metric_regularization : float, default 0.001
        ``lambda``: the inverse metric is at least ``lambda I``, which keeps it invertible
        and bounds the metric by ``I / lambda``.
    n_fixed_point : int, default 3
        Fixed-point iterations solving each implicit equation of the generalized leapfrog.
    mcmc_chains : int, default 1000
        Most chains of the latent sampler, run together in one tensor: ``n_patients``
        codes come from ``min(n_patients, mcmc_chains)`` chains, each contributing
        ``ceil(n_patients / n_chains)`` states.
    mcmc_warmup : int, default 20
        Sampler iterations that adapt the step size (discarded).
    mcmc_thin : int, default 5
        Sampler iterations between two kept states of a chain.
    mcmc_leapfrog : int, default 10
        Leapfrog steps per sampler iteration.

    Attributes
    ----------
    units_, weights_, history_, best_epoch_, notes_, survival_calibration_
        As in :class:`generators.vae.TabularVAE`.
    centroids_ : ndarray of shape (n_rows, latent_dim)
        Encoder means of the training patients (float32).
    metric_factors_ : ndarray of shape (n_rows, latent_dim, latent_dim)
        The lower-triangular factors ``L_i`` of the metric at the centroids (float32).

    Notes
    -----
    Modelling assumptions, beyond those of :class:`generators.vae.TabularVAE`:

    * **Geometry.** The metric is learned, not derived from the decoder; it is a
      kernel smoother of local tensors at the training codes, so it carries no
      information beyond them. Its inverse volume element is high where the training
      codes are dense and flat (``lambda^(d/2)``) far from them. With small leapfrog
      steps the bound constrains the local tensors only weakly, so their scale relative
      to ``lambda`` is loosely determined: when ``L_i L_i^T`` dominates ``lambda`` the
      sampling density is close to ``(sum_i w_i(z))^(d/2)``, which concentrates in the
      densest region as ``d`` grows; when ``lambda`` dominates it is flat on the box.
      The defaults (``d = 4``, ``lambda = 1e-3``, step 0.05) were chosen so that the
      spread of the sampled codes matches the spread of the centroids on the benchmark
      data sets (bench/bench_deep.py); check ``sample_latent`` on other data.
    * **Sampling target.** Patients are generated from latent codes distributed with
      density proportional to ``sqrt(det G^-1(z))`` on the box spanned by the centroids
      widened by ``T`` in each direction (the density is not integrable on the whole
      space). This is the generation scheme of Chadebec et al. (2022, TPAMI; the
      "inverse of the metric volume element"): it follows the training codes rather than
      the prior, which helps with few patients, and it does not reproduce the prior.
      The box restriction is this implementation's way of making the target proper.
    * **Sampler.** Euclidean HMC (identity mass, Neal 2011) on the log-density
      ``1/2 log det G^-1(z)``, with its gradient in closed form; chains start at
      centroids drawn at random, the step size (jittered by ±20% per chain and
      iteration) is adapted during the warm-up to an acceptance rate of 0.65, then each
      chain contributes a state every ``mcmc_thin`` iterations. Proposals leaving the
      box are rejected.
    * **Numerical safeguards.** The metric factors are bounded (log-diagonal and
      off-diagonal entries in ``(-4, 4)`` through ``4 tanh(./4)``), ``lambda`` keeps the
      inverse metric positive definite, gradients are clipped, and a non-finite loss or
      latent code stops with :class:`FloatingPointError` rather than producing rows.
    * **Privacy.** The model file holds one latent centroid per training patient;
      decoding a centroid gives an approximation of that patient, so treat the file as
      patient-level data.

    The Riemannian uniform distribution of Chadebec and Allassonnière (2022, NeurIPS),
    ``sqrt(det G(z))`` for a metric ``G`` that is *large* near the codes, is the same
    construction with the metric written the other way round: here ``G^-1`` is large
    near the codes, so the density is ``sqrt(det G^-1)``.

    References
    ----------
    Chadebec, Mantoux and Allassonnière (2020); Chadebec, Thibeau-Sutre, Burgos and
    Allassonnière (2022, TPAMI); Chadebec and Allassonnière (2022, NeurIPS); Caterini,
    Doucet and Sejdinovic (2018); Girolami and Calderhead (2011); Neal (2011) -- see the
    module docstring.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> data = pd.DataFrame({"age": rng.normal(60, 8, 200),
    ...                      "sex": rng.choice(["F", "M"], 200)})
    >>> model = RHVAE(epochs=3, latent_dim=2, device="cpu").fit(data)
    >>> virtual = model.sample(100, rng=2)
    >>> virtual.shape
    (100, 2)
    """

    _loss_needs_gradients: ClassVar[bool] = True

    def __init__(
        self,
        columns: list[str] | None = None,
        *,
        time: str | None = None,
        event: str | None = None,
        categorical: list[str] | None = None,
        latent_dim: int = 4,
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
        n_leapfrog: int = 3,
        leapfrog_step: float = 0.05,
        beta_zero: float = 0.3,
        temperature: float = 1.5,
        metric_regularization: float = 1e-3,
        n_fixed_point: int = 3,
        mcmc_chains: int = 1000,
        mcmc_warmup: int = 20,
        mcmc_thin: int = 5,
        mcmc_leapfrog: int = 10,
    ):
        super().__init__(
            columns,
            time=time,
            event=event,
            categorical=categorical,
            latent_dim=latent_dim,
            hidden=hidden,
            beta=beta,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            validation_fraction=validation_fraction,
            patience=patience,
            device=device,
            seed=seed,
            calibrate_survival=calibrate_survival,
        )
        self.n_leapfrog = n_leapfrog
        self.leapfrog_step = leapfrog_step
        self.beta_zero = beta_zero
        self.temperature = temperature
        self.metric_regularization = metric_regularization
        self.n_fixed_point = n_fixed_point
        self.mcmc_chains = mcmc_chains
        self.mcmc_warmup = mcmc_warmup
        self.mcmc_thin = mcmc_thin
        self.mcmc_leapfrog = mcmc_leapfrog

    def _check_settings(self) -> None:
        super()._check_settings()
        for name in ("n_leapfrog", "n_fixed_point", "mcmc_chains", "mcmc_thin", "mcmc_leapfrog"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.mcmc_warmup, bool) or not isinstance(self.mcmc_warmup, int):
            raise ValueError(
                f"mcmc_warmup must be a non-negative integer, got {self.mcmc_warmup!r}"
            )
        if self.mcmc_warmup < 0:
            raise ValueError(
                f"mcmc_warmup must be a non-negative integer, got {self.mcmc_warmup!r}"
            )
        for name in ("leapfrog_step", "temperature", "metric_regularization"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (isinstance(self.beta_zero, int | float) and 0 < self.beta_zero <= 1):
            raise ValueError(f"beta_zero must be in (0, 1], got {self.beta_zero!r}")

    # -- the network and the loss ----------------------------------------------------------

    def _build(self, layout: Any, device: torch.device, generator: torch.Generator) -> Any:
        from generators import tabular_heads as th

        net = super()._build(layout, device, generator)
        d = self.latent_dim
        net.metric = th.mlp(
            [layout.input_width, int(self.hidden[0]), d * (d + 1) // 2], device, generator
        )
        return net

    def _factors(self, net: Any, x_in: torch.Tensor) -> torch.Tensor:
        return lower_triangular(net.metric(x_in), self.latent_dim)

    def _loss(
        self, net: Any, batch: dict[str, torch.Tensor], generator: torch.Generator
    ) -> torch.Tensor:
        """Per-row negative β-ELBO of the tempered Riemannian Hamiltonian flow.

        With ``z_0 = mu + sigma * eps``, ``rho_0 = C^-T gamma / sqrt(beta_0)`` (``C C^T =
        G^-1(z_0)``, so ``rho_0 ~ N(0, G(z_0) / beta_0)``) and ``(z_K, rho_K)`` the
        tempered leapfrog flow, the bound is ``log p(x|z_K) + beta * [log N(z_K; 0, I) +
        log N(rho_K; 0, G(z_K)) - log q(z_0|x) - log N(rho_0; 0, G(z_0) / beta_0) -
        (d/2) log beta_0]``: the flow preserves volume and the tempering scales the momentum
        by ``sqrt(beta_0)`` in all (the last term is its Jacobian). The constants
        ``(d/2) log 2 pi`` cancel, and ``log N(rho_0; ...) + (d/2) log beta_0 =
        -(d/2) log 2 pi + 1/2 log det G^-1(z_0) - |gamma|^2 / 2``.
        """
        import torch

        from generators import tabular_heads as th

        x_in = th.encoder_input(batch, self._layout)
        mu, logvar = self._encode(net, x_in)
        factors = self._factors(net, x_in)
        metric = Metric(mu, factors @ factors.mT, self.temperature, self.metric_regularization)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        gamma = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        start = metric.at(z)
        rho = start.momentum_from(gamma) / math.sqrt(self.beta_zero)
        create_graph = net.training

        def grad_potential(position: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self._potential_gradient(net, batch, position, create_graph)

        grad_u, loglik = grad_potential(z)
        sqrt_beta = math.sqrt(self.beta_zero)
        end = start
        for k in range(1, self.n_leapfrog + 1):
            end, rho, grad_u, loglik = generalized_leapfrog(
                end, rho, grad_u, grad_potential, self.leapfrog_step, self.n_fixed_point
            )
            next_sqrt_beta = tempering(k, self.n_leapfrog, self.beta_zero)
            rho = rho * (sqrt_beta / next_sqrt_beta)
            sqrt_beta = next_sqrt_beta
        z = end.z
        latent = (
            -0.5 * (z**2).sum(1)  # log N(z_K; 0, I) + (d/2) log 2 pi
            + 0.5 * end.log_det - 0.5 * end.quadratic(rho)  # log N(rho_K; 0, G(z_K)) + ...
            + 0.5 * (eps**2).sum(1) + 0.5 * logvar.sum(1)  # - log q(z_0|x) - ...
            - 0.5 * start.log_det + 0.5 * (gamma**2).sum(1)  # - log q(rho_0|z_0) - ...
        )  # fmt: skip
        return -(loglik + self.beta * latent)

    def _potential_gradient(
        self,
        net: Any,
        batch: dict[str, torch.Tensor],
        z: torch.Tensor,
        create_graph: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``grad U(z)`` for ``U(z) = -log p(x|z) - log N(z; 0, I)``, and ``log p(x|z)``."""
        import torch

        from generators import tabular_heads as th

        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            loglik = th.log_likelihood(net.decoder(z), batch, self._layout, net.log_sigma)
            potential = -loglik.sum() + 0.5 * (z**2).sum()
            (grad,) = torch.autograd.grad(potential, z, create_graph=create_graph)
        return grad, loglik

    def _finish(self, net: Any, data: dict[str, torch.Tensor], device: torch.device) -> None:
        """The metric of every fitted patient: centroids and factors at the midpoints of
        the dequantization intervals."""
        import torch

        from generators import tabular_heads as th

        batch = th.dequantize(data, self._layout, None)
        with torch.no_grad():
            x_in = th.encoder_input(batch, self._layout)
            mu, _ = self._encode(net, x_in)
            factors = self._factors(net, x_in)
        if not (bool(torch.isfinite(mu).all()) and bool(torch.isfinite(factors).all())):
            raise FloatingPointError(
                "the fitted rhvae has non-finite latent centroids or metric factors; "
                "lower learning_rate and refit"
            )
        self.centroids_ = mu.cpu().numpy().copy()
        self.metric_factors_ = factors.cpu().numpy().copy()

    # -- sampling --------------------------------------------------------------------------

    def _sample_latent(
        self, net: Any, n: int, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        """Codes from the density proportional to ``sqrt(det G^-1(z))`` on the box (HMC)."""
        from generators import tabular_heads as th

        z, _ = self._latent_draws(n, generator, device)
        return z.to(th.DTYPE)

    def sample_latent(
        self,
        n: int,
        generator: torch.Generator,
        device: torch.device | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Latent codes from the geometry-aware distribution, and the sampler's
        diagnostics (see :func:`hmc`).

        Parameters
        ----------
        n : int
            Number of codes.
        generator : torch.Generator
            Random stream, on ``device``.
        device : torch.device, optional
            By default the generator's device.
        """
        self._check_fitted()
        return self._latent_draws(n, generator, generator.device if device is None else device)

    def _latent_draws(
        self, n: int, generator: torch.Generator, device: torch.device
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """:meth:`sample_latent` once the centroids and factors are known (also during
        the fit, for the survival calibration)."""
        import torch

        centroids = torch.as_tensor(self.centroids_, device=device)
        factors = torch.as_tensor(self.metric_factors_, device=device)
        metric = Metric(
            centroids, factors @ factors.mT, self.temperature, self.metric_regularization
        )
        lower = centroids.min(0).values - self.temperature
        upper = centroids.max(0).values + self.temperature
        if n == 0:
            return torch.zeros((0, self.latent_dim), device=device), {
                "acceptance_rate": math.nan,
                "step_size": math.nan,
                "n_rejected_nonfinite": 0,
            }
        n_chains = min(n, self.mcmc_chains)
        n_draws = -(-n // n_chains)
        pick = torch.randint(len(centroids), (n_chains,), generator=generator, device=device)
        draws, info = hmc(
            metric.log_density,
            centroids[pick],
            lower,
            upper,
            generator,
            n_warmup=self.mcmc_warmup,
            n_draws=n_draws,
            thin=self.mcmc_thin,
            n_leapfrog=self.mcmc_leapfrog,
            step_size=0.2 * self.temperature,
        )
        return draws.reshape(-1, self.latent_dim)[:n], info

    # -- state -----------------------------------------------------------------------------

    def _get_state(self) -> dict[str, Any]:
        return {
            **super()._get_state(),
            "centroids": self.centroids_,
            "metric_factors": self.metric_factors_,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        self.centroids_ = np.asarray(state["centroids"], dtype=np.float32)
        self.metric_factors_ = np.asarray(state["metric_factors"], dtype=np.float32)
        d = self.latent_dim
        if self.centroids_.ndim != 2 or self.centroids_.shape[1] != d:
            raise DataError(
                f"saved centroids have shape {self.centroids_.shape}, expected (n, {d})"
            )


# -- the metric ------------------------------------------------------------------------------


def lower_triangular(raw: torch.Tensor, d: int) -> torch.Tensor:
    """Lower-triangular factors from ``d (d + 1) / 2`` outputs per row: the first ``d``
    give the log-diagonal, the rest the entries below it, each bounded by
    ``FACTOR_BOUND * tanh(. / FACTOR_BOUND)``."""
    import torch

    bounded = FACTOR_BOUND * torch.tanh(raw / FACTOR_BOUND)
    factors = torch.diag_embed(torch.exp(bounded[:, :d]))
    if d > 1:
        rows, cols = torch.tril_indices(d, d, offset=-1, device=raw.device)
        below = torch.zeros_like(factors)
        below[:, rows, cols] = bounded[:, d:]
        factors = factors + below
    return factors


class Metric:
    """``G^-1(z) = sum_i M_i exp(-|z - c_i|^2 / T^2) + lambda I`` for symmetric positive
    semi-definite ``M_i`` (``L_i L_i^T``) at centroids ``c_i``.

    Parameters
    ----------
    centroids : Tensor of shape (n, d)
    matrices : Tensor of shape (n, d, d)
    temperature : float
        ``T``.
    regularization : float
        ``lambda``.
    """

    def __init__(
        self,
        centroids: torch.Tensor,
        matrices: torch.Tensor,
        temperature: float,
        regularization: float,
    ):
        import torch

        self.centroids = centroids
        self.squared_norms = (centroids**2).sum(1)
        self.flat = matrices.flatten(1)  # (n, d*d)
        self.d = centroids.shape[1]
        self.temperature = float(temperature)
        self.regularization = float(regularization)
        eye = torch.eye(self.d, dtype=centroids.dtype, device=centroids.device)
        self.floor = (self.regularization * eye).flatten()

    def at(self, z: torch.Tensor) -> MetricAt:
        """The metric's quantities at the rows of ``z``."""
        return MetricAt(self, z)

    def weights(self, z: torch.Tensor) -> torch.Tensor:
        """Kernel weights ``exp(-|z - c_i|^2 / T^2)``, shape (m, n)."""
        import torch

        base = (z**2).sum(1, keepdim=True) + self.squared_norms
        squared = torch.addmm(base, z, self.centroids.T, alpha=-2.0).clamp(min=0.0)
        return torch.exp(squared * (-1.0 / self.temperature**2))

    def inverse(self, z: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """``G^-1(z)``, shape (m, d, d)."""
        import torch

        weights = self.weights(z) if weights is None else weights
        return torch.addmm(self.floor, weights, self.flat).view(-1, self.d, self.d)

    def log_density(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``1/2 log det G^-1(z)`` (the log of the inverse volume element) and its
        gradient ``-1/T^2 sum_i w_i(z) tr(G(z) M_i) (z - c_i)``."""
        at = self.at(z)
        coef = at.weights * at.trace_terms()
        return 0.5 * at.log_det, -(coef.sum(1, keepdim=True) * z - coef @ self.centroids) / (
            self.temperature**2
        )


class MetricAt:
    """The metric at given positions: kernel weights, ``G^-1``, its Cholesky factor."""

    def __init__(self, metric: Metric, z: torch.Tensor):
        import torch

        self.metric, self.z = metric, z
        self.weights = metric.weights(z)  # (m, n)
        self.inverse = metric.inverse(z, self.weights)
        self.chol, info = torch.linalg.cholesky_ex(self.inverse)
        if bool((info > 0).any()):
            raise FloatingPointError(
                "the inverse metric is not positive definite at some latent positions "
                "(non-finite values); lower learning_rate and refit"
            )
        self.log_det = 2 * torch.log(torch.diagonal(self.chol, dim1=-2, dim2=-1)).sum(-1)
        self._metric: torch.Tensor | None = None
        self._traces: torch.Tensor | None = None

    @property
    def metric_tensor(self) -> torch.Tensor:
        """``G(z)``, the inverse of ``G^-1(z)``."""
        import torch

        if self._metric is None:
            self._metric = torch.cholesky_inverse(self.chol)
        return self._metric

    def trace_terms(self) -> torch.Tensor:
        """``tr(G(z) M_i)`` for every centroid, shape (m, n)."""
        if self._traces is None:
            self._traces = self.metric_tensor.flatten(1) @ self.metric.flat.T
        return self._traces

    def quadratic(self, rho: torch.Tensor) -> torch.Tensor:
        """``rho^T G^-1(z) rho``."""
        return (rho[:, None, :] @ self.inverse @ rho[:, :, None])[:, 0, 0]

    def momentum_from(self, gamma: torch.Tensor) -> torch.Tensor:
        """``C^-T gamma`` with ``C C^T = G^-1(z)``: distributed ``N(0, G(z))`` when
        ``gamma`` is standard normal."""
        import torch

        return torch.linalg.solve_triangular(self.chol.mT, gamma[:, :, None], upper=True)[:, :, 0]

    def kinetic_gradient(self, rho: torch.Tensor) -> torch.Tensor:
        """``grad_z [1/2 log det G(z) + 1/2 rho^T G^-1(z) rho]`` at the positions.

        ``d/dz w_i = -2 w_i (z - c_i) / T^2``, ``d log det G^-1 = sum_i tr(G M_i) dw_i``
        and ``d rho^T G^-1 rho = sum_i rho^T M_i rho dw_i``.
        """
        outer = (rho[:, :, None] * rho[:, None, :]).flatten(1)
        coef = self.weights * (outer @ self.metric.flat.T - self.trace_terms())
        return -(coef.sum(1, keepdim=True) * self.z - coef @ self.metric.centroids) / (
            self.metric.temperature**2
        )


# -- Hamiltonian dynamics -----------------------------------------------------------------


def tempering(k: int, n_steps: int, beta_zero: float) -> float:
    """``sqrt(beta_k)`` of the quadratic schedule of Caterini et al. (2018):
    ``1 / sqrt(beta_k) = 1 / sqrt(beta_0) + (1 - 1 / sqrt(beta_0)) (k / K)^2``."""
    inverse = 1 / math.sqrt(beta_zero)
    return 1 / (inverse + (1 - inverse) * (k / n_steps) ** 2)


def generalized_leapfrog(
    here: MetricAt,
    rho: torch.Tensor,
    grad_u: torch.Tensor,
    grad_potential: Callable[[torch.Tensor], tuple[torch.Tensor, Any]],
    step: float,
    n_fixed_point: int,
) -> tuple[MetricAt, torch.Tensor, torch.Tensor, Any]:
    """One step of the generalized leapfrog for ``H(z, rho) = U(z) + 1/2 log det G(z) +
    1/2 rho^T G^-1(z) rho`` (Girolami and Calderhead 2011, eq. 16-18)::

        rho' = rho - step/2 * grad_z H(z, rho')                   (implicit in rho')
        z''  = z + step/2 * (G^-1(z) + G^-1(z'')) rho'           (implicit in z'')
        rho''= rho' - step/2 * grad_z H(z'', rho')

    The implicit equations are solved by ``n_fixed_point`` fixed-point iterations.

    Parameters
    ----------
    here : MetricAt
        The metric at the positions ``z`` (``metric.at(z)``; one row per chain).
    rho : Tensor of shape (m, d)
        Momenta.
    grad_u : Tensor of shape (m, d)
        ``grad U(z)`` (from the previous step, or a first call of ``grad_potential``).
    grad_potential : callable
        ``position -> (grad U(position), extra)``; ``extra`` is returned as is.
    step : float
    n_fixed_point : int

    Returns
    -------
    there, rho, grad_u, extra
        The metric at the new positions (``there.z``), the new momenta, ``grad U`` there
        and ``extra`` of its call.
    """
    z, metric = here.z, here.metric
    rho_half = rho
    for _ in range(n_fixed_point):
        rho_half = rho - 0.5 * step * (grad_u + here.kinetic_gradient(rho_half))
    velocity = (here.inverse @ rho_half[:, :, None])[:, :, 0]
    z_new = z
    for _ in range(n_fixed_point):
        ahead = (metric.inverse(z_new) @ rho_half[:, :, None])[:, :, 0]
        z_new = z + 0.5 * step * (velocity + ahead)
    grad_new, extra = grad_potential(z_new)
    there = metric.at(z_new)
    rho_new = rho_half - 0.5 * step * (grad_new + there.kinetic_gradient(rho_half))
    return there, rho_new, grad_new, extra


def hmc(
    log_density: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    start: torch.Tensor,
    lower: torch.Tensor,
    upper: torch.Tensor,
    generator: torch.Generator,
    *,
    n_warmup: int,
    n_draws: int,
    thin: int,
    n_leapfrog: int,
    step_size: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Hamiltonian Monte Carlo with identity mass on many chains at once.

    Each row of ``start`` is a chain; each iteration draws fresh standard-normal momenta,
    runs ``n_leapfrog`` leapfrog steps of size ``step_size * U(0.8, 1.2)`` (one jitter per
    chain) and accepts with the Metropolis probability; a proposal outside the box
    ``[lower, upper]`` (or with a non-finite energy) is rejected, so the target is the
    density restricted to the box. During the first ``n_warmup`` iterations the step
    size follows ``log step += mean acceptance probability - 0.65``; then it is fixed
    and every chain's state is kept every ``thin`` iterations, ``n_draws`` times.

    Parameters
    ----------
    log_density : callable
        ``z -> (log density up to a constant, its gradient)`` for a batch of rows.
    start : Tensor of shape (m, d)
        Initial positions, inside the box.
    lower, upper : Tensor of shape (d,)
    generator : torch.Generator
    n_warmup, n_draws, thin, n_leapfrog : int
    step_size : float
        Initial step size.

    Returns
    -------
    draws : Tensor of shape (n_draws, m, d)
        The kept states of each chain.
    diagnostics : dict
        ``acceptance_rate`` (mean Metropolis acceptance probability after the warm-up),
        the ``step_size`` used after it, and ``n_rejected_nonfinite`` (proposals
        rejected for a non-finite energy).
    """
    import torch

    z = start.clone()
    logp, grad = log_density(z)
    m = z.shape[0]
    log_step = math.log(step_size)
    accepted, kept, n_nonfinite = [], [], 0

    def randn() -> torch.Tensor:
        return torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)

    for iteration in range(1, n_warmup + n_draws * thin + 1):
        rho = randn()
        jitter = torch.rand((m, 1), generator=generator, device=z.device, dtype=z.dtype)
        eps = math.exp(log_step) * (0.8 + 0.4 * jitter)
        z_new = z
        rho_new = rho + 0.5 * eps * grad
        for k in range(n_leapfrog):
            z_new = z_new + eps * rho_new
            logp_new, grad_new = log_density(z_new)
            rho_new = rho_new + (eps if k < n_leapfrog - 1 else 0.5 * eps) * grad_new
        log_ratio = logp_new - logp - 0.5 * (rho_new**2).sum(1) + 0.5 * (rho**2).sum(1)
        finite = torch.isfinite(log_ratio) & torch.isfinite(grad_new).all(1)
        n_nonfinite += int((~finite).sum().item())
        inside = ((z_new >= lower) & (z_new <= upper)).all(1)
        log_ratio = torch.where(inside & finite, log_ratio, -math.inf)
        probability = torch.exp(log_ratio.clamp(max=0.0))
        uniform = torch.rand((m,), generator=generator, device=z.device, dtype=z.dtype)
        accept = uniform < probability
        z = torch.where(accept[:, None], z_new, z)
        logp = torch.where(accept, logp_new, logp)
        grad = torch.where(accept[:, None], grad_new, grad)
        mean_probability = float(probability.mean().item())
        if iteration <= n_warmup:
            log_step += mean_probability - TARGET_ACCEPTANCE
            continue
        accepted.append(mean_probability)
        if (iteration - n_warmup) % thin == 0:
            kept.append(z)
    draws = torch.stack(kept)
    if not bool(torch.isfinite(draws).all()):
        raise FloatingPointError("the latent sampler produced non-finite codes")
    return draws, {
        "acceptance_rate": float(np.mean(accepted)),
        "step_size": math.exp(log_step),
        "n_rejected_nonfinite": n_nonfinite,
    }


__all__ = ["RHVAE", "Metric", "generalized_leapfrog", "hmc", "lower_triangular", "tempering"]
