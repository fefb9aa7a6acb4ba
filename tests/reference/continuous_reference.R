# Reference values for tests/test_continuous.py, computed with R metafor (never with bayesmtor).
#
# Run once from the repository root:   Rscript tests/reference/continuous_reference.R
# Writes
#   tests/reference/continuous_datasets/normand1999_means.csv    package names (study,
#       mean_trt, sd_trt, n_trt, mean_ctl, sd_ctl, n_ctl)
#   tests/reference/continuous_datasets/normand1999_metafor.csv  metafor's names (study, m1i,
#       sd1i, n1i, m2i, sd2i, n2i), the same numbers
#   tests/reference/continuous_reference.json  escalc() MD and SMD per study and rma() fits of
#       both with every tau^2 estimator, each R call as a string beside its numbers.
#
# Data: dat.normand1999 (metadat, bundled with metafor; Normand 1999, Stat Med 18:321-359),
# length of hospital stay (days) of stroke patients in specialist care (group 1) and routine
# care (group 2), k = 9 trials.
#
# Conventions: escalc defaults (MD: vi = sd1^2/n1 + sd2^2/n2; SMD: Hedges' g with the exact
# correction, vtype = "LS"); iterative estimators with
# control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000, stepadj = 0.5).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script) == 1L) dirname(normalizePath(script)) else "tests/reference"
dir.create(file.path(here, "continuous_datasets"), showWarnings = FALSE)

d <- dat.normand1999
metafor_names <- data.frame(study = d$source, m1i = d$m1i, sd1i = d$sd1i, n1i = d$n1i,
                            m2i = d$m2i, sd2i = d$sd2i, n2i = d$n2i)
package_names <- data.frame(study = d$source, mean_trt = d$m1i, sd_trt = d$sd1i,
                            n_trt = d$n1i, mean_ctl = d$m2i, sd_ctl = d$sd2i, n_ctl = d$n2i)
write.csv(package_names, file.path(here, "continuous_datasets", "normand1999_means.csv"),
          row.names = FALSE)
write.csv(metafor_names, file.path(here, "continuous_datasets", "normand1999_metafor.csv"),
          row.names = FALSE)

ctrl <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000, stepadj = 0.5)
methods <- c("FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
out <- list(dataset = "dat.normand1999", metafor = as.character(packageVersion("metafor")))
for (measure in c("MD", "SMD")) {
  es <- escalc(measure = measure, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
               n2i = n2i, data = d)
  fits <- list()
  for (method in methods) {
    for (test in c("z", "knha")) {
      if (test == "knha" && method == "FE") next
      res <- rma(yi, vi, data = es, method = method, test = test, control = ctrl)
      key <- if (test == "z") method else paste0(method, "_knha")
      fits[[key]] <- list(
        call = sprintf('rma(yi, vi, method="%s", test="%s", control=ctrl)', method, test),
        estimate = as.numeric(res$b), se = res$se, ci_low = res$ci.lb, ci_high = res$ci.ub,
        stat = res$zval, pval = res$pval, tau2 = res$tau2, Q = res$QE, Q_pval = res$QEp,
        I2 = res$I2, H2 = res$H2)
    }
  }
  out[[measure]] <- list(
    escalc = list(
      call = sprintf('escalc(measure="%s", m1i, sd1i, n1i, m2i, sd2i, n2i)', measure),
      yi = as.numeric(es$yi), vi = as.numeric(es$vi)),
    rma = fits)
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(here, "continuous_reference.json"))
