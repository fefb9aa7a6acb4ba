# Reference values for tests/test_bayes_factors.py, computed with R bayesmeta 3.4.
#
# Run once from the repository root:   Rscript tests/reference/bayes_factor_reference.R
# Writes tests/reference/bayes_factor_reference.json (each case: data, priors, the bayesmeta
# call as a string, and its numbers).
#
# Datasets
#   crins6     Crins et al. (2014), Pediatr Transplant 18:821-831: acute rejection after liver
#              transplantation, IL-2R antagonist vs control, all six studies (bayesmeta's
#              CrinsEtAl2014), log odds ratios by metafor::escalc(measure="OR").
#   crins2     The same, the two randomized studies only.
#   schools    Eight schools (Rubin 1981, J Educ Stat 6:377-401), the rounded effects and
#              standard errors of Gelman et al. (2013), Bayesian Data Analysis, 3rd ed., Table 5.2:
#              y = 28, 8, -3, 7, -1, 1, 18, 12; sigma = 15, 10, 16, 11, 9, 11, 10, 18.
#   bcg        BCG vaccine trials (metafor's dat.bcg; Colditz et al. 1994, JAMA 271:698), log
#              risk ratios by escalc(measure="RR").
#
# What is taken from bayesmeta, and what is computed here from bayesmeta's output
#   * tau: qposterior(tau.p=), pposterior, and the "shortest" interval by the algorithm of
#     bayesmeta's post.interval() (width minimised over the left end point, [0, q] kept when it
#     is narrower) with optimize(tol=1e-12) instead of optimize()'s default tolerance (~1e-4),
#     so that the end points are exact to far below the test tolerance. bayesmeta's own
#     post.interval(method="shortest") output is stored as well ("bayesmeta_shortest").
#   * Bayes factors: bayesmeta's res$bayesfactor["actual", ] and res$marginal.likelihood (the
#     likelihood p(y) = int int prod_i N(y_i; mu, s_i^2 + tau^2) p(mu) p(tau) dmu dtau).
#   * mu and the predictive theta_new: bayesmeta's own summaries of mu carry the error of its
#     DIRECT mixture approximation (up to ~4e-3 posterior SD), so the references are computed
#     here exactly from bayesmeta's marginal posterior of tau (res$dposterior(tau=)) and its
#     conditional moments (res$cond.moment(tau, predict=)):
#         F_mu(x) = int_0^inf p(tau | y) Phi((x - m(tau)) / s(tau)) dtau
#     by a fine Gauss-Legendre rule (see mixture() below), quantiles by uniroot(tol=1e-13),
#     shortest intervals by optimize(tol=1e-12) over the probability left of the interval.
#   * Model averaging over FE-null (mu = 0, tau = 0), FE-effect (tau = 0), RE-null (mu = 0) and
#     RE-effect, with independent priors p(mu) = N(m0, s0^2) and p(tau):
#         p(y | FE-null)   = prod_i N(y_i; 0, s_i^2)                       (dnorm, direct)
#         p(y | FE-effect) = int N(mu; m0, s0^2) prod_i N(y_i; mu, s_i^2) dmu
#                          = res$likelihood(tau=0)      (bayesmeta: analytic integral over mu)
#         p(y | RE-null)   = int p(tau) prod_i N(y_i; 0, s_i^2 + tau^2) dtau
#                          = res$likelihood(mu=0)       (bayesmeta: numerical integral over tau)
#         p(y | RE-effect) = res$marginal.likelihood
#     so bf_tau0 = p(y|FE-effect) / p(y|RE-effect) and bf_mu0 = p(y|RE-null) / p(y|RE-effect)
#     (bayesmeta's Bayes factors). Posterior model probabilities P(M_j | y) =
#     pi_j p(y | M_j) / sum_l pi_l p(y | M_l), for the equal priors (1/4 each) and for the
#     unequal priors (0.1, 0.2, 0.3, 0.4). Inclusion Bayes factors: posterior odds of
#     {FE-effect, RE-effect} against {FE-null, RE-null} divided by their prior odds; the same
#     for {RE-null, RE-effect} against {FE-null, FE-effect}.
#     The model-averaged posterior of mu,
#         F(x) = P(RE-effect|y) F_mu(x) + P(FE-effect|y) Phi((x - m_FE) / s_FE)
#                + [P(FE-null|y) + P(RE-null|y)] 1{x >= 0},
#     with (m_FE, s_FE) = res$cond.moment(tau=0) (the conjugate posterior of mu at
#     tau = 0), has quantiles q_p = inf{x : F(x) >= p}: 0 when F(0-) < p <= F(0), otherwise the
#     root of F(x) = p on the side of 0 where it lies.

suppressPackageStartupMessages(library(bayesmeta))
library(jsonlite)

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

data("CrinsEtAl2014")
crins <- escalc(measure = "OR", ai = exp.AR.events, n1i = exp.total, ci = cont.AR.events,
                n2i = cont.total, slab = publication, data = CrinsEtAl2014)
crins_rand <- crins[crins$randomized == "yes", ]
bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
schools_y <- c(28, 8, -3, 7, -1, 1, 18, 12)
schools_s <- c(15, 10, 16, 11, 9, 11, 10, 18)

datasets <- list(
  crins6 = list(y = as.numeric(crins$yi), s = sqrt(as.numeric(crins$vi)),
                labels = as.character(crins$publication)),
  crins2 = list(y = as.numeric(crins_rand$yi), s = sqrt(as.numeric(crins_rand$vi)),
                labels = as.character(crins_rand$publication)),
  schools = list(y = schools_y, s = schools_s, labels = LETTERS[1:8]),
  bcg = list(y = as.numeric(bcg$yi), s = sqrt(as.numeric(bcg$vi)),
             labels = paste(dat.bcg$author, dat.bcg$year))
)

# Each case: dataset, tau prior (bayesmtor grammar and the R form), mu prior.
cases <- list(
  list(name = "crins6_hn", data = "crins6", tau = "half-normal:0.5", mu = "normal:0,4",
       tau_r = "function(t) dhalfnormal(t, scale=0.5)", m0 = 0, s0 = 4),
  list(name = "crins2_hn", data = "crins2", tau = "half-normal:0.5", mu = "normal:0,4",
       tau_r = "function(t) dhalfnormal(t, scale=0.5)", m0 = 0, s0 = 4),
  list(name = "schools_hc", data = "schools", tau = "half-cauchy:25", mu = "normal:0,50",
       tau_r = "function(t) dhalfcauchy(t, scale=25)", m0 = 0, s0 = 50),
  list(name = "bcg_hn", data = "bcg", tau = "half-normal:0.5", mu = "normal:0,4",
       tau_r = "function(t) dhalfnormal(t, scale=0.5)", m0 = 0, s0 = 4),
  list(name = "crins6_uniform_flat", data = "crins6", tau = "uniform", mu = "flat",
       tau_r = "\"uniform\"", m0 = NA, s0 = NA),
  list(name = "crins6_jeffreys_flat", data = "crins6", tau = "jeffreys", mu = "flat",
       tau_r = "\"Jeffreys\"", m0 = NA, s0 = NA),
  list(name = "schools_uniform_flat", data = "schools", tau = "uniform", mu = "flat",
       tau_r = "\"uniform\"", m0 = NA, s0 = NA),
  list(name = "schools_jeffreys_flat", data = "schools", tau = "jeffreys", mu = "flat",
       tau_r = "\"Jeffreys\"", m0 = NA, s0 = NA),
  list(name = "crins6_jeffreys_normal", data = "crins6", tau = "jeffreys", mu = "normal:0,4",
       tau_r = "\"Jeffreys\"", m0 = 0, s0 = 4),
  list(name = "schools_uniform_normal", data = "schools", tau = "uniform", mu = "normal:0,50",
       tau_r = "\"uniform\"", m0 = 0, s0 = 50)
)

level <- 0.95
probs <- c(0.5, (1 - level) / 2, (1 + level) / 2)

num <- function(x) if (is.null(x) || length(x) == 0) NA_real_ else unname(as.numeric(x))

# Exact CDF of mu (predict=FALSE) or theta_new (predict=TRUE) from bayesmeta's tau posterior,
# F(x) = int p(tau | y) Phi((x - m(tau)) / s(tau)) dtau, by a composite Gauss-Legendre rule
# (800 panels x 16 nodes) on [0, qposterior(tau.p = 1 - 1e-13)]: p(tau | y) is analytic in
# tau there, so the rule is exact to rounding (the weights sum to 1 within ~1e-13, stored as
# "rule_mass").
gl16 <- local({
  n <- 16; i <- seq_len(n - 1); b <- i / sqrt(4 * i^2 - 1)
  J <- matrix(0, n, n); J[cbind(i, i + 1)] <- b; J[cbind(i + 1, i)] <- b
  e <- eigen(J, symmetric = TRUE)
  list(x = e$values, w = 2 * e$vectors[1, ]^2)
})

mixture <- function(res, predict) {
  upper <- res$qposterior(tau.p = 1 - 1e-13)
  edges <- seq(0, upper, length.out = 801)
  half <- diff(edges) / 2; mid <- (edges[-1] + edges[-801]) / 2
  tau <- as.vector(outer(gl16$x, half) + rep(mid, each = 16))
  w <- as.vector(outer(gl16$w, half)) * res$dposterior(tau = tau)
  cm <- res$cond.moment(tau = tau, predict = predict)
  list(w = w, mean = cm[, "mean"], sd = cm[, "sd"], mass = sum(w))
}

mix_cdf <- function(mx, x) sum(mx$w * pnorm(x, mean = mx$mean, sd = mx$sd)) / mx$mass

mix_quantile <- function(mx, p) {
  centre <- sum(mx$w * mx$mean) / mx$mass
  spread <- 50 * sqrt(sum(mx$w * (mx$sd^2 + (mx$mean - centre)^2)) / mx$mass)
  uniroot(function(x) mix_cdf(mx, x) - p, c(centre - spread, centre + spread), tol = 1e-13,
          maxiter = 1000L)$root
}

shortest_mix <- function(mx) {
  width <- function(a) mix_quantile(mx, a + level) - mix_quantile(mx, a)
  a <- optimize(width, c(1e-9, 1 - level - 1e-9), tol = 1e-12)$minimum
  c(mix_quantile(mx, a), mix_quantile(mx, a + level))
}

shortest_tau <- function(res) {
  width <- function(left) res$qposterior(tau.p = level + res$pposterior(tau = left)) - left
  opti <- optimize(width, lower = 0, upper = res$qposterior(tau.p = 1 - level), tol = 1e-12)$minimum
  if (width(0) <= width(opti)) c(0, res$qposterior(tau.p = level))
  else c(opti, res$qposterior(tau.p = level + res$pposterior(tau = opti)))
}

bma <- function(res, mx, d, prior_probs) {
  ml <- c("FE-null" = prod(dnorm(d$y, 0, d$s)),
          "FE-effect" = num(res$likelihood(tau = 0)),
          "RE-null" = num(res$likelihood(mu = 0)),
          "RE-effect" = num(res$marginal.likelihood))
  post <- prior_probs * ml / sum(prior_probs * ml)
  effect <- c("FE-effect", "RE-effect"); null <- c("FE-null", "RE-null")
  re <- c("RE-null", "RE-effect"); fe <- c("FE-null", "FE-effect")
  bf_eff <- (sum(post[effect]) / sum(post[null])) / (sum(prior_probs[effect]) / sum(prior_probs[null]))
  bf_het <- (sum(post[re]) / sum(post[fe])) / (sum(prior_probs[re]) / sum(prior_probs[fe]))
  cm0 <- res$cond.moment(tau = 0)
  p_null <- post[["FE-null"]] + post[["RE-null"]]
  cont <- function(x) post[["RE-effect"]] * mix_cdf(mx, x) +
    post[["FE-effect"]] * pnorm(x, cm0[1, "mean"], cm0[1, "sd"])
  below0 <- cont(0)
  q <- sapply(probs, function(p) {
    if (p > below0 && p <= below0 + p_null) return(0)
    target <- if (p <= below0) function(x) cont(x) - p else function(x) cont(x) + p_null - p
    lo <- if (p <= below0) -1 else 0
    hi <- if (p <= below0) 0 else 1
    while (target(lo) > 0) lo <- 2 * lo - 1
    while (target(hi) < 0) hi <- 2 * hi + 1
    uniroot(target, c(lo, hi), tol = 1e-13, maxiter = 1000L)$root
  })
  list(prior_prob = as.list(prior_probs), log_marginal_likelihood = as.list(log(ml)),
       posterior_prob = as.list(post), bf_inclusion_effect = bf_eff,
       bf_inclusion_heterogeneity = bf_het, fe_mean = cm0[1, "mean"], fe_sd = cm0[1, "sd"],
       mu_median = q[1], mu_low = q[2], mu_high = q[3])
}

out <- list()
for (cs in cases) {
  d <- datasets[[cs$data]]
  mu_args <- if (is.na(cs$m0)) "" else sprintf(", mu.prior.mean=%g, mu.prior.sd=%g", cs$m0, cs$s0)
  call <- sprintf("bayesmeta(y, sigma, tau.prior=%s%s)", cs$tau_r, mu_args)
  tau_prior <- eval(parse(text = cs$tau_r))
  res <- if (is.na(cs$m0)) bayesmeta(d$y, d$s, labels = d$labels, tau.prior = tau_prior)
         else bayesmeta(d$y, d$s, labels = d$labels, tau.prior = tau_prior,
                        mu.prior.mean = cs$m0, mu.prior.sd = cs$s0)
  mx_mu <- mixture(res, FALSE)
  mx_pred <- mixture(res, TRUE)
  mu_q <- sapply(probs, function(p) mix_quantile(mx_mu, p))
  pred_q <- sapply(probs, function(p) mix_quantile(mx_pred, p))
  entry <- list(
    call = call, data = cs$data, y = d$y, sei = d$s, labels = d$labels,
    tau_prior = cs$tau, mu_prior = cs$mu, ci_prob = level,
    tau_median = res$qposterior(tau.p = 0.5),
    tau_low = res$qposterior(tau.p = probs[2]), tau_high = res$qposterior(tau.p = probs[3]),
    tau_mean = num(res$summary["mean", "tau"]), tau_sd = num(res$summary["sd", "tau"]),
    mu_median = mu_q[1], mu_low = mu_q[2], mu_high = mu_q[3],
    mu_sd = num(res$summary["sd", "mu"]),
    pred_median = pred_q[1], pred_low = pred_q[2], pred_high = pred_q[3],
    pred_sd = num(res$summary["sd", "theta"]),
    rule_mass = mx_mu$mass,
    shortest = list(tau = shortest_tau(res), mu = shortest_mix(mx_mu),
                    pred = shortest_mix(mx_pred)),
    bayesmeta_shortest = list(
      tau = num(res$post.interval(tau.level = level, method = "shortest")),
      mu = num(res$post.interval(mu.level = level, method = "shortest")),
      pred = num(res$post.interval(mu.level = level, method = "shortest", predict = TRUE))),
    log_marginal_likelihood = log(num(res$marginal.likelihood)),
    bf_tau0 = num(res$bayesfactor["actual", "tau=0"]),
    bf_mu0 = num(res$bayesfactor["actual", "mu=0"])
  )
  if (!is.na(cs$m0) && is.finite(num(res$marginal.likelihood))) {
    entry$bma <- bma(res, mx_mu, d, c("FE-null" = 0.25, "FE-effect" = 0.25,
                                            "RE-null" = 0.25, "RE-effect" = 0.25))
    entry$bma_unequal <- bma(res, mx_mu, d, c("FE-null" = 0.1, "FE-effect" = 0.2,
                                                    "RE-null" = 0.3, "RE-effect" = 0.4))
  }
  out[[cs$name]] <- entry
  cat(cs$name, "done\n")
}

meta <- list(generated_by = "tests/reference/bayes_factor_reference.R",
             R = R.version.string, bayesmeta = as.character(packageVersion("bayesmeta")),
             metafor = as.character(packageVersion("metafor")))
writeLines(toJSON(list(meta = meta, cases = out), digits = NA, auto_unbox = TRUE,
                  pretty = TRUE, na = "null"),
           file.path(here, "bayes_factor_reference.json"))
