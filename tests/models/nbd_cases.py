"""Shared fixtures data and case table for the NBD-family tests (BG/NBD, MBG/NBD, Pareto/NBD).

The checks that hold for every model of the family (agreement with lifetimes, the gradient
against central differences, compression, extreme inputs, simulation studies) live in
``test_nbd_family.py``, parametrized over the cases defined here; each model's own file keeps
only what is specific to it (the papers' published values and model-specific formulas).

Sources of the parameter values:
- BG/NBD: Fader, Hardie & Lee (2005), Marketing Science 24(2), Sec. 6, CDNOW (weeks).
- MBG/NBD: BTYDplus CDNOW estimates (M. Platzer), as quoted by lifetimes' test suite.
- Pareto/NBD: Fader & Hardie (2005 note), Sec. 3, CDNOW (weeks).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models._nbd_common import NBDData
from models.bgnbd import BGNBD, bgnbd_neg_log_likelihood
from models.bgnbd import simulate as simulate_bgnbd
from models.mbgnbd import MBGNBD, mbgnbd_neg_log_likelihood
from models.mbgnbd import simulate as simulate_mbgnbd
from models.paretonbd import ParetoNBD
from models.paretonbd import simulate as simulate_paretonbd
from tests.conftest import quiet_reference

Columns = tuple[np.ndarray, np.ndarray, np.ndarray]
NbdModel = BGNBD | MBGNBD | ParetoNBD
NegLogLikelihood = Callable[[np.ndarray, NBDData], tuple[float, np.ndarray]]
Simulate = Callable[..., tuple[np.ndarray, np.ndarray]]

# FHL 2005, Sec. 6 (CDNOW sample, 2357 customers, 39-week calibration period, weeks):
# r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
FHL_PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# BTYDplus MBG/NBD estimates on CDNOW (weeks), as quoted by lifetimes' test suite.
BTYDPLUS_PARAMS = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
# Fader & Hardie (2005 note, Sec. 3), CDNOW sample (2357 customers, 39 weeks, time in weeks):
# r = 0.55, alpha = 10.58, s = 0.61, beta = 11.67, LL = -9594.98 (published to two decimals).
NOTE_PARAMS = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}


@dataclass(frozen=True, eq=False)
class Recovery:
    """A parameter-recovery simulation study: uniform draws of the truth, then a fit."""

    bounds: Mapping[str, tuple[float, float]]
    examples: int
    customers: int
    age_range: tuple[float, float]


@dataclass(frozen=True, eq=False)
class Coverage:
    """An interval-coverage study: seed, and the prediction whose 95% delta-method interval
    (with the parameters' 95% Wald intervals) must cover the truth in 80-100% of cohorts."""

    seed: int
    prediction: str
    args: tuple[Any, ...]


@dataclass(frozen=True, eq=False)
class NbdCase:
    """One model of the NBD family, with what the shared tests need to exercise it."""

    model: type[NbdModel]
    reference_name: str  # the lifetimes fitter of the same model
    published: Mapping[str, float]  # CDNOW estimates used as the truth in simulations
    simulate: Simulate
    coverage: Coverage
    recovery: Recovery
    interval_history: Columns  # (x, t_x, T) for the delta-method interval checks
    neg_log_likelihood: NegLogLikelihood | None = None
    thetas: list[np.ndarray] = field(default_factory=list)
    extreme_rows: Columns | None = None  # (x, t_x, T) for the extreme-input check
    shift: int = 0  # prepare_data's shift: 0 for BG/NBD, 1 for MBG/NBD
    simulation_seed: int = 0

    @property
    def id(self) -> str:
        """Test id: the model's class name in lower case."""
        return self.model.__name__.lower()

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names, in the order of the model's theta."""
        return self.model.param_names


# Gradient-check parameters away from the optimum (where the gradient is ~0 and only an
# absolute check makes sense); each BG-family case adds one of its own in front.
_SHARED_THETAS = [
    np.array([1.5, 0.3, 3.0, 0.4]),
    np.array([0.01, 200.0, 0.05, 50.0]),
    np.array([20.0, 8.0, 1.0, 1.0]),
]


def _extreme_rows(x_1: float, age_1: float) -> Columns:
    """Extreme (x, t_x, T) histories: x = 0, 1e4, t_x = 0 or = T = 1e6; row 1 per model."""
    x = np.array([0, x_1, 1, 10, 1e4, 1e4, 1e4, 3])
    t_x = np.array([0.0, 0.0, 1e6, 1.0, 0.0, 1e6, 0.5, 52.0])
    age = np.array([0.0, age_1, 1e6, 1e6, 1e6, 1e6, 1.0, 52.0])
    return x, t_x, age


_BG_RECOVERY = Recovery(
    bounds={"r": (0.2, 2.0), "alpha": (2.0, 20.0), "a": (0.4, 2.0), "b": (1.0, 6.0)},
    examples=5,
    customers=4000,
    age_range=(20.0, 80.0),
)

BGNBD_CASE = NbdCase(
    model=BGNBD,
    reference_name="BetaGeoFitter",
    published=FHL_PARAMS,
    simulate=simulate_bgnbd,
    coverage=Coverage(2005, "expected_purchases", (52.0,)),  # E[X(52)], FHL CDNOW parameters
    recovery=_BG_RECOVERY,
    interval_history=(np.array([1, 2, 10]), np.array([2.0, 30.43, 38.0]), np.full(3, 38.86)),
    neg_log_likelihood=bgnbd_neg_log_likelihood,
    thetas=[np.array([0.3, 5.0, 0.6, 3.0]), *_SHARED_THETAS],
    extreme_rows=_extreme_rows(x_1=1, age_1=1e-3),
    simulation_seed=11,
)

MBGNBD_CASE = NbdCase(
    model=MBGNBD,
    reference_name="ModifiedBetaGeoFitter",
    published=BTYDPLUS_PARAMS,
    simulate=simulate_mbgnbd,
    coverage=Coverage(  # P(alive) of a fixed history at the BTYDplus CDNOW parameters
        seed=2007,
        prediction="prob_alive",
        args=(np.array([2]), np.array([30.43]), np.array([38.86])),
    ),
    recovery=_BG_RECOVERY,
    interval_history=(np.array([0, 2, 10]), np.array([0.0, 30.43, 38.0]), np.full(3, 38.86)),
    neg_log_likelihood=mbgnbd_neg_log_likelihood,
    thetas=[np.array([0.6, 5.0, 1.2, 1.3]), *_SHARED_THETAS],
    extreme_rows=_extreme_rows(x_1=0, age_1=1e6),
    simulation_seed=12,
    shift=1,
)

PARETONBD_CASE = NbdCase(
    model=ParetoNBD,
    reference_name="ParetoNBDFitter",
    published=NOTE_PARAMS,
    simulate=simulate_paretonbd,
    coverage=Coverage(2005, "expected_purchases", (52.0,)),  # E[X(52)], the note's parameters
    recovery=Recovery(
        bounds={"r": (0.3, 2.0), "alpha": (3.0, 20.0), "s": (0.3, 2.0), "beta": (3.0, 30.0)},
        examples=4,
        customers=3000,
        age_range=(26.0, 78.0),
    ),
    interval_history=(np.array([0.0, 2.0, 10.0]), np.array([0.0, 30.43, 20.0]), np.full(3, 38.86)),
)

BG_FAMILY = [pytest.param(case, id=case.id) for case in (BGNBD_CASE, MBGNBD_CASE)]
ALL_CASES = [*BG_FAMILY, pytest.param(PARETONBD_CASE, id=PARETONBD_CASE.id)]


@functools.cache
def cdnow_summary() -> pd.DataFrame:
    """CDNOW calibration summary shipped with lifetimes (FHL's file): 2357 customers, weeks."""
    import lifetimes.datasets

    with quiet_reference():
        frame: pd.DataFrame = lifetimes.datasets.load_cdnow_summary(index_col=[0])
    return frame


@functools.cache
def cdnow_columns() -> Columns:
    """CDNOW frequency, recency and T (weeks) as float arrays."""
    cdnow = cdnow_summary()
    return (
        cdnow["frequency"].to_numpy(float),
        cdnow["recency"].to_numpy(float),
        cdnow["T"].to_numpy(float),
    )


@functools.cache
def cdnow_fit(case: NbdCase) -> NbdModel:
    """Our model fitted to CDNOW (cached: each model is fitted once per session)."""
    return case.model().fit(*cdnow_columns())


@functools.cache
def lifetimes_fit(case: NbdCase) -> Any:
    """lifetimes' fitter of the same model, fitted to CDNOW."""
    import lifetimes

    with quiet_reference():
        return getattr(lifetimes, case.reference_name)().fit(*cdnow_columns())


def reference_log_likelihood(ref: Any, columns: Columns) -> float:
    """lifetimes' (M)BG/NBD log-likelihood at its own estimates on the ORIGINAL time scale.

    lifetimes stores the mean NLL in ``_negative_log_likelihood_`` but computes it on time
    rescaled to max(T) = 10, which shifts log L by sum(x) log(scale); re-evaluating its
    likelihood function on the data in weeks and multiplying by n gives the comparable value.
    """
    x, t_x, age = columns
    log_params = np.log(ref.params_[["r", "alpha", "a", "b"]].to_numpy(float))
    with quiet_reference():
        mean_nll = ref._negative_log_likelihood(log_params, x, t_x, age, np.ones_like(x), 0.0)
    return -float(mean_nll) * float(x.shape[0])
