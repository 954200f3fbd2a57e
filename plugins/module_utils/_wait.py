# -*- coding: utf-8 -*-
# Copyright: Contributors to the lifecycle.libvirt collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting on a monotonic clock: immune to wall-clock jumps (NTP, DST)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time


class WaitTimeout(Exception):
    """The condition was not met in time; `elapsed` says how long we waited."""

    def __init__(self, what, elapsed):
        super(WaitTimeout, self).__init__('%s did not happen within %.1f s' % (what, elapsed))
        self.elapsed = elapsed


class Stopwatch:
    """Measures the `duration` every result reports."""

    def __init__(self):
        self.started = time.monotonic()

    @property
    def elapsed(self):
        return time.monotonic() - self.started

    def rounded(self):
        return round(self.elapsed, 3)


def wait_until(condition, timeout, what, interval=0.2, on_tick=None):
    """Call `condition` until it returns true or `timeout` seconds pass.

    `on_tick(elapsed)` runs between polls (e.g. to repeat a request the
    target may have missed).  Returns the seconds waited; raises WaitTimeout.
    """
    watch = Stopwatch()
    while True:
        if condition():
            return watch.elapsed
        if watch.elapsed >= timeout:
            raise WaitTimeout(what, watch.elapsed)
        time.sleep(min(interval, max(timeout - watch.elapsed, 0)))
        if on_tick is not None:
            on_tick(watch.elapsed)
