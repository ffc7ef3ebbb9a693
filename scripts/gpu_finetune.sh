#!/usr/bin/env bash
# Train one config on a GPU machine that has the checkout, torch and OpenCV but not the data set (pkdn runs from
# src/), for a fixed time window, at a few variants side by side, with a cosine schedule that ends inside it:
#   1. unpack the carried data (scripts/carry_data.py; HR_ONLY=1, the default, unpacks the HR faces alone, for
#      runs that degrade on the fly and distil nothing; HR_ONLY=0 also remakes the LR and the parsing maps, which a
#      teacher or a distilled student needs);
#   2. probe the step rate with every variant running at once (PROBE steps each, thrown away);
#   3. set `steps` so that the runs end RESERVE seconds before the window does (--max-minutes stays as a backstop:
#      a slower machine returns paused runs, not nothing);
#   4. train the variants side by side; 5. put one tar per run (weights, config, log) and the log in $OUT.
# Score the returned runs on your own machine, on the original PNGs: val to choose, test to report.
#   Here:  python scripts/carry_data.py pack prepared/celeba gpupack --splits train val      (carry gpupack)
#   There: CONFIG=configs/my_student.yaml WINDOW=540 \
#            VARIANTS="pc35:data.degrade.p_clean=0.35 pc25:data.degrade.p_clean=0.25" bash scripts/gpu_finetune.sh
# A variant is NAME:KEY=VALUE[,KEY=VALUE...] (config overrides, as `pkdn train --set`). STAGE=teacher trains a
# teacher; a student's teacher file travels with the checkout and is named in the config (or EXTRA="--set teacher=...").
set -u
t0=$(date +%s)
OUT=${OUT:-/tmp/gpu_out}
CONFIG=${CONFIG:?set CONFIG to a training config}
VARIANTS=${VARIANTS:?set VARIANTS, e.g. \"a:seed=1 b:seed=2\"}
WINDOW=${WINDOW:-540}   # seconds the whole script may take
RESERVE=${RESERVE:-50}  # seconds kept after training for the last validation, checkpoint and packing
PROBE=${PROBE:-150}     # probe steps per variant
EXTRA=${EXTRA:-}        # extra --set for every run, e.g. for a dry run on a CPU: "--set batch_size=4"
STAGE=${STAGE:-student} # teacher or student
HR_ONLY=${HR_ONLY:-1}   # 1: unpack the HR faces only; 0: also the LR faces and the parsing maps
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
py=$(command -v python3 || command -v python)
mkdir -p "$OUT" runs
log=$OUT/gpu_finetune.log
say() { echo "[$(($(date +%s) - t0)) s] $*" >>"$log"; }
sets_of() { local s=${1#*:} a; IFS=, read -ra a <<<"$s"; for x in "${a[@]}"; do printf -- '--set %s ' "$x"; done; }

say "start $(date -u)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >>"$log" 2>&1 || say "no nvidia-smi"
$py -c "import torch, cv2; print('torch', torch.__version__, 'cv2', cv2.__version__, 'cuda', torch.cuda.is_available())" >>"$log" 2>&1
$py scripts/carry_data.py unpack gpupack prepared/celeba --workers "$(nproc)" $([ "$HR_ONLY" = 1 ] && echo --hr-only) >>"$log" 2>&1 || { say "unpack failed"; cat "$log"; exit 1; }
say "unpacked"

for v in $VARIANTS; do
  # shellcheck disable=SC2046
  $py -m pkdn.cli train "$STAGE" --config "$CONFIG" --out "/tmp/probe_${v%%:*}" $(sets_of "$v") $EXTRA \
    --set steps=1000000 --set log_every=$((PROBE / 3)) --stop-after "$PROBE" --no-progress >"$OUT/probe_${v%%:*}.log" 2>&1 &
done
wait
# steps a second per run: the last logged interval of each probe (past the loader's start-up, all variants running
# at once) over the batch its saved config.yaml holds; the slowest run sets the pace
rate=$($py - /tmp/probe_* <<'EOF'
import json, sys
import yaml
rates = []
for r in sys.argv[1:]:
    train = [e for e in map(json.loads, open(f"{r}/log.jsonl")) if e["event"] == "train"]
    rates.append(train[-1]["images_per_s"] / yaml.safe_load(open(f"{r}/config.yaml"))["batch_size"])
print(min(rates))
EOF
) || { say "probe failed"; for f in "$OUT"/probe_*.log; do tail -n 30 "$f" >>"$log"; done; cat "$log"; exit 1; }
left=$((WINDOW - ($(date +%s) - t0) - RESERVE))
# 0.9: every epoch restarts the loader's workers, which the probe (inside one epoch) did not pay
steps=$($py -c "print(max(1, int(0.9 * $rate * ($left - 20))))")
say "probe: $rate steps/s per run; $left s left for training -> steps=$steps"
rm -f "$OUT"/probe_*.log

for v in $VARIANTS; do
  name=${v%%:*}
  # shellcheck disable=SC2046
  timeout $((left + 40)) $py -m pkdn.cli train "$STAGE" --config "$CONFIG" --out "runs/gpu_$name" $(sets_of "$v") $EXTRA \
    --set steps="$steps" --max-minutes "$($py -c "print(($left - 5) / 60)")" --no-progress >"runs/gpu_$name.out" 2>&1 &
done
wait
say "trained"
for v in $VARIANTS; do
  name=${v%%:*}
  { echo "== $name"; tail -n 4 "runs/gpu_$name.out"; grep '"val"\|"end"\|"pause"' "runs/gpu_$name/log.jsonl"; } >>"$log" 2>&1
  tar -cf "$OUT/$name.tar" --exclude=last.pt --exclude=tb -C runs "gpu_$name" >>"$log" 2>&1
done
say "packed"
ls -la "$OUT" >>"$log"
cat "$log"
