"""Mixture of data experts: the score store, the MDE engine and terms, the evaluator,
and the feature maps that turn a mixture into MDE losses for the predictors."""
