"""`extends` in training TOML files: a fit that differs from another in a few keys names that
file instead of repeating it (pyfit.fitting.config.load_config)."""

from pathlib import Path

import pytest

from pyfit.cli import main
from pyfit.errors import FileFormatError, MissingFileError, PyfitError
from pyfit.fitting.config import config_from_dict, load_config

BASE = """
[data]
train = ["data/train.cfg", "data/extra.cfg"]
valid = "data/valid.cfg"
[model]
level = 16
species = ["Li", "Na", "K", "F"]
min_dist = 1.15
[loss]
energy = 10.0
stress = 1.0
[optimizer]
max_iter = 1000
max_time = 3300
seed = 1
[output]
potential = "base.mtp"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_child_changes_only_what_it_sets(tmp_path):
    base = write(tmp_path / "recipes" / "base.toml", BASE)
    child = write(tmp_path / "fits" / "mf.toml", """extends = "../recipes/base.toml"
[optimizer]
max_time = 1800
[output]
potential = "mf.mtplr"
[compression]
method = "mf"
rank = 8
""")
    parent_cfg, cfg = load_config(base), load_config(child)
    # the parent's relative paths stay relative to the parent ...
    assert cfg.data.train == [str(tmp_path / "recipes" / "data" / "train.cfg"),
                              str(tmp_path / "recipes" / "data" / "extra.cfg")]
    assert cfg.data.valid == [str(tmp_path / "recipes" / "data" / "valid.cfg")]
    # ... the child's to the child
    assert cfg.output.potential == str(tmp_path / "fits" / "mf.mtplr")
    assert cfg.optimizer.max_time == 1800.0
    assert cfg.compression == {"method": "mf", "rank": 8}
    # everything else is the parent's, key by key within a section
    for section in ("model", "loss"):
        assert getattr(cfg, section) == getattr(parent_cfg, section)
    assert cfg.optimizer.seed == 1 and cfg.optimizer.max_iter == 1000
    assert parent_cfg.compression is None and parent_cfg.optimizer.max_time == 3300.0


def test_equals_the_flat_file(tmp_path):
    write(tmp_path / "base.toml", BASE)
    child = write(tmp_path / "child.toml", 'extends = "base.toml"\n[loss]\nforces = 0.05\n'
                  '[compression]\nmethod = "tf"\nranks = [4, 8, 4]\n')
    flat = write(tmp_path / "flat.toml", BASE.replace("stress = 1.0", "stress = 1.0\nforces = 0.05")
                 + '[compression]\nmethod = "tf"\nranks = [4, 8, 4]\n')
    assert load_config(child) == load_config(flat)
    assert load_config(child).fingerprint("d") == load_config(flat).fingerprint("d")


def test_chain_and_compression_replaced_whole(tmp_path):
    write(tmp_path / "a.toml", BASE + '[compression]\nmethod = "mf"\nrank = 8\n')
    write(tmp_path / "b.toml", 'extends = "a.toml"\n[optimizer]\nseed = 2\n')
    c = write(tmp_path / "c.toml", 'extends = "b.toml"\n[compression]\nmethod = "tf"\n'
              'ranks = [3, 4, 8]\n')
    cfg = load_config(c)
    assert cfg.optimizer.seed == 2 and cfg.model.level == 16
    assert cfg.compression == {"method": "tf", "ranks": [3, 4, 8]}  # no 'rank' left from a.toml
    assert load_config(tmp_path / "b.toml").compression == {"method": "mf", "rank": 8}


def test_missing_parent_names_both_files(tmp_path):
    child = write(tmp_path / "child.toml", 'extends = "nope.toml"\n[model]\nlevel = 8\n')
    with pytest.raises(MissingFileError) as err:
        load_config(child)
    assert str(err.value) == (f"{tmp_path / 'nope.toml'}: no such file (named by 'extends' in "
                              f"{child})")
    (tmp_path / "dir.toml").mkdir()
    write(child, 'extends = "dir.toml"\n')
    with pytest.raises(MissingFileError, match="is a directory, expected a TOML file"):
        load_config(child)


def test_cycles_are_refused(tmp_path):
    a = write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "./a.toml"\n')
    with pytest.raises(PyfitError, match=r"cycle of 'extends' \(.*a.toml -> .*b.toml -> "
                       r".*a.toml\)"):
        load_config(a)
    self_ref = write(tmp_path / "self.toml", 'extends = "self.toml"\n')
    with pytest.raises(PyfitError, match="cycle of 'extends'"):
        load_config(self_ref)


@pytest.mark.parametrize("value, found", [("3", "an integer (3)"), ('""', "a string ('')"),
                                          ('["a.toml"]', "an array (['a.toml'])")])
def test_extends_must_be_a_path(tmp_path, value, found):
    child = write(tmp_path / "child.toml", f"extends = {value}\n[model]\nlevel = 8\n")
    with pytest.raises(PyfitError) as err:
        load_config(child)
    assert str(err.value) == (f"{child}: extends: expected the path of another training TOML "
                              f"file (a non-empty string), found {found}")


def test_mistakes_name_the_file_that_has_them(tmp_path):
    write(tmp_path / "base.toml", BASE.replace("min_dist = 1.15", "min_dist = 'x'"))
    child = write(tmp_path / "child.toml", 'extends = "base.toml"\n')
    with pytest.raises(PyfitError, match=r"base.toml: .*\[model\] min_dist: expected a number"):
        load_config(child)
    write(tmp_path / "base.toml", BASE)
    write(child, 'extends = "base.toml"\n[loss]\nenergies = 1.0\n')
    with pytest.raises(PyfitError, match=r"child.toml: unknown key 'energies' in \[loss\]"):
        load_config(child)
    write(tmp_path / "bad.toml", "[model\n")
    write(child, 'extends = "bad.toml"\n')
    with pytest.raises(FileFormatError, match=r"bad.toml: invalid TOML: .*\(named by 'extends' "
                       r"in .*child.toml\)"):
        load_config(child)
    # a merged result is still validated as a whole
    write(child, 'extends = "base.toml"\n[model]\nmin_dist = 6.0\n')
    with pytest.raises(PyfitError, match="model.min_dist/max_dist: expected 0 < min_dist < "
                       "max_dist, found \\(6.0, 5.0\\)"):
        load_config(child)


def test_extends_in_a_section_or_a_dict(tmp_path):
    child = write(tmp_path / "child.toml", '[model]\nextends = "base.toml"\nlevel = 8\n')
    with pytest.raises(PyfitError, match=r"unknown key 'extends' in \[model\].*'extends' goes "
                       r"at the top of the file, before any \[section\]"):
        load_config(child)
    with pytest.raises(PyfitError, match="'extends' is read only from TOML files"):
        config_from_dict({"extends": "base.toml", "model": {"level": 8}})


def test_cli(tmp_path, capsys):
    write(tmp_path / "base.toml", BASE)
    child = write(tmp_path / "child.toml", 'extends = "missing.toml"\n')
    assert main(["train", str(child)]) == 2
    assert "missing.toml: no such file (named by 'extends' in" in capsys.readouterr().err
