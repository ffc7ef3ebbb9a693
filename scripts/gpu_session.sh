#!/usr/bin/env bash
# One lent-GPU session (the `device` tool's machine: an H100, 16 cores, torch and OpenCV installed, no pkdn):
#   1. unpack the carried train + val faces (scripts/carry_data.py) into the prepared layout;
#   2. train, side by side on the one GPU, the `real` student at two values of p_clean
#      (configs/real_student_gpu.yaml) and the lite ablation table with its tries (configs/ablation_lite.yaml,
#      --jobs $JOBS; scored on val there only to finish the command: the test faces stay home and score here);
#   3. pack the run folders into $OUT (at most 8 files of 16 MiB) with scripts/gpu_collect.py.
# Every training is bounded by --max-minutes and resumable, so a slow machine returns paused runs, not nothing.
#   Here:  python scripts/carry_data.py pack prepared/celeba gpupack --splits train val
#   There: bash scripts/gpu_session.sh      (MINUTES=6 by default: the training window)
set -u
OUT=${OUT:-/tmp/gpu_out}
MINUTES=${MINUTES:-6}
PC=${PC-"0.2 0.35"}       # the real students' p_clean values (PC= for none); ABLATE=0 leaves the ablation out
EXTRA=${EXTRA:-}          # extra --set for every run, e.g. for a dry run on a CPU: "--set steps=4"
ABLATE_EXTRA=${ABLATE_EXTRA:-}
JOBS=${JOBS:-10}          # ablation runs at once: 4 teachers and 2 no-distillation students, then 7 distilled
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p "$OUT" runs
log=$OUT/session.log
py=$(command -v python3 || command -v python)
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  $py -c "import torch, cv2; print('torch', torch.__version__, 'cv2', cv2.__version__, 'cuda', torch.cuda.is_available())"
  $py scripts/carry_data.py unpack gpupack prepared/celeba --workers "$(nproc)"
  date -u
} >>"$log" 2>&1
limit=$(( (${MINUTES%.*} + 1) * 60 + 45 ))
for pc in $PC; do
  timeout "$limit" $py -m pkdn.cli train student --config configs/real_student_gpu.yaml --out "runs/real_gpu_pc$pc" \
    --set "data.degrade.p_clean=$pc" $EXTRA --max-minutes "$MINUTES" --no-progress >"$OUT/real_pc$pc.log" 2>&1 &
done
[ "${ABLATE:-1}" = 0 ] || timeout "$limit" $py -m pkdn.cli ablate configs/ablation_lite.yaml --jobs "$JOBS" --set eval_split=val \
  --set teacher.data.num_workers=1 --set student.data.num_workers=1 $ABLATE_EXTRA \
  --max-minutes "$MINUTES" --no-progress >"$OUT/ablate.log" 2>&1 &
while [ -n "$(jobs -r)" ]; do
  sleep 30
  { date -u; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null; } >>"$log"
done
wait
date -u >>"$log"
$py scripts/gpu_collect.py "$OUT" runs/real_gpu_pc* checkpoints/ablation_lite >>"$log" 2>&1
for f in "$OUT"/*.log; do  # one log file comes back: $OUT holds at most 8 files
  [ "$f" = "$log" ] || { echo "== $(basename "$f")"; tail -n 60 "$f"; rm -f "$f"; } >>"$log"
done
cat "$log"
