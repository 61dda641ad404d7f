"""Fixed Coulomb baseline (MTP fitted to teacher - Coulomb, run with the Coulomb added back):
``pyfit.teacher.subtract_labels`` / ``LammpsLabeller.subtract``, ``pyfit label --subtract``, and
the LAMMPS overlay of md_examples/flinak (in.flinak_npt ``-var coulomb 1``, active_learning.py
``--coulomb``) agreeing with what the MTP was fitted to."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pyfit.configuration import Configuration
from pyfit.errors import PyfitError
from pyfit.io.dataset import read_configurations
from pyfit.teacher import subtract_labels

from flinak_helpers import EXAMPLE, example_core, labeller, load_script, needs_lammps

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SPECIES = ("Li", "Na", "K", "F")
SAMPLE = DATA / "flinak_teacher_2frames.extxyz"  # teacher-labelled, 512 atoms (tests/data/README)
POT = DATA / "flinak_l08.mtp"  # level-8 MTP fitted to the teacher data




def _module(name):
    return load_script(name, prefix="flinak_cb")


def _config(rng, n=5, **labels):
    c = Configuration(positions=rng.uniform(0, 4, (n, 3)), types=np.arange(n) % 2,
                      cell=4.0 * np.eye(3))
    for k, v in labels.items():
        setattr(c, k, v)
    return c


# ---------------------------------------------------------------- subtract_labels
def test_subtract_labels_values_and_missing_labels():
    rng = np.random.default_rng(3)
    c = _config(rng, energy=-3.0, forces=rng.normal(size=(5, 3)),
                plus_stress=np.diag([1.0, 2.0, 3.0]))
    b = c.copy()
    b.energy, b.forces, b.plus_stress = 0.5, rng.normal(size=(5, 3)), np.eye(3)
    (d,) = subtract_labels([c], [b])
    assert d.energy == pytest.approx(-3.5)
    np.testing.assert_array_equal(d.forces, c.forces - b.forces)
    np.testing.assert_array_equal(d.plus_stress, np.diag([0.0, 1.0, 2.0]))
    np.testing.assert_array_equal(d.positions, c.positions)
    assert c.energy == -3.0  # inputs untouched
    # a label the configuration lacks stays missing; the baseline's extra labels are ignored
    c.plus_stress = None
    (d,) = subtract_labels([c], [b])
    assert d.plus_stress is None and d.energy == pytest.approx(-3.5)


def test_subtract_labels_errors():
    rng = np.random.default_rng(4)
    c = _config(rng, energy=-3.0, forces=np.zeros((5, 3)))
    c.source = "train.cfg:12"
    b = c.copy()
    b.energy, b.forces = 1.0, None
    with pytest.raises(PyfitError, match=r"train.cfg:12: the baseline has no forces"):
        subtract_labels([c], [b])
    moved = c.copy()
    moved.positions = c.positions + 0.01
    moved.energy, moved.forces = 1.0, np.zeros((5, 3))
    with pytest.raises(PyfitError, match="train.cfg:12: the baseline configuration is not the "
                       "same atoms"):
        subtract_labels([c], [moved])
    with pytest.raises(PyfitError, match="1 configurations but 2 baseline"):
        subtract_labels([c], [b, b])
    bare = _config(rng)
    bare.source = "x.cfg:1"
    with pytest.raises(PyfitError, match="x.cfg:1: no energy, forces or stress"):
        subtract_labels([bare], [bare])


# ---------------------------------------------------------------- with LAMMPS
@pytest.fixture(scope="module")
def sample():
    return read_configurations(SAMPLE, species=SPECIES)


@pytest.fixture(scope="module")
def coulomb():
    with labeller("ff_coulomb.lmp") as c:
        yield c


@needs_lammps
def test_teacher_minus_coulomb_is_the_short_range_teacher(sample, coulomb, tmp_path):
    """The stored teacher labels minus ff_coulomb.lmp are the teacher's Born-Mayer-Huggins part
    alone (pair_style born with the teacher's coefficients, no charges): the baseline file has
    exactly the teacher's Coulomb settings."""
    from pyfit.teacher import LammpsLabeller

    teacher = (EXAMPLE / "ff_flinak.lmp").read_text()
    born = teacher.replace("pair_style born/coul/long ${rc}", "pair_style born ${rc}")
    born = re.sub(r"(?m)^(kspace_style|set type).*$", "", born)
    born = born.replace("table ${table}", "")
    assert "coul" not in born.split("pair_style", 1)[1]
    (tmp_path / "ff_born.lmp").write_text(born)
    short = coulomb.subtract(sample)
    with LammpsLabeller(tmp_path / "ff_born.lmp", species=SPECIES, atom_style="charge") as b:
        ref = b.label(sample)
    for s, r, t in zip(short, ref, sample):
        assert s.energy == pytest.approx(r.energy, abs=1e-6)
        assert abs(t.energy - s.energy) > 1000.0  # the Coulomb part is large (~ -5.4 eV/atom)
        np.testing.assert_allclose(s.forces, r.forces, atol=1e-5)
        np.testing.assert_allclose(s.plus_stress, r.plus_stress, atol=1e-5)


@needs_lammps
def test_cli_label_subtract(sample, coulomb, tmp_path, capsys):
    from pyfit.cli import main

    out = tmp_path / "short.cfg"
    args = ["label", str(SAMPLE), "--ff", str(EXAMPLE / "ff_coulomb.lmp"), "--species",
            "Li,Na,K,F", "--atom-style", "charge", "-o", str(out)]
    assert main(args + ["--subtract"]) == 0
    assert "labels minus" in capsys.readouterr().err
    got = read_configurations(out, species=SPECIES)
    ref = coulomb.subtract(sample)
    assert [c.energy for c in got] == pytest.approx([c.energy for c in ref], abs=1e-9)
    np.testing.assert_allclose(got[1].forces, ref[1].forces, atol=6e-7)  # .cfg: 6 decimals
    # without --subtract: the force field's own labels
    assert main(args) == 0
    got = read_configurations(out, species=SPECIES)
    assert got[0].energy == pytest.approx(coulomb.label_one(sample[0]).energy, abs=1e-9)
    # bad input: a missing force-field file is named, exit status 2
    assert main(["label", str(SAMPLE), "--ff", str(tmp_path / "none.lmp"), "--species",
                 "Li,Na,K,F", "-o", str(out)]) == 2
    assert "none.lmp" in capsys.readouterr().err


def _overlay_ff(tmp_path, commands, name):
    """A force-field include: plugin load, the charges of ff_coulomb.lmp and ``commands``."""
    from pyfit.lammps import plugin_path

    plugin = plugin_path()
    if plugin is None:
        pytest.skip("the mtp/lowrank plugin is not built")
    charges = [line for line in (EXAMPLE / "ff_coulomb.lmp").read_text().splitlines()
               if line.startswith("set type")]
    path = tmp_path / name
    path.write_text("\n".join([f"plugin load {plugin}", *charges, *commands]) + "\n")
    return path


def _npt_overlay_commands() -> list[str]:
    """The commands of in.flinak_npt's ``coulomb == 1`` branch, outer quotes removed."""
    text = (EXAMPLE / "in.flinak_npt").read_text()
    block = text.split('elif "${coulomb} == 1"', 1)[1].split("\nelse", 1)[0]
    out = []
    for line in block.splitlines():
        line = line.strip().rstrip("&").strip()
        for q in ('"""', '"'):
            if line.startswith(q) and line.endswith(q):
                out.append(line[len(q):-len(q)].strip())
                break
    return out


BASELINES = ["ff_coulomb.lmp", "ff_coulomb_core.lmp"]


@needs_lammps
@pytest.mark.parametrize("baseline", BASELINES)
@pytest.mark.parametrize("where", ["in.flinak_npt", "active_learning.py"])
def test_lammps_overlay_is_mtp_plus_coulomb(where, baseline, sample, tmp_path):
    """What LAMMPS runs with a baseline (in.flinak_npt -var coulomb 1 [-var baseline F], and
    the active-learning sampling) is the MTP as fitted plus the baseline file's own terms
    (Coulomb; Coulomb + core): energy, forces and virial agree to numerical precision."""
    from pyfit.potential import MTP
    from pyfit.teacher import LammpsLabeller

    if where == "in.flinak_npt":
        commands = [c.replace("${species}", "Li Na K F").replace("${pot}", str(POT))
                    .replace("${baseline}", str(EXAMPLE / baseline))
                    for c in _npt_overlay_commands()]
        assert any(c.startswith("include") for c in commands)
    else:
        commands = _module("active_learning").pair_commands(POT, True, EXAMPLE / baseline)
    ff = _overlay_ff(tmp_path, commands, "ff_overlay.lmp")
    pot = MTP.load(POT, species=SPECIES)
    close = sample[0].copy()  # a Li-F pair inside the core of ff_coulomb_core.lmp
    li, f = np.flatnonzero(close.types == 0)[0], np.flatnonzero(close.types == 3)[0]
    close.positions[li] = close.positions[f] + [1.0, 0.0, 0.0]
    with (LammpsLabeller(ff, species=SPECIES, atom_style="charge",
                         variables={"ff_dir": EXAMPLE}) as lmp,
          labeller(baseline) as base_ff):
        for c in [*sample, close]:
            got = lmp.label_one(c)
            mtp = pot.evaluate(c)
            base = base_ff.label_one(c)
            assert got.energy == pytest.approx(mtp.energy + base.energy, abs=1e-6)
            np.testing.assert_allclose(got.forces, mtp.forces + base.forces, atol=1e-6)
            np.testing.assert_allclose(got.plus_stress, mtp.plus_stress + base.plus_stress,
                                       atol=1e-5)


@needs_lammps
@pytest.mark.parametrize("baseline, amplitude", [("ff_coulomb_core.lmp", 1.0),
                                                 ("ff_coulomb_core_stiff.lmp", 10.0)])
def test_core_baseline_is_coulomb_plus_core(sample, baseline, amplitude):
    """ff_coulomb_core.lmp = ff_coulomb.lmp + the cores of core.table.lmp (pyfit's
    CoreRepulsion through LAMMPS's pair_style table): zero on the data (the cores start
    below every pair's closest approach), the analytic core on a close Li-F pair.
    ff_coulomb_core_stiff.lmp: the same with A = 10 eV (core_stiff.table)."""
    core = example_core(amplitude)
    close = sample[0].copy()  # the nearest Li-F pair pushed to 0.95 A along its bond
    li = np.flatnonzero(close.types == 0)
    f = np.flatnonzero(close.types == 3)
    d = close.positions[f][None, :, :] - close.positions[li][:, None, :]
    cell = np.diag(close.cell)
    d -= cell * np.round(d / cell)
    r = np.linalg.norm(d, axis=2)
    a, b = np.unravel_index(np.argmin(r), r.shape)
    close.positions[li[a]] = close.positions[f[b]] - d[a, b] / r[a, b] * 0.95
    with labeller(baseline) as with_core, labeller("ff_coulomb.lmp") as without:
        for c in sample:
            assert core.energy_forces(c)[0] == 0.0
            assert with_core.label_one(c).energy == pytest.approx(without.label_one(c).energy,
                                                                  abs=1e-9)
        got, base = with_core.label_one(close), without.label_one(close)
    e, forces = core.energy_forces(close)
    assert e >= core.energy(0.95, 0, 3) * (1 - 1e-9) and e > 1.0
    assert got.energy - base.energy == pytest.approx(e, rel=1e-6)
    np.testing.assert_allclose(got.forces - base.forces, forces, rtol=1e-6, atol=1e-6)


def test_run_npt_coulomb_flag(capsys, tmp_path):
    run_npt = _module("run_npt")
    args = ["--potential", str(POT), "--elements", "Li", "Na", "K", "F", "--coulomb",
            "--check-only", "--plugin", str(POT)]
    assert run_npt.main(args) == 0
    assert run_npt.main(args + ["--baseline", str(EXAMPLE / "ff_coulomb_core.lmp")]) == 0
    capsys.readouterr()
    assert run_npt.main(args + ["--baseline", str(tmp_path / "none.lmp")]) == 2
    assert "none.lmp: file not found" in capsys.readouterr().err
    assert run_npt.main([a for a in args if a != "--coulomb"]
                        + ["--baseline", str(EXAMPLE / "ff_coulomb_core.lmp")]) == 2
    assert "--baseline applies with --coulomb" in capsys.readouterr().err
    assert run_npt.main(["--teacher", "--coulomb", "--check-only"]) == 2
    assert "--coulomb apply to --potential" in capsys.readouterr().err


@needs_lammps
def test_active_learning_coulomb_labels_are_teacher_minus_coulomb(tmp_path, coulomb, capsys):
    """A tiny --coulomb round: frames sampled with MTP + Coulomb (a charged data file), labelled
    teacher - Coulomb."""
    from pyfit.io.dataset import write_configurations
    from pyfit.teacher import LammpsLabeller

    frames = read_configurations(SAMPLE, species=SPECIES)
    frames[1].features["config_type"] = "T1000_npt"
    start = tmp_path / "start.cfg"
    write_configurations(start, frames[1:])
    out = tmp_path / "al.cfg"
    al = _module("active_learning")
    args = ["--potential", POT, "--elements", "Li", "Na", "K", "F", "--start", start,
            "--temperatures", "1000", "--frames", "1", "--neq", "5", "--every", "5",
            "--coulomb", "-o", out]
    assert al.main([str(a) for a in args]) == 0
    (frame,) = read_configurations(out, species=SPECIES)
    assert not np.allclose(frame.positions, frames[1].positions)
    with LammpsLabeller(EXAMPLE / "ff_flinak.lmp", species=SPECIES,
                        atom_style="charge") as teacher:
        full = teacher.label_one(frame)
    base = coulomb.label_one(frame)
    # relabelled from the .cfg's rounded positions (6 decimals): agreement to ~1e-5 eV; the
    # Coulomb part itself is ~ -2800 eV
    assert frame.energy == pytest.approx(full.energy - base.energy, abs=2e-4)
    np.testing.assert_allclose(frame.forces, full.forces - base.forces, atol=1e-4)
    assert abs(base.energy) > 1000.0
    assert "MTP - teacher energy" in capsys.readouterr().out


def test_train_all_coulomb_commands(tmp_path):
    """train_all.py --coulomb: each data file -> data/coulomb/<f>.cfg by pyfit label --subtract
    (kept when it exists), active-learning rounds sample with the Coulomb added back into
    data/coulomb/al<r>.cfg, every model is fitted to the short-range files into out/coulomb/."""
    import subprocess
    import sys

    def lines(*extra):
        r = subprocess.run([sys.executable, str(EXAMPLE / "train_all.py"), "--dry-run",
                            "--coulomb", "--max-iter", "4", *extra], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return [line for line in r.stdout.splitlines() if line.startswith("=== ")]

    data = EXAMPLE / "data"
    sr_train, sr_valid = data / "coulomb" / "train.cfg", data / "coulomb" / "valid.cfg"
    out = lines("base", "mf_50")
    labels = [line for line in out if line.startswith("=== baseline ff_coulomb.lmp")]
    expected = {f: f"label {data / f} --ff {EXAMPLE / 'ff_coulomb.lmp'} --species Li,Na,K,F "
                f"--atom-style charge --subtract -o {data / 'coulomb' / f}"
                for f in ("train.cfg", "valid.cfg")}
    for f in ("train.cfg", "valid.cfg"):
        if (data / "coulomb" / f).is_file():  # made by an earlier real run: reused
            assert not any(line.endswith(expected[f]) for line in labels)
        else:
            assert sum(line.endswith(expected[f]) for line in labels) == 1
    fits = [line for line in out if line.startswith(("=== base ", "=== mf_50 "))]
    for line, name in zip(fits, ["base.mtp", "mf_50.mtplr"]):
        assert line.endswith(f"--max-iter 4 --train {sr_train} --valid {sr_valid} -o "
                             f"{EXAMPLE / 'models' / 'out' / 'coulomb' / name}"), line
    out = lines("--al-rounds", "1", "--al-dir", str(tmp_path), "base")
    round_pot = EXAMPLE / "models" / "out" / "coulomb" / "al" / "base_round1.mtp"
    (fit,) = [line for line in out if "round 1" in line and " train " in line]
    assert f"--train {sr_train} -o {round_pot} --valid {sr_valid}" in fit
    (sample,) = [line for line in out if "active_learning.py" in line]
    assert sample.endswith(f"-o {tmp_path / 'al1.cfg'} --coulomb --baseline "
                           f"{EXAMPLE / 'ff_coulomb.lmp'}")
    assert out[-2].endswith(f"--train {sr_train} {tmp_path / 'al1.cfg'} --valid {sr_valid} -o "
                            f"{EXAMPLE / 'models' / 'out' / 'coulomb' / 'base.mtp'}")


def test_train_all_core_baseline_commands(tmp_path):
    """train_all.py --coulomb --baseline ff_coulomb_core.lmp --extra-train F: every data file
    (F too) labelled minus the core baseline into
    coulomb_core/ next to it, F in every fit's training data, potentials in
    out/coulomb_core/."""
    import subprocess
    import sys

    hot = tmp_path / "hot" / "train.cfg"
    core = EXAMPLE / "ff_coulomb_core.lmp"
    r = subprocess.run([sys.executable, str(EXAMPLE / "train_all.py"), "--dry-run", "--coulomb",
                        "--baseline", str(core), "--extra-train", str(hot), "base"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = [line for line in r.stdout.splitlines() if line.startswith("=== ")]
    sr_hot = tmp_path / "hot" / "coulomb_core" / "train.cfg"
    assert any(line.endswith(f"label {hot} --ff {core} --species Li,Na,K,F --atom-style "
                             f"charge --subtract -o {sr_hot}") for line in out)
    data = EXAMPLE / "data" / "coulomb_core"
    (fit,) = [line for line in out if line.startswith("=== base ")]
    assert fit.endswith(f"--train {data / 'train.cfg'} {sr_hot} --valid {data / 'valid.cfg'} "
                        f"-o {EXAMPLE / 'models' / 'out' / 'coulomb_core' / 'base.mtp'}")
    r = subprocess.run([sys.executable, str(EXAMPLE / "train_all.py"), "--dry-run",
                        "--baseline", str(core), "base"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "--baseline applies with --coulomb" in r.stderr
