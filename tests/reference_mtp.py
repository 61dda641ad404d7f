"""NumPy reference implementation of the MTP, used only by the tests for parity with the kernel.

It is written independently of the C++ kernel: moments are computed directly from the formulas in
../shared/docs/mtp-reference.md, and every derivative is obtained by complex-step differentiation
(f'(x) = Im f(x + i h) / h, exact to rounding for h = 1e-30), not by a hand-written backward pass.
All functions accept a batch of perturbed inputs so that one call yields a whole gradient.
"""

from __future__ import annotations

import numpy as np
from ase.neighborlist import neighbor_list

H = 1e-30  # complex step


def radial_basis(model, r):
    """Q_b(r), shape r.shape + (R,); zero beyond max_dist."""
    rmin, rmax, R = model.min_dist, model.max_dist, model.radial_basis_size
    xi = (2 * r - (rmin + rmax)) / (rmax - rmin)
    t = [np.ones_like(xi), xi]
    for _ in range(2, R):
        t.append(2 * xi * t[-1] - t[-2])
    q = np.stack(t[:R], axis=-1) * (model.scaling * (rmax - r) ** 2)[..., None]
    return np.where((r.real < rmax)[..., None], q, 0)


def site_energy(model, zi, dr, zj, radial=None, moment_coeffs=None):
    """Site energy for a batch: dr (..., n, 3) possibly complex -> V (...,)."""
    radial = model.radial_coeffs if radial is None else radial
    moment_coeffs = model.moment_coeffs if moment_coeffs is None else moment_coeffs
    r = np.sqrt(np.sum(dr * dr, axis=-1))  # (..., n)
    u = dr / r[..., None]
    q = radial_basis(model, r)  # (..., n, R)
    c = radial[zi][zj]  # (n, K, R) possibly batched (..., n, K, R)
    f = np.einsum("...nkb,...nb->...nk", c, q)
    basic = model.alpha_index_basic
    mom = [None] * model.alpha_moments_count
    for m, (mu, a, b, cc) in enumerate(basic):
        mom[m] = np.sum(f[..., mu] * u[..., 0] ** a * u[..., 1] ** b * u[..., 2] ** cc, axis=-1)
    zero = np.zeros_like(mom[0])
    for m in range(len(basic), model.alpha_moments_count):
        mom[m] = zero.copy()
    for i, j, k, out in model.alpha_index_times:
        mom[out] = mom[out] + k * mom[i] * mom[j]
    energy = model.species_coeffs[zi] + zero
    for coeff, idx in zip(moment_coeffs, model.alpha_moment_mapping):
        energy = energy + coeff * mom[idx]
    return energy


def site_energy_and_grad(model, zi, dr, zj):
    """(V_i, dV_i/dr_ij (n, 3)) by complex step."""
    n = dr.shape[0]
    batch = np.repeat(dr[None].astype(complex), 3 * n, axis=0)
    batch.reshape(3 * n, 3 * n)[np.arange(3 * n), np.arange(3 * n)] += 1j * H
    v = site_energy(model, zi, batch, zj)
    return float(site_energy(model, zi, dr, zj)), (v.imag / H).reshape(n, 3)


def site_radial_grad(model, zi, dr, zj):
    """dV_i / dc[z_i, z_j, mu, b], shape (C, C, K, R), by complex step."""
    shape = model.radial_coeffs.shape
    size = model.radial_coeffs.size
    grad = np.zeros(size)
    for p in range(size):  # the tests use tiny models; clarity over speed
        rad = model.radial_coeffs.astype(complex).ravel()
        rad[p] += 1j * H
        grad[p] = site_energy(model, zi, dr, zj, radial=rad.reshape(shape)).imag / H
    return grad.reshape(shape)


def efs(model, positions, types, cell=None, pbc=(True, True, True)):
    """Energy, forces, PlusStress (virial) and site energies of a structure, via ASE's
    neighbour list and per-site complex-step gradients."""
    from ase import Atoms

    atoms = Atoms(positions=positions, cell=cell if cell is not None else np.zeros((3, 3)),
                  pbc=pbc if cell is not None else False)
    ii, jj, dd = neighbor_list("ijD", atoms, model.max_dist)
    n = len(atoms)
    forces = np.zeros((n, 3))
    virial = np.zeros((3, 3))
    site = np.zeros(n)
    for i in range(n):
        sel = ii == i
        dr, j = dd[sel], jj[sel]
        v, g = site_energy_and_grad(model, types[i], dr, types[j])
        site[i] = v
        forces[i] += g.sum(axis=0)
        np.add.at(forces, j, -g)
        virial -= g.T @ dr
    return site.sum(), forces, virial, site
