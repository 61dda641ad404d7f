#!/usr/bin/env bash
# The main job on bundled data: evaluate the bundled MLIP-2 potential, fit a small MTP with
# `pyfit train`, compress the bundled potential (low-rank radial tensor), run a short LAMMPS MD
# with the compressed potential, report errors and write results.
# Run from anywhere after `pip install .`; outputs go to ./pyfit_main_job/ (about 20 s on 2 cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-pyfit_main_job}
mkdir -p "$out"
pot="$here/data/CuAgAu_level10.mtp"
data="$here/data/CuAgAu_sample.cfg"

pyfit info "$pot"
echo
pyfit errors "$pot" "$data"
echo

# Fit a level-10 MTP on the 20 bundled configurations (4 held out for validation).
cat > "$out/fit.toml" <<TOML
[data]
train = "$data"
valid_fraction = 0.2
split_seed = 0

[model]
level = 10
species = ["Cu", "Ag", "Au"]
min_dist = 2.0
max_dist = 5.0

[optimizer]
max_iter = 300
threads = 2
seed = 0

[output]
potential = "fitted_level10.mtp"
progress_every = 50
TOML
pyfit train "$out/fit.toml"
fitted="$out/fitted_level10.mtp"
echo
pyfit errors "$fitted" "$data"
pyfit calc-efs "$fitted" "$data" "$out/CuAgAu_sample_fitted.cfg"
pyfit calc-efs "$pot" "$data" "$out/CuAgAu_sample_mtp.extxyz" --species Cu,Ag,Au
if python -c "import matplotlib" 2>/dev/null; then
  pyfit plot loss "$out/fitted_level10.jsonl" -o "$out/loss.png"
  pyfit plot parity "$fitted" "$data" -o "$out/parity.png"
fi
# Low-rank compression of the bundled potential: its singular-value spectrum, then R-MF at
# ~50 % of the radial parameters, refitted for 100 iterations on the bundled data.
pyfit info "$pot" --spectrum
compressed="$out/CuAgAu_level10_rmf50.mtplr"
pyfit compress "$pot" --method rmf --compression 0.5 --finetune "$data" --max-iter 100 \
  --threads 2 --species Cu,Ag,Au -o "$compressed"
pyfit info "$compressed"
pyfit errors "$compressed" "$data"
echo
# A short LAMMPS run with the compressed potential (pair_style mtp/lowrank, read in factored form).
pyfit lammps-check
python "$here/md_short.py" "$compressed" "$out/md" --steps 500
pyfit basis 16 --species 3 -o "$out/untrained_level16.mtp"
echo "results in $out/"
