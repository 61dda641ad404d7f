"""FLiNaK workflow (md_examples/flinak): teacher labelling, LAMMPS dump reading, script input
checks and a short NPT run with an MTP through the mtp/lowrank plugin."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyfit.cli import main as cli_main
from pyfit.configuration import Configuration
from pyfit.core_repulsion import dimer_walls
from pyfit.errors import MissingFileError, PyfitError
from pyfit.io.dataset import read_configurations, write_configurations
from pyfit.io.lammps_dump import read_lammps_dump, read_lammps_log, thermo_labels

from flinak_helpers import (HAVE_LAMMPS, example_core, labeller, load_script, needs_lammps,
                            needs_plugin)

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
EXAMPLE = HERE.parent / "md_examples" / "flinak"
SPECIES = ("Li", "Na", "K", "F")
SAMPLE = DATA / "flinak_teacher_2frames.extxyz"




@pytest.fixture(scope="module")
def sample():
    return read_configurations(SAMPLE, species=SPECIES)


@pytest.fixture(scope="module")
def teacher():
    with labeller("ff_flinak.lmp") as t:
        yield t


# ---------------------------------------------------------------- labelling parity
@needs_lammps
def test_teacher_reproduces_stored_labels(sample, teacher):
    """Relabelling the stored frames gives their energy, forces and stress (README conventions:
    ASE stress = -virial / V, positive under tension)."""
    assert len(sample) == 2
    for ref in sample:
        lab = teacher.label_one(ref)
        assert lab is not ref and ref.energy is not None
        assert abs(lab.energy - ref.energy) < 1e-6 * ref.n_atoms
        np.testing.assert_allclose(lab.forces, ref.forces, atol=1e-6)
        np.testing.assert_allclose(lab.stress_ase, ref.stress_ase, atol=1e-8)
        # not trivially zero: the frames are under real stress and forces
        assert np.abs(ref.forces).max() > 1.0 and np.abs(ref.stress_ase[:3]).max() > 1e-3


@needs_lammps
def test_teacher_stress_sign_under_compression(sample, teacher):
    """Compressing the box raises the pressure: PlusStress (virial) up, ASE stress down."""
    ref = teacher.label_one(sample[1])
    squeezed = sample[1].copy()
    s = 0.9 ** (1.0 / 3.0)
    squeezed.positions = squeezed.positions * s
    squeezed.cell = squeezed.cell * s
    lab = teacher.label_one(squeezed)
    assert np.trace(lab.plus_stress) > np.trace(ref.plus_stress) + 10.0
    assert np.all(lab.stress_ase[:3] < ref.stress_ase[:3])


@needs_lammps
def test_teacher_rotated_cell(sample, teacher):
    """A rotated (general triclinic) cell gives the same energy, and rotated forces/stress."""
    ref = sample[0]
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta), 0.0], [np.sin(theta), np.cos(theta), 0.0],
                    [0.0, 0.0, 1.0]])
    turned = ref.copy()
    turned.positions = ref.positions @ rot.T
    turned.cell = ref.cell @ rot.T
    lab = teacher.label_one(turned)
    assert abs(lab.energy - ref.energy) < 1e-5
    np.testing.assert_allclose(lab.forces, ref.forces @ rot.T, atol=1e-5)
    np.testing.assert_allclose(lab.plus_stress, rot @ ref.plus_stress @ rot.T,
                               atol=1e-4 * np.abs(ref.plus_stress).max())


def test_labeller_input_checks(tmp_path):
    from pyfit.teacher import LammpsLabeller

    with pytest.raises(MissingFileError):
        LammpsLabeller(tmp_path / "nope.lmp", species=SPECIES)
    with pytest.raises(PyfitError, match="one LAMMPS type per species"):
        LammpsLabeller(EXAMPLE / "ff_flinak.lmp", species=SPECIES, lammps_types=[1, 2])


# ---------------------------------------------------------------- dump / log reading
def _write_dump(path, frames, triclinic=False):
    with open(path, "w") as fh:
        for step, (cell, types, pos, forces) in enumerate(frames):
            cell = np.asarray(cell, dtype=float).tolist()
            pos, forces = np.asarray(pos).tolist(), np.asarray(forces).tolist()
            types = [int(t) for t in types]
            fh.write(f"ITEM: TIMESTEP\n{step * 10}\nITEM: NUMBER OF ATOMS\n{len(types)}\n")
            if triclinic:
                xy, xz, yz = cell[1][0], cell[2][0], cell[2][1]
                lo = [min(0.0, xy, xz, xy + xz), min(0.0, yz), 0.0]
                hi = [cell[0][0] + max(0.0, xy, xz, xy + xz), cell[1][1] + max(0.0, yz),
                      cell[2][2]]
                fh.write("ITEM: BOX BOUNDS xy xz yz pp pp pp\n")
                for d, t in enumerate((xy, xz, yz)):
                    fh.write(f"{lo[d]!r} {hi[d]!r} {t!r}\n")
            else:
                fh.write("ITEM: BOX BOUNDS pp pp pp\n")
                for d in range(3):
                    fh.write(f"0.0 {cell[d][d]!r}\n")
            fh.write("ITEM: ATOMS id type x y z fx fy fz\n")
            for i in reversed(range(len(types))):  # unsorted ids, as LAMMPS may write them
                fh.write(f"{i + 1} {types[i] + 1} {' '.join(map(repr, pos[i]))} "
                         f"{' '.join(map(repr, forces[i]))}\n")


@pytest.mark.parametrize("triclinic", [False, True])
def test_read_lammps_dump_roundtrip(tmp_path, triclinic):
    rng = np.random.default_rng(1)
    cell = np.diag([10.0, 11.0, 12.0])
    if triclinic:
        cell[1, 0], cell[2, 0], cell[2, 1] = 1.5, -0.7, 0.9
    types = rng.integers(0, 4, size=7)
    frac = rng.random((7, 3))
    pos = frac @ cell
    forces = rng.normal(size=(7, 3))
    _write_dump(tmp_path / "d.lammpstrj", [(cell, types, pos, forces)] * 2, triclinic)
    configs = read_lammps_dump(tmp_path / "d.lammpstrj", SPECIES)
    assert len(configs) == 2 and configs[1].features["timestep"] == "10"
    c = configs[0]
    np.testing.assert_allclose(c.cell, cell, atol=1e-12)
    np.testing.assert_allclose(c.positions, pos, atol=1e-9)
    np.testing.assert_array_equal(c.types, types)
    np.testing.assert_allclose(c.forces, forces)
    assert c.species == SPECIES


def test_read_lammps_dump_errors(tmp_path):
    with pytest.raises(MissingFileError):
        read_lammps_dump(tmp_path / "missing.lammpstrj", SPECIES)
    cell = np.eye(3) * 5.0
    _write_dump(tmp_path / "d.lammpstrj", [(cell, np.array([0, 5]), np.ones((2, 3)),
                                            np.zeros((2, 3)))])
    with pytest.raises(PyfitError, match="types 1..6"):
        read_lammps_dump(tmp_path / "d.lammpstrj", SPECIES)
    (tmp_path / "bad.lammpstrj").write_text("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n3\n")
    with pytest.raises(PyfitError, match="bad.lammpstrj:5"):
        read_lammps_dump(tmp_path / "bad.lammpstrj", SPECIES)


def test_read_log_and_thermo_labels(tmp_path):
    (tmp_path / "log.lammps").write_text(
        "LAMMPS (22 Jul 2025)\nStep PotEng c_pvir[1] c_pvir[2] c_pvir[3] c_pvir[4] c_pvir[5] "
        "c_pvir[6]\n0 -10.5 16021.765 0 0 0 0 -16021.765\n5 -10.0 1 2 3 4 5 6\n"
        "Loop time of 1 on 1 procs\nStep PotEng\n0 1.0\n")
    tables = read_lammps_log(tmp_path / "log.lammps")
    assert [len(t) for t in tables] == [2, 1]
    cfg = Configuration(positions=np.zeros((1, 3)), types=[0], cell=np.eye(3) * 10.0)
    lab = thermo_labels(cfg, tables[0][0])
    assert lab.energy == -10.5
    # 16021.765 bar * 1000 A^3 / 1.6021765e6 = 10 eV; compression -> positive PlusStress
    assert lab.plus_stress[0, 0] == pytest.approx(10.0)
    assert lab.plus_stress[1, 2] == pytest.approx(-10.0) == lab.plus_stress[2, 1]
    assert lab.plus_stress[0, 1] == 0.0
    assert lab.stress_ase[0] == pytest.approx(-0.01)
    with pytest.raises(PyfitError, match="no column"):
        thermo_labels(cfg, tables[1][0])


# ---------------------------------------------------------------- example scripts
POT = DATA / "flinak_l08.mtp"  # level-8 MTP fitted to the teacher data (tests/data/README.md)
TEACHER_DENSITY_1000K = 1.644  # g/cm^3, ../shared/data/flinak/README.md (1512 atoms, 50 ps)


def _script(name, *args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, str(EXAMPLE / name), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _module(name):
    return load_script(name)


def test_run_npt_checks_inputs(tmp_path, capsys):
    # the command line itself (exit status, message, no traceback) once in a subprocess ...
    r = _script("run_npt.py", "--potential", tmp_path / "missing.mtp", "--elements", "Li", "Na",
                "K", "F")
    assert r.returncode == 2 and "missing.mtp not found" in r.stderr
    assert "error" in r.stderr and "Traceback" not in r.stderr
    # ... then every check in-process
    run_npt = _module("run_npt")
    assert run_npt.main(["--potential", str(POT), "--elements", "Li", "Na", "K", "F",
                         "--check-only", "--plugin", str(POT)]) == 0  # any file passes --plugin
    assert '"n_radial_params": 256' in capsys.readouterr().out  # level 8: 4 x 4 x 2 x 8
    cases = [
        (["--potential", POT, "--elements", "Li", "Na", "K"], "has 4 species; expected 4"),
        (["--potential", POT, "--elements", "Li", "Na", "K", "Cl"], "has no F"),
        (["--potential", POT, "--elements", "Li", "Na", "K", "Xx"], "Xx is not an element"),
        (["--potential", POT, "--elements", "Li", "Li", "K", "F"], "repeated"),
        (["--potential", POT], "does not name its species"),
        (["--potential", DATA / "multi_10_pot.mtp", "--elements", "Li", "Na", "K"],
         "the potential has no F"),  # a consistent 3-species potential without fluorine
        (["--potential", DATA / "multi_10_pot.mtp", "--elements", "Li", "Na", "K", "F"],
         "has 3 species; expected 3"),
        (["--potential", SAMPLE, "--elements", "Li", "Na", "K", "F"], "cannot read potential"),
        (["--teacher", "--elements", "Li", "Na", "K", "F"], "apply to --potential"),
        (["--potential", POT, "--elements", "Li", "Na", "K", "F", "--plugin",
          tmp_path / "no.so"], "plugin"),
        (["--teacher", "--data", tmp_path / "none.data"], "none.data not found"),
        (["--teacher", "--nprod", "50"], "production steps"),
        (["--teacher", "--replicas", "0"], "--replicas 0 / --jobs 1: expected at least 1"),
        (["--teacher", "--nvt-density", "1644"], "expected a density in g/cm^3"),
        (["--teacher", "--jobs", "0"], "--replicas 1 / --jobs 0: expected at least 1"),
    ]
    for args, message in cases:
        assert run_npt.main([str(a) for a in args] + ["--check-only"]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "run_npt.py: error" in err, (args, err)


def test_run_npt_named_species(tmp_path, capsys):
    """A compressed (MTP-LOWRANK) potential names its species: --elements may be left out, and
    a list in another order is refused."""
    from pyfit.lowrank.compress import compress
    from pyfit.potential import MTP

    res = compress(MTP.load(POT, species=SPECIES), "mf", compression=0.5)
    res.potential.save(tmp_path / "l08_mf.mtplr")
    run_npt = _module("run_npt")
    args = ["--potential", str(tmp_path / "l08_mf.mtplr"), "--check-only", "--plugin", str(POT)]
    assert run_npt.main(args) == 0
    out = capsys.readouterr().out
    assert '"n_radial_params": 128' in out and '"species_named_in_file": true' in out
    assert run_npt.main(args + ["--elements", "Na", "Li", "K", "F"]) == 2
    assert "disagrees with the species Li Na K F" in capsys.readouterr().err


def test_correlated_error_of_an_ar1_series():
    """run_npt.correlated_error on AR(1) series x_t = phi x_{t-1} + e_t, whose integrated
    autocorrelation time is (1 + phi) / (1 - phi): tau within 15 %, and the error bar matches the
    scatter of the means of independent series; white noise gives tau ~ 1; blocks that are
    short against tau (block_average) understate the error; a constant series has none."""
    from scipy.signal import lfilter

    run_npt = _module("run_npt")
    rng = np.random.default_rng(11)
    phi, n = 0.95, 40000
    exact = (1 + phi) / (1 - phi)  # 39 samples
    means, errs, taus = [], [], []
    for _ in range(40):
        x = lfilter([1.0], [1.0, -phi], rng.normal(size=n))
        err, tau, reliable = run_npt.correlated_error(x)
        means.append(x.mean()), errs.append(err), taus.append(tau)
        assert reliable
    assert abs(np.mean(taus) / exact - 1) < 0.15, np.mean(taus)
    assert 0.75 < np.mean(errs) / np.std(means, ddof=1) < 1.33
    white = rng.normal(size=n)
    assert abs(run_npt.correlated_error(white)[1] - 1.0) < 0.2
    x = lfilter([1.0], [1.0, -0.999], rng.normal(size=5000))  # tau ~ 2000: 1-block lengths
    block_err = run_npt.block_average(x, 100)[1]
    err, tau, reliable = run_npt.correlated_error(x)
    assert not reliable and err > 2 * block_err
    assert run_npt.correlated_error(np.full(50, 1.6)) == (0.0, 1.0, True)
    with pytest.raises(ValueError, match="at least 2"):
        run_npt.correlated_error(np.ones(1))


def test_make_training_data_checks_inputs(tmp_path):
    r = _script("make_training_data.py", "--skip-md", "--workdir", tmp_path, "--out", tmp_path)
    assert r.returncode != 0 and "no dump.T<T>_<tag>.lammpstrj files" in r.stderr
    r = _script("make_training_data.py", "--skip-md", "--workdir", tmp_path,
                "--valid-fraction", "1.5")
    assert r.returncode != 0 and "--valid-fraction" in r.stderr
    r = _script("make_training_data.py", "--skip-md", "--workdir", tmp_path, "--temps", "2000 hot")
    assert r.returncode != 0 and "--temps '2000 hot': expected positive integer" in r.stderr


@needs_lammps
def test_hot_close_contact_frames_quick(tmp_path):
    """make_training_data.py --lammps-input in.teacher_hot (smoke test, a few steps): NVT frames
    at 1.644 and 1.744 g/cm^3 at each --temps temperature, labelled by the teacher."""
    import shutil

    if shutil.which("lmp") is None:
        pytest.skip("no lmp executable")
    r = _script("make_training_data.py", "--quick", "--lammps-input", "in.teacher_hot",
                "--temps", "1700", "--workdir", tmp_path / "md", "--out", tmp_path,
                "--valid-fraction", "0", timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["temperatures_K"] == [1700]
    assert summary["segments"] == ["rho1644", "rho1744"]
    assert summary["density_g_cm3"]["min"] == pytest.approx(1.644, abs=2e-4)
    assert summary["density_g_cm3"]["max"] == pytest.approx(1.744, abs=2e-4)
    assert summary["max_label_vs_md_force_diff_eV_A"] < 1e-3


def test_collect_table_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    runs = tmp_path / "runs"
    for name, rho, nrad, teacher in (("base.0", 1.640, 512, False), ("base.1", 1.650, 512, False),
                                     ("mf_50.0", 1.600, 240, False), ("teacher", 1.644, None,
                                                                     True)):
        d = runs / name
        d.mkdir(parents=True)
        dens = {f"{T:g}": {"mean": rho + (1000 - T) * 5e-4, "err": 0.004,
                           "drift": -0.05 if name.startswith("mf") and T == 1200 else 0.001}
                for T in (800.0, 1000.0, 1200.0)}
        (d / "density.json").write_text(json.dumps({
            "model": name, "teacher": teacher, "n_radial_params": nrad, "protocol": "short",
            "nprod": 30000, "density": dens, "date": "today", "machine": "m", "cpus": 2}))
    (runs / "tf_50.0").mkdir()
    (runs / "tf_50.0" / "density.json").write_text(json.dumps({
        "model": "tf_50.0", "n_radial_params": 252, "protocol": "short", "nprod": 30000,
        "density": {"800": {"failed": "ERROR: Lost atoms: original 1512 current 1510"}}}))
    # one potential measured in two density.json files (a 2-replica run at 800 K, one more run
    # at 800 K under another name): pooled as one member of the row named by the file
    rep = {"err": 0.002, "tau_ps": 0.5, "error_reliable": True, "correlation_times": 60,
           "samples": 3001, "drift": 0.0, "close_pair_warnings": 0, "min": 1.6, "max": 1.8,
           "wall_s": 800.0, "steps_per_s": 43.0}
    for name, means in (("base_core", (1.740, 1.736)), ("base_core_s702", (1.741,))):
        d = runs / name
        d.mkdir()
        reps = [rep | {"mean": m} for m in means]
        value = reps[0] if len(reps) == 1 else {"mean": sum(means) / 2, "err": 0.0015,
                                                  "replicas": reps}
        (d / "density.json").write_text(json.dumps({
            "model": name, "potential": "/x/coulomb_l16_rc5.mtp", "n_radial_params": 512,
            "protocol": "short", "nprod": 30000, "density": {"800": value}}))
    # the same potential file at two paths (a copy committed elsewhere) is one member; a file
    # with other content under the same name is another member of the row
    pots = tmp_path / "pots"
    for sub, text in (("a", "same"), ("b", "same"), ("c", "other")):
        (pots / sub).mkdir(parents=True)
        (pots / sub / "rmf_50.mtplr").write_text(text)
    for name, sub, rho in (("rmf_a", "a", 1.70), ("rmf_b", "b", 1.72), ("rmf_c", "c", 1.76)):
        (runs / name).mkdir()
        (runs / name / "density.json").write_text(json.dumps({
            "model": name, "potential": str(pots / sub / "rmf_50.mtplr"),
            "n_radial_params": 252, "protocol": "short", "nprod": 30000,
            "density": {"800": rep | {"mean": rho}}}))
    # a --full run (200 ps) of the base_core potential is a row of its own, not pooled with
    # its 30 ps runs
    (runs / "base_core_full").mkdir()
    (runs / "base_core_full" / "density.json").write_text(json.dumps({
        "model": "base_core_full", "potential": "/x/coulomb_l16_rc5.mtp", "n_radial_params": 512,
        "protocol": "full", "nprod": 200000, "density": {"800": rep | {"mean": 1.75}}}))
    collect = _module("collect")
    rows = collect.combine(collect.load_runs([runs]))
    # /x/coulomb_l16_rc5.mtp is gone and the records carry no digest: said for each record
    err = capsys.readouterr().err
    assert err.count("the potential /x/coulomb_l16_rc5.mtp no longer exists") == 3, err
    assert "rmf_50.mtplr no longer exists" not in err
    assert rows["coulomb_l16_rc5 (200 ps)"]["density"][800.0][:3] == (1.75, 0.002, 1)
    assert rows["coulomb_l16_rc5 (200 ps)"]["protocol"] == "full (200 ps)"
    assert rows["rmf_50"]["members"] == 2 and rows["rmf_50"]["density"][800.0][:3] == (
        pytest.approx(1.735), pytest.approx(0.025 * 2 ** 0.5), 2)  # (1.71, 1.76)
    # a recorded digest wins over the file at the path (which may have been overwritten since)
    rec = json.loads((runs / "rmf_b" / "density.json").read_text())
    (runs / "rmf_b" / "density.json").write_text(json.dumps(rec | {"potential_sha256": "0" * 64}))
    assert collect.combine(collect.load_runs([runs]))["rmf_50"]["members"] == 3
    for name in ("rmf_a", "rmf_b", "rmf_c"):
        shutil.rmtree(runs / name)
    m, e, n, drifting = rows["coulomb_l16_rc5"]["density"][800.0]
    assert (m, n, drifting) == (pytest.approx(1.739), 1, False) and rows["coulomb_l16_rc5"][
        "runs"] == [3]
    assert e == pytest.approx(max(0.0015275252, 0.002 * 3 ** 0.5 / 3))  # spread vs within
    assert collect.main([str(runs), "--out", str(tmp_path / "t.md"),
                         "--png", str(tmp_path / "t.png")]) == 0
    table = (tmp_path / "t.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()
            if line.startswith("| ")}
    assert "1.645 ± 0.007" in rows["base"]  # ensemble mean ± std over the 2 seeds at 1000 K
    assert "1.744 ± 0.004" in rows["teacher (same protocol)"]  # 800 K, single run
    assert "2.080" in rows["experiment, 2.5793 - 6.24e-4 T"]
    assert "1.500 ± 0.004 †" in rows["mf_50"] and "†" not in rows["base"]  # drifting at 1200 K
    assert rows["tf_50"].count("failed") == 2 and "| 1 (1 run(s) failed) | 252 |" in \
        rows["tf_50"]  # 800 K: lost atoms; no run at 1000 / 1200 K
    # max over T: 1200 K, (1.544 - 1.500) / 1.544 vs teacher, ± (1.500 / 1.544) *
    # hypot(0.004 / 1.500, 0.004 / 1.544)
    assert "| 2.85 ± 0.36% |" in rows["mf_50"]
    # ... and vs the base ensemble 1.545 ± 0.00707 (std of 1.540, 1.550) at 1200 K
    assert "| 2.91 ± 0.51% |" in rows["mf_50"]
    assert "both rows' errors combined" in table
    assert "| 1 (3 runs per T) | 512 | 1.739 ± 0.002 | - | - |" in rows["coulomb_l16_rc5"]
    assert "| 1 | 512 | 1.750 ± 0.002 | - | - |" in rows["coulomb_l16_rc5 (200 ps)"]
    assert "protocol full (200 ps), short (30 ps);" in table
    assert "(N ps): runs of another production length" in table
    # without a teacher run of the same protocol: deviations from the 50 ps reference (1.748)
    alone = collect.table({"m": collect.combine(collect.load_runs([runs / "base_core"]))[
        "coulomb_l16_rc5"]}, [800.0], None)
    # ± (1.738 / 1.748) * hypot(0.002 / 1.738, 0.004 / 1.748) = 0.25 %
    assert "| 1.738 ± 0.002 | 0.57 ± 0.25% | - |" in alone and "50 ps reference (no teacher" in alone
    assert (tmp_path / "t.png").stat().st_size > 10000
    assert collect.main([str(tmp_path / "empty")]) == 2
    assert "no density.json" in capsys.readouterr().err


def test_committed_table3_is_what_the_readme_command_collects(tmp_path):
    """results/table3.md (and the table in the README) is what the README's section-4 command
    makes from the committed records, and that command names every results/npt_* folder."""
    pytest.importorskip("matplotlib")
    import shlex

    readme = (EXAMPLE / "README.md").read_text()
    block = readme.split("## 4. Table 3 and the plot (current)")[1].split("```bash")[1]
    args = shlex.split(block.split("```")[0].replace("\\\n", " "))
    assert args[:2] == ["python", "collect.py"]
    folders = [a for a in args[2:] if a.startswith("results/npt_")]
    committed = sorted(f"results/{p.name}" for p in (EXAMPLE / "results").glob("npt_*")
                       if p.is_dir())
    assert sorted(folders) == committed
    table = (EXAMPLE / "results" / "table3.md").read_text()
    assert table.strip() in readme
    # members are told apart by the potential's recorded digest, never by a path on this machine
    for record in (EXAMPLE / "results").glob("npt_*/**/density.json"):
        run = json.loads(record.read_text())
        assert not run.get("potential") or run.get("potential_sha256"), record
    collect = _module("collect")
    out = tmp_path / "table3.md"
    argv = [str(EXAMPLE / a) if a in folders else a for a in args[2:]]
    argv[argv.index("--out") + 1] = str(out)
    argv[argv.index("--png") + 1] = str(tmp_path / "t.png")
    assert collect.main(argv) == 0
    assert out.read_text() == table
    # the README's command names the row of every model the workflow fits (models/*.toml),
    # and the committed table says whether each meets the targets
    accepted = args[args.index("--accept") + 1:]
    accepted = accepted[:next((k for k, a in enumerate(accepted) if a.startswith("--")),
                              len(accepted))]
    methods = {m.split("_")[0] + "_" + m.split("_")[1] for m in accepted if m != "base_core"}
    assert "base_core" in accepted and methods == {
        f"{m}_{r}" for m in ("mf", "mfra", "rmf", "tf") for r in ("opt", "50")}
    assert "Targets, for the row of each model" in table


def test_collect_acceptance_verdicts(tmp_path, capsys):
    """The targets table: a row is within a target at every temperature (with or without its
    error), outside it, or incomplete; rows are named by --accept, and a name that is no row
    is an error naming the rows there are."""
    collect = _module("collect")

    def row(*dens):
        return {"members": 3, "n_radial_params": 240, "teacher": False,
                "density": {T: (m, e, 3, False) for T, (m, e) in zip((800.0, 1000.0), dens)}}

    ref = row((1.750, 0.0), (1.650, 0.0))
    temps = [800.0, 1000.0]
    # 1.757 / 1.750 - 1 = 0.40 %, error 0.001 / 1.750 = 0.057 %
    assert collect.verdict(row((1.757, 0.001), (1.650, 0.001)), ref, temps, 0.5) == \
        "yes (0.40 ± 0.06% at 800 K)"
    assert collect.verdict(row((1.757, 0.003), (1.650, 0.001)), ref, temps, 0.5).startswith(
        "yes, by less than its error (0.40 ± 0.17%")
    assert collect.verdict(row((1.750, 0.001), (1.660, 0.003)), ref, temps, 0.5).startswith(
        "no, by less than its error (0.61 ± 0.18% at 1000 K)")
    assert collect.verdict(row((1.750, 0.001), (1.640, 0.001)), ref, temps, 0.5).startswith(
        "no (0.61 ± 0.06% at 1000 K)")
    assert collect.verdict(row((1.750, 0.001)), ref, temps, 0.5) == "incomplete (no 1000 K)"
    rows = {"base": ref | {"members": 1, "n_radial_params": 512},
            "mf_50": row((1.757, 0.001), (1.650, 0.001))}
    text = collect.acceptance(rows, temps, "base", ["base", "mf_50"], 1.0, 0.5)
    # no teacher row: its 50 ps reference, 1.748 ± 0.004 / 1.644 ± 0.004; 1.650 / 1.644 - 1 =
    # 0.36 %, ± 1.0036 * 0.004 / 1.644 = 0.24 %
    assert "| base | 1 | 512 | yes (0.36 ± 0.24% at 1000 K) | - |" in text
    # 1.757 / 1.748 - 1 = 0.51 %, ± 1.0051 * hypot(0.001 / 1.757, 0.004 / 1.748) = 0.24 %
    assert "| mf_50 | 3 | 240 | yes (0.51 ± 0.24% at 800 K) | yes (0.40 ± 0.06% at 800 K) |" \
        in text
    runs = tmp_path / "runs" / "a"
    runs.mkdir(parents=True)
    (runs / "density.json").write_text(json.dumps({
        "model": "a", "protocol": "short", "nprod": 30000, "n_radial_params": 512,
        "density": {"800": {"mean": 1.75, "err": 0.002, "drift": 0.0}}}))
    assert collect.main([str(runs), "--out", str(tmp_path / "t.md"), "--png",
                         str(tmp_path / "t.png"), "--accept", "a", "b"]) == 2
    assert "--accept: no row named b in these runs (rows: a)" in capsys.readouterr().err
    assert not (tmp_path / "t.md").exists()


def test_collect_plot_styles_are_distinct():
    """Every row of the plot gets its own (colour, marker): 13 rows in the committed Table 3
    repeated matplotlib's 10-colour cycle, so base and MFRA-50 were drawn alike; the teacher
    is black and the base row drawn thicker."""
    pytest.importorskip("matplotlib")
    collect = _module("collect")
    models = [f"m{k}" for k in range(40)] + ["teacher"]
    styles = collect.line_styles(models, {"teacher"}, base="m3")
    pairs = {(s["color"], s["marker"]) for s in styles.values()}
    assert len(pairs) == len(models)
    assert len({s["color"] for m, s in styles.items() if m in models[:20]}) == 20
    assert styles["teacher"]["color"] == "k" and all(
        s["color"] != "k" for m, s in styles.items() if m != "teacher")
    assert styles["m3"]["lw"] > styles["m4"]["lw"]


def test_core_screen_flags_the_member_that_collapsed(tmp_path):
    """base_core.3 lost its 1200 K run (fourteenth session): a Li-F pair fell through the 1 eV
    core to 0.77 A, pulled in by the MTP's extrapolated polynomials. The dimer screen flags
    exactly that pair of that member with the committed 1 eV core, passes the other members,
    and passes every committed FLiNaK potential with the 10 eV core of
    ff_coulomb_core_stiff.lmp (whose table is this core's)."""
    results = EXAMPLE / "results"
    soft = example_core(1.0)
    soft.write_table(tmp_path / "soft.table")
    assert (tmp_path / "soft.table").read_text() == (EXAMPLE / "core.table").read_text()
    walls = {w.pair: w for w in dimer_walls(soft, results / "potentials_2026-12-03b" /
                                            "base_core.3.mtp")}
    assert not walls["Li_F"].safe and walls["Li_F"].barrier < 5.0
    assert all(w.safe for pair, w in walls.items() if pair != "Li_F")
    for k in ("", ".2"):
        assert all(w.safe for w in dimer_walls(soft, results / "potentials_2026-12-03b" /
                                               f"base_core{k}.mtp"))
    stiff = example_core(10.0)
    stiff.write_table(tmp_path / "stiff.table")
    assert (tmp_path / "stiff.table").read_text() == (EXAMPLE / "core_stiff.table").read_text()
    potentials = sorted(results.glob("potentials_*/*.mtp")) + sorted(
        results.glob("potentials_*/*.mtplr"))
    assert len(potentials) >= 20
    weak = [(p.name, w.pair) for p in potentials for w in dimer_walls(stiff, p) if not w.safe]
    assert weak == []
    ff = (EXAMPLE / "ff_coulomb_core_stiff.lmp").read_text()
    assert "core_table index ${ff_dir}/core_stiff.table" in ff
    assert "include ${ff_dir}/ff_coulomb_core.lmp" in ff


def test_cli_core_table_check(tmp_path, capsys):
    """pyfit core-table --check: exit status 1 and a message naming the potential and the
    pair when the core does not hold, 0 with a larger --amplitude."""
    pair = Configuration(positions=np.array([[5.0, 5.0, 5.0], [6.13375, 5.0, 5.0]]),
                         types=np.array([0, 3]), cell=20.0 * np.eye(3))
    pair.energy = 0.0
    write_configurations(tmp_path / "pair.cfg", [pair])  # Li-F 1.13375 A: r_in 1.0837
    pot = EXAMPLE / "results" / "potentials_2026-12-03b" / "base_core.3.mtp"
    args = ["core-table", str(tmp_path / "pair.cfg"), "--species", "Li,Na,K,F",
            "-o", str(tmp_path / "core.table"), "--check", str(pot)]
    assert cli_main(args) == 1
    captured = capsys.readouterr()
    assert "Li_F     r_in 1.0837 A" in captured.out and "FAILS" in captured.out
    assert f"{pot}: Li_F" in captured.err and "larger --amplitude" in captured.err
    assert cli_main(args + ["--amplitude", "10"]) == 0
    assert "FAILS" not in capsys.readouterr().out
    with pytest.raises(PyfitError, match="step <= depth"):
        dimer_walls(example_core(1.0), pot, step=2.0)


@needs_plugin
def test_short_mtp_npt_density(tmp_path):
    """The example's NPT driver with an MTP: a few hundred steps of 1512 atoms at 1000 K; the
    density is finite and within 10% of the teacher's."""
    r = _script("run_npt.py", "--potential", POT, "--elements", "Li", "Na", "K", "F",
                "--name", "l08", "--temperatures", "1000", "--neq", "100", "--nprod", "200",
                "--blocks", "4", "--workdir", tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads((tmp_path / "l08" / "density.json").read_text())
    d = result["density"]["1000"]
    assert d["samples"] == 21 and np.isfinite(d["mean"]) and np.isfinite(d["err"])
    assert d["err"] == max(d["err_blocks"], d["err_autocorrelation"]) and d["tau_ps"] >= 0.01
    assert d["error_reliable"] is False  # 200 steps: far shorter than 50 correlation times
    assert f"only {d['correlation_times']:.0f} correlation times long" in r.stdout
    assert d["correlation_times"] == pytest.approx(21 / (d["tau_ps"] / 0.01))
    assert abs(d["mean"] / TEACHER_DENSITY_1000K - 1.0) < 0.10, d
    assert result["n_radial_params"] == 256 and result["elements"] == list(SPECIES)
    # the record says how LAMMPS was run (the speed depends on the MPI ranks)
    assert Path(result["lmp"].split()[-1]).name == "lmp" and result["jobs"] == 1
    assert result["potential_sha256"] == hashlib.sha256(Path(POT).read_bytes()).hexdigest()
    # the run used (and keeps) its own copy of the input, safe from edits during the run
    copy = tmp_path / "l08" / "T1000" / "in.flinak_npt"
    assert copy.read_text() == (EXAMPLE / "in.flinak_npt").read_text()


@needs_plugin
def test_npt_replicas_run_concurrently(tmp_path):
    """--replicas 3 --jobs 2: three velocity seeds per temperature, two LAMMPS runs at a time;
    the density is the mean of the replica means and its error at least their standard error."""
    r = _script("run_npt.py", "--potential", POT, "--elements", "Li", "Na", "K", "F",
                "--name", "rep", "--temperatures", "1000", "--neq", "50", "--nprod", "100",
                "--blocks", "2", "--replicas", "3", "--jobs", "2", "--seed", "11",
                "--workdir", tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    record = json.loads((tmp_path / "rep" / "density.json").read_text())
    assert record["jobs"] == 2
    d = record["density"]["1000"]
    reps = d["replicas"]
    assert [x["seed"] for x in reps] == [11, 12, 13]
    means = np.array([x["mean"] for x in reps])
    assert len(set(means)) == 3  # different velocities, different trajectories
    assert d["mean"] == pytest.approx(means.mean(), rel=1e-12)
    assert d["err_replicas"] == pytest.approx(means.std(ddof=1) / np.sqrt(3), rel=1e-9)
    assert d["err"] == max(d["err_replicas"], d["err_within"]) and d["samples"] == 33
    for k in range(3):
        assert (tmp_path / "rep" / "T1000" / f"rep{k}" / "density.T1000.dat").is_file()
    assert "3 replicas" in r.stdout
    # three independent runs: their spread is an honest error bar, however short each run is
    assert d["error_reliable"] and "lower bound" not in r.stdout
    assert d["correlation_times"] == min(x["correlation_times"] for x in reps)


@needs_plugin
def test_nvt_pressure_at_a_fixed_density(tmp_path):
    """--nvt-density: NVT at the given density (the box scaled to it), the mean pressure in GPa
    to pressure.json (no density.json, so collect.py does not mistake it for a density); it
    agrees with LAMMPS's own thermo pressure."""
    r = _script("run_npt.py", "--potential", POT, "--elements", "Li", "Na", "K", "F",
                "--name", "p", "--temperatures", "1000", "--neq", "20", "--nprod", "100",
                "--blocks", "2", "--nvt-density", "1.644", "--workdir", tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads((tmp_path / "p" / "pressure.json").read_text())
    assert result["ensemble"] == "NVT" and result["nvt_density"] == 1.644
    assert not (tmp_path / "p" / "density.json").exists()
    series = np.loadtxt(tmp_path / "p" / "T1000" / "density.T1000.dat")
    np.testing.assert_allclose(series[:, 1], 1.644, rtol=1e-9)  # the volume is fixed
    d = result["pressure"]["1000"]
    assert d["mean"] == pytest.approx(series[:, 2].mean() * 1e-4, rel=1e-9)
    assert d["samples"] == 11 and "pressure at 1.644 g/cm^3" in r.stdout


# radial parameters each model config must realise (md_examples/flinak/README.md)
EXPECTED_RADIAL = {"base": 512, "mf_opt": 384, "mfra_opt": 384, "rmf_opt": 320, "tf_opt": 304,
                   "mf_50": 240, "mfra_50": 240, "rmf_50": 252, "tf_50": 252}


def test_model_configs(sample):
    """Every models/*.toml parses with the trainer's schema (level 16, Li Na K F, cutoff 5 A,
    3 seeds, the shared data files) and its [compression] table builds an objective with the
    documented number of radial parameters."""
    from pyfit.fitting.config import load_config
    from pyfit.fitting.loss import Loss, LossWeights
    from pyfit.fitting.trainer import make_template
    from pyfit.lowrank.objective import objective_from_table

    tomls = sorted((EXAMPLE / "models").glob("*.toml"))
    assert sorted(t.stem for t in tomls) == sorted(EXPECTED_RADIAL)
    template = None
    for path in tomls:
        cfg = load_config(path)
        m = cfg.model
        assert (m.level, m.species, m.max_dist, cfg.optimizer.n_models) == \
            (16, list(SPECIES), 5.0, 3), path.name
        # below the closest Li-F approach of the teacher data (1.203 A), above the Li-F turnover
        assert 0.9 < m.min_dist < 1.2
        assert [os.path.normpath(p) for p in cfg.data.train] == \
            [os.path.normpath(EXAMPLE / "data" / "train.cfg")]
        # MFRA (from scratch or from the base) gets twice the base's iterations (README)
        assert cfg.optimizer.max_iter == (2000 if path.stem.startswith("mfra") else 1000)
        suffix = ".mtp" if cfg.compression is None else ".mtplr"  # MLIP / MTP-LOWRANK
        assert Path(cfg.output.potential).name == path.stem + suffix
        if template is None:
            template = make_template(m.level, len(SPECIES), m.min_dist, m.max_dist,
                                     m.radial_basis_size)
            loss = Loss(template, sample[:1], LossWeights(cfg.loss.energy, cfg.loss.forces,
                                                          cfg.loss.stress), n_threads=1)
        if cfg.compression is None:
            n_radial = template.n_radial_params
        else:
            objective = objective_from_table(loss, cfg.compression, list(SPECIES))
            assert objective.method == cfg.compression["method"]
            n_radial = objective.n_radial_params
        assert n_radial == EXPECTED_RADIAL[path.stem], path.name


def test_train_all_commands():
    """train_all.py: pyfit train for every model (R-MF and MFRA by their own optimisers inside
    pyfit train); --from-base: pyfit compress from each base member for rmf / mfra."""
    r = _script("train_all.py", "--dry-run", "rmf_opt", "mfra_50", "tf_50", "--max-iter", "7")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("=== ") and "(" in line]
    assert [line.split()[1] for line in lines] == ["rmf_opt", "mfra_50", "tf_50"]
    for line, model in zip(lines, ["rmf_opt", "mfra_50", "tf_50"]):
        assert "train " in line and line.rstrip().endswith(f"{model}.toml --max-iter 7")
    r = _script("train_all.py", "--dry-run", "tf_50", "--energy-weight", "10")
    assert r.returncode == 0 and "tf_50.toml --energy-weight 10.0" in r.stdout, r.stderr
    r = _script("train_all.py", "--dry-run", "--from-base", "rmf_50", "--energy-weight", "10")
    assert r.returncode == 0 and r.stdout.count("--energy-weight 10.0 ") == 3, r.stderr
    r = _script("train_all.py", "--dry-run", "tf_50", "--energy-weight", "0")
    assert r.returncode == 2 and "--energy-weight 0.0: a positive weight" in r.stderr
    r = _script("train_all.py", "--dry-run", "--from-base", "rmf_50")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("=== ") and "(" in line]
    assert len(lines) == 3 and all(f"out/base.{k}.mtp --method rmf --compression 0.5" in line
                                   for k, line in enumerate(lines))
    r = _script("train_all.py", "no_such_model")
    assert r.returncode == 2 and "no models/no_such_model.toml" in r.stderr


def test_train_all_active_learning_rounds(tmp_path):
    """--al-rounds 2: fit one base member, sample it (active_learning.py) -> al1.cfg, refit
    from it with al1.cfg, sample -> al2.cfg; then every model is fitted to train.cfg + al1 +
    al2. A round whose frames exist is reused."""
    def steps(*extra):
        r = _script("train_all.py", "--dry-run", "--al-rounds", "2", "--al-frames", "3",
                    "--al-dir", tmp_path, "--max-iter", "9", *extra, "base", "mf_50")
        assert r.returncode == 0, r.stderr
        return [line for line in r.stdout.splitlines() if line.startswith("=== ")]

    train = os.path.normpath(EXAMPLE / "data" / "train.cfg")
    al1, al2 = str(tmp_path / "al1.cfg"), str(tmp_path / "al2.cfg")
    round1 = str(EXAMPLE / "models" / "out" / "al" / "base_round1.mtp")
    lines = steps()
    assert [line.split("(")[0] for line in lines[:4]] == \
        ["=== active learning, round 1 ", "=== active learning, round 1 ",
         "=== active learning, round 2 ", "=== active learning, round 2 "]
    assert lines[0].endswith(f"--n-models 1 --train {train} -o {round1} --max-iter 9")
    assert lines[1].endswith(f"active_learning.py --potential {round1} --elements Li Na K F "
                             f"--start {train} -o {al1} --frames 3")
    assert f"--train {train} {al1} -o " in lines[2] and f"--init {round1}" in lines[2]
    assert lines[3].endswith(f"-o {al2} --frames 3")
    for line, model in zip(lines[-3:-1], ["base", "mf_50"]):
        assert line.startswith(f"=== {model} ")
        assert line.endswith(f"{model}.toml --max-iter 9 --train {train} {al1} {al2}")
    (tmp_path / "al1.cfg").write_text("")  # round 1 done: reused, round 2 starts from its fit
    lines = steps()
    assert lines[0] == f"=== active learning: reusing {al1}"
    assert sum("active learning, round 1" in line for line in lines) == 0
    assert f"--train {train} {al1} -o " in lines[1] and f"--init {round1}" in lines[1]
    assert "--resume" in steps("--resume")[1]  # an interrupted round's fit continues
    r = _script("train_all.py", "--dry-run", "--al-rounds", "-1")
    assert r.returncode == 2 and "--al-rounds >= 0" in r.stderr
    r = _script("train_all.py", "--dry-run", "--al-rounds", "1", "--al-dir", tmp_path / "no")
    assert r.returncode == 2 and "is not a directory" in r.stderr


def _al_start(tmp_path):
    frames = read_configurations(SAMPLE, species=SPECIES)
    frames[0].features["config_type"] = "T1400_npt"
    frames[1].features["config_type"] = "T1000_npt"
    path = tmp_path / "start.cfg"
    write_configurations(path, frames)
    return path


def test_active_learning_checks_inputs(tmp_path, capsys):
    al = _module("active_learning")
    start = _al_start(tmp_path)
    ok = ["--potential", POT, "--elements", "Li", "Na", "K", "F", "--start", start,
          "-o", tmp_path / "al.cfg"]
    assert al.main([str(a) for a in ok] + ["--check-only"]) == 0
    assert "inputs OK" in capsys.readouterr().out
    cases = [
        (["--potential", tmp_path / "none.mtp", "--elements", "Li", "Na", "K", "F"],
         "none.mtp not found"),
        (["--potential", POT, "--elements", "Li", "Na", "K"], "has 4 species; expected 4"),
        (["--potential", POT, "--elements", "Na", "Li", "K", "F"], "species order Li Na K F"),
        (["--potential", POT, "--elements", "Li", "Na", "K", "F", "--start",
          tmp_path / "x.cfg"], "x.cfg not found"),
        (["--potential", POT, "--elements", "Li", "Na", "K", "F", "--start-type", "T900_npt"],
         "no frame with config_type = T900_npt; found T1000_npt, T1400_npt"),
        (["--potential", POT, "--elements", "Li", "Na", "K", "F", "--frames", "0"],
         "--frames >= 1"),
        (["--potential", POT, "--elements", "Li", "Na", "K", "F", "-o",
          tmp_path / "no" / "al.cfg"], "not found"),
    ]
    for args, message in cases:
        full = [str(a) for a in args]
        if "--start" not in full:
            full += ["--start", str(start)]
        if "-o" not in full:
            full += ["-o", str(tmp_path / "al.cfg")]
        assert al.main(full + ["--check-only"]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "active_learning.py: error" in err, (args, err)


def test_active_learning_unstable_potential_is_a_clear_error(tmp_path, capsys, monkeypatch):
    """An MTP that blows up in NPT (LAMMPS 'Lost atoms') stops the round with a message naming
    the temperature, not a traceback; nothing is written."""
    import pyfit.lammps

    class Blows:
        def commands_string(self, text):
            raise Exception("ERROR: Lost atoms: original 512 current 441\nFor more information")

        def close(self):
            pass

    monkeypatch.setattr(pyfit.lammps, "make_lammps", lambda *a, **k: Blows())
    al = _module("active_learning")
    out = tmp_path / "al.cfg"
    args = ["--potential", POT, "--elements", "Li", "Na", "K", "F", "--start", _al_start(tmp_path),
            "--temperatures", "1300", "-o", out]
    assert al.main([str(a) for a in args]) == 1
    err = capsys.readouterr().err
    assert "active_learning.py: error: the MTP's NPT run at 1300 K stopped (ERROR: Lost atoms: " \
           "original 512 current 441): the potential is unstable there" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.skipif(not HAVE_LAMMPS, reason="lammps module not installed")
def test_active_learning_round_labels_mtp_frames(tmp_path, capsys):
    """A tiny round (level-8 MTP, 2 temperatures x 2 frames, a few steps): frames from the MTP
    run, relabelled by the teacher (so labels differ from the MTP's prediction), 512 atoms."""
    from pyfit.potential import MTP

    al = _module("active_learning")
    out = tmp_path / "al.cfg"
    args = ["--potential", POT, "--elements", "Li", "Na", "K", "F", "--start", _al_start(tmp_path),
            "--temperatures", "1200", "900", "--frames", "2", "--neq", "10", "--every", "5",
            "-o", out]
    assert al.main([str(a) for a in args]) == 0
    frames = read_configurations(out, species=SPECIES)
    assert [c.features["config_type"] for c in frames] == ["al_T1200"] * 2 + ["al_T900"] * 2
    assert all(c.n_atoms == 512 and c.forces is not None and c.plus_stress is not None
               for c in frames)
    start = read_configurations(SAMPLE, species=SPECIES)[1]
    assert not np.allclose(frames[0].positions, start.positions)  # the MTP moved the atoms
    assert not np.allclose(frames[0].positions, frames[1].positions)
    pot = MTP.load(POT, species=SPECIES)
    for c in frames:  # teacher labels, not the MTP's: they differ, but not wildly
        pred = pot.evaluate(c)
        assert 0 < abs(pred.energy - c.energy) / c.n_atoms < 0.05
        assert 0.01 < np.sqrt(np.mean((pred.forces - c.forces) ** 2)) < 1.0
    assert "MTP - teacher energy" in capsys.readouterr().out


def _train_paths(cfg) -> list[Path]:
    """A fit config's training files, resolved (configs name them relative to their folder)."""
    return [Path(p).resolve() for p in cfg.data.train]


def test_result_configs_share_the_core_recipe():
    """The fits of Table 3 (results/potentials_*/*_core.toml) extend base_core.toml: same data,
    model, loss and optimizer (but the time limit) as it, their own output and compression."""
    from pyfit.fitting.config import load_config

    root = EXAMPLE / "results" / "potentials_2026-12-03b" / "base_core.toml"
    base = load_config(root)
    assert _train_paths(base) == [EXAMPLE / "data" / "coulomb_core" / f
                                  for f in ("train.cfg", "al_base.cfg")]
    tomls = sorted((EXAMPLE / "results").glob("potentials_*/*_core.toml"))
    assert len(tomls) == 9
    for path in tomls:
        cfg = load_config(path)
        assert _train_paths(cfg) == _train_paths(base), path.name
        for section in ("model", "loss"):
            assert getattr(cfg, section) == getattr(base, section), path.name
        assert cfg.optimizer.seed == 1 and cfg.optimizer.max_iter == 1000
        assert Path(cfg.output.potential).parent == path.parent
        assert (cfg.compression is None) == (path == root), path.name


def _assert_mfra_continuation(path: Path, start: Path, rank: int) -> None:
    """The fit config ``path`` is base_core.toml's recipe (data, model, loss, 1000 iterations)
    started from the committed MFRA potential ``start`` at its own rank (r0 = r_max = rank: no
    augmentation)."""
    from dataclasses import replace

    from pyfit.fitting.config import load_config
    from pyfit.io.lowrank_file import read_lowrank

    base = load_config(EXAMPLE / "results" / "potentials_2026-12-03b" / "base_core.toml")
    cfg = load_config(path)
    assert Path(cfg.model.init).resolve() == start, path.name
    assert replace(cfg.model, init="") == base.model and cfg.loss == base.loss, path.name
    assert _train_paths(cfg) == _train_paths(base), path.name
    assert cfg.optimizer.max_iter == 1000, path.name
    c = cfg.compression
    assert (c["method"], c["r0"], c["r_max"]) == ("mfra", rank, rank), path.name
    assert read_lowrank(start).factors.rank == rank, start.name


def test_mfra_continuation_configs_restart_the_mfra_fits():
    """results/potentials_2026-12-05/*_x2.toml: the base_core recipe started from a committed
    MFRA-from-scratch potential (model.init) at its own rank (r0 = r_max: no augmentation)."""
    tomls = sorted((EXAMPLE / "results" / "potentials_2026-12-05").glob("*_x2.toml"))
    assert [t.stem for t in tomls] == ["mfra_50_core_x2", "mfra_opt_core_x2"]
    for path, rank, origin in zip(tomls, (5, 8), ("potentials_2026-12-02h/mfra_50_core",
                                                  "potentials_2026-12-03b/mfra_opt_core")):
        _assert_mfra_continuation(path, EXAMPLE / "results" / f"{origin}.mtplr", rank)


def _first_loss(log: Path) -> float:
    """The loss at iteration 0 of a ``pyfit train`` progress table (its committed stdout)."""
    for line in log.read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[:2] == ["0", "0"]:
            return float(fields[2])
    raise AssertionError(f"{log}: no iteration-0 row")


def test_mfra_frombase_continuation_restarts_each_frombase_member():
    """results/potentials_2026-12-05d: each mfra_50_frombase member (pyfit compress of a trained
    base, 1000 fine-tuning iterations) continued with base_core's recipe at its rank 5 (r0 =
    r_max); the TOML starts member 1, members 2 and 3 are the same run with --init of their own
    member. Each continuation starts where its member's fine-tune ended (its compress log)."""
    from pyfit.io.lowrank_file import read_lowrank

    folder = EXAMPLE / "results" / "potentials_2026-12-05d"
    origin = EXAMPLE / "results" / "potentials_2026-12-03"
    _assert_mfra_continuation(folder / "mfra_50_frombase_x2.toml",
                              origin / "mfra_50_frombase.mtplr", 5)
    for k in ("", ".2", ".3"):
        assert read_lowrank(origin / f"mfra_50_frombase{k}.mtplr").factors.rank == 5
        assert read_lowrank(folder / f"mfra_50_frombase_x2{k}.mtplr").factors.rank == 5
        log = (folder / f"mfra_50_frombase_x2{k}.train.log").read_text()
        assert "max_iter after 1000 iterations" in log, k
    for k in (".2", ".3"):  # the linear re-solve at the start may only lower the loss a little
        tuned = (origin / f"mfra_50_frombase{k}.compress.log").read_text()
        end = float(tuned.split("after 1000 iterations")[1].split()[0])
        start = _first_loss(folder / f"mfra_50_frombase_x2{k}.train.log")
        assert 0.9 * end < start <= end, k


@pytest.mark.parametrize("folder, name, rank", [
    ("potentials_2026-12-05b", "mfra_opt", 8),
    ("potentials_2026-12-05c", "mfra_50", 5),
])
def test_mfra_2000_iteration_members_follow_the_workflow_recipe(folder, name, rank):
    """results/potentials_2026-12-05b (rank 8) and _05c (rank 5): members 2 and 3 of the
    <name>_core_x2 rows, fitted from scratch with models/<name>.toml's schedule and 2000
    iterations on base_core's data, model and loss; the committed files are the potentials
    the NPT records ran."""
    from pyfit.fitting.config import load_config
    from pyfit.io.lowrank_file import read_lowrank

    folder = EXAMPLE / "results" / folder
    base = load_config(EXAMPLE / "results" / "potentials_2026-12-03b" / "base_core.toml")
    workflow = load_config(EXAMPLE / "models" / f"{name}.toml")
    cfg = load_config(folder / f"{name}_core_2000.toml")
    assert cfg.model == base.model and cfg.loss == base.loss
    assert _train_paths(cfg) == _train_paths(base)
    assert cfg.optimizer.max_iter == workflow.optimizer.max_iter == 2000
    assert cfg.compression == workflow.compression
    digests = {}
    for k in (2, 3):
        path = folder / f"{name}_core_x2.{k}.mtplr"
        assert read_lowrank(path).factors.rank == rank
        digests[hashlib.sha256(path.read_bytes()).hexdigest()] = k
    ran = {}
    for record in (EXAMPLE / "results").glob("npt_*/*/density.json"):
        run = json.loads(record.read_text())
        if run.get("potential_sha256") in digests:
            ran.setdefault(digests[run["potential_sha256"]], set()).update(map(int, run["density"]))
    assert ran == {2: {800, 1000, 1200}, 3: {800, 1000, 1200}}


def test_npt_2026_12_07_records_ran_the_committed_potentials():
    """results/npt_2026-12-07 (README there): the 1000 / 1200 K runs of the three
    mfra_50_frombase_x2 members and the 200 ps run of mfra_50_core_x2.3 at 1200 K ran the
    committed files (by SHA-256) with the 10 eV core, the protocol the design fixed, and none
    of them lost atoms."""
    results = EXAMPLE / "results"
    fb = results / "potentials_2026-12-05d"
    expected = {f"mfra50fbx2_{k}_stiff_{T}": (fb / f"mfra_50_frombase_x2{sfx}.mtplr", T, 30000,
                                              801)
                for k, sfx in ((1, ""), (2, ".2"), (3, ".3")) for T in (1000, 1200)}
    expected["mfra502000_3_full_stiff_1200"] = (
        results / "potentials_2026-12-05c" / "mfra_50_core_x2.3.mtplr", 1200, 200000, 802)
    folder = results / "npt_2026-12-07"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(expected)
    for name, (pot, T, nprod, seed) in expected.items():
        run = json.loads((folder / name / "density.json").read_text())
        assert run["potential_sha256"] == hashlib.sha256(pot.read_bytes()).hexdigest(), name
        assert run["baseline"].endswith("ff_coulomb_core_stiff.lmp") and run["coulomb_baseline"]
        assert (run["nprod"], run["seed"], list(run["density"])) == (nprod, seed, [str(T)])
        result = run["density"][str(T)]
        assert "failed" not in result and result["samples"] == nprod // 10 + 1, name
        # the teacher's 50 ps reference at T (../shared/data/flinak/README.md)
        assert abs(result["mean"] / {1000: 1.644, 1200: 1.534}[T] - 1) < 0.01, name
