#!/usr/bin/env bash
# The main job on bundled data: evaluate an MTP on structures, report errors, write results.
# Run from anywhere after `pip install .`; outputs go to ./pyfit_main_job/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-pyfit_main_job}
mkdir -p "$out"
pot="$here/data/CuAgAu_level10.mtp"
data="$here/data/CuAgAu_sample.cfg"

pyfit info "$pot"
echo
pyfit errors "$pot" "$data"
pyfit calc-efs "$pot" "$data" "$out/CuAgAu_sample_mtp.cfg"
pyfit calc-efs "$pot" "$data" "$out/CuAgAu_sample_mtp.extxyz" --species Cu,Ag,Au
pyfit basis 16 --species 3 -o "$out/untrained_level16.mtp"
echo "results in $out/"
