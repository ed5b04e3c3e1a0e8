"""A recommendation far from every logged run and predicted far below them says so in one line."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from mixsurrogate.cli import main
from mixsurrogate.proposal.robust import RecommenderReport, extrapolation_warning


def _report(predicted: float, lower: float, distance: float) -> RecommenderReport:
    return RecommenderReport(
        name="argmin", mixture=np.array([1.0, 0.0]), predicted=predicted, judged=predicted,
        judged_std=0.0, in_half_predicted=predicted, level=0.9, lower=lower, upper=None,
        nearest_run="r1", nearest_distance=distance, stability=0.0, versus_default=0.0,
        versus_default_spread=0.0,
    )  # fmt: skip


def test_far_and_far_below_the_runs_is_an_extrapolation():
    line = extrapolation_warning(_report(2.3, 2.2, 0.97), best_observed=2.82)
    assert line is not None and line.startswith("warning:") and "\n" not in line
    assert "0.97" in line and "0.5200" in line


def test_near_the_runs_or_within_the_interval_is_not():
    assert extrapolation_warning(_report(2.3, 2.2, 0.3), best_observed=2.82) is None
    assert extrapolation_warning(_report(2.8, 2.6, 0.9), best_observed=2.82) is None


def test_a_linear_model_at_a_vertex_is_flagged_in_text_and_json():
    """Before: -p linear on RegMix's 64 1B runs proposed 100% of one domain, predicted 0.53
    nats below every logged run, with no warning and exit 0."""
    args = ["propose", "regmix:test-1b", "-p", "linear", "--objective", "pile_cc=1"]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "the surrogate extrapolates there" in text.output
    payload = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    assert payload["robust"]["extrapolation"].startswith("warning:")
