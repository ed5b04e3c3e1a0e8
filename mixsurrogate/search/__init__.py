"""Choosing the next runs: space-filling starts, candidate sets, acquisition, trust regions,
the noise-aware recommendation, and closed-loop simulation against oracles built from real runs.
Models, acquisitions and optimisers live apart, as in BoTorch."""
