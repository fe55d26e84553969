"""The six simulated provider APIs, by provider name (see each module for its facts)."""

from __future__ import annotations

from tuiapp.simulator.apis.base import ProviderAPI
from tuiapp.simulator.apis.evolution import Evolution
from tuiapp.simulator.apis.hypersender import Hypersender
from tuiapp.simulator.apis.ryzeapi import RyzeAPI
from tuiapp.simulator.apis.waha import Waha
from tuiapp.simulator.apis.wasend import Wasend
from tuiapp.simulator.apis.wawp import Wawp

__all__ = ["API"]

API: dict[str, ProviderAPI] = {
    api.provider: api for api in (Hypersender(), Wawp(), RyzeAPI(), Wasend(), Waha(), Evolution())
}
