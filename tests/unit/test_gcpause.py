"""``gcpause.paused``: no cyclic collection inside, the collector as it was after it."""

from __future__ import annotations

import gc

import pytest

from tuiapp import gcpause


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    assert gc.isenabled()
    with gcpause.paused():
        assert not gc.isenabled()
        with gcpause.paused():  # nested: only the outer pause turns it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_turns_it_back_on() -> None:
    with pytest.raises(ValueError), gcpause.paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_freeze_moves_what_was_built_out_of_the_collectors_sight() -> None:
    before = gc.get_freeze_count()
    try:
        with gcpause.paused(freeze=True):
            built = [[n] for n in range(1000)]  # 1,001 tracked containers
        assert gc.get_freeze_count() >= before + len(built)
    finally:
        gc.unfreeze()  # the test process must not keep them
