# Reference operating characteristics from rpact's simulation of the benchmark's
# reference design (bench/reference_design.yaml): 600 patients 1:1, exponential control
# median 12 months, hazard ratio 0.7 (and 1.0), uniform accrual over 24 months, dropout
# 5 % per year in both arms, log-rank test at 390 events, one-sided alpha 0.025.
#
# Produced with R 4.x and rpact 3.3.4 (Debian package r-cran-rpact). Regenerate with
#   Rscript tests/results/simulation_rpact.R > tests/results/simulation_rpact.csv
suppressMessages(library(rpact))
design <- getDesignGroupSequential(kMax = 1, alpha = 0.025, sided = 1)
n_iter <- 100000
cat("hazard_ratio,n_replicates,reject_rate,analysis_time_mean,events_mean,rpact_version\n")
for (hr in c(0.7, 1.0)) {
  sim <- getSimulationSurvival(design,
    lambda2 = log(2) / 12, hazardRatio = hr,
    dropoutRate1 = 0.05, dropoutRate2 = 0.05, dropoutTime = 12,
    accrualTime = c(0, 24), maxNumberOfSubjects = 600, plannedEvents = 390,
    directionUpper = FALSE, maxNumberOfIterations = n_iter, seed = 20261123
  )
  cat(sprintf("%.2f,%d,%.6f,%.6f,%.2f,%s\n", hr, n_iter, sim$overallReject,
    sim$analysisTime[1], sim$expectedNumberOfEvents, as.character(packageVersion("rpact"))))
}
