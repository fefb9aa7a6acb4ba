# Reference values for tests/test_frequentist_breadth.py, computed with R metafor.
#
# Run once from the repository root:   Rscript tests/reference/breadth_reference.R
# Writes tests/reference/breadth_datasets/*.csv (the data exactly as analysed, in every file
# shape the tests read) and tests/reference/breadth_reference.json (each R call as a string
# next to its numbers).
#
# Datasets (bundled with metafor via the metadat package):
#   bcg        BCG vaccine trials (dat.bcg; Colditz et al. 1994, JAMA 271:698), 13 trials:
#              counts as events/n, as metafor's cells ai, bi, ci, di and as ai, n1i, ci, n2i;
#              subgroups by allocation, cumulative by year (1977 appears twice).
#   bcg_full   dat.bcg plus one invented-for-the-test-only table with events in every
#              participant of both arms (40/40 vs 40/40), named "All events (test table)": it
#              checks how rma.mh() treats such a table; it is not data of any trial.
#   hackshaw   Environmental tobacco smoke and lung cancer (dat.hackshaw1998; Hackshaw et al.
#              1997, BMJ 315:980), 37 log odds ratios: small-study tests, cumulative by year
#              (many tied years).
#   normand    Stroke care, length of stay (dat.normand1999; Normand 1999, Stat Med 18:321),
#              k = 9 mean differences, given to bayesmtor as yi, sei (escalc(measure="MD")).
#   bcg_k2     The first two trials of dat.bcg (k = 2).
#
# Tight convergence everywhere: control=list(threshold=1e-13, tol=1e-13, maxiter=10000,
# stepadj=0.5) for the fits; confint(res, control=list(tol=1e-13, maxiter=10000,
# tau2.max=1e5)) so that metafor's default search limit max(100, 10 tau2) cannot cut the upper
# Q-profile bound.
#
# Conventions (as in tests/reference/rma_reference.R):
#   * study yi/vi of counts: escalc(add=1/2, to="only0", drop00=TRUE).
#   * prediction interval "z": predict(res) (metafor), "t": b +/- qt(0.975, k-2) sqrt(tau2+se^2).
#   * subgroup Q-based I2 = max(0, (QE - df)/QE) * 100 from each level's QE.

suppressPackageStartupMessages(library(metafor))
library(jsonlite)

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
dsdir <- file.path(here, "breadth_datasets")
dir.create(dsdir, showWarnings = FALSE)

ctrl <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000, stepadj = 0.5)
ctrl_ci <- list(tol = 1e-13, maxiter = 10000, tau2.max = 1e5)
num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else unname(as.numeric(x))
refs <- list()
add_ref <- function(id, call, values) refs[[id]] <<- list(call = call, values = values)

bcg <- with(dat.bcg, data.frame(
  study = paste(author, year), year = year, alloc = as.character(alloc),
  events_trt = tpos, n_trt = tpos + tneg, events_ctl = cpos, n_ctl = cpos + cneg))
bcg_cells <- with(dat.bcg, data.frame(
  study = paste(author, year), year = year, alloc = as.character(alloc),
  ai = tpos, bi = tneg, ci = cpos, di = cneg))
bcg_n <- with(dat.bcg, data.frame(
  study = paste(author, year), year = year, alloc = as.character(alloc),
  ai = tpos, n1i = tpos + tneg, ci = cpos, n2i = cpos + cneg))
write.csv(bcg, file.path(dsdir, "bcg.csv"), row.names = FALSE)
write.csv(bcg_cells, file.path(dsdir, "bcg_cells.csv"), row.names = FALSE)
write.csv(bcg_n, file.path(dsdir, "bcg_n.csv"), row.names = FALSE)
write.table(bcg, file.path(dsdir, "bcg_semicolon.csv"), sep = ";", row.names = FALSE)
write.table(bcg, file.path(dsdir, "bcg_tab.csv"), sep = "\t", row.names = FALSE)

full <- rbind(bcg, data.frame(study = "All events (test table)", year = 2000, alloc = "random",
                              events_trt = 40, n_trt = 40, events_ctl = 40, n_ctl = 40))
write.csv(full, file.path(dsdir, "bcg_full.csv"), row.names = FALSE)

hack <- with(dat.hackshaw1998, data.frame(
  study = paste(author, year), year = year, yi = yi, sei = sqrt(vi)))
write.csv(hack, file.path(dsdir, "hackshaw.csv"), row.names = FALSE)

nm <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
             n2i = n2i, data = dat.normand1999)
normand <- data.frame(study = as.character(dat.normand1999$source), yi = num(nm$yi),
                      sei = sqrt(num(nm$vi)))
write.csv(normand, file.path(dsdir, "normand.csv"), row.names = FALSE)

k2 <- bcg[1:2, ]
write.csv(k2, file.path(dsdir, "bcg_k2.csv"), row.names = FALSE)

fit_values <- function(res) {
  k <- res$k
  out <- list(k = k, estimate = num(res$beta), se = num(res$se), ci_low = num(res$ci.lb),
              ci_high = num(res$ci.ub), pval = num(res$pval), Q = num(res$QE),
              Q_pval = num(res$QEp), tau2 = num(res$tau2), I2_tau = num(res$I2),
              H2_tau = num(res$H2), tau2_se = num(res$se.tau2))
  ci <- confint(res, control = ctrl_ci)$random
  for (row in c("tau^2", "tau", "I^2(%)", "H^2")) {
    key <- c("tau^2" = "tau2", "tau" = "tau", "I^2(%)" = "I2", "H^2" = "H2")[[row]]
    out[[paste0(key, "_ci_low")]] <- num(ci[row, "ci.lb"])
    out[[paste0(key, "_ci_high")]] <- num(ci[row, "ci.ub"])
  }
  pr <- predict(res)
  out$pi_low_z <- num(pr$pi.lb)
  out$pi_high_z <- num(pr$pi.ub)
  if (k >= 3) {
    half <- qt(0.975, k - 2) * sqrt(res$tau2 + res$se^2)
    out$pi_low_t <- num(res$beta) - half
    out$pi_high_t <- num(res$beta) + half
  }
  out
}

cum_values <- function(cu, yi = NULL, vi = NULL, ord = NULL, method = "") {
  out <- list(added = as.character(cu$slab), k = seq_along(cu$estimate),
              estimate = num(cu$estimate), ci_low = num(cu$ci.lb), ci_high = num(cu$ci.ub),
              tau2 = num(cu$tau2))
  if (!(method %in% c("ML", "REML"))) return(out)
  # Independent check of each step: the global maximum of the (restricted) log-likelihood by
  # optimize() on a fine grid's best interval, then rma() with tau2 fixed there. Fisher
  # scoring (inside cumul) can stop at a lower stationary point (tau2 ~ 0).
  idx <- order(ord)
  g <- list(estimate = c(), ci_low = c(), ci_high = c(), tau2 = c(), loglik_gain = c())
  for (j in seq_along(idx)) {
    y <- yi[idx[1:j]]; v <- vi[idx[1:j]]
    if (j < 2) {
      r <- rma(y, v, method = "FE")
      g$tau2 <- c(g$tau2, NA); g$loglik_gain <- c(g$loglik_gain, NA)
    } else {
      ll <- function(t) {
        w <- 1 / (v + t); mu <- sum(w * y) / sum(w)
        out <- -0.5 * sum(log(v + t)) - 0.5 * sum(w * (y - mu)^2)
        if (method == "REML") out <- out - 0.5 * log(sum(w))
        out
      }
      up <- 10 * max(var(y), 1e-8)
      grid <- c(0, up * 10^seq(-8, 0, length.out = 400))
      best <- which.max(sapply(grid, ll))
      lo <- grid[max(best - 1, 1)]; hi <- grid[min(best + 1, length(grid))]
      t <- if (best == 1 && ll(0) >= ll(grid[2])) 0 else
        optimize(ll, c(lo, hi), maximum = TRUE, tol = 1e-14)$maximum
      r <- rma(y, v, tau2 = t, method = method)
      g$tau2 <- c(g$tau2, t)
      g$loglik_gain <- c(g$loglik_gain, ll(t) - ll(num(cu$tau2)[j]))
    }
    g$estimate <- c(g$estimate, num(r$beta)); g$ci_low <- c(g$ci_low, num(r$ci.lb))
    g$ci_high <- c(g$ci_high, num(r$ci.ub))
  }
  out$global <- g
  out
}
loo_values <- function(l1) {
  list(omitted = as.character(l1$slab), estimate = num(l1$estimate), se = num(l1$se),
       ci_low = num(l1$ci.lb), ci_high = num(l1$ci.ub), tau2 = num(l1$tau2),
       I2 = num(l1$I2), Q = num(l1$Q))
}
bias_values <- function(res) {
  rg <- regtest(res, model = "lm", predictor = "sei")
  rk <- ranktest(res)
  list(intercept = num(rg$fit$coefficients[2]),
       se = num(summary(rg$fit)$coefficients[2, 2]), stat = num(rg$zval),
       df = num(rg$dfs), pval = num(rg$pval), begg_tau = num(rk$tau), begg_pval = num(rk$pval))
}
bias_call <- 'regtest(res, model="lm", predictor="sei"); ranktest(res)'
methods <- c("DL", "REML", "HS", "EB", "ML")

# ---- bcg: RR and OR, every method; subgroups by alloc; cumulative by year; leave-one-out
for (ms in c("RR", "OR")) {
  es <- escalc(measure = ms, ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl,
               data = bcg, add = 1/2, to = "only0", drop00 = TRUE, slab = study)
  for (mt in methods) {
    res <- rma(yi, vi, data = es, method = mt, control = ctrl, slab = study)
    id <- paste("bcg", ms, mt, sep = "/")
    add_ref(id, sprintf('rma(yi, vi, data=escalc("%s", ...), method="%s", control=ctrl); confint(res, control=ctrl_ci); predict(res)', ms, mt),
            fit_values(res))
    add_ref(paste(id, "leave1out", sep = "/"), "leave1out(res)", loo_values(leave1out(res)))
    add_ref(paste(id, "cumul_year", sep = "/"),
            "cumul(res, order=bcg$year); ML/REML also: global maximum by optimize() per step",
            cum_values(cumul(res, order = bcg$year), es$yi, es$vi, bcg$year, mt))
    groups <- sort(unique(bcg$alloc))
    per <- list(); est <- se <- c()
    for (g in groups) {
      r <- rma(yi, vi, data = es, subset = alloc == g, method = mt, control = ctrl)
      df <- r$k - 1
      per[[length(per) + 1]] <- list(
        level = g, k = r$k, estimate = num(r$beta), ci_low = num(r$ci.lb),
        ci_high = num(r$ci.ub), tau2 = num(r$tau2), Q = num(r$QE),
        I2 = if (df >= 1) max(0, (r$QE - df) / r$QE) * 100 else NA_real_)
      est <- c(est, num(r$beta)); se <- c(se, num(r$se))
    }
    qb <- rma(est, sei = se, method = "FE")
    add_ref(paste(id, "subgroup_alloc", sep = "/"),
            'for g in sort(levels): rma(yi, vi, subset=alloc==g, method=.., control=ctrl); rma(est_g, sei=se_g, method="FE")$QE',
            list(subgroups = per, Q_between = num(qb$QE), Q_between_df = length(groups) - 1,
                 Q_between_pval = num(qb$QEp)))
  }
  add_ref(paste("bcg", ms, "bias", sep = "/"), bias_call,
          bias_values(rma(yi, vi, data = es, method = "REML", control = ctrl)))
  # Mantel-Haenszel with rma.mh() defaults on dat.bcg plus an all-events table
  mh <- rma.mh(ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl, data = full,
               measure = ms)
  add_ref(paste("bcg_full", ms, "MH_none", sep = "/"), sprintf('rma.mh(ai, n1i, ci, n2i, measure="%s")', ms),
          list(estimate = num(mh$beta), se = num(mh$se), ci_low = num(mh$ci.lb),
               ci_high = num(mh$ci.ub), Q = num(mh$QE), k = mh$k, k_yi = mh$k.yi))
}

# ---- hackshaw: bias tests, cumulative by tied years, every method
for (mt in methods) {
  res <- rma(yi, sei = sei, data = hack, method = mt, control = ctrl, slab = study)
  id <- paste("hackshaw", "generic", mt, sep = "/")
  add_ref(id, sprintf('rma(yi, sei=sei, method="%s", control=ctrl); confint(...); predict(res)', mt),
          fit_values(res))
  add_ref(paste(id, "cumul_year", sep = "/"),
          "cumul(res, order=hack$year); ML/REML also: global maximum by optimize() per step",
          cum_values(cumul(res, order = hack$year), hack$yi, hack$sei^2, hack$year, mt))
}
res <- rma(yi, sei = sei, data = hack, method = "REML", control = ctrl)
add_ref("hackshaw/generic/bias", bias_call, bias_values(res))

# ---- normand (small k, mean differences as yi/sei); ranktest has an exact p here
for (mt in methods) {
  res <- rma(yi, sei = sei, data = normand, method = mt, control = ctrl, slab = study)
  id <- paste("normand", "generic", mt, sep = "/")
  add_ref(id, sprintf('rma(yi, sei=sei, method="%s", control=ctrl) on escalc("MD", ...)', mt),
          fit_values(res))
  add_ref(paste(id, "leave1out", sep = "/"), "leave1out(res)", loo_values(leave1out(res)))
}
res <- rma(yi, sei = sei, data = normand, method = "REML", control = ctrl)
add_ref("normand/generic/bias", bias_call, bias_values(res))

# ---- ties in the rank test: normand with two studies given the same variance (vi of
# study 2 set to that of study 1); cor.test then falls back to the normal approximation
tied <- normand
tied$sei[2] <- tied$sei[1]
write.csv(tied, file.path(dsdir, "normand_tied_se.csv"), row.names = FALSE)
res <- rma(yi, sei = sei, data = tied, method = "FE")
rk <- suppressWarnings(ranktest(res))
add_ref("normand_tied_se/generic/ranktest", "ranktest(res) (ties in vi: normal approximation)",
        list(begg_tau = num(rk$tau), begg_pval = num(rk$pval)))

# ---- k = 2
es <- escalc(measure = "RR", ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl,
             data = k2, add = 1/2, to = "only0", drop00 = TRUE)
for (mt in methods) {
  res <- rma(yi, vi, data = es, method = mt, control = ctrl)
  add_ref(paste("bcg_k2", "RR", mt, sep = "/"),
          sprintf('rma(yi, vi, data=escalc("RR", first two bcg trials), method="%s", control=ctrl)', mt),
          fit_values(res))
}

out <- list(
  generated_by = "tests/reference/breadth_reference.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  control = list(rma = ctrl, confint = ctrl_ci),
  references = refs)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           file.path(here, "breadth_reference.json"))
cat("wrote", length(refs), "references\n")
