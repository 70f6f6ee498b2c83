"""Virtual patients: statistical, Bayesian, deep generative and mechanistic generators."""
