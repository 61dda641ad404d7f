"""A repulsive pair core below the training data's closest approach, as a LAMMPS ``table``.

An MTP knows nothing below the closest approach of its training data (below it the radial
functions are extrapolated polynomials, whose forces can be huge and of either sign), and a
baseline such as formal-charge Coulomb attracts oppositely charged ions without limit. A rare
close collision in a long or hot MD run can then blow the run up (atoms lost; the FLiNaK
example's README, "Results, fifth session"). :class:`CoreRepulsion` is a per-species-pair wall that is
exactly zero from ``r_in`` on and rises steeply below it::

    E(r) = A [exp((r_in - r) / w) - 1 - (r_in - r) / w]      r < r_in
    E(r) = 0                                                 r >= r_in

(``A`` amplitude in eV, ``w`` width in Å): E and dE/dr are continuous at ``r_in`` (E ~
A/2 ((r_in - r)/w)^2 just below it; the curvature steps from 0 to A/w^2), and it outgrows
any power of 1/r, e.g. 16 A at ``r_in - 3 w`` and 142 A at ``r_in - 5 w``.

With ``r_in`` at or below each pair's closest approach in the data (:func:`closest_approach`,
:meth:`CoreRepulsion.from_data`) the core changes no training label, so it can be added to an
already fitted potential; with data reaching below it (close-contact frames), it is part of the
baseline that is subtracted from the labels (``pyfit label --subtract``) and added back in
LAMMPS. The core is run by LAMMPS's own ``pair_style table`` (``write_table``,
``lammps_commands``), and :meth:`CoreRepulsion.energy` is the same function in Python.

"Outgrows any power" is not enough: below ``r_in`` an MTP's extrapolated radial polynomials
can fall by hundreds of eV within a few tenths of an Å, faster than a 1 eV core rises there,
and then a pair that gets past the first few eV of the wall collapses (FLiNaK, fourteenth
session: one of three base fits lost a 1200 K run through a Li-F pair at 0.77 Å).
:func:`dimer_walls` checks a core against a fitted potential (``pyfit core-table --check``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["CoreRepulsion", "DimerWall", "closest_approach", "dimer_walls"]


def closest_approach(configs: Iterable, species: Sequence[str],
                     cutoff: float = 4.0) -> dict[tuple[int, int], float]:
    """Smallest distance of each species pair ``(a, b)``, ``a <= b``, over ``configs``
    (periodic images included; general cells). Pairs never closer than ``cutoff`` are
    missing from the result."""
    from ase.neighborlist import neighbor_list

    best: dict[tuple[int, int], float] = {}
    n_species = len(species)
    for c in configs:
        atoms = c.to_atoms(list(species))
        i, j, d = neighbor_list("ijd", atoms, cutoff)
        if d.size == 0:
            continue
        t = np.asarray(c.types)
        a, b = np.minimum(t[i], t[j]), np.maximum(t[i], t[j])
        key = a * n_species + b
        order = np.lexsort((d, key))
        first = np.ones(order.size, dtype=bool)
        first[1:] = key[order][1:] != key[order][:-1]
        for k, r in zip(key[order][first], d[order][first]):
            pair = (int(k) // n_species, int(k) % n_species)
            best[pair] = min(best.get(pair, math.inf), float(r))
    return best


@dataclass(frozen=True)
class CoreRepulsion:
    """Per-pair repulsive cores (see the module doc).

    ``species``: element of each type index (LAMMPS type ``k + 1``); ``r_in[(a, b)]``
    (``a <= b``, type indices) the distance below which the pair's core acts, in Å; pairs
    without an entry have no core. ``amplitude`` (eV) and ``width`` (Å) as in the module doc.
    """

    species: tuple[str, ...]
    r_in: dict = field(default_factory=dict)
    amplitude: float = 1.0
    width: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "species", tuple(self.species))
        n = len(self.species)
        if not n:
            raise PyfitError("CoreRepulsion: species is empty")
        clean = {}
        for key, r in dict(self.r_in).items():
            a, b = sorted(int(x) for x in key)
            if not (0 <= a < n and 0 <= b < n):
                raise PyfitError(f"CoreRepulsion: pair {key}: type indices must be in 0..{n - 1} "
                                 f"(species {list(self.species)})")
            if not (math.isfinite(r) and r > 0):
                raise PyfitError(f"CoreRepulsion: r_in of pair {key} is {r}; expected a "
                                 "positive distance in Å")
            clean[(a, b)] = float(r)
        object.__setattr__(self, "r_in", clean)
        for name in ("amplitude", "width"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v > 0):
                raise PyfitError(f"CoreRepulsion: {name} is {v}; expected a positive number")
            object.__setattr__(self, name, v)

    @classmethod
    def from_data(cls, configs, species: Sequence[str], margin: float = 0.05,
                  floor: float = 0.5, **kwargs) -> "CoreRepulsion":
        """Cores starting ``margin`` Å below each pair's closest approach in ``configs``
        (rounded down to 1e-4 Å, never below ``floor``); pairs absent from the data within 4 Å
        get none."""
        if margin < 0:
            raise PyfitError(f"CoreRepulsion.from_data: margin {margin}: expected >= 0")
        closest = closest_approach(configs, species)
        if not closest:
            raise PyfitError("CoreRepulsion.from_data: no pair closer than 4 Å in the data")
        return cls(species, {p: max(floor, math.floor((r - margin) * 1e4) / 1e4)
                             for p, r in closest.items()}, **kwargs)

    def pair_name(self, a: int, b: int) -> str:
        a, b = sorted((a, b))
        return f"{self.species[a]}_{self.species[b]}"

    def _depth(self, r, a: int, b: int):
        """``max(r_in - r, 0) / w`` for the pair of types ``a``, ``b`` (None: no core)."""
        r_in = self.r_in.get(tuple(sorted((a, b))))
        if r_in is None:
            return None
        return np.maximum(r_in - np.asarray(r, dtype=float), 0.0) / self.width

    def energy(self, r, a: int, b: int):
        """Pair energy (eV) at distance(s) ``r`` (Å) of types ``a``, ``b``."""
        x = self._depth(r, a, b)
        if x is None:
            return np.zeros_like(np.asarray(r, dtype=float))
        return self.amplitude * (np.expm1(x) - x)

    def force(self, r, a: int, b: int):
        """-dE/dr (eV/Å), positive = repulsive."""
        x = self._depth(r, a, b)
        if x is None:
            return np.zeros_like(np.asarray(r, dtype=float))
        return self.amplitude / self.width * np.expm1(x)

    def energy_forces(self, config) -> tuple[float, np.ndarray]:
        """Total core energy (eV) and forces (n, 3; eV/Å) of a Configuration (periodic images
        included)."""
        from ase.neighborlist import neighbor_list

        n = config.n_atoms
        forces = np.zeros((n, 3))
        if not self.r_in:
            return 0.0, forces
        atoms = config.to_atoms(list(self.species))
        i, j, d, vec = neighbor_list("ijdD", atoms, max(self.r_in.values()))
        t = np.asarray(config.types)
        energy = 0.0
        for (a, b), r_in in self.r_in.items():
            m = (((t[i] == a) & (t[j] == b)) | ((t[i] == b) & (t[j] == a))) & (d < r_in)
            if not m.any():
                continue
            energy += 0.5 * float(self.energy(d[m], a, b).sum())  # each pair twice
            f = self.force(d[m], a, b)[:, None] * vec[m] / d[m][:, None]  # on j, away from i
            np.add.at(forces, j[m], 0.5 * f)
            np.add.at(forces, i[m], -0.5 * f)
        return energy, forces

    def write_table(self, path, r_min: float = 0.3, depth: float = 1.0, n: int = 1000) -> Path:
        """LAMMPS ``pair_style table`` file with one section per pair (named ``A_B``), ``n``
        points from ``max(r_min, r_in - depth)`` to the pair's ``r_in`` (energy and force exact
        at each; LAMMPS stops with an error if a pair comes closer than the table's start)."""
        path = Path(path)
        lines = ["# pyfit core repulsion: E = A [exp((r_in - r)/w) - 1 - (r_in - r)/w] for "
                 f"r < r_in, A = {self.amplitude!r} eV, w = {self.width!r} A", ""]
        for (a, b), r_in in sorted(self.r_in.items()):
            if r_in <= r_min:
                raise PyfitError(f"CoreRepulsion: r_in {r_in} of {self.pair_name(a, b)} is not "
                                 f"above the table's r_min {r_min}")
            lo = max(r_min, r_in - depth)
            r = np.linspace(lo, r_in, n)
            e, f = self.energy(r, a, b), self.force(r, a, b)
            lines += [self.pair_name(a, b), f"N {n} R {lo!r} {r_in!r}", ""]
            lines += [f"{k + 1} {r[k]:.12g} {e[k]:.12g} {f[k]:.12g}" for k in range(n)]
            lines.append("")
        path.write_text("\n".join(lines))
        return path

    def lammps_commands(self, table: str, substyle: bool = True) -> list[str]:
        """``pair_coeff`` lines of the cores for the table file ``table`` (as LAMMPS will see
        the path); ``substyle``: as a ``hybrid/overlay`` sub-style (``pair_coeff i j table``)."""
        style = "table " if substyle else ""
        return [f"pair_coeff {a + 1} {b + 1} {style}{table} {self.pair_name(a, b)} {r_in!r}"
                for (a, b), r_in in sorted(self.r_in.items())]


@dataclass(frozen=True)
class DimerWall:
    """:func:`dimer_walls`' finding for one species pair: walking the isolated dimer inwards
    from ``r_in``, ``barrier`` (eV) is the highest MTP + core energy reached (relative to
    ``r_in``) and ``r_barrier`` where; ``safe`` when it reaches the wall height before the
    energy falls to minus that height or the walk ends."""

    pair: str
    r_in: float
    barrier: float
    r_barrier: float
    safe: bool


def dimer_walls(core: CoreRepulsion, potential, wall: float = 10.0, depth: float = 1.0,
                step: float = 0.005) -> list[DimerWall]:
    """Does the core hold against ``potential``'s extrapolation below the data? For each pair
    with a core, an isolated dimer is brought from ``r_in`` inwards in ``step`` Å steps, down to
    ``depth`` Å below ``r_in`` (the table's extent, :meth:`CoreRepulsion.write_table`), and
    ``E(r) = E_MTP(r) - E_MTP(r_in) + E_core(r)`` is followed: the pair is safe when E reaches
    ``wall`` eV (a barrier no thermal collision crosses) before it falls to ``-wall`` or the
    walk ends. ``potential``: an :class:`pyfit.MTP` (species in the core's order) or its file.

    A screen, not a proof: in a melt the pair's neighbours change the many-body energy and a
    baseline (e.g. Coulomb) adds its own slope, which is why the default wall is ~100 kT at
    1200 K. A pair that fails needs a larger ``amplitude`` (or a smaller ``width``); the core
    is zero on the data, so changing its shape below ``r_in`` needs no refit.
    """
    from ase import Atoms

    from pyfit.potential import MTP

    if not (wall > 0 and depth > 0 and 0 < step <= depth):
        raise PyfitError(f"dimer_walls: wall {wall}, depth {depth}, step {step}: expected "
                         "positive numbers with step <= depth")
    if not isinstance(potential, MTP):
        potential = MTP.load(potential, species=list(core.species))
    found = []
    for (a, b), r_in in sorted(core.r_in.items()):
        rs = r_in - np.arange(0.0, depth + 0.5 * step, step)
        rs = rs[rs > 0.05]
        energies = np.empty(rs.size)
        for k, r in enumerate(rs):
            dimer = Atoms([core.species[a], core.species[b]], positions=[[0, 0, 0], [r, 0, 0]])
            energies[k] = potential.evaluate(dimer).energy
        total = energies - energies[0] + core.energy(rs, a, b)
        end = rs.size
        out = np.flatnonzero((total >= wall) | (total <= -wall))
        if out.size:
            end = out[0] + 1
        k = int(np.argmax(total[:end]))
        found.append(DimerWall(core.pair_name(a, b), r_in, float(total[k]), float(rs[k]),
                               bool(total[end - 1] >= wall)))
    return found
