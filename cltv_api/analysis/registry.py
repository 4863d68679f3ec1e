"""Names of the models the service offers, as used in requests and stored fits."""

from __future__ import annotations

from typing import Literal

from models import BGNBD, MBGNBD, GammaGamma, ParetoNBD
from models._base import BaseModel

PurchaseModelName = Literal["bgnbd", "mbgnbd", "pnbd"]
PURCHASE_MODELS: dict[str, type[BaseModel]] = {
    "bgnbd": BGNBD,
    "mbgnbd": MBGNBD,
    "pnbd": ParetoNBD,
}
SPEND_MODELS: dict[str, type[BaseModel]] = {"gamma_gamma": GammaGamma}
AUTO_CANDIDATES: tuple[str, ...] = ("bgnbd", "mbgnbd", "pnbd")
