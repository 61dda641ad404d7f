"""Low-rank compression of the MTP radial coefficient tensor ``c[z_i, z_j, mu, b]``.

- :mod:`pyfit.lowrank.factors` — :class:`LowRank` (matrix factorisation of an unfolding) and
  :class:`TensorTrain` (TT over the four indices), truncation from a dense tensor;
- :mod:`pyfit.lowrank.potential` — :class:`CompressedMTP`, an evaluable MTP that keeps its factors
  and saves the factored ``MTP-LOWRANK`` file (:mod:`pyfit.io.lowrank_file`);
- :mod:`pyfit.lowrank.objective` — MF / TF losses over (factors, linear parameters);
- :mod:`pyfit.lowrank.riemannian` — Riemannian BFGS on the fixed-rank manifold (R-MF);
- :mod:`pyfit.lowrank.mfra` — MF with rank augmentation (the paper's Algorithm 1);
- :mod:`pyfit.lowrank.compress` — compression of trained potentials and rank scans.
"""

from pyfit.lowrank.factors import LowRank, TensorTrain

__all__ = ["LowRank", "TensorTrain"]
