# Reference operating characteristics from rpact's simulation of the three-look
# group-sequential version of the reference design (bench/reference_design.yaml with
# looks at 1/3, 2/3 and 1 of 390 events): Lan-DeMets O'Brien-Fleming-type alpha spending,
# one-sided alpha 0.025, without futility ("asOF") and with non-binding O'Brien-Fleming
# type beta spending for beta 0.1 ("asOF_bsOF").
#
# Produced with rpact 3.3.4 (Debian package r-cran-rpact). Regenerate with
#   Rscript tests/results/simulation_gsd_rpact.R > tests/results/simulation_gsd_rpact.csv
suppressMessages(library(rpact))
n_iter <- 100000
cat("design,hazard_ratio,n_replicates,reject_rate,expected_events,stop_1,stop_2,futility_1,futility_2\n")
designs <- list(
  asOF = getDesignGroupSequential(kMax = 3, alpha = 0.025, sided = 1,
    informationRates = c(1 / 3, 2 / 3, 1), typeOfDesign = "asOF"),
  asOF_bsOF = getDesignGroupSequential(kMax = 3, alpha = 0.025, beta = 0.1, sided = 1,
    informationRates = c(1 / 3, 2 / 3, 1), typeOfDesign = "asOF",
    typeBetaSpending = "bsOF", bindingFutility = FALSE)
)
for (name in names(designs)) {
  for (hr in c(0.7, 1.0)) {
    sim <- getSimulationSurvival(designs[[name]],
      lambda2 = log(2) / 12, hazardRatio = hr,
      dropoutRate1 = 0.05, dropoutRate2 = 0.05, dropoutTime = 12,
      accrualTime = c(0, 24), maxNumberOfSubjects = 600,
      plannedEvents = c(130, 260, 390), directionUpper = FALSE,
      maxNumberOfIterations = n_iter, seed = 20261123
    )
    futility <- sim$futilityPerStage
    if (is.null(futility) || length(futility) == 0) futility <- c(0, 0)
    cat(sprintf("%s,%.2f,%d,%.6f,%.4f,%.6f,%.6f,%.6f,%.6f\n", name, hr, n_iter,
      sim$overallReject, sim$expectedNumberOfEvents,
      sim$rejectPerStage[1], sim$rejectPerStage[2], futility[1], futility[2]))
  }
}
