"""Statistical analyses: survival tests, proportions, means, power and sample size."""
