"""When a client may try a service that is down again: an exponential, capped cool-down.

An outage then costs a training step almost nothing: between probes, ``plan`` and
``report`` do not touch the network at all.
"""

from __future__ import annotations


class ProbeSchedule:
    """When the client may try the network again after failures.

    After the first failure it waits ``initial_s``, doubling after each further failure up
    to ``max_s``; a success resets it. Times are ``time.monotonic()`` seconds passed in.
    """

    def __init__(self, initial_s: float, max_s: float) -> None:
        if not 0 <= initial_s <= max_s:
            raise ValueError(f"need 0 <= initial_s <= max_s, got {initial_s} and {max_s}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.down_since: float | None = None
        self._delay = initial_s
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        """Whether the last attempt failed."""
        return self.down_since is not None

    def may_try(self, now: float) -> bool:
        """Whether the cool-down since the last failure is over (always, when up)."""
        return now >= self._next_try

    def failed(self, now: float) -> bool:
        """Record a failed attempt; True when it starts an outage (was up before)."""
        entering = self.down_since is None
        if entering:
            self.down_since = now
            self._delay = self.initial_s
        else:
            self._delay = min(self._delay * 2, self.max_s)
        self._next_try = now + self._delay
        return entering

    def succeeded(self) -> float | None:
        """Record a success; the outage's start when it ends one, else None."""
        since, self.down_since = self.down_since, None
        self._next_try = 0.0
        return since
