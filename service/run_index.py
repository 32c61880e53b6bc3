"""``GET /v1/runs``: the operator's listing of runs, page by page."""

from __future__ import annotations

import json

from service.auth import require_operator
from service.errors import InvalidInput
from service.schemas import RunListOut, RunSummaryOut
from service.settings import Settings
from service.store.listing import BadCursor
from service.store.redis_store import RedisStore, RunSummary


def _summary(run: RunSummary) -> RunSummaryOut:
    config = json.loads(run.config_json)
    strategy = config.get("strategy") or {}
    return RunSummaryOut(
        run_id=run.run_id,
        distributions=len(config.get("distributions") or []),
        strategy=str(strategy.get("name", "?")),
        version=run.version,
        created_at=str(config.get("created_at", "")),
        reported_at=run.reported_at,
        layout=run.layout,
    )


class RunIndex:
    """Lists the runs of a deployment, for its operator."""

    def __init__(self, store: RedisStore, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def page(self, token: str | None, cursor: str | None, limit: int) -> RunListOut:
        """At most ``limit`` runs from ``cursor`` on, and the cursor of the next page."""
        require_operator(token, self._settings, "listing runs")
        try:
            found = await self._store.list_runs(cursor, limit)
        except BadCursor:
            raise InvalidInput(
                "this cursor was not made by this listing; pass the next_cursor of a page, "
                "or none for the first page"
            ) from None
        summaries = await self._store.run_summaries(found.run_ids)
        return RunListOut(
            runs=[_summary(s) for s in summaries],
            next_cursor=found.next_cursor,
        )
