"""PAAM: pruning by active attention manipulation (registers method ``paam``)."""

from edgeprune.methods.paam.attention import KQAN, VanillaAN, build_attention, leaky_exp
from edgeprune.methods.paam.binarize import Binarization, by_budget, by_count, by_ratio, by_theta
from edgeprune.methods.paam.config import PAAMConfig
from edgeprune.methods.paam.method import PAAMBinarize, PAAMMethod, plan_from
from edgeprune.methods.paam.scores import ScoreBank

__all__ = [
    "KQAN",
    "Binarization",
    "PAAMConfig",
    "PAAMBinarize",
    "PAAMMethod",
    "ScoreBank",
    "VanillaAN",
    "build_attention",
    "by_budget",
    "by_count",
    "by_ratio",
    "by_theta",
    "leaky_exp",
    "plan_from",
]
