"""The render's stop signals as a flag (voxd/interrupts.py), with real signals sent to this process."""

from __future__ import annotations

import os
import signal

import pytest

from voxd.errors import Interrupted
from voxd.interrupts import StopSignals


def test_a_signal_is_raised_at_the_checkpoint_not_where_it_arrived():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        stop.check()  # nothing yet
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, and raises nothing
        assert stop.signum == signal.SIGTERM
        with pytest.raises(Interrupted) as raised:
            stop.check()
        assert raised.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_second_signal_raises_at_once():
    with StopSignals() as stop, pytest.raises(Interrupted) as raised:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signum == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)
    assert raised.value.signum == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
