"""The result of a PyMC fit: :class:`BayesResult` (posterior, priors, diagnostics, netCDF).

Every model of :mod:`bayesmtor.bayes.pymc_models` returns one; reading a saved fit back
(:meth:`BayesResult.from_netcdf`) needs ArviZ, not PyMC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayesmtor import config
from bayesmtor._arviz import load as _load_arviz
from bayesmtor.errors import InputError
from bayesmtor.vocabulary import check_prob

az = _load_arviz()

__all__ = ["BayesResult"]

_META_ATTR = "bayesmtor_result"


# --------------------------------------------------------------------------------------------
# Result object
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class BayesResult:
    """Result of one MCMC fit.

    Attributes
    ----------
    model : str
        ``"normal_normal"``, ``"binomial_normal"`` or ``"multilevel"``.
    idata : arviz.InferenceData
        Posterior (``mu``, ``tau``, ``theta`` [trial], ``theta_new``, ``I2``, ...), prior,
        prior and posterior predictive, observed data and sampler statistics.
    measure : str or None
        Ratio measure on whose log scale the model is written (``"OR"``, ``"RR"``, ``"HR"``),
        or ``None`` if not stated.
    labels : tuple of str
        Trial labels, in the order of the ``trial`` dimension.
    priors : Mapping[str, str]
        Description of every prior used, by parameter name.
    diagnostics : Mapping[str, Any]
        ``divergences``, ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``, the sampler settings
        of the final run, ``random_seed`` (the seed given, or the registered default:
        the seed that reproduces the whole fit), ``attempt_seeds`` (the seed each run used:
        ``random_seed + attempt``; the last one also seeds the generated quantities and the
        prior and predictive draws), and ``attempts`` (the diagnostics of every run, retries
        included, each with its own ``random_seed``).
    converged : bool
        Whether the final run passed the convergence gate.
    reason : str or None
        Why the gate failed (``None`` when clean).
    s2_typical : float
        Higgins--Thompson typical within-trial variance used for ``I2``.
    drug_classes : tuple of str
        Drug-class labels (multilevel model only).
    engine : str
        Always ``"mcmc"``.
    """

    model: str
    idata: az.InferenceData
    measure: str | None
    labels: tuple[str, ...]
    priors: Mapping[str, str]
    diagnostics: Mapping[str, Any]
    converged: bool
    reason: str | None
    s2_typical: float
    drug_classes: tuple[str, ...] = field(default=())
    engine: str = "mcmc"

    def __repr__(self) -> str:
        status = "clean" if self.converged else f"NOT CONVERGED ({self.reason})"
        d = self.diagnostics
        return (
            f"BayesResult(model={self.model!r}, measure={self.measure!r}, k={len(self.labels)}, "
            f"engine={self.engine!r}, {status}; divergences={d.get('divergences')}, "
            f"rhat_max={_fmt(d.get('rhat_max'))}, ess_bulk_min={_fmt(d.get('ess_bulk_min'))}, "
            f"ess_tail_min={_fmt(d.get('ess_tail_min'))})"
        )

    # -- posterior quantities ---------------------------------------------------------------

    def p_ratio_below(self, threshold: float = 1.0, *, quantity: str = "mu") -> float:
        """Posterior probability that ``exp(quantity)`` is below ``threshold``.

        Parameters
        ----------
        threshold : float
            Threshold on the ratio scale (must be > 0).
        quantity : str
            ``"mu"`` (pooled ratio) or ``"theta_new"`` (ratio in a new trial).
        """
        _check_threshold(threshold)
        draws = np.asarray(self.idata.posterior[quantity].values, dtype=float)
        return float(np.mean(draws < np.log(threshold)))

    def summary(self, ci_prob: float | None = None, threshold: float | None = None) -> pd.DataFrame:
        """Posterior summary table.

        Rows: ``mu`` (log scale), ``ratio`` (= exp(mu)), ``tau``, ``I2`` (share of the total
        variance due to heterogeneity, tau^2 / (tau^2 + s^2_typical)), ``theta_new`` (log effect
        in a new trial: its interval is the prediction interval) and ``ratio_new``; the
        multilevel model adds ``sigma_class`` and one ``mu_class[<class>]`` row per drug class.

        Columns: ``mean, sd, median, q_low, q_high`` (central, equal-tailed interval of
        probability ``ci_prob``), ``mcse_mean, ess_bulk, ess_tail, r_hat`` (ArviZ), and
        ``p_ratio_below_1`` / ``p_ratio_below_threshold`` (posterior probability that the ratio
        is below 1 / below ``threshold``; filled on the rows of effects only).

        Parameters
        ----------
        ci_prob : float, optional
            Interval probability; default ``config.defaults["ci_prob"]``.
        threshold : float, optional
            A ratio threshold (e.g. 0.8) for ``p_ratio_below_threshold``; NaN if not given.
        """
        ci = check_prob(config.get("ci_prob", ci_prob), "ci_prob")
        if threshold is not None:
            _check_threshold(threshold)
        post = self.idata.posterior
        quantities: dict[str, xr.DataArray] = {
            "mu": post["mu"],
            "ratio": np.exp(post["mu"]),
            "tau": post["tau"],
            "I2": post["I2"],
            "theta_new": post["theta_new"],
            "ratio_new": np.exp(post["theta_new"]),
        }
        log_rows = {"mu": "mu", "ratio": "mu", "theta_new": "theta_new", "ratio_new": "theta_new"}
        if "sigma_class" in post:
            quantities["sigma_class"] = post["sigma_class"]
            for c in self.drug_classes:
                name = f"mu_class[{c}]"
                quantities[name] = post["mu_class"].sel(drug_class=c, drop=True)
                log_rows[name] = name
        ds = xr.Dataset({k: v.reset_coords(drop=True) for k, v in quantities.items()})
        diag = az.summary(ds, kind="diagnostics")
        lo, hi = (1.0 - ci) / 2.0, 1.0 - (1.0 - ci) / 2.0
        rows = []
        for name, da in quantities.items():
            x = np.asarray(da.values, dtype=float).ravel()
            log_draws = np.asarray(ds[log_rows[name]].values).ravel() if name in log_rows else None
            # central intervals are transformation-invariant: ratio quantiles = exp(log quantiles)
            qx = log_draws if name in ("ratio", "ratio_new") else x
            tf = np.exp if name in ("ratio", "ratio_new") else float
            rows.append(
                {
                    "parameter": name,
                    "mean": float(np.mean(x)),
                    "sd": float(np.std(x, ddof=1)),
                    "median": float(tf(np.median(qx))),
                    "q_low": float(tf(np.quantile(qx, lo))),
                    "q_high": float(tf(np.quantile(qx, hi))),
                    "mcse_mean": float(diag.loc[name, "mcse_mean"]),
                    "ess_bulk": float(diag.loc[name, "ess_bulk"]),
                    "ess_tail": float(diag.loc[name, "ess_tail"]),
                    "r_hat": float(diag.loc[name, "r_hat"]),
                    "p_ratio_below_1": (
                        float(np.mean(log_draws < 0.0)) if log_draws is not None else np.nan
                    ),
                    "p_ratio_below_threshold": (
                        float(np.mean(log_draws < np.log(threshold)))
                        if log_draws is not None and threshold is not None
                        else np.nan
                    ),
                }
            )
        out = pd.DataFrame(rows).set_index("parameter")
        out.attrs.update({"ci_prob": ci, "threshold": threshold, "model": self.model})
        return out

    # -- persistence -------------------------------------------------------------------------

    def to_netcdf(self, path: str | Path) -> Path:
        """Write the InferenceData, with this result's metadata, to a netCDF file."""
        path = Path(path)
        meta = {
            "model": self.model,
            "measure": self.measure,
            "labels": list(self.labels),
            "priors": dict(self.priors),
            "diagnostics": _jsonable(self.diagnostics),
            "converged": self.converged,
            "reason": self.reason,
            "s2_typical": self.s2_typical,
            "drug_classes": list(self.drug_classes),
            "engine": self.engine,
        }
        self.idata.posterior.attrs[_META_ATTR] = json.dumps(meta)
        self.idata.to_netcdf(str(path), engine=config.get("netcdf_engine"))
        return path

    @classmethod
    def from_netcdf(cls, path: str | Path) -> BayesResult:
        """Read a result written by :meth:`to_netcdf`."""
        idata = az.from_netcdf(str(path), engine=config.get("netcdf_engine"))
        try:
            meta = json.loads(idata.posterior.attrs[_META_ATTR])
        except (KeyError, AttributeError, json.JSONDecodeError):
            raise InputError(
                "not a bayesmtor MCMC result (posterior attribute "
                f"'{_META_ATTR}' missing or unreadable); write it with BayesResult.to_netcdf",
                source=str(path),
            ) from None
        return cls(
            model=meta["model"],
            idata=idata,
            measure=meta["measure"],
            labels=tuple(meta["labels"]),
            priors=meta["priors"],
            diagnostics=meta["diagnostics"],
            converged=bool(meta["converged"]),
            reason=meta["reason"],
            s2_typical=float(meta["s2_typical"]),
            drug_classes=tuple(meta["drug_classes"]),
            engine=meta["engine"],
        )


def _check_threshold(threshold: float) -> None:
    if not (np.isfinite(threshold) and threshold > 0):
        raise InputError(
            f"threshold is a ratio and must be a positive number, got {threshold!r}",
            column="threshold",
        )


def _fmt(x: Any) -> str:
    try:
        return f"{float(x):.4g}"
    except (TypeError, ValueError):
        return str(x)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj
