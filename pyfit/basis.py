"""Generate the MTP basis (basic moments and contraction list) for a level 2..28.

The rule
--------
A moment tensor is ``M_{mu,nu} = sum_j f_mu(r_ij) u_ij^{(x)nu}`` (``u`` the unit vector), of level
``2 + 4 mu + nu``, with ``mu < K`` (K radial functions, fixed per level as in MLIP) and
``nu <= max_rank``.  Its symmetric components are the *basic moments* ``{mu, a, b, c}``
(``a + b + c = nu``, value ``sum_j f_mu u_x^a u_y^b u_z^c``).

A scalar basis function is a product of at most ``max_factors`` moment tensors whose levels sum to
at most ``L`` and whose indices are all contracted between *different* factors: a multigraph on
the factors, edge multiplicities ``e_ij`` with ``sum_j e_ij = nu_i`` and no loops.  Two graphs
that differ by a permutation of identical factors ``(mu, nu)`` are the same function.  Disconnected
graphs (products of lower scalars) are included.  This reproduces MLIP's number of linear
parameters (1, 2, 5, 9, 16, 29, 52, 92, 163, 288, 500, 864, 1464, 2445 for L = 2..28).

How the contractions are computed (integer coefficients)
--------------------------------------------------------
A connected graph is contracted along a vertex order in which each vertex is adjacent to an
earlier one: ``T_S -> T_{S+w} = contract(T_S, M_w)``.  A partial contraction ``T_S`` has free
indices in *groups*, one per outside vertex ``v`` (the indices that will contract with ``M_v``);
since ``M_v`` is symmetric each group may be symmetrised.  Partials are stored in *sum
normalisation*: the stored component for group multi-indices ``{m_g}`` is the sum of the tensor over
all index tuples in those classes, i.e. ``prod_g ntuples(m_g)`` times the symmetrised value, with
``ntuples(a, b, c) = (a+b+c)! / (a! b! c!)``.  Contracting with the basic tensor ``M_w`` (plain
storage) whose indices go ``m_I`` back to ``S`` and ``f_v`` on to the outside vertices ``v`` gives::

    R[{m_v}] = sum_{t_v + f_v = m_v} prod_v ntuples(f_v) sum_{m_I} T[m_I, {t_v}] M_w[m_I + sum_v f_v]

which has only integer coefficients.  A partial whose free indices all belong to one factor (a
basic tensor, or a factor with fully absorbed neighbours) is a symmetric tensor and is stored
*plain* (one value per combined multi-index, like a basic moment); viewed with groups it reads
``T[{t_g}] = prod_g ntuples(t_g) T_plain[sum_g t_g]``.  Such partials arise when all free indices of
``T_S`` go to ``w`` (``R[m] = sum_{m_I} T[m_I] M_w[m_I + m]``) or when a leaf ``w`` is absorbed by a
plain ``T_S`` (``R[m] = sum_{m_I} ntuples(m_I) T[m_I + m] M_w[m_I]``); they need far fewer components
than grouped storage.  Partials are memoised under a canonical key (labels, internal edges, sorted
group vectors, minimised over permutations of identical factors) so that intermediates are shared
between scalars.  The vertex order of every connected scalar is planned jointly (popularity-weighted
greedy start, then local search) to minimise the number of new contraction entries.  Products of
connected scalars are built pairwise (``{s1, s2, 1, out}``) from shared sorted prefixes.

Moment layout (MLIP's): moments ``0..n_basic-1`` are the basic moments in ``alpha_index_basic``
order; every later moment is written by a contiguous block of ``alpha_index_times`` entries
``{i, j, k, out}`` (``moment[out] += k * moment[i] * moment[j]``) that read only smaller indices.
"""

from __future__ import annotations

import functools
import itertools
import numbers
from collections import Counter
from dataclasses import dataclass
from math import factorial, prod

import numpy as np

__all__ = ["Basis", "generate_basis", "radial_funcs_count_for_level", "ALLOWED_LEVELS"]

#: radial_funcs_count (K) used by MLIP's untrained templates, per level.
_K_BY_LEVEL = {2: 1, 4: 1, 6: 2, 8: 2, 10: 3, 12: 3, 14: 4, 16: 4, 18: 5, 20: 5,
               22: 6, 24: 6, 26: 6, 28: 6}
ALLOWED_LEVELS = tuple(sorted(_K_BY_LEVEL))


@dataclass(frozen=True, eq=False)
class Basis:
    """An MTP basis in MLIP's layout (all arrays int64 and read-only)."""

    level: int
    radial_funcs_count: int  # K
    alpha_index_basic: np.ndarray  # (n_basic, 4) rows {mu, a, b, c}
    alpha_index_times: np.ndarray  # (n_times, 4) rows {i, j, k, out}
    alpha_moment_mapping: np.ndarray  # (n_scalar,) indices of the scalar moments
    alpha_moments_count: int

    @property
    def alpha_index_basic_count(self) -> int:
        return len(self.alpha_index_basic)

    @property
    def alpha_index_times_count(self) -> int:
        return len(self.alpha_index_times)

    @property
    def alpha_scalar_moments(self) -> int:
        return len(self.alpha_moment_mapping)


def _check_level(level) -> int:
    """The level as an int; odd levels are rejected like any other (MLIP defines only even ones)."""
    if isinstance(level, bool) or not isinstance(level, numbers.Integral) or level not in _K_BY_LEVEL:
        raise ValueError(
            f"invalid MTP level {level!r}: the level must be an even integer from "
            f"{ALLOWED_LEVELS[0]} to {ALLOWED_LEVELS[-1]} ({', '.join(map(str, ALLOWED_LEVELS))})"
        )
    return int(level)


def radial_funcs_count_for_level(level) -> int:
    """Number of radial functions K that MLIP uses at ``level``."""
    return _K_BY_LEVEL[_check_level(level)]


def _moment_level(mu: int, nu: int) -> int:
    return 2 + 4 * mu + nu


def _multi_indices(n: int):
    """Multi-indices (a, b, c), a+b+c = n, in MLIP's order (a descending, then b descending)."""
    return [(a, b, n - a - b) for a in range(n, -1, -1) for b in range(n - a, -1, -1)]


def _ntuples(m) -> int:
    return factorial(sum(m)) // prod(factorial(x) for x in m)


def _ncomp(n: int) -> int:
    return (n + 1) * (n + 2) // 2


def _add(*ms):
    return tuple(map(sum, zip(*ms)))


# ----------------------------------------------------------------------------------------------
# enumeration of the scalar graphs
# ----------------------------------------------------------------------------------------------

def _edge_assignments(nus):
    """All loop-free multigraphs with the given degrees: yields n x n symmetric matrices (tuples)."""
    n = len(nus)
    pairs = list(itertools.combinations(range(n), 2))
    rem = list(nus)
    e = [[0] * n for _ in range(n)]

    def rec(t):
        if t == len(pairs):
            if not any(rem):
                yield tuple(map(tuple, e))
            return
        i, j = pairs[t]
        lo = rem[i] if j == n - 1 else 0  # last chance for vertex i to use its degree
        for x in range(lo, min(rem[i], rem[j]) + 1):
            e[i][j] = e[j][i] = x
            rem[i] -= x
            rem[j] -= x
            yield from rec(t + 1)
            rem[i] += x
            rem[j] += x
        e[i][j] = e[j][i] = 0

    yield from rec(0)


def _label_perms(labels):
    """Permutations p (new position -> old vertex) that sort the labels (all, if labels repeat)."""
    ranked = sorted(range(len(labels)), key=labels.__getitem__)
    blocks = [list(g) for _, g in itertools.groupby(ranked, key=labels.__getitem__)]
    return [sum(choice, ()) for choice in itertools.product(*map(itertools.permutations, blocks))]


def _canonical_key(labels, inner, groups=()):
    """Canonical key of a (partial) contraction and, per group, its position in canonical order.

    ``labels``: vertex labels (mu, nu); ``inner``: edge matrix between the vertices; ``groups``:
    per group of free indices, the number of indices it receives from each vertex.
    """
    best = None
    for p in _label_perms(labels):
        lab = tuple(labels[i] for i in p)
        inn = tuple(inner[p[a]][p[b]] for a, b in itertools.combinations(range(len(p)), 2))
        vecs = [tuple(g[i] for i in p) for g in groups]
        order = sorted(range(len(groups)), key=vecs.__getitem__)
        key = (lab, inn, tuple(vecs[g] for g in order))
        if best is None or key < best[0]:
            best = (key, order)
    key, order = best
    pos = [0] * len(groups)
    for c, g in enumerate(order):
        pos[g] = c
    return key, pos


def _components(labels, e):
    """Connected components of a graph as (labels, edge matrix) pairs, labels sorted."""
    n = len(labels)
    comp = list(range(n))  # smallest vertex of each vertex's component, by propagation
    for _ in range(n):
        comp = [min([comp[v]] + [comp[u] for u in range(n) if e[v][u]]) for v in range(n)]
    out = []
    for c in sorted(set(comp)):
        vs = sorted((v for v in range(n) if comp[v] == c), key=lambda v: (labels[v], v))
        out.append((tuple(labels[v] for v in vs), tuple(tuple(e[a][b] for b in vs) for a in vs)))
    return out


def _enumerate_scalars(level, K, max_factors, max_rank):
    """Canonical keys of all scalar graphs: (labels, upper-triangle edges)."""
    types = [(mu, nu) for mu in range(K) for nu in range(max_rank + 1) if _moment_level(mu, nu) <= level]
    found = set()

    def rec(start, labels, lev):
        if labels:
            for e in _edge_assignments([nu for _, nu in labels]):
                found.add(_canonical_key(labels, e)[0])
        if len(labels) == max_factors:
            return
        for t in range(start, len(types)):
            lt = _moment_level(*types[t])
            if lev + lt <= level:
                rec(t, labels + [types[t]], lev + lt)

    rec(0, [], 0)
    return found


def _matrix(labels, upper):
    n = len(labels)
    e = [[0] * n for _ in range(n)]
    for (a, b), x in zip(itertools.combinations(range(n), 2), upper):
        e[a][b] = e[b][a] = x
    return e


# ----------------------------------------------------------------------------------------------
# contraction list
# ----------------------------------------------------------------------------------------------

class _Builder:
    """Accumulates moments and times entries; memoises partial contractions and products."""

    def __init__(self, basic_index):
        self.basic = basic_index  # (mu, (a, b, c)) -> moment index
        self.n_moments = len(basic_index)
        self.times = []
        self.partials = {}  # (canonical key, plain) -> {component: moment index}
        self.products = {}  # sorted tuple of scalar indices -> moment index

    @staticmethod
    def _prefix(labels, e, order, k):
        """The partial over the first k vertices of ``order``: labels, inner edges, groups."""
        s, outside = order[:k], order[k:]
        gverts = [u for u in outside if any(e[v][u] for v in s)]
        groups = [tuple(e[v][u] for v in s) for u in gverts]
        return [labels[v] for v in s], [[e[a][b] for b in s] for a in s], gverts, groups

    def _is_plain(self, e, order, k) -> bool:
        """Whether the partial over order[:k] is stored plain (all free indices from one vertex)."""
        if k == 1:
            return True
        w, s = order[k - 1], order[:k - 1]
        if not any(e[v][u] for v in order[:k] for u in order[k:]):
            return False  # a complete scalar
        t_verts = [u for u in order[k - 1:] if any(e[v][u] for v in s)]
        return t_verts == [w] or (self._is_plain(e, order, k - 1) and not any(e[w][u] for u in order[k:]))

    def _table(self, labels, e, order, k):
        """Partial over order[:k]: (plain, {component: moment index}, group vertices).

        Plain storage is keyed by the combined multi-index of all free indices, grouped storage by
        a tuple of multi-indices, one per group (group vertex), in sum normalisation.
        """
        lab, inner, gverts, groups = self._prefix(labels, e, order, k)
        if k == 1:
            mu, nu = labels[order[0]]
            return True, {m: self.basic[(mu, m)] for m in _multi_indices(nu)}, gverts
        plain = self._is_plain(e, order, k)
        key, pos = _canonical_key(lab, inner, groups)
        stored = self.partials.get((key, plain))
        if stored is None:
            stored = self.partials[(key, plain)] = self._contract_step(labels, e, order, k, gverts, pos, plain)
        if plain:
            return True, stored, gverts
        return False, {tuple(c[p] for p in pos): idx for c, idx in stored.items()}, gverts

    def _grouped(self, labels, e, order, k):
        """Partial over order[:k] as {component tuple per group: (coefficient, moment index)}."""
        plain, data, gverts = self._table(labels, e, order, k)
        if not plain:
            return {c: (1, idx) for c, idx in data.items()}, gverts
        sizes = [sum(e[v][u] for v in order[:k]) for u in gverts]
        return {c: (prod(map(_ntuples, c)), data[_add((0, 0, 0), *c)])
                for c in itertools.product(*(_multi_indices(g) for g in sizes))}, gverts

    def _contract_step(self, labels, e, order, k, gverts, pos, plain):
        """Create the moments of the partial over order[:k] from the one over order[:k-1]."""
        w = order[k - 1]
        mu_w, nu_w = labels[w]
        terms = {}

        def add(out, idx_t, idx_f, coef):
            block = terms.setdefault(out, {})
            pair = (min(idx_t, idx_f), max(idx_t, idx_f))
            block[pair] = block.get(pair, 0) + coef

        _, t_data, t_verts = self._table(labels, e, order, k - 1)
        rank = sum(e[v][u] for v in order[:k] for u in gverts)
        if plain and t_verts == [w]:  # all free indices of T go to w: R[m] = sum T[mI] M_w[mI + m]
            for (m_i,), (coef, idx_t) in self._grouped(labels, e, order, k - 1)[0].items():
                for m in _multi_indices(rank):
                    add(m, idx_t, self.basic[(mu_w, _add(m_i, m))], coef)
        elif plain:  # w is a leaf of the plain T: R[m] = sum ntuples(mI) T[mI + m] M_w[mI]
            for m_i in _multi_indices(nu_w):
                for m in _multi_indices(rank):
                    add(m, t_data[_add(m_i, m)], self.basic[(mu_w, m_i)], _ntuples(m_i))
        else:  # the general grouped step (see the module docstring)
            t_table, t_verts = self._grouped(labels, e, order, k - 1)
            iw = t_verts.index(w)
            f_verts = [u for u in order[k:] if e[w][u]]
            f_choices = [[(f, _ntuples(f)) for f in _multi_indices(e[w][u])] for u in f_verts]
            for c, (coef_t, idx_t) in t_table.items():
                t_of = {u: c[g] for g, u in enumerate(t_verts) if u != w}
                for fs in itertools.product(*f_choices):
                    f_of = dict(zip(f_verts, (f for f, _ in fs)))
                    idx_f = self.basic[(mu_w, _add(c[iw], *f_of.values()))]
                    out = tuple(_add(t_of.get(u, (0, 0, 0)), f_of.get(u, (0, 0, 0))) for u in gverts)
                    add(out, idx_t, idx_f, coef_t * prod(n for _, n in fs))
        stored = {}
        for out in sorted(terms):
            idx = self._new_moment(terms[out])
            if plain:
                stored[out] = idx
            else:
                canon = [None] * len(pos)
                for g, m in enumerate(out):
                    canon[pos[g]] = m
                stored[tuple(canon)] = idx
        return stored

    def _new_moment(self, block):
        idx = self.n_moments
        self.n_moments += 1
        self.times.extend((i, j, k, idx) for (i, j), k in sorted(block.items()))
        return idx

    def _steps(self, labels, e, order):
        """[(memo key, estimated new times entries)] for the prefixes k = 2..n of ``order``."""
        steps = []
        for k in range(2, len(order) + 1):
            lab, inner, _, groups = self._prefix(labels, e, order, k)
            plain, w = self._is_plain(e, order, k), order[k - 1]
            if plain:
                cost = _ncomp(sum(e[v][w] for v in order[:k - 1])) * _ncomp(sum(map(sum, groups)))
            else:
                t_groups = self._prefix(labels, e, order, k - 1)[3]
                cost = prod(_ncomp(sum(g)) for g in t_groups) * prod(_ncomp(e[w][u]) for u in order[k:])
            if k == 2 and labels[order[0]] == labels[order[1]]:
                cost /= 2  # products A[i] A[j] and A[j] A[i] merge
            steps.append(((_canonical_key(lab, inner, groups)[0], plain), cost))
        return steps

    def plan(self, graphs, rounds=5):
        """Choose a vertex order for each connected graph (n >= 2) so that partials are shared.

        Start from the order of least popularity-weighted cost (a partial that many graphs could
        use is cheap), then improve by local search: re-choose each graph's order given the
        partials the other graphs use, until nothing changes.
        """
        options = []
        for labels, e in graphs:
            n = len(labels)
            orders = [p for p in itertools.permutations(range(n))
                      if all(any(e[p[k]][v] for v in p[:k]) for k in range(1, n))]
            options.append([(self._steps(labels, e, p), p) for p in orders])
        popularity = Counter(k for opts in options for k in {k for steps, _ in opts for k, _ in steps})
        choice = [min(range(len(opts)), key=lambda i: (sum(c / popularity[k] for k, c in opts[i][0]), i))
                  for opts in options]
        use = Counter(k for opts, i in zip(options, choice) for k, _ in opts[i][0])
        for _ in range(rounds):
            changed = False
            for g, opts in enumerate(options):
                use.subtract(k for k, _ in opts[choice[g]][0])
                best = min(range(len(opts)), key=lambda i: (
                    sum(c for k, c in opts[i][0] if use[k] <= 0), i != choice[g], i))
                changed |= best != choice[g]
                choice[g] = best
                use.update(k for k, _ in opts[best][0])
            if not changed:
                break
        return [opts[i][1] for opts, i in zip(options, choice)]

    def connected(self, labels, e, order) -> int:
        """Moment index of a connected scalar graph (n >= 2), contracted along ``order``."""
        return self._table(labels, e, list(order), len(labels))[1][()]

    def product(self, factors) -> int:
        """Moment index of the product of scalar moments ``factors`` (built from sorted prefixes)."""
        factors = tuple(sorted(factors))
        if len(factors) == 1:
            return factors[0]
        if factors not in self.products:
            left = self.product(factors[:-1])
            self.products[factors] = self._new_moment({(min(left, factors[-1]), max(left, factors[-1])): 1})
        return self.products[factors]


def _read_only(a):
    a = np.ascontiguousarray(a, dtype=np.int64)
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=32)
def generate_basis(level: int, max_factors: int = 4, max_rank: int = 10) -> Basis:
    """MTP basis of ``level`` (even, 2..28) with MLIP's K, in MLIP's moment layout.

    ``max_factors`` bounds the number of moment tensors in a scalar, ``max_rank`` their rank nu.
    Raises ValueError for any other level (odd, out of range, or not an integer).
    """
    level = _check_level(level)
    for name, val, low in (("max_factors", max_factors, 1), ("max_rank", max_rank, 0)):
        if isinstance(val, bool) or not isinstance(val, numbers.Integral) or val < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {val!r}")
    K = _K_BY_LEVEL[level]
    graphs = [(lab, _matrix(lab, upper)) for lab, upper, _ in _enumerate_scalars(level, K, max_factors, max_rank)]

    used = sorted({lab for labels, _ in graphs for lab in labels})
    basic_rows = [(mu, *m) for mu, nu in used for m in _multi_indices(nu)]
    builder = _Builder({(mu, (a, b, c)): i for i, (mu, a, b, c) in enumerate(basic_rows)})

    def sort_key(g):
        labels, e = g
        return (sum(_moment_level(*x) for x in labels), len(labels), labels, e)

    comps = [_components(labels, e) for labels, e in graphs]
    # connected scalars first, smallest graphs first, with jointly planned vertex orders
    connected = sorted({c for cs in comps for c in cs if len(c[0]) > 1}, key=lambda c: (len(c[0]), sort_key(c)))
    index = {c: builder.connected(*c, order) for c, order in zip(connected, builder.plan(connected))}
    index.update({c: builder.basic[(c[0][0][0], (0, 0, 0))] for cs in comps for c in cs if len(c[0]) == 1})
    scalars = []
    for (labels, e), cs in sorted(zip(graphs, comps), key=lambda x: sort_key(x[0])):
        idx = builder.product([index[c] for c in cs])
        is_basic = idx < len(basic_rows)  # the M_{mu,0}: first, by mu
        scalars.append((not is_basic, idx if is_basic else 0, sort_key((labels, e)), idx))
    mapping = [s[-1] for s in sorted(scalars)]

    return Basis(
        level=level,
        radial_funcs_count=K,
        alpha_index_basic=_read_only(np.reshape(basic_rows, (-1, 4))),
        alpha_index_times=_read_only(np.reshape(builder.times, (-1, 4))),
        alpha_moment_mapping=_read_only(mapping),
        alpha_moments_count=builder.n_moments,
    )
