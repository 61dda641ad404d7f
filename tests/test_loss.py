"""The fitting loss: value against the evaluator, analytic gradient against central finite
differences, the exact linear solve, determinism and bad input."""

import numpy as np
import pytest

from pyfit import MTP
from pyfit.errors import PyfitError
from pyfit.fitting.loss import Loss, LossWeights
from test_evaluator import random_model, random_structure


def labelled_set(rng, species, teacher, n=6):
    """Configurations labelled by a 'teacher' MTP plus noise, so residuals are non-zero."""
    out = []
    kinds = ["periodic", "cluster", "slab"]
    for k in range(n):
        c = random_structure(rng, species, kinds[k % 3])
        r = teacher.evaluate(c)
        c.energy = r.energy + rng.normal(scale=0.1)
        c.forces = r.forces + rng.normal(scale=0.05, size=r.forces.shape)
        c.plus_stress = r.plus_stress + rng.normal(scale=0.1, size=(3, 3)) if kinds[k % 3] == "periodic" else None
        c.source = f"set.cfg:{10 * k + 1}"
        out.append(c)
    return out


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(7)
    teacher = MTP(random_model(8, 2, rng))
    configs = labelled_set(rng, 2, teacher)
    model = random_model(8, 2, rng)
    loss = Loss(model, configs, LossWeights(1.0, 0.01, 0.001), n_threads=1)
    return loss, loss.pack(model), configs


def python_loss(loss, params, configs, w):
    mtp = MTP(loss.unpack(params))
    total = 0.0
    nf = np.mean([c.n_atoms for c in configs])
    for c in configs:
        r = mtp.evaluate(c)
        n = c.n_atoms
        total += w.energy * ((r.energy - c.energy) / n) ** 2
        total += w.forces * np.sum((r.forces - c.forces) ** 2) / nf
        if c.plus_stress is not None:
            d = (r.plus_stress - c.plus_stress)[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]] / n
            total += w.stress * np.sum(d ** 2)
    return total / len(configs)


def test_value_matches_evaluator(problem):
    loss, params, configs = problem
    assert loss.value(params) == pytest.approx(python_loss(loss, params, configs, loss.weights),
                                               rel=1e-12)


def test_gradient_matches_finite_differences(problem):
    loss, params, _ = problem
    value, grad = loss.value_and_grad(params)
    assert value == pytest.approx(loss.value(params), rel=1e-14)
    rng = np.random.default_rng(0)
    # every linear parameter and a random sample of radial ones
    idx = np.concatenate([rng.choice(loss.radial_slice.stop, 25, replace=False),
                          np.arange(loss.radial_slice.stop, loss.n_params)])
    for k in idx:
        h = 1e-6 * max(1.0, abs(params[k]))
        p1, p2 = params.copy(), params.copy()
        p1[k] += h
        p2[k] -= h
        fd = (loss.value(p1) - loss.value(p2)) / (2 * h)
        assert grad[k] == pytest.approx(fd, rel=2e-6, abs=1e-8 * np.abs(grad).max()), k


def test_each_term_gradient(problem):
    """Energy-only, force-only and stress-only losses each have the right gradient."""
    _, params, configs = problem
    rng = np.random.default_rng(1)
    for w in (LossWeights(1, 0, 0), LossWeights(0, 1, 0), LossWeights(0, 0, 1)):
        loss = Loss(random_model(8, 2, np.random.default_rng(7)), configs, w, n_threads=1)
        _, grad = loss.value_and_grad(params)
        direction = rng.normal(size=params.shape)
        h = 1e-6
        fd = (loss.value(params + h * direction) - loss.value(params - h * direction)) / (2 * h)
        assert grad @ direction == pytest.approx(fd, rel=1e-6)


def test_linear_solve_is_optimal(problem):
    loss, params, _ = problem
    solved = loss.linear_solve(params)
    np.testing.assert_array_equal(solved[loss.radial_slice], params[loss.radial_slice])
    value, grad = loss.value_and_grad(solved)
    lin = np.r_[grad[loss.species_slice], grad[loss.moment_slice]]
    assert np.abs(lin).max() < 1e-6 * max(1.0, np.abs(grad[loss.radial_slice]).max())
    rng = np.random.default_rng(2)
    for _ in range(5):
        p = solved.copy()
        p[loss.species_slice.start:] += rng.normal(scale=1e-3, size=p.size - loss.species_slice.start)
        assert loss.value(p) > value
    assert value < loss.value(params)


def test_threads_are_deterministic(problem):
    loss, params, configs = problem
    two = Loss(random_model(8, 2, np.random.default_rng(7)), configs, loss.weights, n_threads=2)
    v1, g1 = two.value_and_grad(params)
    v2, g2 = two.value_and_grad(params)
    assert v1 == v2 and np.array_equal(g1, g2)
    v, g = loss.value_and_grad(params)
    assert v1 == pytest.approx(v, rel=1e-13)
    np.testing.assert_allclose(g1, g, rtol=1e-11, atol=1e-13 * np.abs(g).max())


def test_errors_match_metrics(problem):
    from pyfit.metrics import compute_errors

    loss, params, configs = problem
    mine = loss.errors(params)
    ref = compute_errors(MTP(loss.unpack(params)), configs)
    for key in ("energy_rmse", "forces_rmse", "stress_rmse"):
        assert getattr(mine, key) == pytest.approx(getattr(ref, key), rel=1e-10)


def test_bad_input(problem):
    loss, _, configs = problem
    model = random_model(8, 2, np.random.default_rng(0))
    with pytest.raises(PyfitError, match="empty"):
        Loss(model, [])
    bad = configs[0].copy()
    bad.energy = float("nan")
    with pytest.raises(PyfitError, match=r"set.cfg:1: the energy label is NaN"):
        Loss(model, [bad])
    bad = configs[1].copy()
    bad.types = bad.types.copy()
    bad.types[0] = 5
    with pytest.raises(PyfitError, match=r"set.cfg:11: atom type 5 out of range"):
        Loss(model, [bad])
    with pytest.raises(PyfitError, match="weights.forces"):
        LossWeights(forces=-1)
    with pytest.raises(PyfitError, match="expected .* parameters"):
        loss.value(np.zeros(3))
