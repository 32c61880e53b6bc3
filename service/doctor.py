"""``GET /v1/doctor``: Redis reachable, the scripts loaded, the runs' storage layout and the
clock, checked by the service (the only part that talks to Redis) for ``curriculum doctor``."""

from __future__ import annotations

import time

from service import __version__
from service.auth import require_operator
from service.errors import StoreUnavailable
from service.schemas import CheckOut, DoctorOut
from service.settings import Settings
from service.store.diagnosis import StoreDiagnosis
from service.store.keys import STORE_LAYOUT
from service.store.redis_store import RedisStore
from service.store.scripts import SCRIPT_NAMES

CLOCK_SKEW_WARN_S = 1.0
"""Report times are stamped by the clock of the replica that applies each report; past this
skew from Redis's clock, the ages that the dashboard shows drift apart between replicas."""


def _checks(found: StoreDiagnosis, now: float) -> list[CheckOut]:
    mode = "Redis Cluster" if found.cluster else "standalone"
    checks = [
        CheckOut(
            name="redis",
            status="ok",
            detail=f"Redis {found.redis_version} ({mode}) answers in "
            f"{found.round_trip_s * 1000:.1f} ms",
        )
    ]
    total = len(SCRIPT_NAMES)
    if found.scripts_missing:
        checks.append(
            CheckOut(
                name="scripts",
                status="fail",
                detail=f"Redis refused to load {', '.join(found.scripts_missing)}: check that "
                "it allows Lua scripting (EVALSHA, SCRIPT LOAD) to this client",
            )
        )
    else:
        again = found.scripts_loaded_now
        note = (
            f"; {len(again)} were not loaded yet (scripts load on first use after Redis "
            "starts or flushes its script cache) and are loaded now"
            if again
            else ""
        )
        checks.append(CheckOut(name="scripts", status="ok", detail=f"{total} loaded{note}"))
    runs = sum(found.layouts.values())
    other = runs - found.layouts.get(STORE_LAYOUT, 0)
    partial = "" if found.layouts_complete else f" (the first {runs} only)"
    if other:
        checks.append(
            CheckOut(
                name="store layout",
                status="fail",
                detail=f"{other} of {runs} runs{partial} are stored in another layout than "
                f"{STORE_LAYOUT} (e.g. {', '.join(found.other_layout_runs[:5])}): this "
                "version refuses them; export each with the version that wrote it and import "
                "it here",
            )
        )
    else:
        checks.append(
            CheckOut(
                name="store layout",
                status="ok" if found.layouts_complete else "warn",
                detail=f"{runs} runs{partial}, all in layout {STORE_LAYOUT}",
            )
        )
    skew = now - found.redis_time
    checks.append(
        CheckOut(
            name="clock",
            status="ok" if abs(skew) < CLOCK_SKEW_WARN_S else "warn",
            detail=f"this service's clock is {skew:+.3f} s from Redis's"
            + (
                ""
                if abs(skew) < CLOCK_SKEW_WARN_S
                else "; report times are stamped by the replica that applies them: sync the "
                "clocks (NTP) so that report ages agree"
            ),
        )
    )
    return checks


class Doctor:
    """Checks the deployment for its operator."""

    def __init__(self, store: RedisStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def check(self, token: str | None) -> DoctorOut:
        """Every check; Redis unreachable is a failed check, not an error."""
        require_operator(token, self._settings, "the doctor")
        try:
            found = await self._store.diagnose()
            checks = _checks(found, time.time())
        except StoreUnavailable as exc:
            checks = [CheckOut(name="redis", status="fail", detail=exc.message)]
        return DoctorOut(
            service_version=__version__,
            store_layout=STORE_LAYOUT,
            checks=checks,
            server_time=time.time(),
        )
