"""A big config's checked instances, kept between runs and keyed by the file's bytes.

Parsing and checking 100,000 [[instances]] (12 MB of TOML) takes ~1.6 s and leaves the
process ~150 MB bigger than what it keeps; the TUI, ``check`` and the hub load the same
file at every start. So after a full load of a file of at least ``MIN_BYTES``, its
instances, as the checks made them, are written to the user cache directory
(``~/.cache/tuiapp/config/``, one file per config path). The next load of the same
bytes by the same code takes its instances from there (~0.2 s) and checks the rest of
the file (monitor, accounts, operators: small) in full, every ``token_env`` variable
looked up again, the file's permission warning given again. Any other bytes, another
tuiapp, or a cache file that cannot be read or trusted: the full load, never an error.

Nothing secret is written: an inline token is kept as its place in the file (first and
last byte), read back from the file's bytes at load, which the digest proves unchanged; a
``token_env`` token as the variable's name. Names, ids and tags are as secret as the
state directory's history (they are there too).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import marshal
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
import tomli

import tuiapp
from tuiapp import (
    catalog,
    config_load,
    config_operators,
    config_schema,
    config_types,
    config_words,
    model,
    secrets,
)
from tuiapp.config_load import Loader
from tuiapp.config_types import FleetConfig, InstanceConfig
from tuiapp.model import Status
from tuiapp.secrets import GLOBAL_REDACTOR, Secret

__all__ = ["MIN_BYTES", "cache_file", "load", "save"]

logger = logging.getLogger(__name__)

FORMAT = 2  # of what is written; part of the key, with the checking code itself
MIN_BYTES = 1_000_000  # about 8,000 [[instances]]: a smaller file loads in < 0.15 s
# what parses and checks a file: a change to any of them is another key
_CODE = (catalog, config_load, config_operators, config_schema, config_types, config_words)
_CODE += (model, secrets)
UNUSED_DAYS = 30  # a kept file neither written nor used for this long is removed

# the instances as kept, in columns: names, accounts, ids, tags, then only the instances
# that have one: (index, token) with the token the name of its variable (token_env) or
# its (first, end) byte in the file (inline), (index, expect), the indexes of the muted
Kept = tuple[
    list[str],
    list[str],
    list[str],
    list[tuple[str, ...]],
    list[tuple[int, "str | tuple[int, int]"]],
    list[tuple[int, str]],
    list[int],
]


def cache_file(config: Path) -> Path:
    """Where the instances of the config at ``config`` are kept."""
    where = hashlib.sha256(os.fsencode(config.resolve())).hexdigest()[:32]
    return Path(platformdirs.user_cache_dir("tuiapp")) / "config" / f"{where}.bin"


@functools.cache
def _code_key() -> bytes | None:
    """What a kept file is only good for: this format, this tuiapp and its checks (None:
    their source cannot be read, as from a zip: nothing is kept then)."""
    versions = f"{FORMAT} {tuiapp.__version__} {sys.version} tomli {tomli.__version__}"
    digest = hashlib.sha256(versions.encode())
    try:
        for module in (*_CODE, sys.modules[__name__]):
            digest.update(Path(module.__file__ or "").read_bytes())
    except OSError:
        return None
    return digest.digest()


def _key(raw: bytes) -> bytes | None:
    code = _code_key()
    return hashlib.sha256(code + raw).digest() if code is not None else None


def _where(path: Path) -> Path | None:
    try:
        return cache_file(path)
    except (OSError, RuntimeError):  # a symlink loop, say: the full load says what is wrong
        return None


def load(path: Path, raw: bytes, environ: Mapping[str, str]) -> FleetConfig | None:
    """The config whose bytes are ``raw``, its instances from the cache; None if none is
    kept for these bytes (the caller loads it in full). ConfigError as the full load
    raises it for the checks made again (a ``token_env`` variable not set, say)."""
    where = _where(path)
    key = _key(raw)
    if where is None or key is None:
        return None
    try:
        blob = where.read_bytes()
    except (OSError, ValueError):
        return None
    kept = _unpacked(blob, key)
    if kept is None:
        logger.info("config cache %s: not for this file, or damaged; not used", where)
        return None
    head, columns = kept
    try:
        data = dict(_restored(head, raw))
    except (TypeError, ValueError, UnicodeDecodeError):
        data = None
    if data is None or not _whole(columns, data, len(raw)):
        logger.info("config cache %s: damaged; not used", where)
        return None
    with contextlib.suppress(OSError):
        os.utime(where)  # used: kept from ``prune``
    loader = Loader(path, environ)
    return loader.fleet(data, kept=lambda: _instances(loader, columns, raw))


def _unpacked(blob: bytes, key: bytes) -> tuple[Any, Kept] | None:
    """The head and the columns in ``blob`` if it was written for ``key`` and is whole
    (its payload's SHA-256), else None."""
    try:
        form, kept_key, digest, payload = marshal.loads(blob)
        if form != FORMAT or kept_key != key or hashlib.sha256(payload).digest() != digest:
            return None
        head, columns = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    if not isinstance(head, dict) or not isinstance(columns, tuple) or len(columns) != 7:
        return None
    return head, columns


def _whole(kept: Kept, data: Mapping[str, Any], size: int) -> bool:
    """The columns hold together: as long as each other, every index and byte range in
    range, known statuses and accounts, no name twice (a damaged file whose checksum
    still matched, or one written by hand)."""
    names, accounts, ids, tags, tokens, expects, muted = kept
    count = len(names)
    known = data.get("accounts")
    statuses = {status.value for status in Status}
    try:
        return (
            len(accounts) == len(ids) == len(tags) == count == len(set(names))
            and isinstance(known, dict)
            and set(accounts) <= set(known)
            and all(0 <= i < count for i, _ in (*tokens, *expects))
            and all(0 <= i < count for i in muted)
            and all(type(t) is str or 0 <= t[0] < t[1] <= size for _, t in tokens)
            and {value for _, value in expects} <= statuses
        )
    except (TypeError, ValueError, IndexError):  # an entry of another shape
        return False


def _instances(loader: Loader, kept: Kept, raw: bytes) -> tuple[InstanceConfig, ...]:
    """The instances of ``kept`` (its columns, ``_whole``), their secrets made and
    registered."""
    names, accounts, ids, tags, tokens, expects, muted = kept
    secrets: list[Secret | None] = [None] * len(names)
    for index, token in tokens:
        if type(token) is str:
            where = f"instance {names[index]!r}"
            secrets[index] = loader.secret(where, {"token_env": token})
        else:
            first, end = token
            secret = Secret(raw[first:end].decode("utf-8"), "inline")
            GLOBAL_REDACTOR.add_secret(secret)
            secrets[index] = secret
    statuses: list[Status | None] = [None] * len(names)
    for index, value in expects:
        statuses[index] = Status(value)
    flags = [False] * len(names)
    for index in muted:
        flags[index] = True
    return tuple(map(InstanceConfig, names, accounts, ids, tags, secrets, statuses, flags))


def save(path: Path, raw: bytes, data: Mapping[str, Any], fleet: FleetConfig) -> None:
    """Keep ``fleet``'s instances (just checked in full from ``raw``) for the next load.

    Not kept when an inline token's text is not in the file as it is (a TOML escape in
    it): its place could not be named. Trouble writing is logged, never raised."""
    target, key = _where(path), _key(raw)
    if target is None or key is None:
        return
    head = {name: value for name, value in data.items() if name != "instances"}
    places = _Places(raw)
    try:
        head_kept = _placed(head, places)
        kept = _columns(fleet.instances, places)
    except LookupError:
        logger.info("config cache: an inline token is escaped in %s; not kept", path)
        return
    try:
        payload = marshal.dumps((head_kept, kept))
    except ValueError:  # a value marshal cannot write (no checked key holds one)
        logger.info("config cache: %s holds a value that cannot be kept", path)
        return
    blob = marshal.dumps((FORMAT, key, hashlib.sha256(payload).digest(), payload))
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
            try:
                out.write(blob)  # NamedTemporaryFile: mode 0600
                out.close()
                os.replace(out.name, target)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(out.name)
                raise
    except OSError as exc:
        logger.info("config cache %s: not written: %s", target, exc.strerror or exc)
        return
    prune(target.parent, keep=target)


def prune(directory: Path, *, keep: Path, now: float | None = None) -> None:
    """Remove the kept files of ``directory`` neither written nor used for
    ``UNUSED_DAYS`` (a config moved or renamed leaves its old one behind)."""
    oldest = (time.time() if now is None else now) - UNUSED_DAYS * 86_400
    for kept in directory.glob("*.bin"):
        with contextlib.suppress(OSError):
            if kept != keep and kept.stat().st_mtime < oldest:
                kept.unlink()


def _columns(instances: tuple[InstanceConfig, ...], places: _Places) -> Kept:
    tokens: list[tuple[int, str | tuple[int, int]]] = []
    expects: list[tuple[int, str]] = []
    muted: list[int] = []
    for index, inst in enumerate(instances):
        if inst.token is not None:
            source = inst.token.source
            token = source[4:] if source.startswith("env:") else places.of(inst.token.reveal())
            tokens.append((index, token))
        if inst.expect is not None:
            expects.append((index, inst.expect.value))
        if inst.muted:
            muted.append(index)
    return (
        [inst.name for inst in instances],
        [inst.account for inst in instances],
        [inst.id for inst in instances],
        [inst.tags for inst in instances],
        tokens,
        expects,
        muted,
    )


class _Places:
    """Where each inline token's text is in the file: found from the last one on, as
    the instances come in the file's order (one pass over the file, not one each)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.at = 0

    def of(self, value: str) -> tuple[int, int]:
        text = value.encode("utf-8")
        first = self.raw.find(text, self.at)
        if first < 0:
            first = self.raw.find(text)
        if first < 0:
            raise LookupError(value)
        self.at = first + len(text)
        return first, self.at


def _placed(value: Any, places: _Places) -> Any:
    """``value`` (parsed TOML) with every ``token`` string as its place in the file."""
    if isinstance(value, dict):
        return {
            key: places.of(item)
            if key == "token" and isinstance(item, str)
            else _placed(item, places)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_placed(item, places) for item in value]
    return value


def _restored(value: Any, raw: bytes) -> Any:
    """``_placed`` undone (TOML has no tuples: a tuple is a token's place)."""
    if isinstance(value, dict):
        return {key: _restored(item, raw) for key, item in value.items()}
    if isinstance(value, list):
        return [_restored(item, raw) for item in value]
    if isinstance(value, tuple):
        first, end = value
        return raw[first:end].decode("utf-8")
    return value
