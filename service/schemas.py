"""Request and response bodies of the HTTP API, with the examples OpenAPI shows."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    Tag,
    create_model,
    field_validator,
    model_serializer,
)

from curriculum_core import (
    DEFAULT_STRATEGY,
    MAX_REPORT_VALUE,
    SNAPSHOT_FORMAT,
    STRATEGIES,
    Strategy,
    strategy_from_dict,
)
from curriculum_core.params import Parameter, parameters_of
from curriculum_core.prompts import PromptSelection
from service.store.keys import RUN_ID_PATTERN

MAX_STEP = 2**53
MAX_SEED = 2**53 - 1
MAX_RANK = 2**20 - 1
"""Seeds and steps stay below 2**53: every JSON parser reads them exactly."""

DistributionName = Annotated[str, StringConstraints(min_length=1, max_length=256)]
MAX_STATE_VALUE = 1e300
"""The largest magnitude of a number in an imported strategy state: a difference of two
stays finite."""

# strict: a JSON number only (1 or 1.5), never "1.5" or true, which a lax float would read
ReportValue = Annotated[
    float, Field(strict=True, ge=-MAX_REPORT_VALUE, le=MAX_REPORT_VALUE, allow_inf_nan=False)
]
"""An advantage or a reward (or a statistic of them): float32 windows hold it."""
WindowValue = Annotated[
    float, Field(strict=True, ge=0, le=2 * MAX_REPORT_VALUE, allow_inf_nan=False)
]
"""A value of a window (an absolute advantage, or a reward's distance from a mean reward)."""
Probability = Annotated[float, Field(strict=True, ge=0, le=1)]
StateValue = Annotated[
    float, Field(strict=True, ge=-MAX_STATE_VALUE, le=MAX_STATE_VALUE, allow_inf_nan=False)
]
RunId = Annotated[str, StringConstraints(pattern=RUN_ID_PATTERN)]
ReportId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$"),
    Field(description="Unique per report (printable ASCII, no spaces); a repeat is not counted."),
]
"""A report's id: in a report, and in a snapshot's remembered ids (one rule for both)."""


def _json_integer(value: object) -> object:
    """What JSON Schema calls an integer: a number with no fraction (``12`` or ``12.0``),
    never a string or a boolean (which a lax int would take)."""
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON integer (a number with no fraction)")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
Count = Annotated[int, Field(ge=0, le=MAX_STEP), BeforeValidator(_json_integer)]
"""A count of samples, reports or steps: exact in float64, as the store keeps it."""
# the constraints before the validator, or the schema shows them under pydantic's own names
Step = Annotated[int, Field(ge=0, le=MAX_STEP), BeforeValidator(_json_integer)]

_EXAMPLE_DISTS = ["kk-3", "kk-4", "kk-5", "kk-6", "kk-7", "kk-8"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _parameter_field(p: Parameter) -> tuple[Any, Any]:
    """The annotation and field of one strategy parameter, from its declaration in
    :mod:`curriculum_core` (the one list of what each strategy takes)."""
    if p.choices:
        return Literal[p.choices], Field(p.default)
    r = p.range
    bounds = Field(ge=r.minimum, gt=r.exclusive_minimum, le=r.maximum, lt=r.exclusive_maximum)
    if p.kind is int:
        return Annotated[int, bounds, BeforeValidator(_json_integer)], Field(p.default)
    return Annotated[float, bounds, Field(strict=True, allow_inf_nan=False)], Field(p.default)


class _Optional(BaseModel):
    """A model whose fields listed in ``_omitted_when_none`` are left out of its JSON while
    they are None (features a run may not use: its answers stay as they were without
    them)."""

    _omitted_when_none: tuple[str, ...] = ()

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        for name in self._omitted_when_none:
            if out.get(name, 0) is None:
                del out[name]
        return out


def _strategy_model(name: str, cls: type) -> type[BaseModel]:
    """The wire form of strategy ``cls``: ``name`` and exactly its parameters."""
    title = "".join(part.capitalize() for part in name.split("-")) + "Strategy"
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return create_model(
        title,
        __base__=_Body,
        __doc__=f"Strategy {name!r}: {doc}",
        name=(Literal[name], Field(description="The strategy.")),
        **{p.name: _parameter_field(p) for p in parameters_of(cls)},
    )


STRATEGY_MODELS: dict[str, type[BaseModel]] = {
    name: _strategy_model(name, cls) for name, cls in STRATEGIES.items()
}
StrategyParams = Annotated[
    Union[tuple(STRATEGY_MODELS.values())],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="name"),
]
"""A strategy with its parameters: one object form per strategy, told apart by ``name``."""

_BY_NAME = "by-name"


def _strategy_form(value: Any) -> str | None:
    """Which form a strategy is given in: its name alone, or the object of one strategy."""
    if isinstance(value, str):
        return _BY_NAME
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    return name if isinstance(name, str) else None


StrategyChoice = Annotated[
    Union[  # type: ignore[valid-type]
        (
            Annotated[Literal[tuple(STRATEGIES)], Tag(_BY_NAME)],
            *(Annotated[model, Tag(name)] for name, model in STRATEGY_MODELS.items()),
        )
    ],
    Discriminator(
        _strategy_form,
        custom_error_type="strategy",
        custom_error_message=f"must be a strategy name, or an object with a 'name' (one of "
        f"{list(STRATEGIES)}) and that strategy's parameters",
    ),
]
"""A strategy by name (with its defaults), or the object of one strategy; a wrong parameter
is reported under the strategy's name (``strategy.dump-ucb.tau``)."""


PromptSelectionParams = create_model(
    "PromptSelectionParams",
    __base__=_Body,
    __doc__="How a run that declares prompts selects them (docs/strategies.md, Prompt "
    "selection); every parameter optional.",
    **{p.name: _parameter_field(p) for p in parameters_of(PromptSelection)},
)
PromptCount = Annotated[int, Field(ge=1), BeforeValidator(_json_integer)]
PromptId = Annotated[int, Field(ge=0, lt=2**32), BeforeValidator(_json_integer)]


def _unique(names: list[str]) -> list[str]:
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"distribution names must be unique; repeated: {repeated[:10]}")
    return names


class CreateRunRequest(_Body):
    """A new run: its distributions, strategy and seed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "run_id": "kk-demo",
                    "distributions": _EXAMPLE_DISTS,
                    "strategy": {"name": "dump-ucb", "window": 300, "c": 1.0, "tau": 0.1},
                    "seed": 0,
                }
            ]
        },
    )

    run_id: RunId | None = Field(
        None, description="1-128 of A-Z a-z 0-9 . _ -; a random id when absent."
    )
    distributions: list[DistributionName] = Field(
        min_length=1,
        description="Unique names of the run's prompt distributions.",
        json_schema_extra={"uniqueItems": True},
    )
    strategy: StrategyChoice = Field(
        DEFAULT_STRATEGY,
        description="Strategy name (its defaults), or an object with `name` and any of that "
        "strategy's parameters. The windows of all distributions may keep at most 256 MiB "
        "(4 bytes x `window` x distributions); a larger run is refused with 422.",
    )
    seed: JsonInt = Field(0, ge=0, le=MAX_SEED, description="Seeds each step's batch composition.")
    prompts: dict[DistributionName, PromptCount] | None = Field(
        None,
        description="Optional: every distribution's prompt count (ids 0..n-1 in the trainer's "
        "order of its rows). Plans then name each slot's prompt (`prompt_ids`) and reports "
        "may name each group's (`groups`). At most CURRICULUM_MAX_PROMPTS in all.",
    )
    prompt_selection: PromptSelectionParams | None = Field(  # type: ignore[valid-type]
        None, description="Optional, with `prompts` only: how prompts are selected."
    )

    _check_names = field_validator("distributions")(_unique)

    def parsed_strategy(self) -> Strategy:
        """The strategy with its parameters filled in."""
        raw = self.strategy
        if isinstance(raw, str):
            return strategy_from_dict({"name": raw})
        return strategy_from_dict(raw.model_dump(exclude_unset=True) | {"name": raw.name})


class RunConfigOut(_Optional):
    """A run's configuration (``prompts`` and ``prompt_selection`` only in a run that
    declares prompts)."""

    model_config = ConfigDict(extra="forbid")
    _omitted_when_none = ("prompts", "prompt_selection")

    distributions: list[str]
    strategy: StrategyParams  # type: ignore[valid-type]
    seed: JsonInt = Field(ge=0, le=MAX_SEED)
    created_at: str
    prompts: dict[DistributionName, PromptCount] | None = None
    prompt_selection: PromptSelectionParams | None = None  # type: ignore[valid-type]


class CreateRunResponse(BaseModel):
    """The created (or existing) run. ``token`` is shown only when the run is created."""

    run_id: str
    created: bool
    token: str | None = Field(description="The run's bearer token; shown once, at creation.")
    version: int
    config: RunConfigOut


class DistributionStatsOut(BaseModel):
    """One distribution's statistics."""

    n: int = Field(description="Samples reported, in all.")
    window_mean: float = Field(description="Mean absolute advantage over the window.")
    score: float = Field(description="The strategy's score before the softmax.")
    weight: float = Field(description="Current sampling probability.")
    reward_mean: float = Field(description="Moving average of reported batch mean rewards.")
    reward_last: float = Field(description="Mean reward of the last report.")
    reward_best: float = Field(description="Highest the reward moving average has been.")
    reward_n: int = Field(description="Rewards reported, in all.")
    exploration_bonus: float = Field(
        description="What the strategy adds to the window mean to explore (dump-ucb: "
        "c * sqrt(2 ln(N + 1) / (n + 1)); 0 for strategies without a bonus)."
    )
    rehearsal_share: float = Field(
        description="The part of its weight given for rehearsal, because its reward was seen "
        "to fall while it was left out (dump-rehearse; 0 for the other strategies)."
    )
    starved: bool = Field(description="Its weight is under a tenth of the uniform 1/K.")
    saturated: bool = Field(
        description="Its window holds at least min(16, window) samples and their mean "
        "absolute advantage is at most 0.01: its groups are all right or all wrong."
    )


class ReporterOut(BaseModel):
    """The last applied report of one rank."""

    rank: int | None = Field(description="The rank the reports named; null: reports naming none.")
    step: int
    version: int = Field(description="The run's version after that report.")
    at: float = Field(description="When it was applied, Unix seconds (the service's clock).")


class PromptDiagnosticsOut(BaseModel):
    """One distribution's prompt selection (``curriculum_core.prompts.diagnostics``)."""

    prompts: int = Field(description="Prompts the distribution declared.")
    pass_: int = Field(alias="pass", description="The pass under way (every prompt once each).")
    position: int = Field(description="Prompts drawn in this pass.")
    skipped: float = Field(description="Recent share of the prompts drawn that were passed over.")
    zero_variance: float = Field(
        description="Recent share of the reported groups that were zero-variance."
    )
    forced: int = Field(description="Slots filled past max_skips passed-over prompts, in all.")
    keep: float = Field(description="The adaptive base of the skip probability.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class RunOut(_Optional):
    """A run's configuration, weights and statistics, a page of its distributions at a time:
    ``config.distributions``, ``weights``, ``stats``, ``activity.last_step`` and ``prompts``
    hold the distributions ``offset`` to ``offset + limit - 1`` in the run's order; the rest
    is whole. ``prompts`` only in a run that declares prompts."""

    _omitted_when_none = ("prompts",)

    run_id: str
    version: int
    config: RunConfigOut
    weights: dict[str, float]
    stats: dict[str, DistributionStatsOut]
    activity: ActivityOut
    offset: int = Field(
        description="Position of the page's first distribution in the run (``total`` for "
        "the empty page of an offset past the run)."
    )
    total: int = Field(description="The run's number of distributions.")
    next_offset: int | None = Field(
        description="``offset`` of the next page; null on the last page."
    )
    prompts: dict[str, PromptDiagnosticsOut] | None = Field(
        None, description="Per distribution, its prompt selection."
    )


class ActivityOut(BaseModel):
    """What the run's reporters did lately: shown, never scheduled on, not in a snapshot
    (an import starts it afresh)."""

    reporters: list[ReporterOut] = Field(description="Each rank's last applied report, by rank.")
    last_step: dict[str, int] = Field(
        description="Per distribution, the step of the last applied report that carried "
        "samples of it (distributions never sampled are left out)."
    )


class PlanRequest(_Body):
    """Which step's batch to compose, and how large it is."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"step": 12, "batch_size": 64}]}
    )

    step: Step
    batch_size: JsonInt = Field(ge=1, description="Prompts in the batch.")
    round: JsonInt = Field(
        0,
        ge=0,
        description="Generation round of the step: 0 is the step's batch; 1, 2, ... are "
        "further batches of the same step (refills after a filter dropped groups, "
        "over-generation), each fixed by its first request and drawn from its own seeded "
        "stream. Below the service's CURRICULUM_MAX_ROUNDS (default 64).",
    )


class PlanOut(_Optional):
    """One step's batch: the distribution of every slot (and, in a run that declares
    prompts, the prompt of every slot)."""

    _omitted_when_none = ("prompt_ids",)

    run_id: str
    step: int
    round: int = Field(0, description="The generation round of the step this plan is.")
    batch_size: int
    version: int = Field(description="Version of the weights the plan was drawn from.")
    counts: dict[str, int] = Field(description="Slots per distribution (non-zero only).")
    assignment: list[str] = Field(description="The distribution of each slot, in order.")
    prompt_ids: list[int] | None = Field(
        None,
        description="Only in a run that declares prompts: the prompt of each slot (an index "
        "into its distribution's rows), parallel to `assignment`.",
    )


class GroupIn(_Body):
    """One generated group of a prompt: its distribution, prompt id and rollouts' rewards."""

    distribution: DistributionName
    prompt: PromptId
    rewards: list[ReportValue] = Field(min_length=1)


class ReportRequest(_Body):
    """The advantages (and optionally rewards) of one step's samples, by distribution."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "report_id": "kk-demo/step-12/rank-0",
                    "step": 12,
                    "advantages": {"kk-4": [0.7, -0.7, 1.2, -1.2], "kk-5": [0.0, 0.0]},
                    "rewards": {"kk-4": [1.0, 0.0, 1.0, 0.0], "kk-5": [0.0, 0.0]},
                }
            ]
        },
    )

    report_id: ReportId
    step: Step
    advantages: dict[DistributionName, list[ReportValue]] = Field(
        description="Per distribution, each sample's scalar advantage (signed). At least one "
        "value in all: a distribution's list may be empty, not every list.",
        # JSON Schema for "not every list is empty" (an empty object included)
        json_schema_extra={"not": {"additionalProperties": {"maxItems": 0}}},
    )
    rewards: dict[DistributionName, list[ReportValue]] | None = Field(
        None, description="Per distribution, each sample's reward (for statistics)."
    )
    rank: JsonInt | None = Field(
        None,
        ge=0,
        le=MAX_RANK,
        description="The data-parallel rank that reports (shown with its last report).",
    )
    groups: list[GroupIn] | None = Field(
        None,
        description="Only in a run that declares prompts: each group's prompt and rewards, "
        "which move that prompt's selection state. At most CURRICULUM_MAX_REPORT_GROUPS.",
    )

    @field_validator("advantages")
    @classmethod
    def _some_value(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        if not any(value.values()):
            raise ValueError("a report needs at least one advantage value")
        return value


class ReportOut(BaseModel):
    """What a report did, and the weights after it."""

    status: Literal["applied", "duplicate"]
    version: int
    weights: dict[str, float] | None = Field(
        description="Probability per distribution after the report; null when the call asked "
        "for none (?weights=false: at K = 10,000 the weights are most of the answer's cost)."
    )


class SnapshotDistribution(_Body):
    """One distribution's learnt state in a snapshot."""

    n: Count
    window: list[WindowValue] = Field(description="Absolute advantages, oldest first.")
    reward_n: Count = 0
    reward_mean: ReportValue = 0.0
    reward_last: ReportValue = 0.0
    reward_best: ReportValue = 0.0


class HistoryPoint(_Body):
    """Weights and window means after the last report of one step; arrays follow the run's
    distributions."""

    step: Step
    version: Count
    weights: list[Probability]
    window_mean: list[WindowValue]


class HistoryOut(BaseModel):
    """A run's weights over time; arrays aligned with ``distributions``."""

    run_id: str
    distributions: list[str]
    entries: list[HistoryPoint]


class Snapshot(_Body, _Optional):
    """Everything a run has learnt: saved beside a checkpoint, imported on resume."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "format": SNAPSHOT_FORMAT,
                    "run_id": "kk-demo",
                    "version": 1,
                    "config": {
                        "distributions": _EXAMPLE_DISTS,
                        "strategy": {"name": "dump-ucb"},
                        "seed": 0,
                        "created_at": "2026-11-29T07:00:00+00:00",
                    },
                    "distributions": {
                        name: {"n": 2, "window": [0.7, 0.0]}
                        if name == "kk-4"
                        else {"n": 0, "window": []}
                        for name in _EXAMPLE_DISTS
                    },
                    "report_ids": [["kk-demo/step-0/rank-0", 1]],
                    "history": [],
                    "strategy_state": [],
                }
            ]
        },
    )

    _omitted_when_none = ("prompt_state",)

    format: Literal["rl-curriculum.snapshot/1"] = SNAPSHOT_FORMAT
    run_id: str
    version: Count
    config: RunConfigOut
    distributions: dict[DistributionName, SnapshotDistribution]
    report_ids: list[tuple[ReportId, Count]] = Field(
        default_factory=list,
        description="Remembered report ids, each with the version its report produced.",
    )
    history: list[HistoryPoint] = Field(default_factory=list)
    strategy_state: list[StateValue] = Field(
        default_factory=list,
        description="A stateful strategy's state (dump-ducb, dump-rehearse, sec, "
        "learning-progress, exp3s); empty for the others.",
    )
    prompt_state: dict[str, Any] | None = Field(
        None,
        description="A run that declares prompts: their selection state "
        "(curriculum_core.prompts.PromptState.to_json: records as base64, one byte a prompt, "
        "and per-distribution lists). Taken on import when the run declares the same prompt "
        "counts; otherwise its prompts start afresh.",
    )


class ImportOut(BaseModel):
    """The run after an import."""

    run_id: str
    version: int
    weights: dict[str, float]


class DeleteOut(BaseModel):
    """A deleted run."""

    run_id: str
    deleted: bool


class ErrorBody(BaseModel):
    """The error half of every non-2xx answer."""

    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    """Every non-2xx answer has this shape."""

    error: ErrorBody


class RunSummaryOut(BaseModel):
    """One run as the operator's listing shows it."""

    run_id: str
    distributions: int = Field(description="How many distributions it has.")
    strategy: str = Field(description="Its strategy's name.")
    version: int
    created_at: str
    reported_at: float | None = Field(
        description="When its last report was applied, Unix seconds; null before any."
    )
    layout: int = Field(description="The storage layout it is kept in (this service reads 2).")


class RunListOut(BaseModel):
    """One page of the operator's listing of runs."""

    runs: list[RunSummaryOut] = Field(description="At most `limit` runs, in no stated order.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null: the listing is done (a short "
        "or even empty page is not the end while this is set)."
    )


class CheckOut(BaseModel):
    """One check of ``GET /v1/doctor``."""

    name: Literal["redis", "scripts", "store layout", "clock"]
    status: Literal["ok", "warn", "fail"]
    detail: str = Field(description="What was found, and what to do about a warn or fail.")


class DoctorOut(BaseModel):
    """The deployment's health as the service sees it, check by check."""

    service_version: str
    store_layout: int = Field(description="The storage layout this service reads and writes.")
    checks: list[CheckOut]
    server_time: float = Field(description="This service process's clock, Unix seconds.")
