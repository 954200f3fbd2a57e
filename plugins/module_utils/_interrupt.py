# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interruptions: SIGTERM and SIGINT (an AWX cancel, Ctrl-C) as an exception.

* `interruptible()` is a context manager: inside it the first SIGTERM or
  SIGINT raises `Interrupted` in the main thread, where the module can abort
  what runs and put things back.  Later signals are only counted, so that
  putting things back is not cut short.  Outside it the default applies.
* `run_blocking(operation, *args, abort=...)` runs one blocking libvirt call
  (a migration, a wipe) in a worker thread while the main thread waits, so
  the signal is handled while the call runs: `abort()` is called (for example
  `domain.abortJob`), the call gets `grace` seconds to return, and the
  `Interrupted` raised carries the call's `outcome` (`finished`, and its
  `value` or `error`), so the module can say whether it still runs.
* `pause_point(name)` is a test-only hook (see its docstring).

SIGKILL - which is how Ansible's async_wrapper ends a task that exceeds its
`async` time - cannot be caught.  What must survive the process has to be
written where the next run finds it before the step that could lose it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import threading
import time
from contextlib import contextmanager

from ansible_collections.lifecycle.libvirt.plugins.module_utils._connection import OperationFailed

SIGNALS = (signal.SIGTERM, signal.SIGINT)

# Seconds between two looks of the main thread at the worker; a signal
# interrupts the wait at once anyway.
_POLL = 0.2

# Environment variable of the test-only pause hook.
PAUSE_ENV = 'LIFECYCLE_LIBVIRT_TEST_PAUSE'
_PAUSE_LIMIT = 300


def signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return 'signal %d' % signum


class Interrupted(OperationFailed):
    """The module received SIGTERM or SIGINT; `outcome` is the blocking call's
    `Outcome` when the signal came during `run_blocking`, else None."""

    def __init__(self, signum):
        super(Interrupted, self).__init__('Interrupted by %s' % signal_name(signum))
        self.signum = signum
        self.outcome = None
        self.abort_error = None


class _Catcher:
    """The installed handler: raises once, counts the rest."""

    def __init__(self):
        self.received = []

    def __call__(self, signum, _frame):
        self.received.append(signum)
        if len(self.received) == 1:
            raise Interrupted(signum)


@contextmanager
def interruptible():
    """SIGTERM/SIGINT raise `Interrupted` inside the block (main thread only:
    Python delivers signals there; elsewhere the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    catcher = _Catcher()
    previous = dict((signum, signal.signal(signum, catcher)) for signum in SIGNALS)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Outcome:
    """What a call in the worker thread did: still running, returned or raised."""

    def __init__(self):
        self.finished = False
        self.value = None
        self.error = None

    def get(self):
        """The call's value, or its exception raised here."""
        if self.error is not None:
            raise self.error
        return self.value


class _Worker(threading.Thread):
    def __init__(self, operation, args):
        super(_Worker, self).__init__(name='blocking-call')
        # Never keeps the process alive: when the module ends, so does the call's thread.
        self.daemon = True
        self.operation = operation
        self.args = args
        self.outcome = Outcome()
        # Waited on instead of join(): a join interrupted by a signal can
        # leave the thread looking finished while it still runs.
        self.done = threading.Event()

    def run(self):
        try:
            self.outcome.value = self.operation(*self.args)
        except Exception as exc:  # pylint: disable=broad-except  # handed to the main thread
            self.outcome.error = exc
        self.outcome.finished = True
        self.done.set()


def run_blocking(operation, *args, **options):
    """`operation(*args)` in a worker thread; returns its value or raises its
    exception.  Options: `abort` (called once on an interruption) and `grace`
    (seconds the call then gets to return, default 30).  On SIGTERM/SIGINT
    (inside `interruptible()`) raises `Interrupted` with `outcome` set."""
    abort = options.pop('abort', None)
    grace = options.pop('grace', 30.0)
    if options:
        raise TypeError('unexpected options: %s' % ', '.join(sorted(options)))
    worker = _Worker(operation, args)
    worker.start()
    try:
        while not worker.done.wait(_POLL):
            pass
    except Interrupted as exc:
        if abort is not None:
            try:
                abort()
            except Exception as error:  # pylint: disable=broad-except  # reported with the interruption
                exc.abort_error = error
        worker.done.wait(grace)
        exc.outcome = worker.outcome
        raise
    return worker.outcome.get()


def pause_point(name):
    """Test-only: pause here when the environment says so.

    With ``LIFECYCLE_LIBVIRT_TEST_PAUSE=<name>:<marker path>`` the process
    writes its PID to the marker file when it reaches the point called
    `name` and sleeps (up to 300 s), so that a test can kill it at exactly
    that point.  Without the variable this does nothing.
    """
    wanted, _sep, marker = os.environ.get(PAUSE_ENV, '').partition(':')
    if wanted != name or not marker:
        return
    with open(marker, 'w') as handle:
        handle.write(str(os.getpid()))
    deadline = time.monotonic() + _PAUSE_LIMIT
    while time.monotonic() < deadline:
        time.sleep(_POLL)
