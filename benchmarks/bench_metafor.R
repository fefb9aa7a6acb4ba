# Timing of R metafor's rma() in a loop, for comparison with benchmarks/bench_frequentist.py.
#
# Usage:  python benchmarks/bench_frequentist.py          # writes /tmp/bayesmtor_bench.csv
#         Rscript benchmarks/bench_metafor.R [/tmp/bayesmtor_bench.csv] [n_meta]
#
# Fits rma(yi, sei=sei, method=...) to each meta-analysis of the file (the same simulated data
# the Python benchmark pools), with metafor's default control settings, and prints the time per
# meta-analysis. A Q-profile CI for tau^2 (confint) is timed separately on a subset, because
# bayesmtor computes it for every fit while rma() alone does not.

suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) >= 1) args[1] else "/tmp/bayesmtor_bench.csv"
d <- read.csv(path)
n_meta <- if (length(args) >= 2) as.integer(args[2]) else length(unique(d$meta))
groups <- split(d[, c("yi", "sei")], d$meta)[seq_len(n_meta)]
cat(sprintf("metafor %s, %s: %d meta-analyses from %s\n",
            as.character(packageVersion("metafor")), R.version.string, n_meta, path))

for (method in c("REML", "DL")) {
  invisible(rma(groups[[1]]$yi, sei = groups[[1]]$sei, method = method))  # warm-up
  # try(): metafor's Fisher scoring occasionally fails to converge on simulated data
  fails <- 0L
  st <- system.time(for (g in groups) {
    fit <- try(rma(g$yi, sei = g$sei, method = method), silent = TRUE)
    if (inherits(fit, "try-error")) fails <- fails + 1L
  })
  t <- st[["elapsed"]]
  cpu <- st[["user.self"]] + st[["sys.self"]]
  n_ci <- min(1000L, n_meta)
  t_ci <- system.time(for (g in groups[seq_len(n_ci)])
    try(confint(rma(g$yi, sei = g$sei, method = method)), silent = TRUE))[["elapsed"]]
  cat(sprintf(paste("%4s: rma() loop %7.2f s wall (%7.2f s CPU) = %6.3f ms per meta-analysis",
                    "(%d fits failed) | rma()+confint() %6.3f ms\n"),
              method, t, cpu, 1e3 * t / n_meta, fails, 1e3 * t_ci / n_ci))
}
