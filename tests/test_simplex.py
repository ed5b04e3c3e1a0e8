"""Simplex design, bounds and blended objectives."""

from __future__ import annotations

import numpy as np
import pytest

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.simplex import Bounds, dirichlet_simplex, project_to_simplex, sobol_simplex

from builders import cli_error_line, one_line


def test_sobol_points_are_on_the_simplex_and_spread():
    W = sobol_simplex(64, 5, seed=1)
    assert W.shape == (64, 5)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    assert (W >= 0).all()
    assert np.allclose(W.mean(axis=0), 0.2, atol=0.03)  # uniform on the simplex on average


def test_dirichlet_small_alpha_is_sparse():
    sparse = dirichlet_simplex(200, 6, alpha=0.1, seed=0)
    dense = dirichlet_simplex(200, 6, alpha=1.0, seed=0)
    assert (sparse < 1e-3).mean() > 0.3 > 0.05 > (dense < 1e-3).mean()


def test_projection_matches_known_points():
    np.testing.assert_allclose(project_to_simplex(np.array([0.5, 0.8, -0.2])), [[0.35, 0.65, 0.0]])
    v = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(project_to_simplex(v), v)


def test_bounds_sample_and_repair_respect_limits():
    b = Bounds.parse(["a=0.2:0.5", "c=:0.1"], ["a", "b", "c"])
    W = b.sample(256, seed=3)
    assert b.contains(W).all()
    repaired = b.repair(np.array([[0.9, 0.05, 0.05], [0.0, 0.0, 1.0]]))
    assert b.contains(repaired).all()


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["a=0.6:1", "b=0.6:1"], "lower bounds sum to 1.200 > 1"),
        (["a=0:0.2", "b=0:0.2", "c=0:0.2"], "upper bounds sum to 0.600 < 1"),
        (["z=0:1"], "unknown domain 'z'"),
        (["a=0.5:0.2"], "bound for a is impossible"),
        (["a0.5"], "expected DOMAIN=LO:HI"),
    ],
)
def test_infeasible_bounds_are_refused(specs, message):
    with pytest.raises(MixsurrogateError, match=message):
        Bounds.parse(specs, ["a", "b", "c"])


def test_max_epochs_caps_shares_by_available_tokens():
    b = Bounds.unbounded(3).with_max_epochs(
        ["a", "b", "c"], {"a": 100, "b": 1000, "c": 1000}, 1000, 2.0
    )
    np.testing.assert_allclose(b.upper, [0.2, 1.0, 1.0])
    W = b.sample(64)
    assert b.contains(W).all() and (W[:, 0] <= 0.2 + 1e-9).all()
    with pytest.raises(MixsurrogateError, match="cannot be filled"):
        Bounds.unbounded(3).with_max_epochs(["a", "b", "c"], {"a": 10, "b": 10, "c": 10}, 1000, 1.0)


def test_one_mixture_validator_names_the_bad_row_and_column():
    from mixsurrogate.simplex import check_mixtures

    good = check_mixtures([[0.5, 0.5], [1.0, 0.0]], 2, sum_tolerance=1e-2)
    assert good.shape == (2, 2)
    cases = [
        (([[0.5, np.nan]],), {}, "row 0: weight 1 is missing or NaN"),
        (([[0.5, -0.1]],), {"labels": ["run x"], "columns": ["w:a", "w:b"]},
         "run x: weight w:b is negative"),
        (([[0.5, 0.4]],), {"sum_tolerance": 1e-2}, "row 0: weights sum to 0.9000, not 1"),
        (([[0.5, 0.5]], 3), {}, r"shape \(1, 2\); expected \(mixtures, 3\)"),
    ]  # fmt: skip
    for args, kwargs, message in cases:
        with pytest.raises(MixsurrogateError, match=message):
            check_mixtures(*args, **kwargs)
    check_mixtures([[1.0 + 1e-9, -1e-9]], negative_tolerance=1e-6)  # an optimiser's rounding


@pytest.mark.parametrize("spec", ["pile_cc=nan:0.5", "pile_cc=0.1:nan", "pile_cc=NaN:"])
def test_nan_bounds_name_the_bound(spec):
    """Before: 'row 0: weight 0 is missing or NaN', about no row the user wrote."""
    with pytest.raises(MixsurrogateError) as err:
        Bounds.parse([spec], ["pile_cc", "github"])
    assert f"bad bound {spec!r}" in one_line(err)


def test_nan_bounds_through_the_cli():
    line = cli_error_line(
        main,
        ["propose", "regmix:train-1m", "-p", "linear", "--objective", "pile_cc=1",
         "--bounds", "github=nan:0.1"],
        exit_code=1,
    )  # fmt: skip
    assert "bad bound 'github=nan:0.1'" in line


def test_bounds_built_with_nan_are_impossible():
    with pytest.raises(MixsurrogateError) as err:
        Bounds(np.array([np.nan, 0.0]), np.ones(2)).check(["a", "b"])
    assert "bound for a is impossible" in one_line(err)
