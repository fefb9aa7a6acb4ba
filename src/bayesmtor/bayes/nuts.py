"""A No-U-Turn sampler in NumPy for the package's Gaussian random-effects models.

The normal--normal and multilevel models have their trial (and class) effects integrated out,
so only two or three parameters are sampled: ``mu`` and ``tau`` (and ``sigma_class``). Their
log density and its gradient are a few vector operations over the trials
(:func:`normal_normal_density`, :func:`multilevel_density`), so the whole fit needs no graph
compilation and no PyMC import; the trial effects and predictive quantities are then drawn from
their exact conditionals given each posterior draw, in NumPy, by the fit functions.

The algorithm is Stan's dynamic HMC (Hoffman & Gelman 2014, JMLR 15:1593; Betancourt 2017,
arXiv:1701.02434): trajectories doubled forwards or backwards at random until the generalised
no-U-turn criterion (checked across the whole trajectory and across each merged pair of
subtrees) or the maximum tree depth stops them, multinomial sampling of the next state
(progressive, biased towards the newer subtree at the top level), a transition counted as
divergent when the energy error exceeds 1000, dual-averaging adaptation of the step size
towards ``target_accept`` (Nesterov 2009; gamma 0.05, t0 10, kappa 0.75) and a diagonal mass
matrix estimated in Stan's expanding windows (75 / 25 ... / 50 iterations for 1000 warm-up
iterations, regularised towards 1e-3 as Stan does). Unconstrained coordinates are ``log tau``
(``logit`` of ``tau`` rescaled to the support for a uniform prior), as in PyMC, with the
log-Jacobian added to the density.

Each chain has its own generator ``numpy.random.default_rng([seed, chain])``, so a fit is
reproducible from its seed.
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesmtor.bayes.priors import MuPrior, TauPrior

__all__ = [
    "Density",
    "NutsRun",
    "multilevel_density",
    "normal_normal_density",
    "sample_nuts",
    "supports",
]

#: Energy error above which a transition is divergent (Stan, PyMC).
DIVERGENCE_ENERGY = 1000.0
MAX_TREEDEPTH = 10

LogpGrad = Callable[[list[float]], tuple[float, list[float]]]
#: Up to this many trials the densities loop in Python floats; above it NumPy is faster.
_LOOP_MAX = 48


@dataclass(frozen=True)
class Density:
    """An unconstrained log density with its gradient, and the map back to the parameters.

    Attributes
    ----------
    names : tuple of str
        The model parameters, e.g. ``("mu", "tau")``.
    logp_grad : callable
        ``x -> (log density, gradient)`` at an unconstrained point ``x`` (a list of floats;
        Jacobian included).
    constrain : callable
        ``x -> {name: value}``, vectorised over the leading axes of ``x`` (last axis: the
        coordinates).
    init : numpy.ndarray
        A central point; chains start at it plus uniform(-1, 1) jitter, as PyMC's default.
    """

    names: tuple[str, ...]
    logp_grad: LogpGrad
    constrain: Callable[[np.ndarray], dict[str, np.ndarray]]
    init: np.ndarray


# --------------------------------------------------------------------------------------------
# Priors on the unconstrained scale
# --------------------------------------------------------------------------------------------

_LOG_FAMILIES = ("half-normal", "half-cauchy", "half-student-t", "log-normal")


def supports(*priors: TauPrior | MuPrior) -> bool:
    """Whether every prior has a closed-form log density here (else PyMC samples the model)."""
    for p in priors:
        if isinstance(p, MuPrior):
            if p.family not in ("normal", "flat"):
                return False
        elif p.family not in (*_LOG_FAMILIES, "uniform"):
            return False
    return True


class _Scale:
    """A standard deviation parameter: ``sd = forward(z)`` and ``log p(z)`` with its derivative
    (the prior's parameters read once: this is evaluated at every leapfrog step)."""

    def __init__(self, prior: TauPrior) -> None:
        self.prior = prior
        self.family = prior.family
        self.p = {k: float(v) for k, v in prior.params}

    def forward(self, z: Any) -> Any:
        p = self.prior
        if p.family == "uniform":
            lo, hi = p["lower"], p["upper"]
            return lo + (hi - lo) / (1.0 + np.exp(-z))
        return np.exp(z)

    def init(self, guess: float) -> float:
        p = self.prior
        if p.family == "uniform":
            lo, hi = p["lower"], p["upper"]
            u = min(max((guess - lo) / (hi - lo), 0.05), 0.95)
            return math.log(u / (1.0 - u))
        return math.log(guess)

    def logp(self, z: float) -> tuple[float, float, float, float]:
        """``(sd, d sd / dz, log p(z), d log p / dz)``; the log density up to a constant."""
        p = self.p
        fam = self.family
        if fam == "uniform":
            lo, hi = p["lower"], p["upper"]
            if z >= 0:
                e = math.exp(-z)
                sig = 1.0 / (1.0 + e)
                log_sig, log_1m = -math.log1p(e), -z - math.log1p(e)
            else:
                e = math.exp(z)
                sig = e / (1.0 + e)
                log_sig, log_1m = z - math.log1p(e), -math.log1p(e)
            return lo + (hi - lo) * sig, (hi - lo) * sig * (1 - sig), log_sig + log_1m, 1 - 2 * sig
        t = math.exp(z)
        if fam == "half-normal":
            s = p["scale"]
            lp, dlp = -0.5 * (t / s) ** 2, -t / (s * s)
        elif fam == "half-cauchy":
            s = p["scale"]
            lp, dlp = -math.log1p((t / s) ** 2), -2.0 * t / (s * s + t * t)
        elif fam == "half-student-t":
            s, nu = p["scale"], p["nu"]
            lp = -0.5 * (nu + 1.0) * math.log1p(t * t / (nu * s * s))
            dlp = -(nu + 1.0) * t / (nu * s * s + t * t)
        else:  # log-normal: log tau ~ N(meanlog, sdlog^2), exactly normal in z
            m, sd = p["meanlog"], p["sdlog"]
            return t, t, -0.5 * ((z - m) / sd) ** 2, -(z - m) / (sd * sd)
        # change of variables tau = e^z: log p(z) = log p(tau) + z
        return t, t, lp + z, dlp * t + 1.0


def _mu_term(prior: MuPrior) -> Callable[[float], tuple[float, float]]:
    """``mu -> (log p(mu), d log p / d mu)`` up to a constant (parameters read once)."""
    if prior.is_flat:
        return lambda mu: (0.0, 0.0)
    m, sd = float(prior.mean), float(prior.sd)
    prec = 1.0 / (sd * sd)
    return lambda mu: (-0.5 * (mu - m) * (mu - m) * prec, -(mu - m) * prec)


def _centre(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """A central starting point: the inverse-variance mean and a moderate tau."""
    w = 1.0 / s**2
    mu0 = float(np.sum(w * y) / np.sum(w))
    spread = float(np.std(y)) if y.size > 1 else 0.0
    return mu0, max(spread, 0.1 * float(np.median(s)), 1e-3)


def normal_normal_density(
    y: np.ndarray, s: np.ndarray, tau_prior: TauPrior, mu_prior: MuPrior
) -> Density:
    """``y_i ~ N(mu, s_i^2 + tau^2)``, ``mu ~ mu_prior``, ``tau ~ tau_prior``; coordinates
    ``(mu, z)`` with ``tau = exp(z)`` (interval transform for a uniform prior)."""
    y = np.asarray(y, dtype=float)
    s2 = np.asarray(s, dtype=float) ** 2
    scale = _Scale(tau_prior)
    mu_term = _mu_term(mu_prior)
    pairs = list(zip(y.tolist(), s2.tolist(), strict=True))
    log = math.log

    def sums(mu: float, t2: float) -> tuple[float, float, float, float, float]:
        """sum log w, sum w, sum w r, sum w r^2, sum w^2 r^2 with w = 1/(s^2 + tau^2)."""
        if len(pairs) > _LOOP_MAX:
            w = 1.0 / (s2 + t2)
            wr = w * (y - mu)
            return (
                float(np.log(w).sum()), float(w.sum()), float(wr.sum()),
                float((wr * (y - mu)).sum()), float((wr * wr).sum()),
            )  # fmt: skip
        sl = sw = swr = swr2 = sw2r2 = 0.0
        for yi, vi in pairs:
            w = 1.0 / (vi + t2)
            r = yi - mu
            wr = w * r
            sl += log(w)
            sw += w
            swr += wr
            swr2 += wr * r
            sw2r2 += wr * wr
        return sl, sw, swr, swr2, sw2r2

    def logp_grad(x: list[float]) -> tuple[float, list[float]]:
        mu, z = x
        t, dt, lp_z, dlp_z = scale.logp(z)
        sl, sw, swr, swr2, sw2r2 = sums(mu, t * t)
        lp_mu, dlp_mu = mu_term(mu)
        d_t = t * (sw2r2 - sw)
        return 0.5 * (sl - swr2) + lp_mu + lp_z, [swr + dlp_mu, d_t * dt + dlp_z]

    def constrain(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"mu": x[..., 0], "tau": scale.forward(x[..., 1])}

    mu0, tau0 = _centre(y, np.sqrt(s2))
    return Density(("mu", "tau"), logp_grad, constrain, np.array([mu0, scale.init(tau0)]))


def multilevel_density(
    y: np.ndarray,
    s: np.ndarray,
    onehot: np.ndarray,
    priors: tuple[MuPrior, TauPrior, TauPrior],
) -> Density:
    """The multilevel model with ``theta`` and ``mu_class`` integrated out (see
    :func:`bayesmtor.bayes.pymc_models.fit_multilevel`); coordinates ``(mu, z_tau, z_sigma)``.

    Within class ``c`` the covariance of ``y`` is ``D_c + sigma^2 11'`` with
    ``D_c = diag(s^2 + tau^2)``; with ``w = 1/d``, ``r = y - mu``, ``W_c = sum w``,
    ``R_c = sum w r``, the log density is
    ``-1/2 [sum log d + sum log(1 + g W_c) + sum w r^2 - sum g R_c^2 / (1 + g W_c)]``,
    ``g = sigma^2`` (matrix determinant lemma and Sherman--Morrison).
    """
    mu_prior, tau_prior, sigma_prior = priors
    y = np.asarray(y, dtype=float)
    s2 = np.asarray(s, dtype=float) ** 2
    oh = np.asarray(onehot, dtype=float)
    st, ss = _Scale(tau_prior), _Scale(sigma_prior)
    mu_term = _mu_term(mu_prior)

    n_class = oh.shape[1]
    rows = list(zip(y.tolist(), s2.tolist(), oh.argmax(axis=1).tolist(), strict=True))
    log = math.log

    def class_sums(mu: float, t2: float) -> tuple[float, ...]:
        """sum log w, sum w r^2, sum w^2 r^2, sum w, and per class W, R, V = sum w^2 and
        S = sum w^2 r."""
        W, R, V, S = [0.0] * n_class, [0.0] * n_class, [0.0] * n_class, [0.0] * n_class
        sl = swr2 = sw2r2 = sw = 0.0
        for yi, vi, c in rows:
            w = 1.0 / (vi + t2)
            r = yi - mu
            wr = w * r
            sl += log(w)
            swr2 += wr * r
            sw2r2 += wr * wr
            sw += w
            W[c] += w
            R[c] += wr
            V[c] += w * w
            S[c] += wr * w
        return sl, swr2, sw2r2, sw, W, R, V, S

    def logp_grad(x: list[float]) -> tuple[float, list[float]]:
        mu = x[0]
        t, dt, lpt, dlpt = st.logp(x[1])
        sg, dsg, lps, dlps = ss.logp(x[2])
        g = sg * sg
        sl, swr2, sw2r2, sw, W, R, V, S = class_sums(mu, t * t)
        l1p = d_mu = d_g = c_t2 = quad = 0.0
        for Wc, Rc, Vc, Sc in zip(W, R, V, S, strict=True):
            a = 1.0 / (1.0 + g * Wc)
            Ra = Rc * a
            l1p += log(1.0 + g * Wc)
            quad += g * Rc * Ra
            d_mu += Ra
            d_g += Wc * a - Ra * Ra
            c_t2 += g * Vc * a + g * (-2.0 * Rc * Sc * a + g * Ra * Ra * Vc)
        ll = -0.5 * (-sl + l1p + swr2 - quad)
        d_g *= -0.5
        d_t2 = -0.5 * (sw - sw2r2 - c_t2)
        lp_mu, dlp_mu = mu_term(mu)
        grad = [d_mu + dlp_mu, d_t2 * 2.0 * t * dt + dlpt, d_g * 2.0 * sg * dsg + dlps]
        return ll + lp_mu + lpt + lps, grad

    def constrain(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"mu": x[..., 0], "tau": st.forward(x[..., 1]), "sigma_class": ss.forward(x[..., 2])}

    mu0, tau0 = _centre(y, np.sqrt(s2))
    init = np.array([mu0, st.init(tau0), ss.init(tau0)])
    return Density(("mu", "tau", "sigma_class"), logp_grad, constrain, init)


# --------------------------------------------------------------------------------------------
# The sampler
# --------------------------------------------------------------------------------------------


def _dot(a: list[float], b: list[float]) -> float:
    return sum(map(operator.mul, a, b))


def _add(a: list[float], b: list[float]) -> list[float]:
    return list(map(operator.add, a, b))


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


class _Point:
    """A point of a trajectory: position, momentum, gradient, log density (plain floats: the
    models have two or three coordinates, where NumPy's per-call overhead would dominate)."""

    __slots__ = ("q", "p", "g", "lp")

    def __init__(self, q: list[float], p: list[float], g: list[float], lp: float) -> None:
        self.q, self.p, self.g, self.lp = q, p, g, lp


class _Tree:
    """The summary of a subtree that the doubling needs."""

    __slots__ = (
        "left", "right", "ps_left", "ps_right", "rho", "log_w", "sample", "accept_sum", "n",
        "divergent", "turning",
    )  # fmt: skip


class _Chain:
    """One chain: its generator, metric and step size; :meth:`transition` is one NUTS step."""

    def __init__(self, density: Density, rng: np.random.Generator, max_depth: int) -> None:
        self.f = density.logp_grad
        self.rng = rng
        self.max_depth = max_depth
        self.dim = int(density.init.size)
        self.inv_m = [1.0] * self.dim
        self.eps = 1.0
        self._u: list[float] = []
        self._step_eps, self._step = math.nan, [math.nan] * self.dim

    def density(self, q: list[float]) -> tuple[float, list[float]]:
        """Log density and gradient at ``q``; a point where they overflow (a trajectory far out
        in the tails) has log density -inf, so its transition counts as divergent (Stan)."""
        try:
            lp, g = self.f(q)
        except (OverflowError, ZeroDivisionError, ValueError):
            return -math.inf, [0.0] * self.dim
        if not math.isfinite(lp):
            return -math.inf, [0.0] * self.dim
        return lp, g

    def uniform(self) -> float:
        """A uniform(0, 1) number; drawn from the generator in blocks (per-call overhead)."""
        if not self._u:
            self._u = self.rng.uniform(size=1024).tolist()
        return self._u.pop()

    def momentum(self) -> list[float]:
        z = self.rng.standard_normal(self.dim).tolist()
        return [zi / math.sqrt(m) for zi, m in zip(z, self.inv_m, strict=True)]

    def leapfrog(self, pt: _Point, eps: float) -> _Point:
        h = 0.5 * eps
        p = [pi + h * gi for pi, gi in zip(pt.p, pt.g, strict=False)]
        q = [qi + e * pi for qi, e, pi in zip(pt.q, self.step(eps), p, strict=False)]
        lp, g = self.density(q)
        return _Point(q, [pi + h * gi for pi, gi in zip(p, g, strict=False)], g, lp)

    def step(self, eps: float) -> list[float]:
        """``eps * inv_m`` (cached: the step size changes once per transition at most)."""
        if eps != self._step_eps:
            self._step_eps, self._step = eps, [eps * m for m in self.inv_m]
        return self._step

    def energy(self, pt: _Point) -> float:
        return 0.5 * _dot(self.sharp(pt.p), pt.p) - pt.lp

    def sharp(self, p: list[float]) -> list[float]:
        return list(map(operator.mul, self.inv_m, p))

    def _leaf(self, pt: _Point, eps: float, h0: float) -> _Tree:
        new = self.leapfrog(pt, eps)
        h = self.energy(new)
        if not math.isfinite(h):  # nan or inf: an infinitely bad point
            h = math.inf
        t = _Tree()
        t.left = t.right = new
        t.ps_left = t.ps_right = self.sharp(new.p)
        t.rho = new.p
        t.log_w = h0 - h
        t.sample = new
        t.accept_sum = 1.0 if h0 - h > 0 else math.exp(h0 - h)
        t.n = 1
        t.divergent = h - h0 > DIVERGENCE_ENERGY
        t.turning = False
        return t

    @staticmethod
    def _no_uturn(ps_left: list[float], ps_right: list[float], rho: list[float]) -> bool:
        return _dot(ps_left, rho) > 0 and _dot(ps_right, rho) > 0

    def build(self, pt: _Point, depth: int, eps: float, h0: float) -> _Tree:
        """A subtree of ``2**depth`` leapfrog steps from ``pt`` (direction: the sign of eps),
        its ends ``left`` (the first step) and ``right`` (the last)."""
        if depth == 0:
            return self._leaf(pt, eps, h0)
        inner = self.build(pt, depth - 1, eps, h0)
        if inner.divergent or inner.turning:
            return inner
        outer = self.build(inner.right, depth - 1, eps, h0)
        t = _Tree()
        t.n = inner.n + outer.n
        t.accept_sum = inner.accept_sum + outer.accept_sum
        t.divergent, t.turning = outer.divergent, outer.turning
        if t.divergent or t.turning:
            return t
        t.left, t.right = inner.left, outer.right
        t.ps_left, t.ps_right = inner.ps_left, outer.ps_right
        t.log_w = _logaddexp(inner.log_w, outer.log_w)
        # uniform progressive sampling inside a subtree
        use_outer = math.log(self.uniform()) < outer.log_w - t.log_w
        t.sample = outer.sample if use_outer else inner.sample
        t.rho = _add(inner.rho, outer.rho)
        # the generalised criterion over the subtree and across its two halves (Stan >= 2.26)
        t.turning = not (
            self._no_uturn(t.ps_left, t.ps_right, t.rho)
            and self._no_uturn(inner.ps_left, outer.ps_left, _add(inner.rho, outer.left.p))
            and self._no_uturn(inner.ps_right, outer.ps_right, _add(inner.right.p, outer.rho))
        )
        return t

    def transition(self, state: _Point) -> tuple[_Point, dict[str, Any]]:
        """One NUTS transition from ``state``: the new state and the transition's statistics."""
        start = _Point(state.q, self.momentum(), state.g, state.lp)
        h0 = self.energy(start)
        # the trajectory, oriented in time: `bck` (earliest) and `fwd` (latest) ends
        bck = fwd = start
        ps_bck = ps_fwd = self.sharp(start.p)
        rho = list(start.p)
        log_w = 0.0
        sample = start
        accept_sum, n_steps, depth, divergent = 0.0, 0, 0, False
        while depth < self.max_depth:
            forward = self.uniform() < 0.5
            sub = self.build(fwd if forward else bck, depth, self.eps if forward else -self.eps, h0)
            n_steps += sub.n
            accept_sum += sub.accept_sum
            if sub.divergent:
                divergent = True
                break
            if sub.turning:
                break
            depth += 1
            # biased progressive sampling at the top level: favour the new subtree
            if math.log(self.uniform()) < sub.log_w - log_w:
                sample = sub.sample
            log_w = _logaddexp(log_w, sub.log_w)
            total = _add(rho, sub.rho)
            if forward:  # old tree = [bck, fwd], new subtree = [sub.left, sub.right]
                turning = not (
                    self._no_uturn(ps_bck, sub.ps_right, total)
                    and self._no_uturn(ps_bck, sub.ps_left, _add(rho, sub.left.p))
                    and self._no_uturn(ps_fwd, sub.ps_right, _add(sub.rho, fwd.p))
                )
                fwd, ps_fwd = sub.right, sub.ps_right
            else:  # new subtree = [sub.right, sub.left] in time, then the old tree
                turning = not (
                    self._no_uturn(sub.ps_right, ps_fwd, total)
                    and self._no_uturn(sub.ps_right, ps_bck, _add(sub.rho, bck.p))
                    and self._no_uturn(sub.ps_left, ps_fwd, _add(rho, sub.left.p))
                )
                bck, ps_bck = sub.right, sub.ps_right
            rho = total
            if turning:
                break
        stats = {
            "accept": accept_sum / max(n_steps, 1),
            "n_steps": n_steps,
            "depth": depth,
            "divergent": divergent,
            "energy": self.energy(sample),
        }
        return sample, stats

    def find_step_size(self, state: _Point) -> None:
        """Stan's initial step-size heuristic: double or halve the step size until the
        acceptance of one leapfrog step from ``state`` crosses 0.8."""

        def delta() -> float:
            start = _Point(state.q, self.momentum(), state.g, state.lp)
            h = self.energy(self.leapfrog(start, self.eps))
            return self.energy(start) - h if math.isfinite(h) else -math.inf

        direction = 1 if delta() > math.log(0.8) else -1
        for _ in range(60):
            d = delta()
            if (direction == 1 and not d > math.log(0.8)) or (
                direction == -1 and not d < math.log(0.8)
            ):
                break
            self.eps *= 2.0**direction


class _DualAveraging:
    """Nesterov's dual averaging of log step size, with Stan's constants."""

    def __init__(self, eps: float, target: float) -> None:
        self.mu = math.log(10.0 * eps)
        self.target = target
        self.h_bar = 0.0
        self.log_eps_bar = 0.0
        self.t = 0

    def update(self, accept: float) -> float:
        self.t += 1
        eta = 1.0 / (self.t + 10.0)
        self.h_bar = (1.0 - eta) * self.h_bar + eta * (self.target - accept)
        log_eps = self.mu - math.sqrt(self.t) / 0.05 * self.h_bar
        x = self.t**-0.75
        self.log_eps_bar = x * log_eps + (1.0 - x) * self.log_eps_bar
        return math.exp(log_eps)

    @property
    def final(self) -> float:
        return math.exp(self.log_eps_bar)


def _windows(tune: int) -> tuple[int, list[int]]:
    """Stan's slow adaptation windows: the first iteration that enters the metric estimate and
    the iterations after which the metric is updated (none for fewer than 20 warm-up
    iterations)."""
    init_buf, term_buf, base = 75, 50, 25
    if tune < 20:
        return tune, []
    if init_buf + term_buf + base > tune:
        init_buf, term_buf = int(0.15 * tune), int(0.1 * tune)
        base = tune - init_buf - term_buf
    ends, start, size = [], init_buf, base
    last = tune - term_buf
    while start < last:
        end = start + size
        if end + 2 * size > last:  # the next window would not fit: stretch this one
            end = last
        ends.append(end)
        start, size = end, 2 * size
    return init_buf, ends


def _sample_chain(
    density: Density,
    rng: np.random.Generator,
    draws: int,
    tune: int,
    target_accept: float,
    max_depth: int,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    chain = _Chain(density, rng, max_depth)
    state = None
    for _ in range(100):  # a finite starting point: PyMC's jitter+adapt_diag initialisation
        q = (density.init + rng.uniform(-1.0, 1.0, density.init.size)).tolist()
        lp, g = chain.density(q)
        if math.isfinite(lp) and all(math.isfinite(x) for x in g):
            state = _Point(q, [], g, lp)
            break
    if state is None:
        raise FloatingPointError("no finite starting point for NUTS")
    chain.find_step_size(state)
    da = _DualAveraging(chain.eps, target_accept)
    window_start, end_list = _windows(tune)
    ends = set(end_list)
    window: list[list[float]] = []
    out_q = np.empty((draws, chain.dim))
    names = ("diverging", "tree_depth", "n_steps", "acceptance_rate", "step_size", "energy", "lp")
    rows: dict[str, list[Any]] = {k: [] for k in names}
    for it in range(draws + tune):
        state, st = chain.transition(state)
        if it < tune:
            chain.eps = da.update(st["accept"])
            if it >= window_start:
                window.append(state.q)
            if it + 1 in ends:
                x = np.array(window)
                n = len(x)
                var = x.var(axis=0, ddof=1) if n > 1 else np.ones(chain.dim)
                chain.inv_m = ((n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))).tolist()
                chain._step_eps = math.nan
                window = []
                chain.find_step_size(state)
                da = _DualAveraging(chain.eps, target_accept)
            if it == tune - 1:
                chain.eps = da.final
            continue
        out_q[it - tune] = state.q
        for key, value in (
            ("diverging", st["divergent"]), ("tree_depth", st["depth"]),
            ("n_steps", st["n_steps"]), ("acceptance_rate", st["accept"]),
            ("step_size", chain.eps), ("energy", st["energy"]), ("lp", state.lp),
        ):  # fmt: skip
            rows[key].append(value)
    stats = {k: np.asarray(v) for k, v in rows.items()}
    return out_q, stats


@dataclass(frozen=True)
class NutsRun:
    """The draws of :func:`sample_nuts`.

    Attributes
    ----------
    posterior : dict
        ``{name: array (chain, draw)}`` on the model's scale.
    sample_stats : dict
        ``diverging``, ``tree_depth``, ``n_steps``, ``acceptance_rate``, ``step_size``,
        ``energy`` and ``lp``, each ``(chain, draw)``.
    seconds : float
        The sampling time.
    tune : int
        Warm-up iterations per chain.
    target_accept : float
        The target acceptance of the step-size adaptation.
    """

    posterior: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    seconds: float
    tune: int
    target_accept: float


def sample_nuts(
    density: Density,
    *,
    draws: int,
    tune: int,
    chains: int,
    target_accept: float,
    seed: int,
    max_treedepth: int = MAX_TREEDEPTH,
) -> NutsRun:
    """Sample ``chains`` NUTS chains of ``draws`` draws after ``tune`` warm-up iterations;
    chain ``c`` uses ``numpy.random.default_rng([seed, c])``."""
    t0 = time.perf_counter()
    qs, sts = [], []
    for c in range(chains):
        q, st = _sample_chain(
            density, np.random.default_rng([seed, c]), draws, tune, target_accept, max_treedepth
        )
        qs.append(q)
        sts.append(st)
    x = np.stack(qs)  # (chain, draw, dim)
    posterior = {k: np.asarray(v, dtype=float) for k, v in density.constrain(x).items()}
    sample_stats = {k: np.stack([s[k] for s in sts]) for k in sts[0]}
    return NutsRun(posterior, sample_stats, time.perf_counter() - t0, tune, target_accept)
