"""The compiled evaluator: parity with MLIP-2's own outputs, with the NumPy reference, and with
finite differences of the energy."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

import reference_mtp as ref
from pyfit import MTP
from pyfit.basis import generate_basis
from pyfit.configuration import Configuration
from pyfit.errors import PyfitError
from pyfit.io.cfg import read_cfg
from pyfit.io.mtp_file import read_mtp
from pyfit.model import MTPModel


def random_model(level, species_count, rng, radial_basis_size=8, min_dist=1.5, max_dist=4.2):
    """An MTP of the given level with random coefficients of a realistic magnitude."""
    basis = generate_basis(level)
    K = basis.radial_funcs_count
    C, R = species_count, radial_basis_size
    return MTPModel(
        species_count=C,
        min_dist=min_dist,
        max_dist=max_dist,
        radial_basis_size=R,
        radial_funcs_count=K,
        alpha_moments_count=basis.alpha_moments_count,
        alpha_index_basic=basis.alpha_index_basic,
        alpha_index_times=basis.alpha_index_times,
        alpha_moment_mapping=basis.alpha_moment_mapping,
        radial_coeffs=rng.normal(scale=0.5, size=(C, C, K, R)),
        species_coeffs=rng.normal(size=C),
        moment_coeffs=rng.normal(size=len(basis.alpha_moment_mapping)),
        scaling=0.3,
    )


def random_structure(rng, species_count, kind="periodic"):
    if kind == "periodic":  # small triclinic cell: shorter than the cutoff, many images
        cell = np.array([[3.1, 0.2, 0.1], [0.4, 2.9, -0.2], [0.3, -0.1, 3.3]])
        frac = rng.random((3, 3))
        positions = frac @ cell
        pbc = (True, True, True)
    elif kind == "cluster":
        positions = rng.normal(scale=1.6, size=(7, 3))
        cell, pbc = None, (False, False, False)
    else:  # slab: periodic in x, y only
        cell = np.diag([3.0, 3.2, 20.0])
        positions = rng.random((5, 3)) * [3.0, 3.2, 3.0]
        pbc = (True, True, False)
    # keep atoms apart (> 1.3 Å) so the radial functions are well behaved
    for i in range(1, len(positions)):
        for _ in range(1000):
            ok = True
            for j in range(i):
                d = positions[i] - positions[j]
                if cell is not None and all(pbc):
                    f = np.linalg.solve(cell.T, d)
                    d = (f - np.round(f)) @ cell
                if np.linalg.norm(d) < 1.3:
                    ok = False
                    break
            if ok:
                break
            positions[i] = (rng.random(3) @ cell) if cell is not None else rng.normal(scale=1.6, size=3)
    types = rng.integers(0, species_count, len(positions))
    return Configuration(positions=positions, types=types, cell=cell, pbc=pbc)


# --------------------------------------------------------------------------- MLIP-2 parity
@pytest.mark.parametrize(
    "pot, data",
    [("cubic_10_pot.mtp", "cubic_10_out_20.cfg"), ("multi_10_pot.mtp", "multi_10_out_20.cfg")],
)
def test_parity_with_mlip2_outputs(data_dir, pot, data):
    """MLIP-2's `mlp calc-efs` outputs (6 decimals in forces, 5 in stresses) are reproduced."""
    mtp = MTP.load(data_dir / pot)
    configs = read_cfg(data_dir / data)
    assert len(configs) == 20
    for c in configs:
        r = mtp.evaluate(c)
        n = len(c.positions)
        assert abs(r.energy - c.energy) / n <= 1e-6
        assert np.max(np.abs(r.forces - c.forces)) <= 2e-6
        assert np.max(np.abs(r.plus_stress - c.plus_stress)) <= 2e-5


# --------------------------------------------------------------------------- finite differences
def _fd_check(energy_fn, config, forces, plus_stress, h=1e-5):
    pos0 = config.positions.copy()
    fd_forces = np.zeros_like(pos0)
    for i in range(len(pos0)):
        for d in range(3):
            e = []
            for s in (1, -1):
                p = pos0.copy()
                p[i, d] += s * h
                e.append(energy_fn(p, config.cell))
            fd_forces[i, d] = -(e[0] - e[1]) / (2 * h)
    np.testing.assert_allclose(forces, fd_forces, atol=1e-7 * max(1, np.abs(forces).max()))
    if config.cell is None or not all(config.pbc):
        return
    fd_stress = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            e = []
            for s in (1, -1):
                strain = np.eye(3)
                strain[a, b] += s * h
                e.append(energy_fn(pos0 @ strain, config.cell @ strain))
            fd_stress[a, b] = -(e[0] - e[1]) / (2 * h)  # PlusStress = -dE/d(strain)
    np.testing.assert_allclose(plus_stress, fd_stress, atol=1e-7 * max(1, np.abs(fd_stress).max()))


@pytest.mark.parametrize("kind", ["periodic", "cluster", "slab"])
@pytest.mark.parametrize("level, species", [(8, 1), (12, 3)])
def test_kernel_forces_and_stress_match_finite_differences(kind, level, species):
    rng = np.random.default_rng(level + species)
    mtp = MTP(random_model(level, species, rng))
    config = random_structure(rng, species, kind)

    def energy(p, cell):
        c = Configuration(positions=p, types=config.types, cell=cell, pbc=config.pbc)
        return mtp.evaluate(c).energy

    r = mtp.evaluate(config)
    _fd_check(energy, config, r.forces, r.plus_stress)


def test_reference_forces_match_finite_differences():
    rng = np.random.default_rng(5)
    model = random_model(10, 2, rng)
    config = random_structure(rng, 2, "periodic")

    def energy(p, cell):
        return ref.efs(model, p, config.types, cell)[0]

    _, forces, virial, _ = ref.efs(model, config.positions, config.types, config.cell)
    _fd_check(energy, config, forces, virial)


# --------------------------------------------------------------------------- kernel vs reference
@pytest.mark.parametrize("level", [2, 4, 6, 8, 10, 12, 14, 16, 18, 20])
def test_site_parity_with_reference(level):
    species = 1 + (level // 2) % 4  # cycles through 1..4 species over the levels
    rng = np.random.default_rng(level)
    model = random_model(level, species, rng)
    ev = MTP(model).evaluator
    n = 9
    dr = rng.normal(size=(n, 3))
    dr *= (rng.uniform(1.6, 4.6, n) / np.linalg.norm(dr, axis=1))[:, None]  # some beyond cutoff
    zj = rng.integers(0, species, n).astype(np.intc)
    zi = int(rng.integers(species))
    energy, grad, moments, radial_grad = ev.site(zi, dr, zj, grad=True, radial_grad=True)
    e_ref, g_ref = ref.site_energy_and_grad(model, zi, dr, zj)
    scale = max(1.0, abs(e_ref))
    assert abs(energy - e_ref) <= 1e-12 * scale
    np.testing.assert_allclose(grad, g_ref, rtol=1e-10, atol=1e-12 * np.abs(g_ref).max())
    if level <= 10:  # complex step over every radial coefficient: cheap at low levels
        rg_ref = ref.site_radial_grad(model, zi, dr, zj)
        np.testing.assert_allclose(radial_grad, rg_ref, rtol=1e-10, atol=1e-12 * np.abs(rg_ref).max())
    # scalar moments are dV/d(moment_coeffs): V is linear in them
    assert np.isclose(energy, model.species_coeffs[zi] + moments @ model.moment_coeffs, rtol=1e-12)


@pytest.mark.parametrize("species", [1, 2, 3, 4])
def test_structure_parity_with_reference(species):
    rng = np.random.default_rng(100 + species)
    model = random_model(12, species, rng)
    mtp = MTP(model)
    for kind in ("periodic", "cluster", "slab"):
        config = random_structure(rng, species, kind)
        r = mtp.evaluate(config)
        e, f, v, site = ref.efs(model, config.positions, config.types, config.cell, config.pbc)
        assert abs(r.energy - e) <= 1e-11 * max(1, abs(e))
        np.testing.assert_allclose(r.site_energies, site, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(r.forces, f, atol=1e-10 * max(1, np.abs(f).max()))
        np.testing.assert_allclose(r.plus_stress, v, atol=1e-10 * max(1, np.abs(v).max()))


def test_site_virials_sum_to_virial():
    rng = np.random.default_rng(3)
    mtp = MTP(random_model(10, 2, rng))
    r = mtp.evaluate(random_structure(rng, 2), site_virials=True)
    np.testing.assert_allclose(r.site_virials.sum(axis=0), r.plus_stress, atol=1e-12)
    np.testing.assert_allclose(r.plus_stress, r.plus_stress.T, atol=1e-10)  # rotational invariance


def test_large_cell_matches_small_cell_replicated():
    """Energy per atom and forces do not depend on how a periodic crystal is described."""
    rng = np.random.default_rng(4)
    mtp = MTP(random_model(16, 1, rng), species=["Cu"])
    small = bulk("Cu", "fcc", a=3.62)  # 1 atom, cell shorter than the cutoff
    big = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((3, 3, 3))
    e1 = mtp.evaluate(small).energy
    r = mtp.evaluate(big)
    scale = abs(e1)  # random coefficients: energies of order 1e4 eV
    assert abs(r.energy / len(big) - e1) < 1e-13 * scale
    assert np.abs(r.forces).max() < 1e-13 * scale


# --------------------------------------------------------------------------- bad input
def _cu_mtp(data_dir):
    return MTP.load(data_dir / "cubic_10_pot.mtp")


def test_type_out_of_range(data_dir):
    c = Configuration(positions=np.eye(3) * 2.5, types=np.array([0, 0, 1]), cell=None,
                      pbc=(False,) * 3, source="x.cfg:7")
    with pytest.raises(PyfitError, match=r"x.cfg:7: atom type 1 out of range.*species_count = 1"):
        _cu_mtp(data_dir).evaluate(c)


def test_nan_positions(data_dir):
    p = np.eye(3) * 2.5
    p[1, 2] = np.nan
    c = Configuration(positions=p, types=np.zeros(3, int), cell=None, pbc=(False,) * 3)
    with pytest.raises(PyfitError, match="NaN"):
        _cu_mtp(data_dir).evaluate(c)


def test_atoms_on_top_of_each_other(data_dir):
    p = np.array([[0.0, 0, 0], [1.0, 1, 1], [0.0, 0, 0]])
    c = Configuration(positions=p, types=np.zeros(3, int), cell=None, pbc=(False,) * 3,
                      source="y.cfg:1")
    with pytest.raises(PyfitError, match=r"y.cfg:1: atoms 0 and 2 .*on top of each other"):
        _cu_mtp(data_dir).evaluate(c)


def test_singular_cell(data_dir):
    c = Configuration(positions=np.eye(3), types=np.zeros(3, int), cell=np.zeros((3, 3)),
                      pbc=(True, True, True))
    with pytest.raises(PyfitError, match="singular"):
        _cu_mtp(data_dir).evaluate(c)


def test_untrained_potential_is_refused(data_dir):
    model = read_mtp(data_dir / "cubic_10_pot.mtp").untrained()
    with pytest.raises(PyfitError, match="untrained"):
        MTP(model)


def test_atoms_without_species_names(data_dir):
    with pytest.raises(PyfitError, match="species"):
        _cu_mtp(data_dir).evaluate(bulk("Cu"))
