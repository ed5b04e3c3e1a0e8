"""Honest evaluation of predictors: splits, the protocol (CV, learning curves, test logs),
metrics, noise floors and ceilings, results, reports and plots."""
