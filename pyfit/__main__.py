"""``python -m pyfit ...`` runs the ``pyfit`` command line (same as the installed script)."""

from pyfit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
