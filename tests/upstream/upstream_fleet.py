"""The fleet the CLI and TUI tests run tuiapp on: real instances on the lab's servers.

Accounts (several may point at one server; tuiapp keeps nothing per server):

    evo-pair    2 instances, ``pair-open`` stored ``open`` while live ``close``
    evo-gone    1 instance deleted through the API (NOT_FOUND)
    evo-badkey  1 instance, the account's key is wrong (AUTH_ERROR)
    evo-fifty   50 instances, all stored ``open`` while live ``close`` (created on demand)
    waha        the session ``default`` (WAHA Core serves no other)

Every Evolution instance is created with a planted per-instance token, so that a test
can look for it (and for the server's key) in whatever tuiapp prints or writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from upstream_lab import EvolutionLab, Server

__all__ = ["BAD_KEY", "EvoFleet", "Fleet", "audit_lines"]

BAD_KEY = "wrong-key-for-upstream-tier-00"
ENV_KEYS = {"evo": "UPSTREAM_EVO_KEY", "bad": "UPSTREAM_EVO_BAD_KEY", "waha": "UPSTREAM_WAHA_KEY"}


@dataclass
class EvoFleet:
    """Evolution instance ids (``ids[display name]``) and every secret they carry."""

    run: str
    ids: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # display name -> account
    fifty: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, lab: EvolutionLab, run: str) -> EvoFleet:
        fleet = cls(run)
        fleet._add(lab, "pair-open", "evo-pair")
        fleet._add(lab, "pair-close", "evo-pair")
        fleet._add(lab, "badkey-1", "evo-badkey")
        fleet._add(lab, "gone-1", "evo-gone")
        lab.store_status([fleet.ids["pair-open"]], "open")
        lab.delete(fleet.ids["gone-1"])
        return fleet

    def _add(self, lab: EvolutionLab, name: str, account: str) -> None:
        instance_id = f"tuiapp-{self.run}-{name}"
        token = f"PLANTED-{name}-token-{uuid.uuid4().hex[:12]}"
        self.tokens.append(lab.create(instance_id, token=token))
        self.ids[name] = instance_id
        self.accounts[name] = account

    def create_fifty(self, lab: EvolutionLab) -> list[str]:
        if not self.fifty:
            names = [f"fifty-{i:02d}" for i in range(1, 51)]
            for name in names:
                self._add(lab, name, "evo-fifty")
            lab.store_status([self.ids[n] for n in names], "open")
            self.fifty = names
        return self.fifty


class Fleet:
    """A fleet config on the lab's servers, and tuiapp run on it as a user would."""

    def __init__(self, tmp: Path, evo: Server, waha: Server, evo_fleet: EvoFleet) -> None:
        self.tmp = tmp
        self.evo = evo
        self.waha = waha
        self.evo_fleet = evo_fleet
        self.state_dir = tmp / "state"
        self.audit_path = self.state_dir / "audit.jsonl"
        self.env = {
            ENV_KEYS["evo"]: evo.key,
            ENV_KEYS["bad"]: BAD_KEY,
            ENV_KEYS["waha"]: waha.key,
        }

    @property
    def secrets(self) -> list[str]:
        """Every secret the fleet's servers hold: never in anything tuiapp shows or writes."""
        return [self.evo.key, BAD_KEY, *self.evo_fleet.tokens]

    def config(
        self,
        names: Iterable[str] | None = None,
        *,
        waha: bool = True,
        monitor: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The config dict: the Evolution instances ``names`` (default: the shared four)."""
        chosen = (
            list(names) if names is not None else ["pair-open", "pair-close", "badkey-1", "gone-1"]
        )
        accounts: dict[str, Any] = {}
        instances: list[dict[str, Any]] = []
        for name in chosen:
            account = self.evo_fleet.accounts[name]
            accounts[account] = {
                "provider": "evolution",
                "base_url": self.evo.url,
                "token_env": ENV_KEYS["bad" if account == "evo-badkey" else "evo"],
            }
            instances.append({"name": name, "account": account, "id": self.evo_fleet.ids[name]})
        if waha:
            accounts["waha"] = {
                "provider": "waha",
                "base_url": self.waha.url,
                "token_env": ENV_KEYS["waha"],
            }
            instances.append({"name": "waha-default", "account": "waha", "id": "default"})
        return {
            "monitor": {
                "state_dir": str(self.state_dir),
                "timeout": 10,
                "poll_interval": 5,
                "stabilize": 0,
                "verify_window": 6,
                **(monitor or {}),
            },
            "accounts": accounts,
            "instances": instances,
        }

    def write(self, data: dict[str, Any], name: str = "fleet.toml") -> Path:
        path = self.tmp / name
        path.write_text(tomli_w.dumps(data))
        path.chmod(0o600)
        return path

    def tuiapp(
        self, *args: str, config: Path, timeout: float = 180.0
    ) -> subprocess.CompletedProcess[str]:
        """``tuiapp ARGS --config PATH`` as a subprocess, no terminal on stdin."""
        env = {**os.environ, **self.env, "USER": "upstream-tier"}
        env.pop("TUIAPP_CONFIG", None)
        return subprocess.run(
            [sys.executable, "-m", "tuiapp", *args, "--config", str(config)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def check_json(self, config: Path) -> tuple[int, dict[str, Any]]:
        done = self.tuiapp("check", "--json", config=config)
        assert done.stdout.strip(), done.stderr
        return done.returncode, json.loads(done.stdout)

    def audit(self) -> list[dict[str, Any]]:
        return audit_lines(self.audit_path)


def audit_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
