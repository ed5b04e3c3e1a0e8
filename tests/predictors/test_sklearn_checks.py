"""scikit-learn's estimator checks on every registered predictor (``base.MixturePredictor``
promises scikit-learn compatibility; this verifies it).

The predictors take mixtures: the tags say ``positive_only`` inputs (the checks then feed
non-negative rows, which ``check_weights`` accepts: it does not ask rows to sum to 1) and,
for laws in the log of the loss, positive targets. Checks that cannot apply to a regressor
of mixtures are listed per predictor in ``expected_failures``, each with its reason; they run
as strict xfails, so a check that starts passing must be taken off the list.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from mixsurrogate.predictors import PREDICTORS, make_predictor

pytestmark = pytest.mark.slow

#: small settings, so every check's fits stay quick (GPs: few L-BFGS steps on few runs)
SMALL: dict[str, dict] = {
    "gp": {"max_iter": 5, "hyper_runs": 16},
    "gp+mde": {"max_iter": 5, "hyper_runs": 16},
    "gp+mde-res": {"max_iter": 5, "hyper_runs": 16, "target_feature": 0},
    "mfgp": {"max_iter": 5, "hyper_runs": 16},
    "mtgp": {"max_iter": 5, "hyper_runs": 16},
    "mtgp+mde": {"max_iter": 5, "hyper_runs": 16},
    "lgbm": {"max_rounds": 100, "cv_folds": 3},
    "lgbm+mde": {"max_rounds": 100, "cv_folds": 3},
    "gp-hetero": {"max_iter": 5, "hyper_runs": 16},
    "auto": {"candidates": ("linear", "loglinear"), "folds": 2},
    "bimix": {"domain_index": 0},
    "mde": {"target_feature": 0},
    "mde-cal": {"target_feature": 0},
}

#: the checks that fit on X alone (``fit(X, y)``): a predictor that needs features beside
#: the mixtures (MDE losses, or the runs' fidelity) cannot run them
FIT_CHECKS = (
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_non_transformer_estimators_n_iter",
    "check_pipeline_consistency",
    "check_readonly_memmap_input",
    "check_regressor_data_not_an_array",
    "check_regressor_multioutput",
    "check_regressors_int",
    "check_regressors_no_decision_function",
    "check_regressors_train",
    "check_supervised_y_2d",
)


def expected_failures(estimator) -> dict[str, str]:
    """Check name -> why it cannot pass for this predictor (a regressor of mixtures)."""
    caps = estimator.capabilities
    failures = {
        "check_positive_only_tag_during_fit": "a negative weight raises MixtureError (a "
        "ValueError) naming the row and column, not scikit-learn's wording",
        "check_fit2d_predict1d": "a 1-D row is one mixture (simplex.check_mixtures), by design",
    }
    if estimator.min_runs(2) > 1 or caps.joint:
        failures["check_fit2d_1sample"] = "fewer runs than parameters raise NotEnoughRunsError"
    if "max_iter" in estimator.get_params():
        failures["check_non_transformer_estimators_n_iter"] = (
            "max_iter caps L-BFGS inside BoTorch's fit, which does not report the steps taken"
        )
    if estimator.name in ("mean", "bimix"):
        failures["check_regressors_train"] = (
            "by design a constant or a one-domain law: cannot fit generic regression data"
        )
    if caps.features or caps.fidelity:
        needs = "the runs' fidelity" if caps.fidelity else "MDE losses"
        checks = [c for c in FIT_CHECKS if c != "check_regressor_multioutput" or caps.joint]
        checks = [c for c in checks if c != "check_non_transformer_estimators_n_iter"
                  or "max_iter" in estimator.get_params()]  # fmt: skip
        failures |= dict.fromkeys(checks, f"fit needs {needs} as features beside X")
    if caps.repeats:  # scikit-learn's data repeats no row: refused with NotEnoughRunsError
        failures |= dict.fromkeys(FIT_CHECKS, "fit needs mixtures trained more than once")
    return failures


@parametrize_with_checks(
    [make_predictor(name, **SMALL.get(name, {})) for name in PREDICTORS],
    expected_failed_checks=expected_failures,
    xfail_strict=True,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
