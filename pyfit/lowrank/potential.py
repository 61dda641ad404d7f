"""`CompressedMTP`: an MTP whose radial tensor is stored as low-rank factors.

It evaluates exactly like :class:`pyfit.MTP` (the factors are contracted to the dense tensor
once, when the potential is built, and the shared dense kernel is used), remembers its factors
and the method that produced them, and saves the factored ``MTP-LOWRANK`` file
(docs/lowrank-format.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from pyfit.errors import PyfitError
from pyfit.lowrank.factors import LowRank, TensorTrain
from pyfit.model import MTPModel
from pyfit.potential import MTP

__all__ = ["CompressedMTP", "METHODS"]

#: Fitting methods and the factored form each produces.
METHODS = {"mf": "mf", "rmf": "mf", "mfra": "mf", "tf": "tt"}


class CompressedMTP(MTP):
    """A trained MTP with factored radial coefficients.

    Parameters
    ----------
    model:
        Basis, species and moment coefficients; its ``radial_coeffs`` are replaced by
        ``factors.to_dense()``.
    factors:
        :class:`LowRank` (MF, R-MF, MFRA) or :class:`TensorTrain` (TF) of shape (C, C, K, R).
    species:
        Optional element symbols.
    method:
        ``"mf"``, ``"rmf"``, ``"mfra"`` or ``"tf"`` when known (stored in the file as the
        optional ``fit_method`` key; R-MF's radial parameter count is the manifold dimension).
    """

    def __init__(self, model: MTPModel, factors: LowRank | TensorTrain,
                 species: Sequence[str] | None = None, method: str | None = None):
        if not isinstance(factors, (LowRank, TensorTrain)):
            raise PyfitError(f"factors: expected a LowRank or TensorTrain, found "
                             f"{type(factors).__name__}")
        C, K, R = model.species_count, model.radial_funcs_count, model.radial_basis_size
        if factors.shape is None or tuple(factors.shape) != (C, C, K, R):
            raise PyfitError(f"factors describe a radial tensor of shape {factors.shape}; the "
                             f"model expects (C, C, K, R) = {(C, C, K, R)}")
        if method is not None and METHODS.get(method) != self._form(factors):
            allowed = ", ".join(k for k, v in METHODS.items() if v == self._form(factors))
            raise PyfitError(f"method: expected one of {allowed} for {type(factors).__name__} "
                             f"factors, found {method!r}")
        model = model.copy()
        model.radial_coeffs = factors.to_dense()
        super().__init__(model, species=species)
        self.factors = factors
        self.method = method

    @staticmethod
    def _form(factors) -> str:
        return "mf" if isinstance(factors, LowRank) else "tt"

    @property
    def radial_form(self) -> str:
        return self._form(self.factors)

    @property
    def n_radial_params(self) -> int:
        """Radial parameters of the factored form (R-MF counts the manifold dimension)."""
        if self.method == "rmf":
            return self.factors.n_params_riemannian
        return self.factors.n_params

    @property
    def n_radial_params_dense(self) -> int:
        return self.model.n_radial_params

    @property
    def ranks(self) -> tuple[int, ...]:
        return (self.factors.rank,) if isinstance(self.factors, LowRank) else self.factors.ranks

    def __repr__(self) -> str:
        return (f"CompressedMTP(form={self.radial_form}, ranks={self.ranks}, "
                f"radial_params={self.n_radial_params} of {self.n_radial_params_dense}, "
                f"species_count={self.model.species_count})")

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | Path, species: Sequence[str] | None = None) -> "CompressedMTP":
        """Reads a factored ``MTP-LOWRANK`` file; ``species`` overrides its species_names."""
        from pyfit.io.lowrank_file import read_lowrank

        data = read_lowrank(path)
        return cls(data.model, data.factors,
                   species=species if species is not None else data.species_names,
                   method=data.fit_method)

    def save(self, path: str | Path) -> None:
        """Writes the factored ``MTP-LOWRANK`` file."""
        from pyfit.io.lowrank_file import write_lowrank

        write_lowrank(path, self.model, self.factors, species_names=self.species,
                      fit_method=self.method)

    def save_dense(self, path: str | Path) -> None:
        """Writes the contracted dense potential as an MLIP ``.mtp`` file (17 digits)."""
        from pyfit.io.mtp_file import write_mtp

        write_mtp(self.model, path, precision=16)
