"""Names of the models the service offers, as used in requests and stored fits."""

from __future__ import annotations

from typing import Literal

from models import BGBB, BGNBD, MBGNBD, GammaGamma, ParetoNBD
from models._base import BaseModel

PurchaseModelName = Literal["bgnbd", "mbgnbd", "pnbd", "bgbb"]
PURCHASE_MODELS: dict[str, type[BaseModel]] = {
    "bgnbd": BGNBD,
    "mbgnbd": MBGNBD,
    "pnbd": ParetoNBD,
    "bgbb": BGBB,
}
DISCRETE_MODELS = frozenset({"bgbb"})
"""Models whose time is counted in whole opportunities (one per period of the time unit)."""
SPEND_MODELS: dict[str, type[BaseModel]] = {"gamma_gamma": GammaGamma}
AUTO_CANDIDATES: tuple[str, ...] = ("bgnbd", "mbgnbd", "pnbd")
"""``auto`` compares the continuous-time models; BG/BB tells a different (discrete) story and is
chosen explicitly when purchase opportunities are discrete (one per period of the time unit)."""
