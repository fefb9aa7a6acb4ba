# Reference study weights (percent) for tests/test_result_plots.py, computed with R metafor's
# weights(): the weight column of the forest plots.
#
# Run once from the repository root:   Rscript tests/reference/weights_reference.R
# Reads tests/reference/datasets/*.csv (written by escalc_reference.R from metadat) and writes
# tests/reference/weights_reference.json (every R call as a string next to its numbers).
#
# Conventions matched by bayesmtor (see frequentist.api):
#   * inverse-variance fits on escalc(add=1/2, to="only0", drop00=TRUE) effects (RevMan 5 rule);
#   * MH "revman": rma.mh(add=c(1/2,1/2), to=c("only0","only0"), drop00=c(TRUE,TRUE));
#     MH "none": rma.mh() defaults; Peto: rma.peto() defaults (double-zero tables dropped).
# Weights of studies metafor drops are NA and are written as null.

suppressPackageStartupMessages(library(metafor))
library(jsonlite)

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
ctl <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000, stepadj = 0.5)

out <- list()
add <- function(name, call, dat) {
  fit <- eval(parse(text = call))
  w <- as.numeric(weights(fit))
  out[[name]] <<- list(call = call, weights = w, study = as.character(dat$study))
}

for (ds in c("bcg", "nielweise2007", "yusuf1985")) {
  dat <- read.csv(file.path(here, "datasets", paste0(ds, ".csv")), check.names = FALSE)
  for (m in c("RR", "OR")) {
    esc <- sprintf("escalc(measure='%s', ai=events_trt, n1i=n_trt, ci=events_ctl, n2i=n_ctl, data=dat, add=1/2, to='only0', drop00=TRUE)", m)
    add(sprintf("%s_%s_REML", ds, m),
        sprintf("rma(yi, vi, data=%s, method='REML', control=ctl)", esc), dat)
    add(sprintf("%s_%s_FE", ds, m), sprintf("rma(yi, vi, data=%s, method='FE')", esc), dat)
    add(sprintf("%s_%s_DL", ds, m), sprintf("rma(yi, vi, data=%s, method='DL')", esc), dat)
    add(sprintf("%s_%s_MH_revman", ds, m),
        sprintf("rma.mh(ai=events_trt, n1i=n_trt, ci=events_ctl, n2i=n_ctl, data=dat, measure='%s', add=c(1/2,1/2), to=c('only0','only0'), drop00=c(TRUE,TRUE))", m), dat)
    add(sprintf("%s_%s_MH_none", ds, m),
        sprintf("rma.mh(ai=events_trt, n1i=n_trt, ci=events_ctl, n2i=n_ctl, data=dat, measure='%s')", m), dat)
  }
  add(sprintf("%s_RD_MH_none", ds),
      "rma.mh(ai=events_trt, n1i=n_trt, ci=events_ctl, n2i=n_ctl, data=dat, measure='RD')", dat)
  add(sprintf("%s_OR_PETO", ds),
      "rma.peto(ai=events_trt, n1i=n_trt, ci=events_ctl, n2i=n_ctl, data=dat)", dat)
}
out[["_meta"]] <- list(metafor = as.character(packageVersion("metafor")), R = R.version.string)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE),
           file.path(here, "weights_reference.json"))
