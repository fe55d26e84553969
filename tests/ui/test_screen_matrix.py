"""The screen matrix: from every screen the app has, every key its help lists.

Each cell starts a fresh app (the real engine, the in-process simulator, fake time),
opens one *context* (a screen, or the grid in a particular state), presses one key
that the help screen lists there, lets two one-second ticks pass, and asserts that
the app is alive (or exited cleanly, for a quit key) and that the screen stack is
what the key's action should give.

Nothing here is a hand list of keys: the keys come from ``bindings_of`` (what ``?``
shows) at the moment the context is open. The contexts are a list, but
``test_every_screen_class_has_a_context`` fails for any ``Screen`` subclass of
``tuiapp.ui`` that no context opens, and ``expectation`` fails for any action it does
not know: a new screen or a new binding joins the matrix or breaks this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.screen import Screen

import tuiapp.ui
from tuiapp.ui.app import FleetScreen
from tuiapp.ui.detail import DetailScreen
from tuiapp.ui.dialogs import ConfirmScreen, QuitScreen, ReasonScreen
from tuiapp.ui.event_log import LogEntry
from tuiapp.ui.help import HelpScreen, bindings_of
from tuiapp.ui.log_screen import LogScreen
from tuiapp.ui.pairing_screen import PairingScreen

from helpers.sim_fixtures import pick
from helpers.ui_rig import SIZE, Rig, clean_instances, make_rig

Opener = Callable[[Rig, str, list[str]], Awaitable[None]]


@dataclass(frozen=True)
class Context:
    name: str
    top: type[Screen[object]]
    open: Opener
    boot_seconds: float = 0  # > 0: the simulator's restarts take this long (in flight)


# ---- openers: from a ready grid with the cursor on ``target`` ------------------------


async def _grid(rig: Rig, target: str, bulk: list[str]) -> None:
    return None


async def _grid_log(rig: Rig, target: str, bulk: list[str]) -> None:
    await rig.keys("l")
    assert rig.app.main.event_log.display


async def _grid_marked(rig: Rig, target: str, bulk: list[str]) -> None:
    for name in bulk:
        await rig.select(name)
        await rig.keys("space")
    assert set(rig.app.model.marks) == set(bulk)


async def _push(rig: Rig, keys: tuple[str, ...], top: type[Screen[object]]) -> None:
    await rig.keys(*keys)
    await rig.until(lambda: isinstance(rig.app.screen, top), top.__name__)


async def _detail(rig: Rig, target: str, bulk: list[str]) -> None:
    await _push(rig, ("enter",), DetailScreen)


async def _help(rig: Rig, target: str, bulk: list[str]) -> None:
    await _push(rig, ("question_mark",), HelpScreen)


async def _help_over_detail(rig: Rig, target: str, bulk: list[str]) -> None:
    await _detail(rig, target, bulk)
    await _push(rig, ("question_mark",), HelpScreen)


async def _palette(rig: Rig, target: str, bulk: list[str]) -> None:
    await _push(rig, ("ctrl+p",), CommandPalette)


async def _palette_over_detail(rig: Rig, target: str, bulk: list[str]) -> None:
    await _detail(rig, target, bulk)
    await _push(rig, ("ctrl+p",), CommandPalette)


async def _confirm(rig: Rig, target: str, bulk: list[str]) -> None:
    await _push(rig, ("r",), ConfirmScreen)


async def _confirm_over_detail(rig: Rig, target: str, bulk: list[str]) -> None:
    await _detail(rig, target, bulk)
    await _push(rig, ("r",), ConfirmScreen)


async def _bulk_confirm(rig: Rig, target: str, bulk: list[str]) -> None:
    await _grid_marked(rig, target, bulk)
    await _push(rig, ("r",), ConfirmScreen)
    screen = rig.app.screen
    assert isinstance(screen, ConfirmScreen) and len(screen.plan.targets) == len(bulk)


def _cooling(rig: Rig, target: str) -> None:
    """Someone restarted ``target`` just now: R has a cooldown to lift (with nothing to
    lift, R says so and opens nothing)."""
    from tuiapp.state import ActionRecord

    with rig.app.state.locked() as data:
        data.add_record(
            target,
            ActionRecord(
                "earlier",
                "restart",
                rig.clock() - 5,
                "bob",
                "elsewhere",
                1,
                "recovered",
                rig.clock() + 60,
            ),
        )


async def _reason(rig: Rig, target: str, bulk: list[str]) -> None:
    _cooling(rig, target)
    await _push(rig, ("R",), ReasonScreen)


async def _reason_over_detail(rig: Rig, target: str, bulk: list[str]) -> None:
    _cooling(rig, target)
    await _detail(rig, target, bulk)
    await _push(rig, ("R",), ReasonScreen)


async def _send_restart(rig: Rig, target: str) -> None:
    await _confirm(rig, target, [])
    rig.clock.advance(1.0)  # past the type-ahead guard
    await rig.keys("y")
    await rig.until(lambda: target in rig.app.engine.in_flight, "the restart in flight")


async def _grid_verifying(rig: Rig, target: str, bulk: list[str]) -> None:
    await _send_restart(rig, target)


async def _detail_verifying(rig: Rig, target: str, bulk: list[str]) -> None:
    await _send_restart(rig, target)
    await _detail(rig, target, bulk)


async def _grid_bulk_running(rig: Rig, target: str, bulk: list[str]) -> None:
    await _bulk_confirm(rig, target, bulk)
    rig.clock.advance(1.0)
    await rig.keys("y")
    await rig.until(lambda: rig.app.bulk_running, "the bulk run")


async def _quit_guard(rig: Rig, target: str, bulk: list[str]) -> None:
    await _send_restart(rig, target)
    await _push(rig, ("q",), QuitScreen)


async def _log_screen(rig: Rig, target: str, bulk: list[str]) -> None:
    """L: the full-screen event log."""
    await _push(rig, ("L",), LogScreen)


async def _log_screen_searched(rig: Rig, target: str, bulk: list[str]) -> None:
    """l twice: the full-screen log, with a search that matches (n / N step through)."""
    rig.app.log_entries([LogEntry(rig.clock() - i, f"needle {i}") for i in range(3)])
    await _push(rig, ("l", "l"), LogScreen)
    await rig.keys("slash", *"needle", "enter")
    screen = rig.app.screen
    assert isinstance(screen, LogScreen) and screen.log_view.matches


async def _pairing(rig: Rig, target: str, bulk: list[str]) -> None:
    """P on a SCAN_QR_CODE row (the default fleet has Evolution's and RyzeAPI's)."""
    await rig.select(pick(rig.sim, "evolution", "SCAN_QR_CODE"))
    await _push(rig, ("P",), PairingScreen)


SLOW = 3600.0  # restarts that stay in flight while the test looks

CONTEXTS = [
    Context("grid", FleetScreen, _grid),
    Context("grid with the event log", FleetScreen, _grid_log),
    Context("grid with marked rows", FleetScreen, _grid_marked),
    Context("grid while verifying", FleetScreen, _grid_verifying, SLOW),
    Context("grid while a bulk runs", FleetScreen, _grid_bulk_running, SLOW),
    Context("detail", DetailScreen, _detail),
    Context("detail while verifying", DetailScreen, _detail_verifying, SLOW),
    Context("help", HelpScreen, _help),
    Context("help over detail", HelpScreen, _help_over_detail),
    Context("palette", CommandPalette, _palette),
    Context("palette over detail", CommandPalette, _palette_over_detail),
    Context("confirm", ConfirmScreen, _confirm),
    Context("confirm over detail", ConfirmScreen, _confirm_over_detail),
    Context("bulk confirm", ConfirmScreen, _bulk_confirm),
    Context("override reason", ReasonScreen, _reason),
    Context("override reason over detail", ReasonScreen, _reason_over_detail),
    Context("quit guard", QuitScreen, _quit_guard, SLOW),
    Context("pairing", PairingScreen, _pairing),
    Context("event log", LogScreen, _log_screen),
    Context("event log, searched", LogScreen, _log_screen_searched),
]


# ---- what a key should give ------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What the test knows around one key press."""

    before: list[Screen[object]]
    after: list[Screen[object]]
    running: bool
    return_code: int | None
    in_flight: bool
    notices_before: int
    notices_after: int


def _types(stack: list[Screen[object]]) -> list[str]:
    return [type(screen).__name__ for screen in stack]


def _same(seen: Seen) -> str | None:
    if seen.after == seen.before:
        return None
    return f"the stack changed: {_types(seen.before)} -> {_types(seen.after)}"


def _popped(seen: Seen) -> str | None:
    if seen.after == seen.before[:-1]:
        return None
    return f"expected the top screen closed: {_types(seen.before)} -> {_types(seen.after)}"


def _pushed(*tops: type[Screen[object]]) -> Callable[[Seen], str | None]:
    def check(seen: Seen) -> str | None:
        if seen.after[:-1] == seen.before and isinstance(seen.after[-1], tops):
            return None
        names = "/".join(t.__name__ for t in tops)
        return f"expected {names} on top: {_types(seen.before)} -> {_types(seen.after)}"

    return check


def _exited(seen: Seen) -> str | None:
    if not seen.running and seen.return_code == 0:
        return None
    return f"expected a clean exit: running={seen.running} rc={seen.return_code}"


def _quit(seen: Seen) -> str | None:
    """q / ctrl+q / ctrl+c: exit at once unless actions are in flight, then ask (and a
    second quit key while asking means yes)."""
    if not seen.in_flight or isinstance(seen.before[-1], QuitScreen):
        return _exited(seen)
    return _pushed(QuitScreen)(seen)


def _act(override: bool) -> Callable[[Seen], str | None]:
    """r / c open the confirmation, R / C the reason prompt; a refusal (or an action the
    provider lacks) leaves the stack and says why in a notification."""
    dialog = _pushed(ReasonScreen if override else ConfirmScreen)

    def check(seen: Seen) -> str | None:
        if dialog(seen) is None:
            return None
        if seen.after == seen.before and seen.notices_after > seen.notices_before:
            return None
        return f"neither the dialog nor a notification: {dialog(seen)}"

    return check


def _pair(seen: Seen) -> str | None:
    """P opens the pairing screen on a SCAN_QR_CODE row; anywhere else a notification says
    why and nothing opens."""
    if _pushed(PairingScreen)(seen) is None:
        return None
    if seen.after == seen.before and seen.notices_after > seen.notices_before:
        return None
    return f"neither the pairing screen nor a notification: {_types(seen.after)}"


def _confirm_key(seen: Seen) -> str | None:
    top = seen.before[-1]
    if isinstance(top, QuitScreen):
        return _exited(seen)
    if isinstance(top, ConfirmScreen) and top.plan.needs_count:
        return _same(seen)  # the count is not typed yet
    return _popped(seen)


def _button_press(seen: Seen) -> str | None:
    """enter on the focused button: every dialog opens with focus on Cancel / Stay."""
    return _popped(seen)


def _palette_escape(seen: Seen) -> str | None:
    return _popped(seen)


def _palette_submit(seen: Seen) -> str | None:
    """enter runs the highlighted command (a jump, an action, a theme...): the palette
    closes, whatever the command then shows; nothing crashes."""
    if not seen.running:
        return _exited(seen)
    if any(isinstance(screen, CommandPalette) for screen in seen.after):
        return f"the palette stayed open: {_types(seen.after)}"
    return None


SAME_ACTIONS = {
    # the grid and its screen
    "filter",
    "problems",
    "sort",
    "poll_now",
    "pause",
    "log",
    "abort",
    "escape",
    "cursor_up",
    "cursor_down",
    "page_up",
    "page_down",
    "half_page_up",  # ctrl+u / ctrl+d
    "half_page_down",
    "first",
    "last",
    "mark",
    "sort_reverse",  # S
    # scrolling (detail, help) and the palette's own list
    "scroll_up",
    "scroll_down",
    "scroll_left",
    "scroll_right",
    "scroll_home",
    "scroll_end",
    "page_left",
    "page_right",
    "cursor_left",
    "cursor_right",
    "cursor_page_up",
    "cursor_page_down",
    "cursor_home",
    "cursor_end",
    "home",
    "end",
    # text input (the filter box, the reason and count boxes, the palette's search)
    "delete_left",
    "delete_right",
    "delete_left_word",
    "delete_right_word",
    "delete_left_all",
    "delete_right_all",
    "cursor_left_word",
    "cursor_right_word",
    "select_all",
    "select_left",
    "select_right",
    "select_left_word",
    "select_right_word",
    "copy",
    "cut",
    "paste",
    "submit",  # the reason box: an empty reason is refused, the dialog stays
    "focus_next",
    "focus_previous",
    "notify_palette_closed",
    "copy_text",  # super+c: copy the selection (ctrl+c quits: a priority binding)
    "command_list",  # the palette's list: up, down, page up/down, first, last
    "code",  # the pairing screen: opens the phone number box on the same screen
    "search",  # the full-screen log: opens its search box on the same screen
    "next_match",  # the full-screen log: n / N move to a match, same screen
    "previous_match",
    "scan",  # the pairing screen, demo only: the simulated phone scans
}


def expectation(action: str, top: Screen[object]) -> Callable[[Seen], str | None]:
    """What pressing a key bound to ``action`` on ``top`` should do; unknown actions fail."""
    name = re.sub(r"^(app|screen)\.", "", action)
    base = name.split("(", 1)[0]
    if base == "disabled":
        return _same
    if isinstance(top, CommandPalette) and base == "submit":
        return _palette_submit
    if isinstance(top, CommandPalette) and base == "command_palette":
        return _same  # one palette at a time
    if base == "help":
        return _pushed(HelpScreen)
    if base == "command_palette":
        return _pushed(CommandPalette)
    if base == "detail":
        return _pushed(DetailScreen)
    if base == "log_screen":
        return _pushed(LogScreen)
    if base == "log" and isinstance(top, FleetScreen) and top.event_log.display:
        return _pushed(LogScreen)  # l while the panel shows: the full-screen log
    if base == "close_log":
        return _popped  # l on the full-screen log: back to the grid, the panel hidden
    if base == "act":
        return _act(override="True" in name)
    if base == "pair":
        return _pair
    if base == "quit":
        return _quit
    if base == "close" or base == "cancel":
        return _popped
    if base == "confirm":
        return _confirm_key
    if base == "press":
        return _button_press
    if base == "escape" and isinstance(top, CommandPalette):
        return _palette_escape
    if base == "dismiss" and isinstance(top, CommandPalette):
        return _palette_escape
    if base in SAME_ACTIONS:
        return _same
    raise AssertionError(
        f"no expectation for action {action!r} on {type(top).__name__}: "
        "add it to tests/ui/test_screen_matrix.py"
    )


# ---- the matrix ------------------------------------------------------------------------


def _ui_screen_classes() -> set[type[Screen[object]]]:
    for info in pkgutil.iter_modules(tuiapp.ui.__path__):
        if info.name != "screenshots":
            importlib.import_module(f"tuiapp.ui.{info.name}")
    found: set[type[Screen[object]]] = set()
    todo: list[type[Screen[object]]] = [Screen]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            module = sub.__module__
            if module.startswith("tuiapp.ui.") and not sub.__name__.startswith("_"):
                found.add(sub)
    return found


def test_every_screen_class_has_a_context() -> None:
    """A screen added to tuiapp.ui without a context here fails this test."""
    opened = {context.top for context in CONTEXTS}
    bases = {cls for cls in _ui_screen_classes() if cls.__subclasses__()}
    missing = {cls for cls in _ui_screen_classes() - bases if cls not in opened}
    assert not missing, f"no context opens {sorted(c.__name__ for c in missing)}"
    assert CommandPalette in opened


def _make(tmp_path: Path, context: Context) -> tuple[Rig, str, list[str]]:
    rig = make_rig(tmp_path, boot_seconds=context.boot_seconds)
    target = pick(rig.sim, "hypersender", "FAILED")
    bulk = clean_instances(rig.sim, ("hypersender", "waha"), "WORKING", 3)
    return rig, target, bulk


async def _open(rig: Rig, context: Context, target: str, bulk: list[str]) -> None:
    await rig.select(target)
    await context.open(rig, target, bulk)
    assert isinstance(rig.app.screen, context.top), (context.name, type(rig.app.screen))
    rig.clock.advance(1.0)  # past any dialog's type-ahead guard
    rig.app.tick()


async def _two_ticks(rig: Rig) -> None:
    for _ in range(2):
        if not rig.app.is_running:
            return
        await rig.advance(1.0)
        rig.app.tick()
    if rig.pilot is not None and rig.app.is_running:
        await rig.pilot.pause()


def _keys_of(screen: Screen[object]) -> list[tuple[str, str]]:
    """(key, action) for every key the help lists on ``screen``; an action the help
    marks "not available now" is ``disabled`` (the key must then do nothing)."""
    return [
        (key, entry.action if entry.enabled else "disabled")
        for entry in bindings_of(screen)
        for key in entry.key_names
    ]


async def _press(rig: Rig, key: str, action: str) -> str | None:
    """Press ``key`` in the open context; what is wrong, or None."""
    before = list(rig.app.screen_stack)
    check = expectation(action, before[-1])
    in_flight = bool(rig.app.engine.in_flight)
    notices = len(rig.app._notifications)
    await rig.keys(key)
    await _two_ticks(rig)
    running = rig.app.is_running
    seen = Seen(
        before=before,
        after=list(rig.app.screen_stack) if running else [],
        running=running,
        return_code=rig.app.return_code,
        in_flight=in_flight,
        notices_before=notices,
        notices_after=len(rig.app._notifications) if running else notices,
    )
    return check(seen)


async def _restore(rig: Rig, depth: int, focused: object) -> bool:
    """Back to the context after a key that pushed a screen over it; False when the
    context is gone (closed, exited, focus moved, an action sent): a new app then."""
    app = rig.app
    if not app.is_running or len(app.screen_stack) < depth:
        return False
    while len(app.screen_stack) > depth:
        app.pop_screen()
        assert rig.pilot is not None
        await rig.pilot.pause()
    return app.screen.focused is focused


@pytest.mark.parametrize("context", CONTEXTS, ids=[c.name for c in CONTEXTS])
async def test_every_key_of_every_screen(tmp_path: Path, context: Context) -> None:
    """Every key the help lists in ``context``: pressed, two ticks, then checked.

    One app serves the keys that leave the context open (or push a screen over it,
    which is popped again); a key that closes it, moves focus, sends an action or
    quits gets the next key a fresh app.
    """
    failures: list[str] = []
    pairs: list[tuple[str, str]] | None = None
    index = 0
    apps = 0
    while pairs is None or index < len(pairs):
        rig, target, bulk = _make(tmp_path / f"app{apps}", context)
        apps += 1
        async with rig.app.run_test(size=SIZE) as pilot:
            await rig.ready(pilot)
            await _open(rig, context, target, bulk)
            if pairs is None:
                pairs = _keys_of(rig.app.screen)
                assert pairs, f"{context.name}: the help lists no key"
            while index < len(pairs):
                key, action = pairs[index]
                index += 1
                depth = len(rig.app.screen_stack)
                focused = rig.app.screen.focused
                problem = await _press(rig, key, action)
                if problem:
                    failures.append(f"{context.name}: {key} ({action}): {problem}")
                if not await _restore(rig, depth, focused):
                    break
                rig.clock.advance(1.0)  # past the guard of a dialog shown again
            if rig.app.is_running:
                rig.app.exit(0)
        if rig.app._exception is not None:
            failures.append(f"{context.name}: crashed: {rig.app._exception!r}")
    assert not failures, "\n".join(failures)
