"""Secret hygiene: a planted token never reaches anything tuiapp shows, prints or writes.

Every secret in the fleet is planted and recognisable: account tokens (inline in a
config file on disk, and through token_env), Wawp's per-instance access_token (query
string), RyzeAPI TokenInstance and Evolution instance tokens in the config, and the
per-instance secrets Hypersender and Evolution put in their list bodies. Each planted
token carries the marker ``PLNT`` every few characters, so that a cut or wrapped
fragment of one is caught as well as the whole token and its URL-encoded forms.

The simulator is made hostile with its ``echo`` fault: instances and whole accounts
answer 500, 400 or 200-with-an-unknown-status with the full request URL (Wawp's query
string included) and every request header in that provider's own body shape. Then
every surface is driven and searched: the adapters' observations and action
responses, ``check`` in its three formats, ``restart``/``reconnect`` (dry run and
real, in-process and as real processes over a socket), the audit log, the debug log,
the TUI (grid, detail, event log, help, the confirmation dialog, notifications) as
exported screenshots, reprs, config errors and tracebacks through the debug log's
formatter. A failure names where each leak was found.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import io
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
import tomli_w

from tuiapp.action_cli import run_action_command
from tuiapp.config import ConfigError, FleetConfig, config_from_dict, load_config
from tuiapp.debuglog import RedactingFormatter
from tuiapp.offload import offloads_done, offloads_in_flight
from tuiapp.providers.registry import make_adapters, make_client
from tuiapp.report import run_check, sweep
from tuiapp.secrets import Secret
from tuiapp.simulator import SimTransport, create_app
from tuiapp.simulator.fleet import SimAccount, SimFleet, SimInstance
from tuiapp.simulator.state import Simulator

from helpers.sim_fixtures import SIM_BASE, FakeClock, ManualSleep

MARK = "PLNT"
PROVIDERS = ("hypersender", "wawp", "ryzeapi", "wasend", "waha", "evolution")
ECHO_STATUSES = (500, 400, 200)
# The state an action target starts in, so that its provider's action is allowed.
ACTION_STATE = {
    "hypersender": "FAILED",
    "wawp": "FAILED",
    "ryzeapi": "STOPPED",
    "wasend": "FAILED",
    "waha": "FAILED",
    "evolution": "STOPPED",
}
ENV_ACCOUNTS = ("hypersender-main", "waha-main")  # these read their token from token_env
OPERATOR = "hygiene"


# ---- the planted fleet -------------------------------------------------------------------


def plant(label: str, *, odd: bool = False) -> str:
    """A recognisable token: the marker every few characters, and characters URLs encode.

    ``odd`` adds the sub-delimiters (``: @ ! * '``) that URL encoders disagree about,
    for tokens that travel in a query string (Wawp).
    """
    h = hashlib.sha256(label.encode()).hexdigest()
    if odd:
        return f"{MARK}-{label}-{h[:6]}+{MARK}:{h[6:12]}@{MARK}!{h[12:18]}*{MARK}'{h[18:22]}"
    return f"{MARK}-{label}-{h[:6]}+{MARK}/{h[6:12]}={MARK}~{h[12:18]}"


def planted_fleet() -> SimFleet:
    """Per provider: a clean account and three echoing accounts; on the clean account a
    healthy instance, three echoing instances and three action targets that echo only
    when acted on. Every secret is planted."""
    accounts: dict[str, SimAccount] = {}
    instances: list[SimInstance] = []

    def add(name: str, account: str, provider: str, **kwargs: Any) -> None:
        n = len(instances) + 1
        instance_id = {
            "hypersender": str(uuid.UUID(int=n, version=4)),
            "wawp": f"WID{n:09d}",
        }.get(provider, name)
        odd = provider == "wawp" and name.startswith("e")
        instances.append(
            SimInstance(
                name=name,
                account=account,
                provider=provider,
                id=instance_id,
                token=plant(f"inst-{name}", odd=odd),
                phone=f"1555{n:07d}",
                tags=["planted", provider],
                **kwargs,
            )
        )

    for provider in PROVIDERS:
        main = f"{provider}-main"
        token = None if provider == "wawp" else plant(f"acct-{main}")
        accounts[main] = SimAccount(name=main, provider=provider, token=token)
        add(f"ok-{provider}", main, provider)
        for status in ECHO_STATUSES:
            add(
                f"e{status}-{provider}",
                main,
                provider,
                fault="echo",
                fault_params={"status": status},
            )
            add(
                f"act{status}-{provider}",
                main,
                provider,
                state=ACTION_STATE[provider],
                fault="echo",
                fault_params={"status": status, "on": "action"},
            )
            echo_account = f"{provider}-echo{status}"
            token = None if provider == "wawp" else plant(f"acct-{echo_account}")
            accounts[echo_account] = SimAccount(
                name=echo_account,
                provider=provider,
                token=token,
                fault="echo",
                fault_params={"status": status},
            )
            add(f"a{status}-{provider}", echo_account, provider)
    return SimFleet(accounts=accounts, instances=instances, seed=0, scenario="calm")


def instance_token_in_config(inst: SimInstance) -> bool:
    """Wawp needs its own; RyzeAPI (TokenInstance) and Evolution accept one: plant those too."""
    if inst.provider == "wawp":
        return True
    return inst.provider in ("ryzeapi", "evolution") and inst.account.endswith("-main")


def config_data(
    fleet: SimFleet, base_url: str, state_dir: Path, *, verify_window: float = 10
) -> tuple[dict[str, Any], dict[str, str]]:
    """The tuiapp config for ``fleet`` (inline tokens, two accounts via token_env)."""
    base = base_url.rstrip("/")
    env: dict[str, str] = {}
    accounts: dict[str, dict[str, Any]] = {}
    for acc in fleet.accounts.values():
        entry: dict[str, Any] = {"provider": acc.provider, "base_url": f"{base}/{acc.provider}"}
        if acc.token is not None:
            if acc.name in ENV_ACCOUNTS:
                var = "PLANTED_" + acc.name.upper().replace("-", "_")
                env[var] = acc.token
                entry["token_env"] = var
            else:
                entry["token"] = acc.token
        accounts[acc.name] = entry
    rows: list[dict[str, Any]] = []
    for inst in fleet.instances:
        row: dict[str, Any] = {
            "name": inst.name,
            "account": inst.account,
            "id": inst.id,
            "tags": list(inst.tags),
        }
        if instance_token_in_config(inst):
            row["token"] = inst.token
        rows.append(row)
    monitor = {
        "poll_interval": 15,
        "timeout": 5,
        "stabilize": 60,
        "verify_window": verify_window,
        "state_dir": str(state_dir),
    }
    return {"monitor": monitor, "accounts": accounts, "instances": rows}, env


def all_secrets(fleet: SimFleet) -> dict[str, str]:
    """token -> a label saying whose it is."""
    found = {acc.token: f"account {acc.name}" for acc in fleet.accounts.values() if acc.token}
    found.update({inst.token: f"instance {inst.name}" for inst in fleet.instances})
    return found


# ---- the search ------------------------------------------------------------------------


def forms_of(token: str) -> dict[str, str]:
    """Every spelling of ``token`` a leak could take: plain, URL-encoded, JSON, HTML."""
    return {
        "plain": token,
        "quote": quote(token),
        "quote(safe='')": quote(token, safe=""),
        "quote_plus": quote_plus(token),
        "json": json.dumps(token)[1:-1],
        "html": html.escape(token),
    }


class Surfaces:
    """Everything a test captured, by where it came from; ``assert_clean`` searches it."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: object) -> None:
        self.texts.append((where, text if isinstance(text, str) else repr(text)))

    def add_file(self, where: str, path: Path) -> None:
        self.add(where, path.read_text(encoding="utf-8") if path.exists() else "")

    def leaks(self) -> list[str]:
        found: list[str] = []
        spellings = [
            (form, name, label)
            for token, label in self.secrets.items()
            for name, form in forms_of(token).items()
        ]
        for where, text in self.texts:
            if MARK not in text:
                continue
            hit = False
            for form, name, label in spellings:
                at = text.find(form)
                if at >= 0:
                    hit = True
                    found.append(f"{where}: token of {label} ({name}): {_context(text, at)}")
            if not hit:  # a cut, wrapped or otherwise spelled fragment of a planted token
                at = text.find(MARK)
                found.append(f"{where}: a fragment of a planted token: {_context(text, at)}")
        return found

    def assert_clean(self) -> None:
        leaks = self.leaks()
        assert not leaks, f"{len(leaks)} secret leak(s):\n" + "\n".join(leaks[:40])

    def total(self) -> int:
        return sum(len(text) for _, text in self.texts)


def _context(text: str, at: int, width: int = 90) -> str:
    return repr(text[max(0, at - width) : at + width])


@contextlib.contextmanager
def debug_log(path: Path) -> Iterator[Path]:
    """What tuiapp logs, at DEBUG, into ``path`` the way the debug log file does."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("tuiapp")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


# ---- an in-process world ---------------------------------------------------------------


class World:
    """The planted fleet behind the in-process simulator, on a fake clock."""

    def __init__(self, tmp_path: Path, *, verify_window: float = 10) -> None:
        self.sim_fleet = planted_fleet()
        self.clock = FakeClock()
        self.app = create_app(self.sim_fleet, self.clock, boot_seconds=0, limits=False)
        self.sim: Simulator = self.app.state.sim
        self.state_dir = tmp_path / "state"
        data, self.environ = config_data(
            self.sim_fleet, SIM_BASE, self.state_dir, verify_window=verify_window
        )
        self.fleet: FleetConfig = config_from_dict(data, environ=self.environ)
        self.surfaces = Surfaces(all_secrets(self.sim_fleet))

    def transport(self) -> SimTransport:
        return SimTransport(self.app)

    async def sleep(self, seconds: float) -> None:
        """Fake time: a wait moves the clock (the CLI path has nothing else to wait for)."""
        if seconds > 0:
            self.clock.advance(seconds)
        await asyncio.sleep(0)

    def echoes(self, *, action: bool | None = None) -> list[dict[str, Any]]:
        rows = [r for r in self.sim.requests() if r["fault"] == "echo"]
        if action is not None:
            rows = [r for r in rows if (r["action"] is not None) == action]
        return rows


def test_echo_fault_answers_the_request_in_each_providers_shape(tmp_path: Path) -> None:
    """The hostile server really hostile: every provider echoes its credentials back."""
    world = World(tmp_path)

    async def probe() -> dict[tuple[str, int], httpx.Response]:
        got = {}
        async with httpx.AsyncClient(transport=world.transport()) as client:
            for provider in PROVIDERS:
                for status in ECHO_STATUSES:
                    inst = world.sim.instance(f"e{status}-{provider}").spec
                    account = world.sim_fleet.accounts[inst.account]
                    secret = inst.token if provider == "wawp" else account.token
                    url, params, headers = _raw_read(provider, inst.id, secret or "")
                    got[(provider, status)] = await client.get(
                        f"{SIM_BASE}/{provider}{url}", params=params, headers=headers
                    )
        return got

    async def lists() -> dict[str, str]:
        async with httpx.AsyncClient(transport=world.transport()) as client:
            hs = world.sim_fleet.accounts["hypersender-main"].token
            evo = world.sim_fleet.accounts["evolution-main"].token
            listed = await client.get(
                f"{SIM_BASE}/hypersender/instances", headers={"Authorization": f"Bearer {hs}"}
            )
            fetched = await client.get(
                f"{SIM_BASE}/evolution/instance/fetchInstances", headers={"apikey": evo or ""}
            )
            return {"hypersender": listed.text, "evolution": fetched.text}

    bodies = asyncio.run(lists())
    for provider, body in bodies.items():  # list bodies carry every instance's own secret
        own = world.sim.instance(f"ok-{provider}").spec.token
        assert json.dumps(own)[1:-1] in body, provider
    answers = asyncio.run(probe())
    for (provider, status), response in answers.items():
        assert response.status_code == status, (provider, status, response.text)
        body = response.json()
        inst = world.sim.instance(f"e{status}-{provider}").spec
        secret = inst.token if provider == "wawp" else world.sim_fleet.accounts[inst.account].token
        assert secret is not None
        assert quote(secret, safe="") in response.text or secret in response.text
        if provider == "wawp":
            assert "access_token=" in response.text  # the whole query string
        if status == 200:  # the success shape, with the echo as its status
            assert "headers:" in json.dumps(body) and "error" not in body
    assert len(world.echoes()) == len(PROVIDERS) * len(ECHO_STATUSES)
    with pytest.raises(ValueError):
        world.sim.force("ok-waha", fault="echo", status=302)


def _raw_read(provider: str, instance_id: str, secret: str) -> tuple[str, dict, dict]:
    """The documented single-instance read of each provider: path, params, headers."""
    if provider == "hypersender":
        return f"/{instance_id}/health", {}, {"Authorization": f"Bearer {secret}"}
    if provider == "wawp":
        return "/v2/session/info", {"instance_id": instance_id, "access_token": secret}, {}
    if provider == "ryzeapi":
        return "/api/instance/list", {"instanceName": instance_id}, {"token": secret}
    if provider == "wasend":
        return f"/sessions/{instance_id}", {}, {"Authorization": f"Bearer {secret}"}
    if provider == "waha":
        return f"/api/sessions/{instance_id}", {}, {"X-Api-Key": secret}
    return f"/instance/connectionState/{instance_id}", {}, {"apikey": secret}


def test_the_search_finds_every_spelling_and_any_fragment_of_a_planted_token() -> None:
    token = plant("canary", odd=True)
    surfaces = Surfaces({token: "the canary"})
    for name, form in forms_of(token).items():
        surfaces.add(f"as {name}", f"before {form} after")
    surfaces.add("cut", f"Bearer {token[:14]}…")
    surfaces.add("wrapped", f"…{token[20:40]}\n")
    surfaces.add("clean", "nothing secret here: PLN T, plnt")
    leaks = surfaces.leaks()
    assert len(leaks) >= len(forms_of(token)) + 2
    for where in (*(f"as {n}" for n in forms_of(token)), "cut", "wrapped"):
        assert any(leak.startswith(f"{where}:") for leak in leaks), where
    assert not any(leak.startswith("clean:") for leak in leaks)


# ---- the adapters ----------------------------------------------------------------------


async def test_adapters_keep_echoed_and_listed_tokens_out_of_every_result(tmp_path: Path) -> None:
    world = World(tmp_path)
    surfaces = world.surfaces
    with debug_log(tmp_path / "debug.log") as log_path:
        async with make_client(world.fleet.monitor, world.transport()) as client:
            adapters = make_adapters(world.fleet, client, clock=world.clock)
            for name, adapter in adapters.items():
                surfaces.add(f"repr(adapter {name})", adapter)
                if adapter.info.has_list and adapter.account.token is not None:
                    listed = await adapter.list_instances()
                    surfaces.add(f"list_instances() of {name}", listed)
            for inst in world.fleet.instances:
                adapter = adapters[inst.account]
                secret = world.fleet.secret_for(inst)
                obs = await adapter.fetch(inst, secret)
                surfaces.add(f"fetch({inst.name})", obs)
                surfaces.add(f"fetch({inst.name}).error", obs.error or "")
                for action in sorted(adapter.info.actions):
                    surfaces.add(f"refusal({action}, {inst.name})", adapter.refusal(action, obs))
                    if inst.name.startswith("ok-"):
                        continue
                    response = await getattr(adapter, action)(inst, secret)
                    surfaces.add(f"{action}({inst.name})", response)
                    surfaces.add(f"{action}({inst.name}).message", response.message or "")
    surfaces.add_file("debug log", log_path)
    # The hostile answers did arrive: reads and actions echoed, for every provider.
    echoed = {r["provider"] for r in world.echoes(action=False)}
    assert echoed == set(PROVIDERS)
    assert {r["provider"] for r in world.echoes(action=True)} == set(PROVIDERS)
    # The clean list calls answered, with every instance's own secret in the body (Hypersender
    # access_token, Evolution token: see the echo test) for the adapters to drop.
    for account in ("hypersender-main", "evolution-main"):
        listed = [r for r in world.sim.requests(account=account, status=200) if r["id"] is None]
        assert listed, account
    surfaces.assert_clean()


# ---- check ---------------------------------------------------------------------------------


def test_check_in_every_format_and_the_sweeps_rows_show_no_token(tmp_path: Path) -> None:
    world = World(tmp_path)
    surfaces = world.surfaces
    with debug_log(tmp_path / "debug.log") as log_path:
        for fmt in ("table", "json", "prometheus"):
            out = io.StringIO()
            code = run_check(
                world.fleet, fmt=fmt, transport=world.transport(), clock=world.clock, out=out
            )
            assert code == 2  # echoing instances are down
            text = out.getvalue()
            assert "e500-wawp" in text and "a200-evolution" in text
            surfaces.add(f"check --{fmt}", text)
            world.clock.advance(61)
        rows = asyncio.run(sweep(world.fleet, transport=world.transport(), clock=world.clock)).rows
    for row in rows:
        surfaces.add(f"repr(Row {row.instance.name})", row)
        surfaces.add(f"Row {row.instance.name}.last_error", row.last_error or "")
    surfaces.add_file("debug log", log_path)
    assert len(world.echoes(action=False)) >= 3 * len(PROVIDERS) * len(ECHO_STATUSES)
    surfaces.assert_clean()


# ---- CLI actions, in-process ------------------------------------------------------------


def test_cli_actions_dry_run_and_real_and_the_audit_log_show_no_token(tmp_path: Path) -> None:
    world = World(tmp_path)
    surfaces = world.surfaces
    fleet = world.fleet

    def act(action: str, names: list[str], *, dry_run: bool) -> None:
        out, err = io.StringIO(), io.StringIO()
        code = run_action_command(
            action,
            names,
            fleet=fleet,
            yes=True,
            dry_run=dry_run,
            reason=None,
            max_targets=None,
            force=False,
            operator=OPERATOR,
            stdin_isatty=False,
            out=out,
            err=err,
            transport=world.transport(),
            clock=world.clock,
            sleep=world.sleep,
            environ={},
        )
        where = f"tuiapp {action} {' '.join(names)}{' --dry-run' if dry_run else ''}"
        surfaces.add(f"{where} (stdout)", out.getvalue())
        surfaces.add(f"{where} (stderr)", err.getvalue())
        assert code in (0, 2), (where, code, err.getvalue())

    with debug_log(tmp_path / "debug.log") as log_path:
        for provider in PROVIDERS:
            action = "restart" if provider != "ryzeapi" else "reconnect"
            act(action, [f"e200-{provider}", f"a400-{provider}"], dry_run=True)
            for status in ECHO_STATUSES:
                for prefix in ("act", "e", "a"):
                    act(action, [f"{prefix}{status}-{provider}"], dry_run=False)
            if provider in ("wawp", "waha", "evolution"):
                act("reconnect", [f"act500-{provider}"], dry_run=False)  # in cooldown now
    surfaces.add_file("debug log", log_path)
    surfaces.add_file("audit log", fleet.monitor.audit_log)
    audit = [json.loads(line) for line in fleet.monitor.audit_log.read_text().splitlines()]
    outcomes = {line["outcome"] for line in audit}
    assert {"sent", "failed", "accepted"} <= outcomes, outcomes
    assert {r["provider"] for r in world.echoes(action=True)} == set(PROVIDERS)
    surfaces.assert_clean()


# ---- the TUI -----------------------------------------------------------------------------


async def test_tui_screens_dialogs_notifications_and_logs_show_no_token(tmp_path: Path) -> None:
    from tuiapp.ui.app import FleetApp
    from tuiapp.ui.detail import DetailScreen
    from tuiapp.ui.dialogs import ConfirmScreen
    from tuiapp.ui.help import HelpScreen

    world = World(tmp_path)
    surfaces = world.surfaces
    sleeper = ManualSleep(world.clock)
    app = FleetApp(
        world.fleet,
        transport=world.transport(),
        clock=world.clock,
        sleep=sleeper.sleep,
        state_dir_override=world.state_dir,
        operator=OPERATOR,
        tick_seconds=None,
    )

    async def until(condition: Any, what: str) -> None:
        for _ in range(4000):
            if condition():
                await pilot.pause()
                return
            if offloads_in_flight():  # state or audit I/O in a worker thread
                await offloads_done()
            await asyncio.sleep(0)
        raise AssertionError(f"never happened: {what}")

    async def advance(seconds: float) -> None:
        for _ in range(int(seconds)):
            world.clock.advance(1)
            sleeper.wake_due()
            for _ in range(40):
                if offloads_in_flight():
                    await offloads_done()
                await asyncio.sleep(0)
        await pilot.pause()

    def shot(where: str) -> None:
        surfaces.add(f"screenshot: {where}", app.export_screenshot())

    async def select(name: str) -> None:
        app.jump_to(name)
        await pilot.pause()
        assert app.model.cursor == name

    async def press_action(name: str, key: str = "r") -> None:
        await select(name)
        await pilot.press(key)
        await pilot.pause()

    with debug_log(tmp_path / "debug.log") as log_path:
        # notifications=True: run_test leaves toasts off by default; they are a surface.
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await until(
                lambda: all(r.last_polled_at is not None for r in app.poller.rows.values()),
                "the first sweep",
            )
            app.tick()
            await pilot.pause()
            shot("grid")
            await pilot.press("pagedown", "pagedown")
            shot("grid, scrolled")
            # The detail view of two echoing instances (enter), captured; and, while one
            # is open, the detail text the view would show for every other instance.
            for name in ("e200-wawp", "a500-hypersender"):
                await select(name)
                await pilot.press("enter")
                await until(lambda: isinstance(app.screen, DetailScreen), "the detail view")
                surfaces.add(f"detail view of {name}", app.screen.body_text)
                shot(f"detail view of {name}")
                if name == "e200-wawp":
                    for inst in world.fleet.instances:
                        text = app.build_detail(inst.name)
                        surfaces.add(f"detail text of {inst.name}", str(text))
                await pilot.press("escape")
                await until(lambda: app.screen is app.main, "back to the grid")
            # A refused action: the status is unknown (its raw text is the echo).
            await press_action("a200-hypersender")
            assert not isinstance(app.screen, ConfirmScreen)
            shot("notification after a refused restart")
            assert "refused" in surfaces.texts[-1][1]  # the toast is in the screenshot
            # Real actions whose answers echo: 500 (failed), 200 (accepted, then verified).
            for name in ("act500-hypersender", "act200-waha"):
                await press_action(name)
                await until(lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
                shot(f"confirmation dialog, {name}")
                world.clock.advance(1)  # past the type-ahead guard
                await pilot.press("y")
                await until(
                    lambda n=name: world.sim.requests(action="restart", instance=n),
                    f"the restart of {name}",
                )
                await advance(12)  # verification reads, on fake time
                await until(lambda n=name: n not in app.engine.in_flight, f"{name} done")
                shot(f"notification after the restart of {name}")
                titles = ("Restart&#160;failed", "Restart&#160;not&#160;recovered")
                assert any(title in surfaces.texts[-1][1] for title in titles), name
            app.tick()
            await pilot.pause()
            shot("grid after the actions")
            await pilot.press("l")
            await pilot.pause()
            shot("event log")
            surfaces.add("event log lines", "\n".join(app.main.event_log.lines()))
            await pilot.press("question_mark")
            await until(lambda: isinstance(app.screen, HelpScreen), "help")
            shot("help")
            await pilot.press("escape")
            # The canary: a token put on screen on purpose is found in the screenshot, so
            # the search above would have seen one the UI leaked.
            canary = Surfaces(surfaces.secrets)
            token = world.sim_fleet.accounts["waha-main"].token
            app.notify(f"canary {token}", markup=False)
            await pilot.pause()
            canary.add("canary screenshot", app.export_screenshot())
            assert canary.leaks(), "a token on screen must show in the exported screenshot"
            app.clear_notifications()
            surfaces.add(
                "notifications",
                "\n".join(f"{n.title}: {n.message}" for n in app._notifications),
            )
            audit_path = app.backend.audit.path
    surfaces.add_file("debug log", log_path)
    surfaces.add_file("audit log", audit_path)
    assert world.sim.requests(action="restart", instance="act500-hypersender")
    assert world.sim.requests(action="restart", instance="act200-waha")
    assert "sent" in Path(audit_path).read_text()
    assert len([w for w, _ in surfaces.texts if w.startswith("screenshot")]) >= 9
    surfaces.assert_clean()


# ---- reprs, config errors, tracebacks ---------------------------------------------------


def test_reprs_config_errors_and_formatted_tracebacks_show_no_token(tmp_path: Path) -> None:
    world = World(tmp_path)
    surfaces = world.surfaces
    fleet = world.fleet
    surfaces.add("repr(FleetConfig)", fleet)
    surfaces.add("str(FleetConfig)", str(fleet))
    for account in fleet.accounts.values():
        surfaces.add(f"repr(AccountConfig {account.name})", account)
        surfaces.add(f"f-string of {account.name}'s token", f"{account.token}")
    for inst in fleet.instances:
        surfaces.add(f"repr(InstanceConfig {inst.name})", inst)
        surfaces.add(f"repr(secret_for {inst.name})", fleet.secret_for(inst))
    for acc in world.sim_fleet.accounts.values():
        surfaces.add(f"repr(SimAccount {acc.name})", acc)
    for inst in world.sim_fleet.instances:
        surfaces.add(f"repr(SimInstance {inst.name})", inst)
    surfaces.add("repr(Simulator.describe_all())", world.sim.describe_all())

    # The config file on disk, with inline tokens: loaded for real.
    data, environ = config_data(world.sim_fleet, SIM_BASE, world.state_dir)
    path = tmp_path / "fleet.toml"
    path.write_text(tomli_w.dumps(data))
    path.chmod(0o600)
    warnings: list[str] = []
    loaded = load_config(path, environ=environ, warn=warnings.append)
    surfaces.add("repr(loaded FleetConfig)", loaded)
    surfaces.add("config warnings", "\n".join(warnings))

    # Config mistakes that put a token where it does not belong: the error must not echo it.
    fresh = {name: plant(f"cfg-{name}") for name in ("url", "env", "wawp", "typo", "toml")}
    surfaces.secrets.update({token: f"config error {name}" for name, token in fresh.items()})
    account = {"provider": "waha", "base_url": "http://waha.test"}
    bad: dict[str, dict[str, Any]] = {
        "url": {**account, "base_url": f"https://u:{quote(fresh['url'], safe='')}@w.test"},
        "env": {**account, "token_env": fresh["env"]},
        "wawp": {"provider": "wawp", "token": fresh["wawp"]},
        "typo": {**account, "tokn": fresh["typo"]},
    }
    for name, table in bad.items():
        doc = {"accounts": {"a": table}, "instances": [{"name": "x", "account": "a", "id": "x"}]}
        with pytest.raises(ConfigError) as caught:
            config_from_dict(doc, environ={})
        surfaces.add(f"ConfigError ({name})", str(caught.value))
        surfaces.add(f"repr(ConfigError ({name}))", caught.value)
    broken = tmp_path / "broken.toml"
    broken.write_text(f'[accounts.a]\nprovider = "waha"\ntoken = {fresh["toml"]}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(broken, environ={})
    surfaces.add("ConfigError (invalid TOML)", str(caught.value))

    # A traceback through the debug log's formatter: messages, causes, and locals unseen.
    account_token = next(a.token for a in fleet.accounts.values() if a.token is not None)
    wawp = next(i for i in fleet.instances if i.token is not None and "wawp" in i.account)
    assert isinstance(account_token, Secret) and wawp.token is not None
    record = _failing_record(account_token.reveal(), wawp.token.reveal())
    formatter = RedactingFormatter("%(levelname)s %(name)s: %(message)s")
    formatted = formatter.format(record)
    assert "Traceback" in formatted and "RuntimeError" in formatted and "ConnectError" in formatted
    surfaces.add("RedactingFormatter.format(record with exc_info)", formatted)
    surfaces.add("RedactingFormatter.formatException", formatter.formatException(record.exc_info))
    surfaces.assert_clean()


def _failing_record(header_token: str, query_token: str) -> logging.LogRecord:
    """A log record carrying a chained exception whose messages hold both tokens."""

    def call_provider(secret_local: str) -> None:
        url = f"https://api.wawp.net/v2/session/info?access_token={quote(secret_local)}"
        raise httpx.ConnectError(f"cannot connect to {url}")

    try:
        try:
            call_provider(query_token)
        except httpx.ConnectError as exc:
            raise RuntimeError(f"poll failed; Authorization: Bearer {header_token}") from exc
    except RuntimeError:
        return logging.LogRecord(
            "tuiapp.crash",
            logging.ERROR,
            __file__,
            1,
            "worker failed while using %s",
            (header_token,),
            sys.exc_info(),
        )
    raise AssertionError("unreachable")


# ---- real processes over a real socket ------------------------------------------------------


def test_real_check_and_action_processes_over_a_socket_show_no_token(tmp_path: Path) -> None:
    """`tuiapp check` and `tuiapp restart/reconnect` as processes, over aiohttp to a real
    simulator: the URL encoding (Wawp's query string) is the real transport's here."""
    from tuiapp.simulator.serve import start_in_thread

    sim_fleet = planted_fleet()
    surfaces = Surfaces(all_secrets(sim_fleet))
    with start_in_thread(sim_fleet, boot_seconds=0, limits=False, latency=False) as running:
        state_dir = tmp_path / "state"
        data, environ = config_data(sim_fleet, running.url, state_dir, verify_window=1)
        config = tmp_path / "fleet.toml"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(tomli_w.dumps(data))
        commands = {
            "check": ["check"],
            "check --json": ["check", "--json"],
            "restart e500-wawp a200-waha --dry-run": [
                "restart",
                "e500-wawp",
                "a200-waha",
                "--dry-run",
            ],
            "restart act500-wawp act200-hypersender": [
                "restart",
                "act500-wawp",
                "act200-hypersender",
                "--yes",
            ],
            "reconnect act400-ryzeapi a500-evolution": [
                "reconnect",
                "act400-ryzeapi",
                "a500-evolution",
                "--yes",
            ],
        }
        procs: dict[str, tuple[subprocess.Popen[str], Path]] = {}
        for i, (where, args) in enumerate(commands.items()):
            log = tmp_path / f"debug-{i}.log"
            env = {**os.environ, **environ, "TUIAPP_DEBUG_LOG": str(log), "NO_COLOR": "1"}
            procs[where] = (
                subprocess.Popen(
                    [sys.executable, "-m", "tuiapp", "--config", str(config), *args]
                    + ([] if args[0] == "check" else ["--operator", OPERATOR]),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                    text=True,
                    env=env,
                ),
                log,
            )
        for where, (proc, log) in procs.items():
            out, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, 2), (where, proc.returncode, err)
            surfaces.add(f"tuiapp {where} (stdout)", out)
            surfaces.add(f"tuiapp {where} (stderr)", err)
            surfaces.add_file(f"tuiapp {where} (debug log)", log)
        echoed = [r for r in running.sim.requests() if r["fault"] == "echo"]
        sent = [r for r in echoed if r["action"] is not None]
    surfaces.add_file("audit log", state_dir / "audit.jsonl")
    assert "e500-wawp" in surfaces.texts[0][1]
    assert {r["provider"] for r in echoed} == set(PROVIDERS)
    assert {r["instance"] for r in sent} >= {"act500-wawp", "act200-hypersender"}
    surfaces.assert_clean()
