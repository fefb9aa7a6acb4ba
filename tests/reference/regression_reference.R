# Reference values for tests/test_regression.py: meta-regression by R metafor (rma with mods)
# and by R bayesmeta (bmr), with bmr's coefficient summaries recomputed exactly.
#
# Run once from the repository root:   Rscript tests/reference/regression_reference.R
# Writes tests/reference/regression_datasets/*.csv (the data exactly as analysed) and
# tests/reference/regression_reference.json (every R call as a string next to its numbers).
#
# Datasets (bundled with metafor/metadat and bayesmeta):
#   bcg    BCG vaccine trials (dat.bcg; Colditz et al. 1994, JAMA 271:698): 13 trials with the
#          absolute latitude (ablat), the year of publication (year) and the method of treatment
#          allocation (alloc: alternate, random, systematic). log RR and log OR from escalc().
#   crins  Interleukin-2 receptor antagonists in liver transplantation (CrinsEtAl2014; Crins et
#          al. 2014, Pediatr Transplant 18:839), acute rejection, log OR from escalc() (its
#          default: 1/2 added to tables with a zero cell); moderator IL2RA (basiliximab or
#          daclizumab). The example of bayesmeta's bmr() help page.
#
# metafor: rma(yi, vi, mods = ~ ..., method, test) with
#   control = list(threshold = 1e-13, tol = 1e-13, maxiter = 10000, stepadj = 0.5).
#   test = "knha" is metafor's Knapp-Hartung adjustment without truncation (its default).
#
# bayesmeta: bmr(y, sigma, X, tau.prior, beta.prior.mean, beta.prior.sd). Its own coefficient
# summaries come from a discrete approximation of the tau mixture (the DIRECT algorithm, error
# up to a few 1e-3 posterior SD), so the reference here integrates instead: with p(tau | y)
# from bmr's $dposterior and the conditional mean and covariance of beta given tau from bmr's
# own conditionalmoments(), every coefficient's posterior CDF is
#   F_j(x) = int_0^Inf p(tau | y) pnorm(x, m_j(tau), s_j(tau)) dtau
# (integrate(), rel.tol 1e-12), its mean and SD the integrals of m_j and s_j^2 + m_j^2, and its
# quantiles uniroot() of F_j (tol 1e-13). Quantiles of tau: uniroot() of bmr's $pposterior.
# Intervals are central (bmr's own default is "shortest"; both are stored). Bayes factors with a
# proper prior: bmr's $bayesfactor["actual", ] (tau = 0 and each beta_j = 0), and,
# independently, the Savage-Dickey ratio p(beta_j = 0 | y) / p(beta_j = 0) integrated here.

suppressPackageStartupMessages({ library(metafor); library(bayesmeta) })
library(jsonlite)

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
dsdir <- file.path(here, "regression_datasets")
dir.create(dsdir, showWarnings = FALSE)
ctrl <- list(threshold = 1e-13, tol = 1e-13, maxiter = 10000, stepadj = 0.5)

bcg <- with(dat.bcg, data.frame(
  study = paste(author, year), events_trt = tpos, n_trt = tpos + tneg,
  events_ctl = cpos, n_ctl = cpos + cneg, ablat = ablat, year = year, alloc = alloc))
for (m in c("RR", "OR")) {
  es <- escalc(measure = m, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
  bcg[[paste0("yi_", m)]] <- as.numeric(es$yi)
  bcg[[paste0("vi_", m)]] <- as.numeric(es$vi)
}
write.csv(bcg, file.path(dsdir, "bcg.csv"), row.names = FALSE)

data(CrinsEtAl2014)
ces <- escalc(measure = "OR", ai = exp.AR.events, n1i = exp.total, ci = cont.AR.events,
              n2i = cont.total, slab = publication, data = CrinsEtAl2014)
crins <- data.frame(study = as.character(CrinsEtAl2014$publication),
                    events_trt = CrinsEtAl2014$exp.AR.events, n_trt = CrinsEtAl2014$exp.total,
                    events_ctl = CrinsEtAl2014$cont.AR.events, n_ctl = CrinsEtAl2014$cont.total,
                    IL2RA = as.character(CrinsEtAl2014$IL2RA),
                    yi = as.numeric(ces$yi), sei = sqrt(as.numeric(ces$vi)))
write.csv(crins, file.path(dsdir, "crins.csv"), row.names = FALSE)

num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else unname(as.numeric(x))

# ------------------------------------------------------------------ metafor
formulas <- c("~ ablat", "~ ablat + year", "~ alloc", "~ 0 + alloc", "~ ablat + alloc")
freq <- list()
for (m in c("RR", "OR")) for (f in formulas) for (meth in c("FE", "DL", "ML", "REML"))
  for (test in c("z", "knha")) {
    yi <- bcg[[paste0("yi_", m)]]; vi <- bcg[[paste0("vi_", m)]]
    call <- sprintf("rma(yi_%s, vi_%s, mods = %s, data = bcg, method = '%s', test = '%s', control = ctrl)",
                    m, m, f, meth, test)
    fit <- rma(yi, vi, mods = as.formula(f), data = bcg, method = meth, test = test, control = ctrl)
    coefs <- lapply(seq_along(fit$beta), function(j) list(
      term = rownames(fit$beta)[j], estimate = num(fit$beta[j]), se = num(fit$se[j]),
      ci_low = num(fit$ci.lb[j]), ci_high = num(fit$ci.ub[j]), stat = num(fit$zval[j]),
      pval = num(fit$pval[j])))
    freq[[length(freq) + 1]] <- list(
      call = call, measure = m, mods = f, method = meth, test = test,
      coefficients = coefs, QM = num(fit$QM), QM_df = num(fit$QMdf[1]),
      QM_df2 = num(fit$QMdf[2]), QM_pval = num(fit$QMp), QE = num(fit$QE),
      QE_df = num(fit$k - fit$p), QE_pval = num(fit$QEp), R2 = num(fit$R2),
      tau2 = if (meth == "FE") NA_real_ else num(fit$tau2), k = fit$k)
  }

# ------------------------------------------------------------------ bayesmeta
exact_summaries <- function(b, X, q = c(0.025, 0.5, 0.975)) {
  e <- environment(b$dposterior)
  cm <- function(t) e$conditionalmoments(t)
  dpost <- function(t) b$dposterior(tau = t)
  p <- ncol(X)
  out <- list()
  for (j in seq_len(p)) {
    mj <- function(t) sapply(t, function(tt) cm(tt)$mean[j])
    sj <- function(t) sapply(t, function(tt) sqrt(cm(tt)$covariance[j, j]))
    integ <- function(fun) integrate(function(t) dpost(t) * fun(t), 0, Inf,
                                     rel.tol = 1e-12, subdivisions = 1000L)$value
    mean_j <- integ(mj)
    second <- integ(function(t) sj(t)^2 + mj(t)^2)
    cdf <- function(x) integ(function(t) pnorm(x, mj(t), sj(t)))
    sd_j <- sqrt(second - mean_j^2)
    qs <- sapply(q, function(qq) uniroot(function(x) cdf(x) - qq,
                                         c(mean_j - 12 * sd_j, mean_j + 12 * sd_j),
                                         tol = 1e-13)$root)
    dens0 <- integ(function(t) dnorm(0, mj(t), sj(t)))
    out[[j]] <- list(term = colnames(X)[j], mean = mean_j, sd = sd_j, low = qs[1],
                     median = qs[2], high = qs[3], posterior_density_at_0 = dens0,
                     bmr_summary = as.list(b$summary[, colnames(X)[j]]))
  }
  tq <- sapply(q, function(qq) uniroot(function(t) b$pposterior(tau = t) - qq,
                                       c(0, 50), tol = 1e-13)$root)
  list(coefficients = out, tau_low = tq[1], tau_median = tq[2], tau_high = tq[3],
       tau_density_at_0 = num(b$dposterior(tau = 0)),
       bayesfactor = if (all(is.na(b$bayesfactor))) NULL else as.list(b$bayesfactor["actual", ]),
       bmr_tau_summary = as.list(b$summary[, "tau"]))
}

bayes <- list()
add_bmr <- function(name, y, sigma, X, prior_str, prior_fun, bmean = NULL, bsd = NULL) {
  call <- sprintf("bmr(y, sigma, X = X, tau.prior = %s%s, interval.type = 'central')", prior_str,
                  if (is.null(bmean)) "" else sprintf(", beta.prior.mean = c(%s), beta.prior.sd = c(%s)",
                                                      paste(bmean, collapse = ", "), paste(bsd, collapse = ", ")))
  b <- bmr(y, sigma, X = X, tau.prior = prior_fun, beta.prior.mean = bmean, beta.prior.sd = bsd,
           interval.type = "central")
  r <- exact_summaries(b, X)
  r$name <- name; r$call <- call; r$terms <- colnames(X); r$k <- length(y)
  r$beta_prior_mean <- bmean; r$beta_prior_sd <- bsd
  bayes[[length(bayes) + 1]] <<- r
}
hn05 <- function(t) dhalfnormal(t, scale = 0.5)
Xc0 <- cbind(basiliximab = as.numeric(crins$IL2RA == "basiliximab"),
             daclizumab = as.numeric(crins$IL2RA == "daclizumab"))
add_bmr("crins ~ 0 + IL2RA", crins$yi, crins$sei, Xc0, "function(t) dhalfnormal(t, scale = 0.5)", hn05)
Xc1 <- cbind(intrcpt = 1, IL2RAdaclizumab = as.numeric(crins$IL2RA == "daclizumab"))
add_bmr("crins ~ IL2RA", crins$yi, crins$sei, Xc1, "function(t) dhalfnormal(t, scale = 0.5)", hn05)
add_bmr("crins ~ IL2RA, beta ~ N(0, 2^2)", crins$yi, crins$sei, Xc1,
        "function(t) dhalfnormal(t, scale = 0.5)", hn05, c(0, 0), c(2, 2))
Xb <- cbind(intrcpt = 1, ablat = bcg$ablat)
hn1 <- function(t) dhalfnormal(t, scale = 1)
add_bmr("bcg logRR ~ ablat", bcg$yi_RR, sqrt(bcg$vi_RR), Xb, "function(t) dhalfnormal(t, scale = 1)", hn1)
add_bmr("bcg logRR ~ ablat, beta ~ N((0, 0), (1, 0.1)^2)", bcg$yi_RR, sqrt(bcg$vi_RR), Xb,
        "function(t) dhalfnormal(t, scale = 1)", hn1, c(0, 0), c(1, 0.1))
Xb2 <- cbind(intrcpt = 1, ablat = bcg$ablat, allocrandom = as.numeric(bcg$alloc == "random"),
             allocsystematic = as.numeric(bcg$alloc == "systematic"))
add_bmr("bcg logRR ~ ablat + alloc", bcg$yi_RR, sqrt(bcg$vi_RR), Xb2,
        "function(t) dhalfnormal(t, scale = 1)", hn1)

out <- list(
  generated_by = "tests/reference/regression_reference.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  bayesmeta_version = as.character(packageVersion("bayesmeta")),
  control = ctrl, frequentist = freq, bayes = bayes)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE),
           file.path(here, "regression_reference.json"))
cat("wrote", length(freq), "metafor fits and", length(bayes), "bmr fits\n")
