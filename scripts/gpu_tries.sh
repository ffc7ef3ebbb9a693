#!/usr/bin/env bash
# More "distillation that pays" tries on a lent GPU (the `device` tool), beside a finished ablation:
# trains the TRIES (an ablation `tries` mapping, YAML) from the finished `full` teacher of
# checkpoints/ablation_lite, in a scratch out_dir, and packs one tar per try into $OUT.
#   Here:  python scripts/carry_data.py pack prepared/celeba gpupack --splits train val
#          carry [gpupack, checkpoints/ablation_lite/teacher_full/best.safetensors]
#   There: TRIES='{short: {teacher: full, seeds: [0], student: {distill: {decay_epochs: 0.5}}}}' bash scripts/gpu_tries.sh
#   Back:  untar into checkpoints/ablation_lite/, add the same tries to configs/ablation_lite.yaml and run
#          `pkdn ablate configs/ablation_lite.yaml`: it checks each try's config and scores it on the test faces.
set -u
OUT=${OUT:-/tmp/gpu_out} MINUTES=${MINUTES:-2.4} JOBS=${JOBS:-4}
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
py=$(command -v python3 || command -v python)
scratch=$(mktemp -d)
mkdir -p "$OUT" "$scratch/teacher_full"
{
  date -u
  $py scripts/carry_data.py unpack gpupack prepared/celeba --workers "$(nproc)"
  cp checkpoints/ablation_lite/teacher_full/{best.safetensors,config.yaml,log.jsonl} "$scratch/teacher_full/"
  date -u
  $py -m pkdn.cli ablate configs/ablation_lite.yaml --set "out_dir=$scratch" --set eval_split=val \
    --set 'teachers={full: {}}' --set 'students={}' --set "tries=$TRIES" --set student.data.num_workers=2 \
    --jobs "$JOBS" --max-minutes "$MINUTES" --no-progress
  date -u
  cd "$scratch" && for t in try_*; do tar -cf "$OUT/$t.tar" --exclude=last.safetensors --exclude=tb "$t"; done
  ls -la "$OUT"
} >"$OUT/tries.log" 2>&1
tail -n 60 "$OUT/tries.log"
