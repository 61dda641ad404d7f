"""pyfit: fit and evaluate Moment Tensor Potentials (MTP), including low-rank compressed ones.

Importing :mod:`pyfit` has no side effects; the compiled evaluator is loaded lazily the first
time :class:`pyfit.MTP` or :class:`pyfit.MTPCalculator` is used.
"""

__version__ = "0.1.0"

__all__ = ["MTP", "MTPCalculator", "MTPModel", "Configuration", "generate_basis", "fit",
           "Ensemble", "__version__"]


def __getattr__(name):
    if name == "MTP":
        from pyfit.potential import MTP

        return MTP
    if name == "MTPCalculator":
        from pyfit.calculator import MTPCalculator

        return MTPCalculator
    if name == "MTPModel":
        from pyfit.model import MTPModel

        return MTPModel
    if name == "Configuration":
        from pyfit.configuration import Configuration

        return Configuration
    if name == "generate_basis":
        from pyfit.basis import generate_basis

        return generate_basis
    if name == "fit":
        from pyfit.fitting.trainer import fit

        return fit
    if name == "Ensemble":
        from pyfit.ensemble import Ensemble

        return Ensemble
    raise AttributeError(f"module 'pyfit' has no attribute {name!r}")
