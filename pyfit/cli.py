"""Command line interface: ``pyfit <command> ...``. Every command wraps the Python API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pyfit.errors import PyfitError


def _species(text: str | None):
    return [s for s in text.replace(",", " ").split()] if text else None


def cmd_basis(args) -> int:
    from pyfit.basis import generate_basis
    from pyfit.io.mtp_file import write_mtp
    from pyfit.model import MTPModel

    t0 = time.perf_counter()
    try:
        basis = generate_basis(args.level)
    except ValueError as exc:
        raise PyfitError(str(exc)) from None
    model = MTPModel(
        species_count=args.species,
        min_dist=args.min_dist,
        max_dist=args.max_dist,
        radial_basis_size=args.radial_basis_size,
        radial_funcs_count=basis.radial_funcs_count,
        alpha_moments_count=basis.alpha_moments_count,
        alpha_index_basic=basis.alpha_index_basic,
        alpha_index_times=basis.alpha_index_times,
        alpha_moment_mapping=basis.alpha_moment_mapping,
        potential_name=f"MTP{args.level:02d}",
    )
    model.validate(source=str(args.output))
    write_mtp(model, args.output)
    print(
        f"level {args.level}: {basis.radial_funcs_count} radial functions, "
        f"{len(basis.alpha_index_basic)} basic moments, {len(basis.alpha_index_times)} "
        f"contractions, {len(basis.alpha_moment_mapping)} scalar moments "
        f"(linear parameters), {model.n_radial_params} radial parameters "
        f"-> {args.output} ({time.perf_counter() - t0:.2f} s)"
    )
    return 0


def _load(args):
    """An MLIP .mtp or a factored MTP-LOWRANK potential (chosen by the file's first line)."""
    from pyfit.io.lowrank_file import read_potential

    return read_potential(args.potential, species=_species(getattr(args, "species", None)))


def cmd_calc_efs(args) -> int:
    from pyfit.io.dataset import read_configurations, write_configurations

    pot = _load(args)
    configs = read_configurations(args.input, species=pot.species)
    t0 = time.perf_counter()
    out = pot.calc_efs(configs, n_threads=args.threads)
    dt = time.perf_counter() - t0
    write_configurations(args.output, out, species=pot.species)
    n_atoms = sum(len(c.positions) for c in configs)
    print(f"{len(configs)} configurations ({n_atoms} atoms) in {dt:.3f} s -> {args.output}",
          file=sys.stderr)
    return 0


def cmd_errors(args) -> int:
    from pyfit.io.dataset import read_configurations
    from pyfit.metrics import ErrorStats, compute_errors, format_table

    if args.committee:
        from pyfit.ensemble import Ensemble, committee_spread

        pot = Ensemble.load(str(args.potential), species=_species(args.species))
    else:
        pot = _load(args)
    rows, spreads = {}, {}
    total = ErrorStats()
    names = [Path(p).name for p in args.data]
    unique = len(set(names)) == len(names)
    for path, name in zip(args.data, names):
        configs = read_configurations(path, species=pot.species)
        stats = compute_errors(pot, configs, n_threads=args.threads)
        rows[name if unique else str(path)] = stats
        if args.committee:
            spreads[name if unique else str(path)] = committee_spread(pot, configs, args.threads)
        total = total.merged(stats)
    if len(rows) > 1:
        rows["total"] = total
    if args.json:
        out = {k: v.as_dict() for k, v in rows.items()}
        for k, v in spreads.items():
            out[k]["committee_spread"] = v
        print(json.dumps(out, indent=2))
    else:
        print(format_table(rows))
        for k, v in spreads.items():
            print(f"committee of {len(pot)} on {k}: energy spread {1e3 * v['energy_std_mean']:.3f} "
                  f"meV/atom (max {1e3 * v['energy_std_max']:.3f}), force spread "
                  f"{v['forces_std_rms']:.4f} eV/Å rms (max {v['forces_std_max']:.4f})")
    return 0


def cmd_info(args) -> int:
    from pyfit.io.lowrank_file import file_kind
    from pyfit.io.mtp_file import read_mtp

    extra = {}
    if file_kind(args.potential) == "lowrank":
        from pyfit.lowrank.commands import lowrank_info

        m, extra = lowrank_info(args.potential)
    else:
        m = read_mtp(args.potential)
    info = {
        "file": str(args.potential),
        "format": "MTP-LOWRANK 1 (factored)" if extra else "MLIP .mtp " + m.version,
        "potential_name": m.potential_name,
        "trained": m.is_trained,
        "species_count": m.species_count,
        "cutoff (max_dist)": m.max_dist,
        "min_dist": m.min_dist,
        "radial_basis": f"{m.radial_basis_type}, size {m.radial_basis_size}",
        "radial_funcs_count": m.radial_funcs_count,
        "alpha_moments_count": m.alpha_moments_count,
        "basic moments": m.alpha_index_basic_count,
        "contractions": m.alpha_index_times_count,
        "scalar moments (linear parameters)": m.alpha_scalar_moments,
        "radial parameters": m.n_radial_params,
        "total parameters": m.n_params,
    }
    info.update(extra)
    spectrum_text = None
    if args.spectrum or args.plot:
        from pyfit.lowrank.commands import spectrum_info

        info["spectrum"], spectrum_text = spectrum_info(m, args.unfolding, args.plot)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info if k != "spectrum")
        for k, v in info.items():
            if k != "spectrum":
                print(f"{k:<{width}}  {v}")
        if spectrum_text is not None:
            print(f"\nsingular values of the radial tensor ({args.unfolding} unfolding):")
            print(spectrum_text)
    return 0


def _read_inputs(paths, species) -> list:
    """All configurations of ``paths`` (any format), in order; an error if there are none."""
    from pyfit.io.dataset import read_configurations

    configs = []
    for path in paths:
        configs += read_configurations(path, species=species)
    if not configs:
        raise PyfitError(f"{', '.join(map(str, paths))}: no configurations")
    return configs


def cmd_label(args) -> int:
    from pyfit.io.dataset import write_configurations
    from pyfit.teacher import LammpsLabeller

    species = _species(args.species)
    masses = [float(m) for m in args.masses.replace(",", " ").split()] if args.masses else None
    configs = _read_inputs(args.input, species)
    t0 = time.perf_counter()
    with LammpsLabeller(args.ff, species, masses=masses, atom_style=args.atom_style) as ff:
        out = ff.subtract(configs) if args.subtract else ff.label(configs)
    write_configurations(args.output, out, species=species)
    what = f"labels minus {args.ff}" if args.subtract else f"labelled with {args.ff}"
    print(f"{len(out)} configurations {what} in {time.perf_counter() - t0:.1f} s "
          f"-> {args.output}", file=sys.stderr)
    return 0


def cmd_core_table(args) -> int:
    from pyfit.core_repulsion import CoreRepulsion

    species = _species(args.species)
    configs = _read_inputs(args.input, species)
    core = CoreRepulsion.from_data(configs, species, margin=args.margin,
                                   amplitude=args.amplitude, width=args.width)
    core.write_table(args.output)
    include = args.output.with_name(args.output.name + ".lmp")
    lines = [f"# pair_coeff lines of the cores in {args.output.name} (pyfit core-table, "
             f"{len(configs)} configurations of {', '.join(p.name for p in args.input)}, "
             f"r_in = closest approach - {args.margin} A); as a hybrid/overlay sub-style, "
             "the table file named by the variable core_table"]
    lines += core.lammps_commands("${core_table}")
    include.write_text("\n".join(lines) + "\n")
    for (a, b), r in sorted(core.r_in.items(), key=lambda kv: kv[1]):
        print(f"{core.pair_name(a, b):8s} r_in {r:.4f} A")
    print(f"-> {args.output}, {include}", file=sys.stderr)
    return _check_core(core, args.check, args.wall)


def _check_core(core, potentials, wall: float) -> int:
    """``core-table --check``: the dimer screen of every potential; status 1 if a pair fails."""
    from pyfit.core_repulsion import dimer_walls

    weak = []
    for path in potentials:
        for w in dimer_walls(core, path, wall=wall):
            print(f"{path.name}: {w.pair:8s} barrier {w.barrier:8.2f} eV at {w.r_barrier:.3f} A"
                  f" {'ok' if w.safe else 'FAILS'}")
            if not w.safe:
                weak.append(f"{path}: {w.pair}")
    if weak:
        print(f"pyfit core-table: error: the core (A = {core.amplitude:g} eV, w = "
              f"{core.width:g} A) does not reach {wall:g} eV before the potential's "
              f"extrapolation pulls the dimer in, for {'; '.join(weak)}; expected a wall: "
              "rerun with a larger --amplitude (the core is zero on the data, so no refit is "
              "needed)", file=sys.stderr)
        return 1
    return 0


def cmd_lammps_check(args) -> int:
    from pyfit.lammps import check

    ok, report = check()
    print(report)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyfit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("basis", help="write an untrained MTP template of a given level")
    b.add_argument("level", type=int, help="MTP level, even, 2..28")
    b.add_argument("--species", type=int, default=1, help="number of species (default 1)")
    b.add_argument("--min-dist", type=float, default=2.0)
    b.add_argument("--max-dist", type=float, default=5.0)
    b.add_argument("--radial-basis-size", type=int, default=8)
    b.add_argument("-o", "--output", type=Path, required=True)
    b.set_defaults(func=cmd_basis)

    species_help = "element symbols of the species indices, e.g. 'Nb,Mo,Ta,W' (for ASE formats)"
    c = sub.add_parser("calc-efs", help="energies, forces, stresses of configurations")
    c.add_argument("potential", type=Path)
    c.add_argument("input", type=Path, help=".cfg, .json (NbMoTaW) or any format ase.io reads")
    c.add_argument("output", type=Path, help=".cfg or any format ase.io writes")
    c.add_argument("--species", help=species_help)
    c.add_argument("--threads", type=int, default=1)
    c.set_defaults(func=cmd_calc_efs)

    e = sub.add_parser("errors", help="energy/force/stress errors against labelled data")
    e.add_argument("potential", type=Path)
    e.add_argument("data", type=Path, nargs="+")
    e.add_argument("--species", help=species_help)
    e.add_argument("--json", action="store_true", help="machine-readable output")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--committee", action="store_true",
                   help="POT is an ensemble: a glob ('pot.*.mtp') or comma-separated files; "
                        "errors of the mean prediction and the committee spread")
    e.set_defaults(func=cmd_errors)

    i = sub.add_parser("info", help="describe a potential file")
    i.add_argument("potential", type=Path)
    i.add_argument("--json", action="store_true")
    i.add_argument("--spectrum", action="store_true",
                   help="singular values of the radial tensor: how compressible it is")
    i.add_argument("--unfolding", choices=["pairs", "pairs_funcs"], default="pairs",
                   help="unfolding for --spectrum (default pairs: C*C x K*R)")
    i.add_argument("--plot", type=Path, help="PNG of the spectrum (implies --spectrum)")
    i.set_defaults(func=cmd_info)

    la = sub.add_parser("label", help="label configurations with a LAMMPS force field, or "
                        "subtract its labels (--subtract: fit an MTP to the difference)")
    la.add_argument("input", type=Path, nargs="+", help=".cfg, .json or any format ase.io reads")
    la.add_argument("--ff", type=Path, required=True,
                    help="LAMMPS include with pair_style / pair_coeff (/ kspace_style, charges)")
    la.add_argument("--species", required=True,
                    help="element of each species index = LAMMPS types 1, 2, ... ('Li,Na,K,F')")
    la.add_argument("--masses", help="masses of the species (default: ASE's)")
    la.add_argument("--atom-style", default="atomic", help="LAMMPS atom_style (charge for "
                    "Coulomb force fields; default atomic)")
    la.add_argument("--subtract", action="store_true",
                    help="write the inputs' labels minus the force field's")
    la.add_argument("-o", "--output", type=Path, required=True)
    la.set_defaults(func=cmd_label)

    ct = sub.add_parser("core-table", help="a repulsive pair core below the data's closest "
                        "approach, as a LAMMPS pair_style table file (+ its pair_coeff lines)")
    ct.add_argument("input", type=Path, nargs="+", help="the training data (any format)")
    ct.add_argument("--species", required=True,
                    help="element of each species index = LAMMPS types 1, 2, ... ('Li,Na,K,F')")
    ct.add_argument("--margin", type=float, default=0.05,
                    help="the core starts this far (A) below each pair's closest approach "
                    "(default 0.05)")
    ct.add_argument("--amplitude", type=float, default=1.0, help="A, eV (default 1)")
    ct.add_argument("--width", type=float, default=0.1, help="w, A (default 0.1)")
    ct.add_argument("-o", "--output", type=Path, required=True,
                    help="table file; its pair_coeff lines go to OUTPUT.lmp")
    ct.add_argument("--check", type=Path, nargs="+", default=[], metavar="POTENTIAL",
                    help="screen the core against these fitted potentials (isolated dimers "
                    "walked inwards from r_in): exit status 1 if the potential's extrapolation "
                    "outruns the core for some pair")
    ct.add_argument("--wall", type=float, default=10.0,
                    help="with --check: the barrier (eV) a pair must reach (default 10)")
    ct.set_defaults(func=cmd_core_table)

    lc = sub.add_parser("lammps-check", help="tell whether LAMMPS sees pair_style mtp/lowrank")
    lc.set_defaults(func=cmd_lammps_check)

    from pyfit.fitting.commands import add_plot_parser, add_train_parser

    add_train_parser(sub)
    add_plot_parser(sub)

    from pyfit.lowrank.commands import add_compress_parser, add_rank_scan_parser

    add_compress_parser(sub)
    add_rank_scan_parser(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PyfitError as exc:
        print(f"pyfit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"pyfit {args.command}: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
