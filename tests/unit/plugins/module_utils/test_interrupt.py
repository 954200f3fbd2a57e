"""SIGTERM/SIGINT as an exception, and blocking calls run so the signal is handled."""

import os
import signal
import threading
import time

import pytest

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed
from ansible_collections.lifecycle.libvirt.plugins.module_utils._interrupt import (
    PAUSE_ENV, Interrupted, interruptible, pause_point, run_blocking, signal_name)


def _signal_soon(signum, delay=0.3):
    timer = threading.Timer(delay, os.kill, (os.getpid(), signum))
    timer.start()
    return timer


def test_signal_names():
    assert signal_name(signal.SIGTERM) == 'SIGTERM'
    assert signal_name(signal.SIGINT) == 'SIGINT'
    assert signal_name(250) == 'signal 250'


def test_interrupted_is_a_reportable_failure():
    exc = Interrupted(signal.SIGTERM)
    assert isinstance(exc, OperationFailed)
    assert str(exc) == 'Interrupted by SIGTERM'
    assert exc.outcome is None


def test_blocking_call_returns_its_value_and_raises_its_error():
    assert run_blocking(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        run_blocking(lambda: 1 // 0)
    with pytest.raises(TypeError):
        run_blocking(int, '1', abort=None, graze=3)


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_aborts_the_call_and_reports_its_outcome(signum):
    release = threading.Event()
    aborted = []

    def blocking():
        release.wait(20)
        return 'ended after abort' if aborted else 'ended by itself'

    def abort():
        aborted.append(True)
        release.set()

    started = time.monotonic()
    _signal_soon(signum)
    with interruptible():
        with pytest.raises(Interrupted) as caught:
            run_blocking(blocking, abort=abort, grace=10)
    assert time.monotonic() - started < 10
    assert caught.value.signum == signum
    assert aborted == [True]
    assert caught.value.outcome.finished and caught.value.outcome.value == 'ended after abort'
    assert caught.value.outcome.error is None


def test_a_call_that_does_not_end_in_the_grace_time_is_reported_running():
    release = threading.Event()

    def failing_abort():
        raise RuntimeError('no job')

    _signal_soon(signal.SIGTERM)
    with interruptible():
        with pytest.raises(Interrupted) as caught:
            run_blocking(release.wait, 30, abort=failing_abort, grace=0.2)
    release.set()
    assert not caught.value.outcome.finished
    assert str(caught.value.abort_error) == 'no job'


def test_second_signal_does_not_cut_the_clean_up_short():
    cleaned = []
    with interruptible():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler raises here
        except Interrupted:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            cleaned.append(True)
    assert cleaned == [True]


def test_handlers_are_restored_afterwards():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with interruptible():
        assert signal.getsignal(signal.SIGTERM) is not before[0]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_outside_the_main_thread_nothing_is_installed():
    seen = []

    def body():
        with interruptible():
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [before]


def test_pause_point_writes_the_pid_and_waits_for_a_signal(tmp_path, monkeypatch):
    marker = tmp_path / 'paused'
    pause_point('anywhere')  # no variable: no pause
    monkeypatch.setenv(PAUSE_ENV, 'elsewhere:%s' % marker)
    pause_point('here')
    assert not marker.exists()
    monkeypatch.setenv(PAUSE_ENV, 'here:%s' % marker)
    _signal_soon(signal.SIGTERM)
    started = time.monotonic()
    with interruptible():
        with pytest.raises(Interrupted):
            pause_point('here')
    assert marker.read_text() == str(os.getpid())
    assert time.monotonic() - started < 10
