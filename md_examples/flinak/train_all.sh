#!/usr/bin/env bash
# Trains every FLiNaK model of models/*.toml (base + MF/MFRA/TF/R-MF at the optimal rank and at
# ~50%), each an ensemble of 3 seeds, one after the other, with `pyfit train`.
#
#   bash train_all.sh                      # all models (needs data/train.cfg: make_training_data.py)
#   bash train_all.sh base mf_opt          # only these models
#   MAX_ITER=50 THREADS=2 bash train_all.sh   # overrides passed to pyfit train
#   RESUME=1 bash train_all.sh             # continue interrupted fits from their checkpoints
#
# Potentials go to models/out/<model>.<k>.mtp (k = 0, 1, 2; MTP-LOWRANK files for the compressed
# models), logs to models/out/<model>.jsonl. Cost: level 16 on the default 32 training frames
# (16384 environments) takes of the order of a second per BFGS iteration and thread, so the full
# 9 models x 3 seeds x 1000 iterations is a job of many CPU hours; start with MAX_ITER.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/models"
if [ ! -f ../data/train.cfg ]; then
  echo "train_all.sh: error: ../data/train.cfg not found; run make_training_data.py first" >&2
  exit 2
fi
models=("$@")
if [ ${#models[@]} -eq 0 ]; then
  models=(base mf_opt mf_50 mfra_opt mfra_50 tf_opt tf_50 rmf_opt rmf_50)
fi
extra=()
[ -n "${MAX_ITER:-}" ] && extra+=(--max-iter "$MAX_ITER")
[ -n "${THREADS:-}" ] && extra+=(--threads "$THREADS")
[ -n "${RESUME:-}" ] && extra+=(--resume)
PYFIT=${PYFIT:-pyfit}
mkdir -p out
for m in "${models[@]}"; do
  if [ ! -f "$m.toml" ]; then
    echo "train_all.sh: error: models/$m.toml not found" >&2
    exit 2
  fi
  echo "=== $m ($(date -u +%H:%M:%S)) ==="
  $PYFIT train "$m.toml" "${extra[@]}"
done
echo "=== done: potentials in $here/models/out ==="
