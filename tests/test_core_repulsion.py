"""pyfit.core_repulsion: the repulsive pair core below the data's closest approach (analytic
values, derivatives by central differences, the closest approach against brute force, the
LAMMPS table file, the ``pyfit core-table`` command and bad input)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pyfit.cli import main
from pyfit.configuration import Configuration
from pyfit.core_repulsion import CoreRepulsion, closest_approach
from pyfit.errors import PyfitError
from pyfit.io.dataset import write_configurations

SPECIES = ("Li", "F")


def _random_config(rng, n=10, length=4.0, tilt=0.6):
    cell = np.array([[length, 0, 0], [tilt, length, 0], [0.3, -0.4, length]])
    pos = rng.uniform(0, 1, (n, 3)) @ cell
    return Configuration(positions=pos, types=np.arange(n) % 2, cell=cell)


def _brute_closest(c, n_species=2, images=2):
    best = {}
    shifts = [np.array(s) @ c.cell for s in itertools.product(range(-images, images + 1),
                                                              repeat=3)]
    for i in range(c.n_atoms):
        for j in range(c.n_atoms):
            for s in shifts:
                if i == j and not s.any():
                    continue
                r = np.linalg.norm(c.positions[j] + s - c.positions[i])
                key = tuple(sorted((int(c.types[i]), int(c.types[j]))))
                best[key] = min(best.get(key, np.inf), r)
    return best


def test_energy_shape_and_derivative():
    core = CoreRepulsion(SPECIES, {(1, 0): 1.2}, amplitude=2.0, width=0.1)
    assert core.r_in == {(0, 1): 1.2}
    r = np.array([0.6, 0.9, 1.1, 1.19, 1.2, 1.5])
    e = core.energy(r, 0, 1)
    assert e[-2:].tolist() == [0.0, 0.0]
    assert np.all(np.diff(e[:-1]) < 0)  # monotonically repulsive up to r_in
    assert core.energy(1.2 - 0.3, 1, 0) == pytest.approx(2.0 * (np.exp(3.0) - 4.0))
    h = 1e-6
    for x in (0.7, 1.0, 1.15, 1.1999):
        fd = -(core.energy(x + h, 0, 1) - core.energy(x - h, 0, 1)) / (2 * h)
        assert core.force(x, 0, 1) == pytest.approx(fd, rel=1e-6, abs=1e-9)
    # continuous with zero slope and curvature A/w^2 at r_in: E ~ A/2 ((r_in - r)/w)^2
    assert core.energy(1.2 - 1e-4, 0, 1) == pytest.approx(2.0 * 0.5 * 1e-6, rel=1e-3)
    assert core.force(1.2 - 1e-8, 0, 1) < 1e-5
    assert core.energy(0.5, 0, 0) == 0.0 and core.force(0.5, 1, 1) == 0.0  # no core


def test_energy_forces_of_a_configuration_by_central_differences():
    rng = np.random.default_rng(7)
    c = _random_config(rng)
    closest = closest_approach([c], SPECIES)
    core = CoreRepulsion(SPECIES, {p: r + 0.4 for p, r in closest.items()})  # cores overlap
    e, f = core.energy_forces(c)
    assert e > 0.0
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-9)
    h = 1e-6
    for atom, d in [(0, 0), (3, 1), (7, 2)]:
        plus, minus = c.copy(), c.copy()
        plus.positions[atom, d] += h
        minus.positions[atom, d] -= h
        fd = -(core.energy_forces(plus)[0] - core.energy_forces(minus)[0]) / (2 * h)
        assert f[atom, d] == pytest.approx(fd, rel=1e-5, abs=1e-7)
    # the energy is the sum over pairs (each pair once, periodic images included)
    total = 0.0
    for i in range(c.n_atoms):
        for j in range(c.n_atoms):
            for s in itertools.product(range(-2, 3), repeat=3):
                s = np.array(s) @ c.cell
                if i == j and not s.any():
                    continue
                r = np.linalg.norm(c.positions[j] + s - c.positions[i])
                total += 0.5 * float(core.energy(r, int(c.types[i]), int(c.types[j])))
    assert e == pytest.approx(total, rel=1e-10)


def test_closest_approach_and_from_data_match_brute_force():
    rng = np.random.default_rng(3)
    configs = [_random_config(rng), _random_config(rng, n=6, length=3.5, tilt=-0.8)]
    got = closest_approach(configs, SPECIES)
    ref = {}
    for c in configs:
        for k, v in _brute_closest(c).items():
            ref[k] = min(ref.get(k, np.inf), v)
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k] == pytest.approx(ref[k], abs=1e-12)
    core = CoreRepulsion.from_data(configs, SPECIES, margin=0.05, floor=0.1)
    for k in ref:
        assert ref[k] - 0.05 - 1e-4 <= core.r_in[k] <= ref[k] - 0.05
    for c in configs:  # zero on the data it was made from
        e, f = core.energy_forces(c)
        assert e == 0.0 and not f.any()


def test_table_file_holds_the_function(tmp_path):
    core = CoreRepulsion(("Li", "Na", "F"), {(0, 2): 1.1, (2, 2): 2.0})
    path = core.write_table(tmp_path / "core.table", n=101)
    lines = path.read_text().splitlines()
    start = lines.index("Li_F")
    assert lines[start + 1] == "N 101 R 0.3 1.1"
    rows = np.array([[float(x) for x in lines[start + 3 + k].split()] for k in range(101)])
    np.testing.assert_allclose(rows[:, 1], np.linspace(0.3, 1.1, 101))
    np.testing.assert_allclose(rows[:, 2], core.energy(rows[:, 1], 0, 2), rtol=1e-11)
    np.testing.assert_allclose(rows[:, 3], core.force(rows[:, 1], 0, 2), rtol=1e-11)
    assert rows[-1, 2:].tolist() == [0.0, 0.0]
    assert "N 101 R 1.0 2.0" in lines  # depth 1 A below r_in
    assert core.lammps_commands("${t}") == ["pair_coeff 1 3 table ${t} Li_F 1.1",
                                            "pair_coeff 3 3 table ${t} F_F 2.0"]


def test_bad_input_is_named():
    with pytest.raises(PyfitError, match=r"pair \(0, 2\): type indices must be in 0..1"):
        CoreRepulsion(SPECIES, {(0, 2): 1.0})
    with pytest.raises(PyfitError, match="r_in of pair .* is -1.0"):
        CoreRepulsion(SPECIES, {(0, 1): -1.0})
    with pytest.raises(PyfitError, match="width is 0.0; expected a positive"):
        CoreRepulsion(SPECIES, {(0, 1): 1.0}, width=0.0)
    with pytest.raises(PyfitError, match="r_in 0.2 of Li_F is not above the table's r_min"):
        CoreRepulsion(SPECIES, {(0, 1): 0.2}).write_table("unused.table")
    c = Configuration(positions=np.zeros((1, 3)), types=np.array([0]), cell=10 * np.eye(3))
    with pytest.raises(PyfitError, match="no pair closer than 4"):
        CoreRepulsion.from_data([c], SPECIES)
    with pytest.raises(PyfitError, match="margin -0.1"):
        CoreRepulsion.from_data([c], SPECIES, margin=-0.1)


def test_cli_core_table(tmp_path, capsys):
    rng = np.random.default_rng(5)
    configs = [_random_config(rng) for _ in range(2)]
    for c in configs:
        c.energy = 0.0
    data = tmp_path / "train.cfg"
    write_configurations(data, configs)
    out = tmp_path / "core.table"
    assert main(["core-table", str(data), "--species", "Li,F", "--margin", "0.1",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    ref = closest_approach(configs, SPECIES)
    assert f"Li_F     r_in {np.floor((ref[(0, 1)] - 0.1) * 1e4) / 1e4:.4f} A" in printed
    include = (tmp_path / "core.table.lmp").read_text()
    assert "pair_coeff 1 2 table ${core_table} Li_F" in include
    assert out.read_text().count("\nN 1000 R ") == len(ref)
    assert main(["core-table", str(tmp_path / "none.cfg"), "--species", "Li,F",
                 "-o", str(out)]) == 2
    assert "none.cfg" in capsys.readouterr().err
