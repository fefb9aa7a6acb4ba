# Reference values for tests/test_frequentist.py, computed with R metafor.
#
# Run once from the repository root:   Rscript tests/reference/rma_reference.R
# Writes tests/reference/rma_datasets/*.csv (the data exactly as analysed) and
# tests/reference/rma_reference.json (every R call as a string next to its numbers).
#
# Datasets (bundled with metafor via the metadat package):
#   bcg          BCG vaccine trials, tuberculosis risk ratio (dat.bcg; Colditz et al. 1994,
#                JAMA 271:698). 13 trials, subgroups by allocation method.
#   nielweise    Anti-infective catheters and bloodstream infections (dat.nielweise2007;
#                Niel-Weise et al. 2007, Intensive Care Med 33:2058). 18 trials, zero cells and
#                one double-zero trial (Yucel 2004).
#   yusuf        Beta blockers after myocardial infarction, table 6 of dat.yusuf1985 (Yusuf et
#                al. 1985, Prog Cardiovasc Dis 27:335), trials with complete counts; zero cells
#                and three double-zero trials.
#   hackshaw     Environmental tobacco smoke and lung cancer, log odds ratios with variances
#                (dat.hackshaw1998; Hackshaw et al. 1997, BMJ 315:980): the generic log_se shape.
#   reml_hard    INPUT, not written here: 24 simulated meta-analyses (log HR, k 6-12) from
#                benchmarks/bench_frequentist.py (seed 20141001; meta ids listed in the file) on
#                which rma(method="REML") with metafor's default control stops with "Fisher
#                scoring algorithm did not converge". Reference: rma() with step halving
#                (stepadj=0.5) and, independently, optimize() of the restricted log-likelihood.
#
# Conventions matched by bayesmtor.frequentist:
#   * study yi/vi: escalc(add=1/2, to="only0", drop00=TRUE) (RevMan 5 rule).
#   * MH "revman": rma.mh(add=c(1/2,1/2), to=c("only0","only0"), drop00=c(TRUE,TRUE)), i.e. 1/2
#     added to zero-cell tables also inside the MH estimate; MH "none": rma.mh() defaults.
#   * I2 (Q-based) = max(0, (QE - df)/QE)*100 and H2 = QE/df computed here from metafor's QE;
#     I2_tau/H2_tau are metafor's own I2/H2 of random-effects fits.
#   * prediction interval with t on k-2 df: b +/- qt(1-alpha/2, k-2)*sqrt(tau2 + se^2), computed
#     explicitly (metafor's predict() uses z by default).
#   * test for subgroup differences: rma(group estimates, sei=group SEs, method="FE")$QE.

suppressPackageStartupMessages(library(metafor))
library(jsonlite)

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
dsdir <- file.path(here, "rma_datasets")
dir.create(dsdir, showWarnings = FALSE)

ctrl <- list(threshold = 1e-12, maxiter = 1000, tol = 1e-13)
ctrl_ci <- list(tol = 1e-13, maxiter = 1000)
level <- 95

bcg <- with(dat.bcg, data.frame(
  study = paste(author, year), events_trt = tpos, n_trt = tpos + tneg,
  events_ctl = cpos, n_ctl = cpos + cneg, alloc = alloc, ablat = ablat))
niel <- with(dat.nielweise2007, data.frame(
  study = paste(author, year), events_trt = ai, n_trt = n1i, events_ctl = ci, n_ctl = n2i))
yus <- subset(dat.yusuf1985, table == "6" & !is.na(ai))
yus <- with(yus, data.frame(
  study = paste(id, trial), events_trt = ai, n_trt = n1i, events_ctl = ci, n_ctl = n2i))
hack <- with(dat.hackshaw1998, data.frame(
  study = paste(author, year), yi = yi, sei = sqrt(vi), design = design))

num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else unname(as.numeric(x))

calls <- list()
res_list <- list()
add_ref <- function(id, call, values) {
  res_list[[length(res_list) + 1]] <<- list(id = id, call = call, values = values)
}

fit_values <- function(res) {
  # k = studies with an estimable yi (double-zero tables dropped), as the Q test uses them;
  # k_tables = all tables given (metafor's res$k for rma.mh / rma.peto).
  k <- if (is.null(res$k.yi)) res$k else res$k.yi
  df <- k - 1
  QE <- num(res$QE)
  out <- list(
    k = k, k_tables = res$k, estimate = num(res$beta), se = num(res$se), ci_low = num(res$ci.lb),
    ci_high = num(res$ci.ub), stat = num(res$zval), pval = num(res$pval),
    Q = QE, Q_df = df, Q_pval = num(res$QEp),
    I2 = if (df >= 1) max(0, (QE - df) / QE) * 100 else NA_real_,
    H2 = if (df >= 1) QE / df else NA_real_)
  if (inherits(res, "rma.uni") && res$method != "FE" && res$method != "EE") {
    ci <- confint(res, control = ctrl_ci)$random
    alpha <- 1 - level / 100
    half <- qt(1 - alpha / 2, k - 2) * sqrt(res$tau2 + res$se^2)
    out <- c(out, list(
      tau2 = num(res$tau2), tau = sqrt(num(res$tau2)),
      tau2_ci_low = num(ci["tau^2", "ci.lb"]), tau2_ci_high = num(ci["tau^2", "ci.ub"]),
      I2_tau = num(res$I2), H2_tau = num(res$H2),
      pi_low = num(res$beta) - half, pi_high = num(res$beta) + half))
  }
  out
}

datasets <- list()
count_sets <- list(bcg = list(d = bcg, measures = c("RR", "OR")),
                   nielweise = list(d = niel, measures = c("RR", "OR", "RD")),
                   yusuf = list(d = yus, measures = c("RR", "OR")))
iv_methods <- c("FE", "DL", "REML", "PM", "ML", "SJ", "HE")

for (nm in names(count_sets)) {
  d <- count_sets[[nm]]$d
  write.csv(d, file.path(dsdir, paste0(nm, ".csv")), row.names = FALSE)
  for (ms in count_sets[[nm]]$measures) {
    # RevMan keeps double-zero studies for the risk difference (RD = 0 is informative)
    d00 <- ms != "RD"
    es <- escalc(measure = ms, ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl,
                 data = d, add = 1/2, to = "only0", drop00 = d00)
    add_ref(paste(nm, ms, "escalc", sep = "/"),
            sprintf('escalc(measure="%s", ai, n1i, ci, n2i, add=1/2, to="only0", drop00=%s)', ms, d00),
            list(yi = num(es$yi), vi = num(es$vi)))
    for (mt in iv_methods) {
      for (tst in c("z", "knha")) {
        if (mt == "FE" && tst == "knha") next
        res <- rma(yi, vi, data = es, method = mt, test = tst, control = ctrl)
        add_ref(paste(nm, ms, mt, tst, sep = "/"),
                sprintf('rma(yi, vi, data=escalc(...), method="%s", test="%s", control=list(threshold=1e-12, maxiter=1000, tol=1e-13)); confint(res, control=list(tol=1e-13))', mt, tst),
                fit_values(res))
      }
    }
    if (ms == "RD") {
      # MH risk difference: raw counts (no correction needed), double-zero tables kept
      res <- rma.mh(ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl, data = d,
                    measure = "RD", add = c(1/2, 0), to = c("only0", "none"), drop00 = c(FALSE, FALSE))
      add_ref(paste(nm, ms, "MH", "none", sep = "/"),
              'rma.mh(ai, n1i, ci, n2i, measure="RD", add=c(1/2,0), to=c("only0","none"), drop00=c(FALSE,FALSE))',
              fit_values(res))
      next
    }
    res <- rma.mh(ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl, data = d, measure = ms)
    add_ref(paste(nm, ms, "MH", "none", sep = "/"),
            sprintf('rma.mh(ai, n1i, ci, n2i, measure="%s")', ms), fit_values(res))
    res <- rma.mh(ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl, data = d, measure = ms,
                  add = c(1/2, 1/2), to = c("only0", "only0"), drop00 = c(TRUE, TRUE))
    add_ref(paste(nm, ms, "MH", "revman", sep = "/"),
            sprintf('rma.mh(ai, n1i, ci, n2i, measure="%s", add=c(1/2,1/2), to=c("only0","only0"), drop00=c(TRUE,TRUE))', ms),
            fit_values(res))
    if (ms == "OR") {
      res <- rma.peto(ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl, data = d)
      add_ref(paste(nm, "OR", "PETO", sep = "/"), "rma.peto(ai, n1i, ci, n2i)", fit_values(res))
    }
    # Egger's test
    rg <- regtest(rma(yi, vi, data = es, method = "FE"), model = "lm", predictor = "sei")
    add_ref(paste(nm, ms, "egger", sep = "/"),
            'regtest(rma(yi, vi, method="FE"), model="lm", predictor="sei")',
            list(tval = num(rg$zval), pval = num(rg$pval), df = num(rg$dfs),
                 bias = num(rg$fit$coefficients[2]),
                 limit_estimate = num(rg$est), limit_ci_low = num(rg$ci.lb),
                 limit_ci_high = num(rg$ci.ub)))
    # leave-one-out
    for (mt in c("FE", "DL", "REML")) {
      l1 <- leave1out(rma(yi, vi, data = es, method = mt, control = ctrl))
      add_ref(paste(nm, ms, "leave1out", mt, sep = "/"),
              sprintf('leave1out(rma(yi, vi, method="%s", control=...))', mt),
              list(estimate = num(l1$estimate), se = num(l1$se), pval = num(l1$pval),
                   ci_low = num(l1$ci.lb), ci_high = num(l1$ci.ub), Q = num(l1$Q),
                   Q_pval = num(l1$Qp), tau2 = num(l1$tau2), I2 = num(l1$I2)))
    }
    l1 <- leave1out(rma.mh(ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl, data = d,
                           measure = ms, add = c(1/2, 1/2), to = c("only0", "only0"),
                           drop00 = c(TRUE, TRUE)))
    add_ref(paste(nm, ms, "leave1out", "MH", sep = "/"),
            'leave1out(rma.mh(..., add=c(1/2,1/2), to=c("only0","only0"), drop00=c(TRUE,TRUE)))',
            list(estimate = num(l1$estimate), se = num(l1$se), Q = num(l1$Q)))
  }
}

# subgroups: bcg by allocation (RR)
es <- escalc(measure = "RR", ai = events_trt, n1i = n_trt, ci = events_ctl, n2i = n_ctl, data = bcg,
             add = 1/2, to = "only0", drop00 = TRUE)
groups <- sort(unique(as.character(bcg$alloc)))
for (mt in c("FE", "DL", "REML")) {
  est <- se <- c()
  per <- list()
  for (g in groups) {
    r <- rma(yi, vi, data = es, subset = alloc == g, method = mt, control = ctrl)
    est <- c(est, num(r$beta)); se <- c(se, num(r$se))
    per[[g]] <- list(k = r$k, estimate = num(r$beta), se = num(r$se), tau2 = num(r$tau2),
                     Q = num(r$QE))
  }
  qb <- rma(est, sei = se, method = "FE")
  vals <- list(groups = groups, per_group = per, Q_between = num(qb$QE),
               Q_between_df = length(groups) - 1, Q_between_pval = num(qb$QEp))
  if (mt == "FE") {
    mr <- rma(yi, vi, mods = ~ factor(alloc), data = es, method = "FE")
    vals$QM_moderator <- num(mr$QM)
  }
  add_ref(paste("bcg", "RR", "subgroup", mt, sep = "/"),
          sprintf('for g: rma(yi, vi, subset=alloc==g, method="%s"); rma(est, sei=se, method="FE")$QE; FE also rma(yi, vi, mods=~factor(alloc), method="FE")$QM', mt),
          vals)
}

# generic log-scale data (hackshaw)
write.csv(hack, file.path(dsdir, "hackshaw.csv"), row.names = FALSE)
for (mt in iv_methods) {
  for (tst in c("z", "knha")) {
    if (mt == "FE" && tst == "knha") next
    res <- rma(yi, sei = sei, data = hack, method = mt, test = tst, control = ctrl)
    add_ref(paste("hackshaw", "generic", mt, tst, sep = "/"),
            sprintf('rma(yi, sei=sei, method="%s", test="%s", control=list(threshold=1e-12, maxiter=1000, tol=1e-13)); confint(...)', mt, tst),
            fit_values(res))
  }
}
rg <- regtest(rma(yi, sei = sei, data = hack, method = "FE"), model = "lm", predictor = "sei")
add_ref("hackshaw/generic/egger", 'regtest(rma(yi, sei=sei, method="FE"), model="lm", predictor="sei")',
        list(tval = num(rg$zval), pval = num(rg$pval), df = num(rg$dfs),
             bias = num(rg$fit$coefficients[2]), limit_estimate = num(rg$est),
             limit_ci_low = num(rg$ci.lb), limit_ci_high = num(rg$ci.ub)))
for (g in sort(unique(hack$design))) {
  for (mt in c("DL", "REML")) {
    res <- rma(yi, sei = sei, data = hack, subset = design == g, method = mt, control = ctrl)
    add_ref(paste("hackshaw", "generic", paste0("design=", g), mt, sep = "/"),
            sprintf('rma(yi, sei=sei, subset=design=="%s", method="%s", control=...)', g, mt),
            fit_values(res))
  }
}

# REML where metafor's default Fisher scoring fails
hard <- read.csv(file.path(dsdir, "reml_hard.csv"))
ids <- sort(unique(hard$meta))
tau2_step <- tau2_opt <- default_fails <- c()
for (i in ids) {
  g <- hard[hard$meta == i, ]
  default_fails <- c(default_fails, inherits(try(rma(yi, sei = sei, data = g, method = "REML"),
                                                 silent = TRUE), "try-error"))
  r <- rma(yi, sei = sei, data = g, method = "REML",
           control = list(stepadj = 0.5, maxiter = 10000, threshold = 1e-12))
  tau2_step <- c(tau2_step, num(r$tau2))
  llr <- function(t) {
    w <- 1 / (g$sei^2 + t); mu <- sum(w * g$yi) / sum(w)
    -0.5 * (sum(log(g$sei^2 + t)) + log(sum(w)) + sum(w * (g$yi - mu)^2))
  }
  tau2_opt <- c(tau2_opt, optimize(llr, c(0, 10 * var(g$yi)), maximum = TRUE, tol = 1e-12)$maximum)
}
add_ref("reml_hard/generic/REML", paste(
  'rma(yi, sei=sei, method="REML") fails by default; tau2 from rma(..., control=list(stepadj=0.5,',
  'maxiter=10000, threshold=1e-12)); tau2_optimize from optimize() of the REML log-likelihood'),
  list(meta = ids, default_fails = default_fails, tau2 = tau2_step, tau2_optimize = tau2_opt))

out <- list(
  generated_by = "tests/reference/rma_reference.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  control = list(rma = ctrl, confint = ctrl_ci, level = level),
  references = res_list)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           file.path(here, "rma_reference.json"))
cat("wrote", length(res_list), "references\n")
