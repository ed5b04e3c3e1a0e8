"""From a fitted surrogate to the mixture a team trains at full scale.

``recommenders``: several ways to turn a surrogate into one mixture (argmin, top-k mean,
pessimistic, KL to a prior, trust region); ``robust``: choosing among them by cross-fitting on
the logged runs, with an optimism report for each; ``ledger``: what each proposal predicted,
kept beside the log so ``mixsurrogate audit`` can compare it with what the runs realised.
"""
