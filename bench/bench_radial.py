"""Radial step of the site evaluation: dense coefficients vs evaluating from low-rank factors.

Decides how pair_style mtp/lowrank and pyfit evaluate MF / TT potentials. Compiles
bench/bench_radial.cpp (g++ -O3, the kernel's flags) and times, per site of fcc Cu (42
neighbours), the whole site evaluation (energy + forces, SiteEvaluator) and the radial-function
step (f_mu and f'_mu for all neighbours) in three orders:
- dense: the kernel's loop over c[z_i, z_j, mu, b] (K*R multiply-adds per neighbour);
- MF (pairs unfolding, the paper's), rank r: species-independent first contraction of V with the
  basis (r*K*R), then U (r*K);
- last bond of rank r (MF pairs_funcs unfolding, or TT with r3 = r): h = V^T Q (r*R), then
  f = W h with W (C, C, K, r) precomputed at load (r*K).
Times are the best of 25 repetitions (the machine is shared). Usage: python bench/bench_radial.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_lammps import make_files  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        exe = tmp / "bench_radial"
        cxx = os.environ.get("CXX", "g++")
        subprocess.run([cxx, "-std=c++17", "-O3", "-ffp-contract=off", f"-I{HERE.parent / 'include'}",
                        str(HERE / "bench_radial.cpp"), "-o", str(exe)], check=True)
        rng = np.random.default_rng(0)
        print("# ns per site (42 neighbours), best of 25; radial = f and f' for all neighbours")
        print(f"{'level':>5} {'C':>2} {'K':>2} {'site':>8} {'dense':>7} {'% site':>6} "
              f"{'MF r1':>7} {'MF r2':>7} {'LB r1':>7} {'LB r2':>7} {'LB r3':>7} {'r*':>5}")
        for level in (8, 12, 16, 20, 24):
            path = make_files(level, tmp, rng)["dense"]
            for C in (1, 4):
                out = subprocess.run([str(exe), str(path), str(C), "1", "2", "3"], check=True,
                                     capture_output=True, text=True).stdout
                v = dict(re.findall(r"(\w+)=([\d.]+)", out))
                K, R = int(v["K"]), int(v["R"])
                site, dense = float(v["site_ns"]), float(v["dense_ns"])
                print(f"{level:>5} {C:>2} {K:>2} {site:8.0f} {dense:7.0f} {100 * dense / site:6.1f} "
                      f"{float(v['r1_mf_pairs_ns']):7.0f} {float(v['r2_mf_pairs_ns']):7.0f} "
                      f"{float(v['r1_last_bond_ns']):7.0f} {float(v['r2_last_bond_ns']):7.0f} "
                      f"{float(v['r3_last_bond_ns']):7.0f} {K * R / (K + R):5.2f}", flush=True)
        print("# r* = K R / (K + R): operation-count break-even rank of the last-bond order")


if __name__ == "__main__":
    main()
