"""Workarounds for two memory leaks in Textual 8.2.8 (pinned), found by tests/bench/soak.py.

1. ``Footer`` binds every ``FooterKey`` it composes to its ``compact`` reactive; the
   watcher list is pruned only when ``compact`` changes, which never happens, so every
   footer rebuild (screen push/pop, focus, binding change) keeps the old keys alive
   (Textualize/textual#6666). ``LeanFooter`` prunes detached keys after each recompose.
2. ``StylesCache.get_inner_outer`` is an ``lru_cache`` on an instance method, so the cache
   key holds removed widgets' caches alive, up to 1024 of them (Textualize/textual#6665).
   The result depends on the two colours only; ``apply()`` caches it on those.

Both are no-ops on a Textual that no longer has the private names they touch.
"""

from __future__ import annotations

from functools import lru_cache

from textual.color import Color
from textual.style import Style
from textual.widgets import Footer

__all__ = ["LeanFooter", "apply"]


class LeanFooter(Footer):
    """Textual's Footer without the watcher leak (see the module docstring)."""

    async def recompose(self) -> None:
        await super().recompose()
        watchers = getattr(self, "__watchers", {}).get("compact")
        if watchers:
            watchers[:] = [
                (node, callback)
                for node, callback in watchers
                if node.is_attached and not getattr(node, "_closing", False)
            ]


@lru_cache(1024)
def _inner_outer(base_background: Color, background: Color) -> tuple[Style, Style]:
    return Style(background=base_background + background), Style(background=base_background)


def apply() -> None:
    """Key StylesCache's inner/outer style cache on the colours, not on the widget."""
    try:
        from textual._styles_cache import StylesCache
    except ImportError:  # pragma: no cover - a Textual without the private module
        return
    if hasattr(StylesCache, "get_inner_outer"):
        StylesCache.get_inner_outer = lambda self, base, background: _inner_outer(  # type: ignore[method-assign]
            base, background
        )
