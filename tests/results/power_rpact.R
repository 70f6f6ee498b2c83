# Reference values for analysis/power.py, computed with rpact.
#
# Produced with rpact 3.3.4 on R 4.2.2 (Debian package r-cran-rpact), jsonlite for output.
# Regenerate from the repository root with
#
#     Rscript tests/results/power_rpact.R
#
# which rewrites tests/results/power_rpact.json. tests/test_power.py reads that file, so the
# tests need no R. Each case records the Python function to call, its keyword arguments (in
# the Python API's names) and rpact's results under the names of the Python result's fields.
#
# Conventions mapped onto rpact: group 1 is the experimental arm (lambda1 = hazardRatio *
# lambda2; pi1 and alternative refer to it), allocation_ratio = allocationRatioPlanned =
# n1 / n2; one-sided power is computed in the direction of the effect
# (directionUpper = effect > null); dropout_rate = c(dropoutRate1, dropoutRate2).

suppressPackageStartupMessages({
  library(rpact)
  library(jsonlite)
})

cases <- list()
add <- function(id, fun, inputs, outputs) {
  cases[[length(cases) + 1]] <<- list(id = id, `function` = fun, inputs = inputs,
                                      outputs = outputs)
}
tail1 <- function(x) x[length(x)]
# rpact's default directionUpper is TRUE; give it for one-sided tests only (it warns otherwise)
direction <- function(upper, sided) if (sided == 1) upper else NA

# ---------------------------------------------------------------------------- events
# getSampleSizeSurvival's eventsFixed does not depend on accrual or hazards.
tests <- list(c(alpha = 0.025, sided = 1), c(alpha = 0.05, sided = 2), c(alpha = 0.01, sided = 1))
for (method in c("Schoenfeld", "Freedman")) {
  for (hr in c(0.5, 0.7, 1.25)) {
    for (test in tests) {
      for (power in c(0.8, 0.9)) {
        for (r in c(1, 2, 0.5)) {
          x <- getSampleSizeSurvival(alpha = test[["alpha"]], sided = test[["sided"]],
                                     beta = 1 - power, hazardRatio = hr, lambda2 = log(2) / 12,
                                     allocationRatioPlanned = r,
                                     typeOfComputation = method)
          add(sprintf("%s_events_hr%s_a%s_s%s_p%s_r%s", tolower(method), hr,
                      test[["alpha"]], test[["sided"]], power, r),
              paste0(tolower(method), "_events"),
              list(hazard_ratio = hr, alpha = test[["alpha"]], power = power,
                   allocation_ratio = r, sided = as.integer(test[["sided"]])),
              list(events = x$eventsFixed))
        }
      }
    }
  }
}

# ---------------------------------------------------------------------- log-rank power
for (method in c("Schoenfeld", "Freedman")) {
  for (events in c(100, 250)) {
    for (hr in c(0.6, 0.75, 1.3)) {
      for (test in tests[1:2]) {
        for (r in c(1, 2)) {
          x <- getPowerSurvival(alpha = test[["alpha"]], sided = test[["sided"]],
                                maxNumberOfEvents = events, maxNumberOfSubjects = 2000,
                                hazardRatio = hr, lambda2 = log(2) / 12,
                                directionUpper = direction(hr > 1, test[["sided"]]),
                                allocationRatioPlanned = r,
                                typeOfComputation = method)
          add(sprintf("logrank_power_%s_d%s_hr%s_a%s_s%s_r%s", tolower(method), events, hr,
                      test[["alpha"]], test[["sided"]], r),
              "logrank_power",
              list(events = events, hazard_ratio = hr, alpha = test[["alpha"]],
                   allocation_ratio = r, sided = as.integer(test[["sided"]]),
                   method = tolower(method)),
              list(power = x$overallReject))
        }
      }
    }
  }
}

# ------------------------------------------------------- survival designs: sample size
# Each design: Python keyword arguments and the matching rpact call.
survival_outputs <- function(x) {
  list(events = x$eventsFixed, n_patients = x$maxNumberOfSubjects,
       n_experimental = x$nFixed1, n_control = x$nFixed2,
       study_duration = x$analysisTime[1, 1], follow_up = x$followUpTime,
       accrual_duration = tail1(x$accrualTime))
}

# 1. median 12 months, HR 0.7, 600 patients over 24 months, 5% dropout a year, power 0.9
x <- getSampleSizeSurvival(alpha = 0.025, beta = 0.1, lambda2 = log(2) / 12, hazardRatio = 0.7,
                           accrualTime = c(0, 24), maxNumberOfSubjects = 600,
                           dropoutRate1 = 0.05, dropoutRate2 = 0.05, dropoutTime = 12)
add("survival_n600_accrual24_dropout5", "survival_sample_size",
    list(hazard_ratio = 0.7, control_median = 12, accrual_time = I(c(0, 24)),
         n_patients = 600, dropout_rate = 0.05, dropout_time = 12, alpha = 0.025,
         power = 0.9),
    survival_outputs(x))

# 2. the same with an absolute accrual intensity of 30 a month (720 patients)
x <- getSampleSizeSurvival(alpha = 0.025, beta = 0.1, lambda2 = log(2) / 12, hazardRatio = 0.7,
                           accrualTime = c(0, 24), accrualIntensity = 30,
                           dropoutRate1 = 0.05, dropoutRate2 = 0.05, dropoutTime = 12)
add("survival_intensity30_accrual24_dropout5", "survival_sample_size",
    list(hazard_ratio = 0.7, control_median = 12, accrual_time = I(c(0, 24)),
         accrual_intensity = I(30), dropout_rate = 0.05, dropout_time = 12, alpha = 0.025,
         power = 0.9),
    survival_outputs(x))

# 3. uniform accrual over 24 months, 12 months of follow-up: solve for the patients
x <- getSampleSizeSurvival(alpha = 0.025, beta = 0.1, lambda2 = log(2) / 12, hazardRatio = 0.7,
                           accrualTime = c(0, 24), followUpTime = 12,
                           dropoutRate1 = 0.05, dropoutRate2 = 0.05, dropoutTime = 12)
add("survival_followup12_accrual24_dropout5", "survival_sample_size",
    list(hazard_ratio = 0.7, control_median = 12, accrual_time = I(c(0, 24)),
         follow_up = 12, dropout_rate = 0.05, dropout_time = 12, alpha = 0.025,
         power = 0.9),
    survival_outputs(x))

# 4. piecewise relative accrual (half speed for 6 months), 12 months of follow-up
x <- getSampleSizeSurvival(alpha = 0.025, beta = 0.1, lambda2 = log(2) / 12, hazardRatio = 0.7,
                           accrualTime = c(0, 6, 24), accrualIntensity = c(0.5, 1),
                           accrualIntensityType = "relative", followUpTime = 12)
add("survival_piecewise_relative_followup12", "survival_sample_size",
    list(hazard_ratio = 0.7, control_median = 12, accrual_time = I(c(0, 6, 24)),
         accrual_intensity = I(c(0.5, 1)), accrual_intensity_type = "relative",
         follow_up = 12, alpha = 0.025, power = 0.9),
    survival_outputs(x))

# 5. piecewise absolute accrual 10/month then 30/month open-ended, 12 months follow-up:
#    solve for the end of accrual (rpact bisects on the patients to precision 1e-4)
x <- getSampleSizeSurvival(alpha = 0.025, beta = 0.1, lambda2 = log(2) / 12, hazardRatio = 0.7,
                           accrualTime = c(0, 6), accrualIntensity = c(10, 30),
                           followUpTime = 12, dropoutRate1 = 0.05, dropoutRate2 = 0.05,
                           dropoutTime = 12)
add("survival_piecewise_open_followup12_dropout5", "survival_sample_size",
    list(hazard_ratio = 0.7, control_median = 12, accrual_time = I(c(0, 6)),
         accrual_intensity = I(c(10, 30)), follow_up = 12, dropout_rate = 0.05,
         dropout_time = 12, alpha = 0.025, power = 0.9),
    survival_outputs(x))

# 6. the same accrual with 600 patients (accrual ends at 24 months): solve for the duration
x <- getSampleSizeSurvival(alpha = 0.025, beta = 0.1, lambda2 = log(2) / 12, hazardRatio = 0.7,
                           accrualTime = c(0, 6), accrualIntensity = c(10, 30),
                           maxNumberOfSubjects = 600)
add("survival_piecewise_open_n600", "survival_sample_size",
    list(hazard_ratio = 0.7, control_median = 12, accrual_time = I(c(0, 6)),
         accrual_intensity = I(c(10, 30)), n_patients = 600, alpha = 0.025, power = 0.9),
    survival_outputs(x))

# 7. 2:1 allocation, Freedman, two-sided 5%, control hazard 0.1, unequal dropout, open-ended
#    single-rate accrual of 20 a month, 18 months of follow-up
x <- getSampleSizeSurvival(alpha = 0.05, sided = 2, beta = 0.2, lambda2 = 0.1, hazardRatio = 0.65,
                           allocationRatioPlanned = 2, typeOfComputation = "Freedman",
                           accrualTime = 0, accrualIntensity = 20, followUpTime = 18,
                           dropoutRate1 = 0.1, dropoutRate2 = 0.05, dropoutTime = 12)
add("survival_freedman_2to1_twosided_open_followup18", "survival_sample_size",
    list(hazard_ratio = 0.65, control_hazard = 0.1, accrual_time = I(0),
         accrual_intensity = I(20), follow_up = 18, dropout_rate = I(c(0.1, 0.05)),
         dropout_time = 12, alpha = 0.05, sided = 2L, power = 0.8, allocation_ratio = 2,
         method = "freedman"),
    survival_outputs(x))

# 8. many patients: the events are reached before accrual ends (negative follow-up)
x <- suppressWarnings(  # rpact warns that accrual outlasts the study, as intended here
  getSampleSizeSurvival(alpha = 0.025, beta = 0.1, lambda2 = log(2) / 12, hazardRatio = 0.7,
                        accrualTime = c(0, 24), maxNumberOfSubjects = 2000))
add("survival_n2000_events_before_end_of_accrual", "survival_sample_size",
    list(hazard_ratio = 0.7, control_median = 12, accrual_time = I(c(0, 24)),
         n_patients = 2000, alpha = 0.025, power = 0.9),
    survival_outputs(x))

# 9. harmful effect (HR 1.4), 1:2 allocation, 12-month dropout time 6, relative ramp-up
x <- getSampleSizeSurvival(alpha = 0.025, beta = 0.2, median2 = 24, hazardRatio = 1.4,
                           allocationRatioPlanned = 0.5,
                           accrualTime = c(0, 3, 6, 18), accrualIntensity = c(0.2, 0.6, 1),
                           accrualIntensityType = "relative", followUpTime = 24,
                           dropoutRate1 = 0.08, dropoutRate2 = 0.08, dropoutTime = 6)
add("survival_hr1.4_ramp_relative_followup24", "survival_sample_size",
    list(hazard_ratio = 1.4, control_median = 24, accrual_time = I(c(0, 3, 6, 18)),
         accrual_intensity = I(c(0.2, 0.6, 1)), accrual_intensity_type = "relative",
         follow_up = 24, dropout_rate = 0.08, dropout_time = 6, alpha = 0.025, power = 0.8,
         allocation_ratio = 0.5),
    survival_outputs(x))

# ------------------------------------------------------------- survival designs: power
power_outputs <- function(x) {
  list(power = x$overallReject, study_duration = x$analysisTime[1, 1],
       follow_up = x$followUpTime, n_enrolled = x$numberOfSubjects[1, 1],
       n_patients = x$maxNumberOfSubjects, accrual_duration = tail1(x$accrualTime))
}

x <- getPowerSurvival(alpha = 0.025, lambda2 = log(2) / 12, hazardRatio = 0.7,
                      directionUpper = FALSE, accrualTime = c(0, 24),
                      maxNumberOfSubjects = 600, maxNumberOfEvents = 300,
                      dropoutRate1 = 0.05, dropoutRate2 = 0.05, dropoutTime = 12)
add("survival_power_d300_n600_dropout5", "survival_power",
    list(events = 300, hazard_ratio = 0.7, control_median = 12, accrual_time = I(c(0, 24)),
         n_patients = 600, dropout_rate = 0.05, dropout_time = 12, alpha = 0.025),
    power_outputs(x))

x <- getPowerSurvival(alpha = 0.025, lambda2 = log(2) / 12, hazardRatio = 1.3,
                      directionUpper = TRUE, accrualTime = c(0, 6), accrualIntensity = c(10, 30),
                      maxNumberOfSubjects = 600, maxNumberOfEvents = 350,
                      allocationRatioPlanned = 2, typeOfComputation = "Freedman")
add("survival_power_hr1.3_piecewise_open_freedman", "survival_power",
    list(events = 350, hazard_ratio = 1.3, control_median = 12, accrual_time = I(c(0, 6)),
         accrual_intensity = I(c(10, 30)), n_patients = 600, alpha = 0.025,
         allocation_ratio = 2, method = "freedman"),
    power_outputs(x))

x <- getPowerSurvival(alpha = 0.05, sided = 2, lambda2 = 0.05, hazardRatio = 0.75,
                      accrualTime = c(0, 12, 30), accrualIntensity = c(15, 25),
                      maxNumberOfEvents = 200, dropoutRate1 = 0.1, dropoutRate2 = 0.02,
                      dropoutTime = 12)
add("survival_power_twosided_piecewise_absolute_events_during_accrual", "survival_power",
    list(events = 200, hazard_ratio = 0.75, control_hazard = 0.05,
         accrual_time = I(c(0, 12, 30)), accrual_intensity = I(c(15, 25)), alpha = 0.05,
         sided = 2L, dropout_rate = I(c(0.1, 0.02)), dropout_time = 12),
    power_outputs(x))

x <- getPowerSurvival(alpha = 0.025, lambda2 = log(2) / 6, hazardRatio = 0.6,
                      directionUpper = FALSE, accrualTime = c(0, 18),
                      maxNumberOfSubjects = 400, maxNumberOfEvents = 320,
                      dropoutRate1 = 0.1, dropoutRate2 = 0.1, dropoutTime = 12)
add("survival_power_high_event_fraction", "survival_power",
    list(events = 320, hazard_ratio = 0.6, control_median = 6, accrual_time = I(c(0, 18)),
         n_patients = 400, dropout_rate = 0.1, dropout_time = 12, alpha = 0.025),
    power_outputs(x))

# ---------------------------------------------------------------- expected events
times <- c(3, 6, 12, 24, 36, 60)
e <- getEventProbabilities(time = times, accrualTime = c(0, 6, 24), accrualIntensity = c(10, 30),
                           lambda2 = log(2) / 12, hazardRatio = 0.7, dropoutRate1 = 0.05,
                           dropoutRate2 = 0.1, dropoutTime = 12, allocationRatioPlanned = 2)
n <- e$maxNumberOfSubjects
for (i in seq_along(times)) {
  add(sprintf("expected_events_t%s", times[i]), "expected_events",
      list(time = times[i], hazard_ratio = 0.7, control_median = 12,
           accrual_time = I(c(0, 6, 24)), accrual_intensity = I(c(10, 30)),
           dropout_rate = I(c(0.05, 0.1)), dropout_time = 12, allocation_ratio = 2),
      list(events = n * e$cumulativeEventProbabilities[i],
           events_experimental = n * 2 / 3 * e$eventProbabilities1[i],
           events_control = n / 3 * e$eventProbabilities2[i]))
}

# ------------------------------------------------------------------------- means
for (normal in c(TRUE, FALSE)) {
  for (effect in list(c(difference = 1, sd = 3, null = 0), c(difference = -0.5, sd = 1, null = 0),
                      c(difference = 0, sd = 2, null = -0.8))) {
    for (test in tests[1:2]) {
      if (effect[["null"]] != 0 && test[["sided"]] == 2) next
      for (r in c(1, 2)) {
        for (power in c(0.8, 0.9)) {
          # rpact refuses a one-sided sample size for an effect below thetaH0 (symmetric)
          if (test[["sided"]] == 1 && effect[["difference"]] < effect[["null"]]) next
          x <- getSampleSizeMeans(alpha = test[["alpha"]], sided = test[["sided"]],
                                  beta = 1 - power, alternative = effect[["difference"]],
                                  stDev = effect[["sd"]], thetaH0 = effect[["null"]],
                                  allocationRatioPlanned = r, normalApproximation = normal)
          inputs <- list(difference = effect[["difference"]], sd = effect[["sd"]],
                         alpha = test[["alpha"]], power = power, allocation_ratio = r,
                         sided = as.integer(test[["sided"]]),
                         null_difference = effect[["null"]], normal_approximation = normal)
          add(sprintf("means_n_%s_d%s_sd%s_null%s_a%s_s%s_r%s_p%s",
                      ifelse(normal, "z", "t"), effect[["difference"]], effect[["sd"]],
                      effect[["null"]], test[["alpha"]], test[["sided"]], r, power),
              "means_sample_size", inputs,
              list(n_patients = x$nFixed, n_experimental = x$nFixed1,
                   n_control = x$nFixed2))
        }
        for (n in c(60, 250)) {
          x <- getPowerMeans(alpha = test[["alpha"]], sided = test[["sided"]],
                             alternative = effect[["difference"]], stDev = effect[["sd"]],
                             thetaH0 = effect[["null"]], maxNumberOfSubjects = n,
                             directionUpper = direction(effect[["difference"]] > effect[["null"]],
                                                        test[["sided"]]),
                             allocationRatioPlanned = r, normalApproximation = normal)
          add(sprintf("means_power_%s_d%s_sd%s_null%s_a%s_s%s_r%s_n%s",
                      ifelse(normal, "z", "t"), effect[["difference"]], effect[["sd"]],
                      effect[["null"]], test[["alpha"]], test[["sided"]], r, n),
              "means_power",
              list(difference = effect[["difference"]], sd = effect[["sd"]], n_patients = n,
                   alpha = test[["alpha"]], allocation_ratio = r,
                   sided = as.integer(test[["sided"]]), null_difference = effect[["null"]],
                   normal_approximation = normal),
              list(power = x$overallReject))
        }
      }
    }
  }
}

# ------------------------------------------------------------------------- rates
for (effect in list(c(p_control = 0.3, p_experimental = 0.45, null = 0),
                    c(p_control = 0.2, p_experimental = 0.1, null = 0),
                    c(p_control = 0.6, p_experimental = 0.6, null = -0.1),
                    c(p_control = 0.15, p_experimental = 0.2, null = 0.1))) {
  for (test in tests[1:2]) {
    if (effect[["null"]] != 0 && test[["sided"]] == 2) next
    for (r in c(1, 2, 0.5)) {
      for (power in c(0.8, 0.9)) {
        x <- getSampleSizeRates(alpha = test[["alpha"]], sided = test[["sided"]],
                                beta = 1 - power, pi1 = effect[["p_experimental"]],
                                pi2 = effect[["p_control"]], thetaH0 = effect[["null"]],
                                allocationRatioPlanned = r)
        add(sprintf("rates_n_pc%s_pe%s_null%s_a%s_s%s_r%s_p%s", effect[["p_control"]],
                    effect[["p_experimental"]], effect[["null"]], test[["alpha"]],
                    test[["sided"]], r, power),
            "proportions_sample_size",
            list(p_control = effect[["p_control"]], p_experimental = effect[["p_experimental"]],
                 alpha = test[["alpha"]], power = power, allocation_ratio = r,
                 sided = as.integer(test[["sided"]]), null_difference = effect[["null"]]),
            list(n_patients = x$nFixed, n_experimental = x$nFixed1, n_control = x$nFixed2))
      }
      for (n in c(100, 400)) {
        x <- getPowerRates(alpha = test[["alpha"]], sided = test[["sided"]],
                           pi1 = effect[["p_experimental"]], pi2 = effect[["p_control"]],
                           thetaH0 = effect[["null"]], maxNumberOfSubjects = n,
                           directionUpper = direction(effect[["p_experimental"]] -
                                                        effect[["p_control"]] > effect[["null"]],
                                                      test[["sided"]]),
                           allocationRatioPlanned = r)
        add(sprintf("rates_power_pc%s_pe%s_null%s_a%s_s%s_r%s_n%s", effect[["p_control"]],
                    effect[["p_experimental"]], effect[["null"]], test[["alpha"]],
                    test[["sided"]], r, n),
            "proportions_power",
            list(p_control = effect[["p_control"]], p_experimental = effect[["p_experimental"]],
                 n_patients = n, alpha = test[["alpha"]], allocation_ratio = r,
                 sided = as.integer(test[["sided"]]), null_difference = effect[["null"]]),
            list(power = x$overallReject))
      }
    }
  }
}

out <- list(
  generator = "tests/results/power_rpact.R",
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
write_json(out, file.path(here, "power_rpact.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE)
cat(sprintf("wrote %d cases to %s\n", length(cases), file.path(here, "power_rpact.json")))
