# Reference values for analysis/boundaries.py (group-sequential boundaries), computed with rpact.
#
# Produced with rpact 3.3.4 on R 4.2.2 (Debian package r-cran-rpact), jsonlite for output.
# Regenerate from the repository root with
#
#     Rscript tests/results/boundaries_rpact.R
#
# which rewrites tests/results/boundaries_rpact.json. tests/test_boundaries.py reads that file,
# so the tests need no R. Each case records the keyword arguments of
# analysis.boundaries.group_sequential_design (in the Python API's names) and rpact's results:
#
# - getDesignGroupSequential: criticalValues, futilityBounds (interim looks only), alphaSpent,
#   betaSpent (beta-spending designs only);
# - getDesignCharacteristics: inflationFactor, shift (= drift^2, the squared expected z at full
#   information under H1), power (cumulative), rejectionProbabilities, futilityProbabilities,
#   averageSampleNumber1 / 01 / 0 (expected information under drift, drift / 2 and 0, relative
#   to the fixed design's information).
#
# Mapping: efficacy = typeOfDesign ("OF", "P", "asOF", "asP", "asKD", "asHSD"),
# efficacy_parameter = gammaA, futility = typeBetaSpending ("bsOF", "bsP", "bsKD", "bsHSD"),
# futility_parameter = gammaB, binding = bindingFutility; efficacy = NULL (None in Python: no
# early efficacy stop) is explained under "futility only" below. rpact's tolerance is left at
# its default (1e-8).

suppressPackageStartupMessages({
  library(rpact)
  library(jsonlite)
})

cases <- list()
null_if_na <- function(x) if (is.null(x) || length(x) == 0 || all(is.na(x))) NULL else x
vec <- function(x) if (is.null(x)) NULL else I(x)  # keep length-1 vectors as JSON arrays

add <- function(id, rates, alpha = 0.025, sided = 1, beta = 0.2, efficacy = "asOF",
                efficacy_parameter = NA, futility = NA, futility_parameter = NA,
                binding = FALSE) {
  k <- length(rates)
  args <- list(kMax = k, informationRates = rates, alpha = alpha, beta = beta, sided = sided)
  if (is.na(efficacy)) {
    # no early efficacy stop, see "futility only" below
    args$typeOfDesign <- "asUser"
    args$userAlphaSpending <- c(1e-20 * seq_len(k - 1), alpha)
  } else {
    args$typeOfDesign <- efficacy
  }
  if (!is.na(efficacy_parameter)) args$gammaA <- efficacy_parameter
  if (!is.na(futility)) {
    args$typeBetaSpending <- futility
    args$bindingFutility <- binding
    if (!is.na(futility_parameter)) args$gammaB <- futility_parameter
  }
  design <- do.call(getDesignGroupSequential, args)
  chars <- getDesignCharacteristics(design)
  has_futility <- !is.na(futility)
  # NA is written as null (None in Python)
  inputs <- list(information_fractions = I(rates), alpha = alpha, beta = beta,
                 sided = as.integer(sided), efficacy = efficacy,
                 efficacy_parameter = efficacy_parameter, futility = futility,
                 futility_parameter = futility_parameter, binding = has_futility && binding)
  outputs <- list(
    critical_values = vec(design$criticalValues),
    futility_bounds = if (has_futility) vec(design$futilityBounds) else NULL,
    alpha_spent = vec(design$alphaSpent),
    beta_spent = if (has_futility) vec(design$betaSpent) else NULL,
    inflation_factor = chars$inflationFactor,
    shift = chars$shift,
    power = vec(chars$power),
    rejection_probabilities = vec(chars$rejectionProbabilities),
    futility_probabilities = vec(null_if_na(chars$futilityProbabilities)),
    average_sample_number1 = chars$averageSampleNumber1,
    average_sample_number01 = chars$averageSampleNumber01,
    average_sample_number0 = chars$averageSampleNumber0
  )
  cases[[length(cases) + 1]] <<- list(id = id, inputs = inputs,
                                      outputs = outputs[!vapply(outputs, is.null, TRUE)])
}

equal <- function(k) seq_len(k) / k
rates_list <- list(
  k2 = c(0.5, 1), k2u = c(0.35, 1),
  k3 = equal(3), k3u = c(0.25, 0.6, 1),
  k4 = equal(4), k4u = c(0.2, 0.5, 0.75, 1),
  k5 = equal(5), k5u = c(0.3, 0.45, 0.6, 0.8, 1)
)

# ----------------------------------------------------------------- efficacy only
tests <- list(c(alpha = 0.025, sided = 1), c(alpha = 0.05, sided = 2))
efficacy_types <- list(
  list("OF", NA), list("P", NA), list("asOF", NA), list("asP", NA),
  list("asKD", 1), list("asKD", 2), list("asKD", 3),
  list("asHSD", -4), list("asHSD", -2), list("asHSD", 1)
)
for (test in tests) {
  for (type in efficacy_types) {
    for (r in c("k2", "k3", "k4u", "k5", "k5u")) {
      for (beta in c(0.2, 0.1)) {
        if (beta == 0.1 && !(r %in% c("k3", "k4u"))) next
        id <- sprintf("%s%s_%s_a%s_s%s_b%s", type[[1]],
                      if (is.na(type[[2]])) "" else type[[2]], r, test[["alpha"]],
                      test[["sided"]], beta)
        add(id, rates_list[[r]], alpha = test[["alpha"]], sided = test[["sided"]],
            beta = beta, efficacy = type[[1]], efficacy_parameter = type[[2]])
      }
    }
  }
}

# ---------------------------------------------------------- beta-spending futility
combos <- list(
  list("asOF", NA, "bsOF", NA), list("asP", NA, "bsP", NA),
  list("asKD", 3, "bsKD", 2), list("asKD", 2, "bsKD", 3),
  list("asHSD", -4, "bsHSD", -2), list("asHSD", -2, "bsHSD", 1),
  list("asOF", NA, "bsP", NA), list("asOF", NA, "bsHSD", -4),
  list("asP", NA, "bsOF", NA), list("asHSD", 1, "bsKD", 1)
)
for (combo in combos) {
  for (r in c("k2", "k3", "k3u", "k4u", "k5")) {
    for (beta in c(0.2, 0.1)) {
      for (binding in c(FALSE, TRUE)) {
        id <- sprintf("%s%s_%s%s_%s_b%s_%s", combo[[1]],
                      if (is.na(combo[[2]])) "" else combo[[2]], combo[[3]],
                      if (is.na(combo[[4]])) "" else combo[[4]], r, beta,
                      if (binding) "binding" else "nonbinding")
        add(id, rates_list[[r]], beta = beta, efficacy = combo[[1]],
            efficacy_parameter = combo[[2]], futility = combo[[3]],
            futility_parameter = combo[[4]], binding = binding)
      }
    }
  }
}

# ------------------------------------------------------------------- futility only
# efficacy = NULL (no early efficacy stop) is computed with rpact's user-defined alpha
# spending 1e-20, 2e-20, ... at the interim looks and alpha at the last: rpact then puts the
# interim critical values at its cap 8 (reported as Inf), integrates over [futility, 8] as
# usual, and uses binding futility bounds for the last critical value. getDesignCharacteristics
# caps critical values at 7.5, so the alternative crosses them with probability up to about
# 1e-6. With binding bounds, rpact's bisection on probabilities of 1e-20 stops at a spurious
# interim critical value near 6.4 instead, crossed under the alternative with probability
# about 2e-5 (the Python tests allow for it). rpact's typeOfDesign = "noEarlyEfficacy"
# integrates up to 21.3 with its 91 grid points and misses beta by up to 6e-6 (futility
# bounds off by up to 4e-5), and ignores binding futility bounds for the last critical value.
for (futility in list(list("bsOF", NA), list("bsP", NA), list("bsKD", 2))) {
  for (r in c("k2", "k3", "k4u")) {
    for (binding in c(FALSE, TRUE)) {
      id <- sprintf("none_%s%s_%s_b0.2_%s", futility[[1]],
                    if (is.na(futility[[2]])) "" else futility[[2]], r,
                    if (binding) "binding" else "nonbinding")
      add(id, rates_list[[r]], efficacy = NA, futility = futility[[1]],
          futility_parameter = futility[[2]], binding = binding)
    }
  }
}

out <- list(
  generator = "tests/results/boundaries_rpact.R",
  rpact_version = as.character(packageVersion("rpact")),
  r_version = R.version.string,
  cases = cases
)
here <- tryCatch(dirname(normalizePath(sys.frame(1)$ofile)), error = function(e) NULL)
if (is.null(here)) {
  args <- commandArgs(trailingOnly = FALSE)
  file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
  here <- if (length(file_arg) == 1) dirname(normalizePath(file_arg)) else "tests/results"
}
# NA and Inf (critical values of 7.5 and above, which rpact reports as Inf) are written as null
write_json(out, file.path(here, "boundaries_rpact.json"), auto_unbox = TRUE, digits = NA,
           na = "null", pretty = TRUE)
cat(sprintf("wrote %d cases to %s\n", length(cases), file.path(here, "boundaries_rpact.json")))
