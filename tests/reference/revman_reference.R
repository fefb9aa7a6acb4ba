# Reference values for tests/test_revman.py, computed with R metafor (never with bayesmtor).
#
# Run once from the repository root (needs R with metafor >= 3.8 and jsonlite):
#     Rscript tests/reference/revman_reference.R
# It writes
#   tests/reference/revman_escalc.json     - MD and SMD per study: metafor escalc() (measure "MD";
#                                            "SMD" with its default vtype "LS") and RevMan 5's
#                                            Hedges' adjusted g computed here by hand.
#   tests/data/revman/synthetic.rm5        - a small RevMan 5 file (ISO-8859-1 declared, with
#                                            Windows-1252 bytes, a footnote, an unescaped '&' and
#                                            '<') whose stored results are computed below.
#   tests/data/revman/package/*.csv        - the same analyses (outcomes 1, 2, 3, 4, 5, 7) as the
#                                            three analysis-data CSVs of a RevMan Web data package
#                                            (v1 layout and column names of a real package; UTF-8
#                                            with BOM), results printed with six decimals as
#                                            RevMan Web prints them. The test zips them. The
#                                            "Data type" label of the generic inverse-variance
#                                            outcome ("Generic inverse variance") is not taken from
#                                            a real package.
#
# RevMan 5's algorithms (Deeks & Higgins 2010, "Statistical algorithms in Review Manager 5"):
#   * study estimates with 1/2 added to every cell of a study with a zero cell, double-zero
#     studies not estimable: escalc(add=1/2, to="only0", drop00=TRUE);
#   * Mantel-Haenszel with the same rule inside the MH estimate:
#     rma.mh(add=c(1/2,1/2), to=c("only0","only0"), drop00=c(TRUE,TRUE)); Q = its QE (about the
#     MH estimate);
#   * random effects for an MH outcome: DerSimonian-Laird with that Q,
#       tau2 = max(0, (Q - (k-1)) / (S1 - S2/S1)),  S1 = sum(1/vi), S2 = sum(1/vi^2),
#     (the DL moment estimator with the MH-based Q in place of the inverse-variance Q), then
#     inverse-variance pooling with weights 1/(vi + tau2): rma(yi, vi, tau2 = tau2);
#   * random effects for inverse-variance outcomes: rma(method = "DL");
#   * Hedges' adjusted g: g = (1 - 3/(4N - 9)) (m1 - m2)/s_pooled,
#     var = N/(n1 n2) + g^2 / (2 (N - 3.94));
#   * I2 = max(0, (Q - df)/Q) * 100; RevMan stores |z|;
#   * test for subgroup differences: rma(subgroup estimates, sei = their SEs, method = "FE")$QE.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script) == 1L) dirname(normalizePath(script)) else "tests/reference"
datadir <- file.path(here, "..", "data", "revman")
dir.create(datadir, showWarnings = FALSE, recursive = TRUE)
num <- function(x) sprintf("%.17g", x)

# ---- MD and SMD per study -------------------------------------------------------------------
revman_g <- function(m1, sd1, n1, m2, sd2, n2) {
  N <- n1 + n2
  sp <- sqrt(((n1 - 1) * sd1^2 + (n2 - 1) * sd2^2) / (N - 2))
  g <- (1 - 3 / (4 * N - 9)) * (m1 - m2) / sp
  list(yi = g, vi = N / (n1 * n2) + g^2 / (2 * (N - 3.94)))
}
fleiss_cont <- data.frame(
  study = c("Davis", "Florell", "Gruen", "Hart", "Wilson"),
  m1i = c(5.0, 4.9, 22.5, 12.5, 6.5), sd1i = c(4.7, 1.71, 3.44, 1.47, 0.76),
  n1i = c(13, 30, 35, 20, 8),
  m2i = c(6.5, 6.1, 24.9, 12.3, 7.38), sd2i = c(3.8, 2.3, 10.65, 1.66, 1.41),
  n2i = c(13, 50, 35, 20, 8))
normand <- with(dat.normand1999, data.frame(
  study = source, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i))
esc <- list()
for (nm in c("fleiss1993cont", "normand1999")) {
  d <- if (nm == "normand1999") normand else fleiss_cont
  md <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
               n2i = n2i, data = d)
  smd <- escalc(measure = "SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
                n2i = n2i, data = d)
  rg <- with(d, revman_g(m1i, sd1i, n1i, m2i, sd2i, n2i))
  esc[[nm]] <- list(
    data = d,
    MD = list(call = 'escalc(measure="MD", m1i, sd1i, n1i, m2i, sd2i, n2i)',
              yi = as.numeric(md$yi), vi = as.numeric(md$vi)),
    SMD = list(call = 'escalc(measure="SMD", m1i, sd1i, n1i, m2i, sd2i, n2i)  # vtype="LS"',
               yi = as.numeric(smd$yi), vi = as.numeric(smd$vi)),
    SMD_revman = list(call = "by hand: g = (1 - 3/(4N-9)) d, var = N/(n1 n2) + g^2/(2(N-3.94))",
                      yi = rg$yi, vi = rg$vi))
}
esc$versions <- list(R = R.version.string, metafor = as.character(packageVersion("metafor")))
writeLines(toJSON(esc, digits = NA, auto_unbox = TRUE, pretty = TRUE, dataframe = "columns"),
           file.path(here, "revman_escalc.json"))

# ---- the synthetic RevMan 5 file ------------------------------------------------------------
# numbers of one pooled analysis, as RevMan stores them (ratios for ratio measures)
stats_of <- function(b, se, ci_lb, ci_ub, Q, k, tau2, ratio) {
  df <- k - 1
  z <- b / se
  f <- if (ratio) exp else identity
  out <- c(EFFECT_SIZE = num(f(b)), CI_START = num(f(ci_lb)), CI_END = num(f(ci_ub)),
           Z = num(abs(z)), P_Z = num(2 * pnorm(-abs(z))))
  if (k > 1) {
    out <- c(out, CHI2 = num(Q), DF = num(df), P_CHI2 = num(pchisq(Q, df, lower.tail = FALSE)),
             I2 = num(max(0, (Q - df) / Q) * 100))
  } else {
    out <- c(out, CHI2 = "0.0", DF = "0", P_CHI2 = "1.0", I2 = "0.0")
  }
  c(out, TAU2 = num(tau2))
}

fit_dich <- function(d, measure, method, random) {
  es <- escalc(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d,
               add = 1/2, to = "only0", drop00 = TRUE)
  ok <- !is.na(es$yi)
  if (method == "PETO") {
    f <- rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d)
    return(list(s = stats_of(f$b, f$se, f$ci.lb, f$ci.ub, f$QE, sum(ok), 0, TRUE),
                b = as.numeric(f$b), se = f$se))
  }
  if (method == "MH") {
    f <- rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, measure = measure,
                add = c(1/2, 1/2), to = c("only0", "only0"), drop00 = c(TRUE, TRUE))
    Q <- f$QE
  } else {
    f <- rma(yi, vi, data = es, method = "FE")
    Q <- f$QE
  }
  k <- sum(ok)
  if (!random) {
    return(list(s = stats_of(f$b, f$se, f$ci.lb, f$ci.ub, Q, k, 0, TRUE),
                b = as.numeric(f$b), se = f$se))
  }
  w <- 1 / es$vi[ok]
  tau2 <- if (k > 1) max(0, (Q - (k - 1)) / (sum(w) - sum(w^2) / sum(w))) else 0
  r <- rma(yi, vi, data = es[ok, ], tau2 = tau2)
  list(s = stats_of(r$b, r$se, r$ci.lb, r$ci.ub, Q, k, tau2, measure != "RD"),
       b = as.numeric(r$b), se = r$se)
}

fit_iv <- function(yi, vi, random, ratio) {
  f <- rma(yi = yi, vi = vi, method = if (random) "DL" else "FE")
  list(s = stats_of(f$b, f$se, f$ci.lb, f$ci.ub, f$QE, length(yi), if (random) f$tau2 else 0,
                    ratio), b = as.numeric(f$b), se = f$se)
}

subgroup_test <- function(fits) {
  f <- rma(yi = sapply(fits, `[[`, "b"), sei = sapply(fits, `[[`, "se"), method = "FE")
  df <- length(fits) - 1
  c(Q = num(f$QE), P_Q = num(f$QEp), I2_Q = num(max(0, (f$QE - df) / f$QE) * 100))
}

attrs <- function(x) paste(sprintf('%s="%s"', names(x), x), collapse = " ")

studies <- data.frame(
  id = c("STD-Alpha", "STD-Beta", "STD-Gamma", "STD-Delta", "STD-Epsilon", "STD-Zeta",
         "STD-Eta", "STD-Theta", "STD-M_x00fc_ller"),
  name = c("Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta", "Theta",
           "M\u00fcller \u2013 Sch\u00f6n"),
  year = c(2001, 2003, 2005, 2007, 2009, 2010, 2012, 2014, 2016))

# outcome 1: dichotomous, MH risk ratio, random effects, two subgroups (a zero cell, a double zero)
o1 <- list(
  list(name = "Low dose", d = data.frame(id = c("STD-Alpha", "STD-Beta", "STD-Gamma"),
       ai = c(12, 0, 30), n1i = c(100, 40, 150), ci = c(20, 5, 28), n2i = c(98, 41, 152))),
  list(name = "High dose", d = data.frame(id = c("STD-Delta", "STD-Epsilon", "STD-Zeta", "STD-Eta"),
       ai = c(8, 0, 25, 5), n1i = c(60, 30, 200, 50), ci = c(15, 0, 40, 6), n2i = c(62, 29, 205, 48))))
# outcome 2: Peto odds ratio, fixed effect
o2 <- data.frame(id = c("STD-Alpha", "STD-Gamma", "STD-Theta"),
                 ai = c(3, 7, 1), n1i = c(120, 140, 80), ci = c(8, 9, 4), n2i = c(118, 139, 82))
# outcome 3: continuous SMD, random effects
o3 <- data.frame(id = c("STD-Alpha", "STD-Beta", "STD-Delta", "STD-Zeta", "STD-M_x00fc_ller"),
                 m1i = c(10.2, 8.1, 12.5, 9.9, 11.0), sd1i = c(3.1, 2.5, 4.0, 3.3, 2.9),
                 n1i = c(25, 18, 40, 32, 15), m2i = c(12.0, 9.5, 12.1, 11.8, 13.2),
                 sd2i = c(3.4, 2.2, 4.4, 3.0, 3.5), n2i = c(24, 20, 41, 30, 14))
# outcome 4: continuous MD, fixed effect, two subgroups
o4 <- list(
  list(name = "Adults", d = data.frame(id = c("STD-Alpha", "STD-Gamma"), m1i = c(-5.1, -3.9),
       sd1i = c(6.2, 5.5), n1i = c(50, 64), m2i = c(-2.0, -1.1), sd2i = c(6.0, 5.9),
       n2i = c(52, 60))),
  list(name = "Children & adolescents", d = data.frame(id = c("STD-Eta", "STD-Theta", "STD-Zeta"),
       m1i = c(-1.5, -2.8, -0.4), sd1i = c(4.1, 4.8, 3.9), n1i = c(30, 28, 35),
       m2i = c(-0.9, -0.5, -0.6), sd2i = c(4.0, 5.1, 4.2), n2i = c(31, 27, 33))))
# outcome 5: generic inverse variance, hazard ratio (log HR and SE), random effects
o5 <- data.frame(id = c("STD-Beta", "STD-Delta", "STD-Eta", "STD-Theta"),
                 yi = c(-0.223, -0.105, -0.42, 0.06), sei = c(0.11, 0.09, 0.2, 0.15))
# outcome 6: only double-zero studies: not estimable
o6 <- data.frame(id = c("STD-Beta", "STD-Epsilon"), ai = c(0, 0), n1i = c(20, 30),
                 ci = c(0, 0), n2i = c(22, 29))
# outcome 7: dichotomous, inverse-variance odds ratio, random effects
o7 <- data.frame(id = c("STD-Alpha", "STD-Gamma", "STD-Delta", "STD-Zeta"),
                 ai = c(15, 22, 9, 40), n1i = c(100, 150, 60, 200),
                 ci = c(25, 20, 18, 52), n2i = c(98, 152, 62, 205))

dich_rows <- function(d, footnote_id = NULL) {
  out <- character(0)
  for (i in seq_len(nrow(d))) {
    a <- c(EVENTS_1 = d$ai[i], EVENTS_2 = d$ci[i], STUDY_ID = d$id[i],
           TOTAL_1 = d$n1i[i], TOTAL_2 = d$n2i[i])
    out <- c(out, sprintf("<DICH_DATA %s/>", attrs(a)))
  }
  out
}
cont_rows <- function(d) sapply(seq_len(nrow(d)), function(i) sprintf(
  "<CONT_DATA %s/>", attrs(c(MEAN_1 = d$m1i[i], MEAN_2 = d$m2i[i], SD_1 = d$sd1i[i],
                             SD_2 = d$sd2i[i], STUDY_ID = d$id[i], TOTAL_1 = d$n1i[i],
                             TOTAL_2 = d$n2i[i]))))

xml <- c('<?xml version="1.0" encoding="ISO-8859-1" standalone="no"?>',
         '<COCHRANE_REVIEW REVMAN_VERSION="5" REVMAN_SUB_VERSION="5.4.1" TYPE="INTERVENTION">',
         '<COVER_SHEET><TITLE>Synthetic review for tests</TITLE></COVER_SHEET>',
         '<STUDIES_AND_REFERENCES><STUDIES><INCLUDED_STUDIES>')
for (i in seq_len(nrow(studies))) {
  xml <- c(xml, sprintf('<STUDY ID="%s" NAME="%s" YEAR="%d"></STUDY>', studies$id[i],
                        studies$name[i], studies$year[i]))
}
xml <- c(xml, "</INCLUDED_STUDIES></STUDIES></STUDIES_AND_REFERENCES>",
         '<ANALYSES_AND_DATA CALCULATED_DATA="YES">',
         '<COMPARISON ID="CMP-001" NO="1">', "<NAME>Drug versus placebo</NAME>")

# outcome 1
to_d <- function(x) data.frame(ai = x$ai, n1i = x$n1i, ci = x$ci, n2i = x$n2i)
sub1 <- lapply(o1, function(s) fit_dich(to_d(s$d), "RR", "MH", TRUE))
all1 <- fit_dich(to_d(rbind(o1[[1]]$d, o1[[2]]$d)), "RR", "MH", TRUE)
xml <- c(xml, sprintf('<DICH_OUTCOME %s>', attrs(c(
  all1$s, subgroup_test(sub1), CI_TOTAL = "95", EFFECT_MEASURE = "RR", METHOD = "MH", NO = "1",
  RANDOM = "YES", STUDIES = "7", SUBGROUPS = "YES", SUBGROUP_TEST = "YES", TOTALS = "YES"))),
  "<NAME>Response (dose subgroups)</NAME>")
for (j in 1:2) {
  xml <- c(xml, sprintf('<DICH_SUBGROUP %s>', attrs(c(sub1[[j]]$s, NO = j,
                                                      STUDIES = nrow(o1[[j]]$d)))),
           sprintf("<NAME>%s</NAME>", o1[[j]]$name), dich_rows(o1[[j]]$d), "</DICH_SUBGROUP>")
}
xml <- c(xml, "</DICH_OUTCOME>")

# outcome 2: Peto; one row carries a footnote with an unescaped '<'
f2 <- fit_dich(to_d(o2), "OR", "PETO", FALSE)
xml <- c(xml, sprintf('<DICH_OUTCOME %s>', attrs(c(
  f2$s, CI_TOTAL = "95", EFFECT_MEASURE = "PETO_OR", METHOD = "PETO", NO = "2", RANDOM = "NO",
  STUDIES = "3", SUBGROUPS = "NO", TOTALS = "YES"))), "<NAME>Serious adverse events</NAME>")
r2 <- dich_rows(o2)
r2[2] <- sub("/>$", "><FOOTNOTE>events by week 12, p < 0.05 in the report</FOOTNOTE></DICH_DATA>",
             r2[2])
xml <- c(xml, r2, "</DICH_OUTCOME>")

# outcome 3: SMD random (RevMan's g, DL)
g3 <- with(o3, revman_g(m1i, sd1i, n1i, m2i, sd2i, n2i))
f3 <- fit_iv(g3$yi, g3$vi, TRUE, FALSE)
xml <- c(xml, sprintf('<CONT_OUTCOME %s>', attrs(c(
  f3$s, CI_TOTAL = "95", EFFECT_MEASURE = "SMD", METHOD = "IV", NO = "3", RANDOM = "YES",
  STUDIES = "5", SUBGROUPS = "NO", TOTALS = "YES"))), "<NAME>Pain score</NAME>",
  cont_rows(o3), "</CONT_OUTCOME>")

# outcome 4: MD fixed with subgroups; a subgroup name with an unescaped '&'
md_fit <- function(d) {
  e <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i,
              n2i = n2i, data = d)
  fit_iv(e$yi, e$vi, FALSE, FALSE)
}
sub4 <- lapply(o4, function(s) md_fit(s$d))
all4 <- md_fit(rbind(o4[[1]]$d, o4[[2]]$d))
xml <- c(xml, sprintf('<CONT_OUTCOME %s>', attrs(c(
  all4$s, subgroup_test(sub4), CI_TOTAL = "95", EFFECT_MEASURE = "MD", METHOD = "IV", NO = "4",
  RANDOM = "NO", STUDIES = "5", SUBGROUPS = "YES", SUBGROUP_TEST = "YES", TOTALS = "YES"))),
  "<NAME>Weight change (kg)</NAME>")
for (j in 1:2) {
  xml <- c(xml, sprintf('<CONT_SUBGROUP %s>', attrs(c(sub4[[j]]$s, NO = j,
                                                      STUDIES = nrow(o4[[j]]$d)))),
           sprintf("<NAME>%s</NAME>", o4[[j]]$name), cont_rows(o4[[j]]$d), "</CONT_SUBGROUP>")
}
xml <- c(xml, "</CONT_OUTCOME>")

# outcome 5: generic inverse variance, hazard ratio, random effects; one footnote
f5 <- fit_iv(o5$yi, o5$sei^2, TRUE, TRUE)
xml <- c(xml, sprintf('<IV_OUTCOME %s>', attrs(c(
  f5$s, CI_TOTAL = "95", LOG_DATA = "YES", METHOD = "IV", NO = "5", RANDOM = "YES",
  STUDIES = "4", SUBGROUPS = "NO", TOTALS = "YES"))), "<NAME>Overall survival</NAME>",
  "<EFFECT_MEASURE>Hazard Ratio</EFFECT_MEASURE>")
for (i in seq_len(nrow(o5))) {
  a <- attrs(c(ESTIMATE = num(o5$yi[i]), SE = num(o5$sei[i]), STUDY_ID = o5$id[i]))
  xml <- c(xml, if (i == 3) sprintf("<IV_DATA %s><FOOTNOTE>HR read from Figure 2</FOOTNOTE></IV_DATA>", a)
           else sprintf("<IV_DATA %s/>", a))
}
xml <- c(xml, "</IV_OUTCOME>")

# outcome 6: not estimable (RevMan stores nothing computed)
xml <- c(xml, sprintf('<DICH_OUTCOME %s>', attrs(c(
  CI_TOTAL = "95", EFFECT_MEASURE = "OR", METHOD = "MH", NO = "6", RANDOM = "NO",
  STUDIES = "2", SUBGROUPS = "NO", TOTALS = "YES", EFFECT_SIZE = "", CHI2 = "", Z = ""))),
  "<NAME>Deaths</NAME>", dich_rows(o6), "</DICH_OUTCOME>")

# outcome 7: inverse-variance odds ratio, random effects (plain DL)
f7 <- fit_dich(to_d(o7), "OR", "IV", TRUE)
xml <- c(xml, sprintf('<DICH_OUTCOME %s>', attrs(c(
  f7$s, CI_TOTAL = "95", EFFECT_MEASURE = "OR", METHOD = "IV", NO = "7", RANDOM = "YES",
  STUDIES = "4", SUBGROUPS = "NO", TOTALS = "YES"))), "<NAME>Relapse</NAME>",
  dich_rows(o7), "</DICH_OUTCOME>")

# outcome 8: O-E and variance (individual patient data), Peto method: sum(O-E)/sum(V) with
# variance 1/sum(V) is the inverse-variance average of (O-E)/V with variances 1/V
o8 <- data.frame(id = c("STD-Alpha", "STD-Delta", "STD-Theta"), oe = c(-4.2, -1.3, 0.8),
                 v = c(10.5, 6.2, 4.9))
f8 <- fit_iv(o8$oe / o8$v, 1 / o8$v, FALSE, TRUE)
xml <- c(xml, sprintf('<IPD_OUTCOME %s>', attrs(c(
  f8$s, CI_TOTAL = "95", METHOD = "PETO", NO = "8", RANDOM = "NO", STUDIES = "3",
  SUBGROUPS = "NO", TOTALS = "YES"))), "<NAME>Time to progression (IPD)</NAME>",
  "<EFFECT_MEASURE>Peto Odds Ratio</EFFECT_MEASURE>",
  sapply(seq_len(nrow(o8)), function(i) sprintf("<IPD_DATA %s/>", attrs(c(
    O_E = num(o8$oe[i]), STUDY_ID = o8$id[i], VAR = num(o8$v[i]))))), "</IPD_OUTCOME>")

# outcome 9: "swap events and non-events": RevMan analyses the non-events (n - events)
o9 <- data.frame(id = c("STD-Beta", "STD-Gamma", "STD-Eta"), ai = c(30, 120, 41),
                 n1i = c(40, 150, 50), ci = c(25, 110, 35), n2i = c(41, 152, 48))
f9 <- fit_dich(with(o9, data.frame(ai = n1i - ai, n1i = n1i, ci = n2i - ci, n2i = n2i)),
               "RR", "MH", FALSE)
xml <- c(xml, sprintf('<DICH_OUTCOME %s>', attrs(c(
  f9$s, CI_TOTAL = "95", EFFECT_MEASURE = "RR", METHOD = "MH", NO = "9", RANDOM = "NO",
  STUDIES = "3", SUBGROUPS = "NO", SWAP_EVENTS = "YES", TOTALS = "YES"))),
  "<NAME>Remission (non-events analysed)</NAME>", dich_rows(o9), "</DICH_OUTCOME>")

xml <- c(xml, "</COMPARISON>", "</ANALYSES_AND_DATA>", "</COCHRANE_REVIEW>")
bytes <- iconv(paste(xml, collapse = "\r\n"), from = "UTF-8", to = "CP1252", toRaw = TRUE)[[1]]
writeBin(c(bytes, charToRaw("\r\n")), file.path(datadir, "synthetic.rm5"))

# ---- the same analyses as a RevMan Web data package -----------------------------------------
pkgdir <- file.path(datadir, "package")
dir.create(pkgdir, showWarnings = FALSE)
p6 <- function(x) ifelse(is.na(x), "", formatC(round(as.numeric(x), 6), digits = 6, format = "f",
                                                drop0trailing = TRUE))
res_cols <- function(s, model) c(
  Mean = p6(s[["EFFECT_SIZE"]]), `CI start` = p6(s[["CI_START"]]), `CI end` = p6(s[["CI_END"]]),
  `Heterogeneity TauSQ` = if (model == "Random effects") p6(s[["TAU2"]]) else "",
  `Heterogeneity ChiSQ` = p6(s[["CHI2"]]), `Heterogeneity df` = s[["DF"]],
  `Heterogeneity P` = p6(s[["P_CHI2"]]), `Heterogeneity ISQ` = p6(s[["I2"]]),
  `Effect Z` = p6(s[["Z"]]), `Effect P` = p6(s[["P_Z"]]))
overall_row <- function(no, name, dtype, log, method, measure, model, s, sg = NULL) {
  sgc <- if (is.null(sg)) c("", "", "", "") else
    c(p6(sg[["Q"]]), "1", p6(sg[["P_Q"]]), p6(sg[["I2_Q"]]))
  c(`Analysis group` = "1", `Analysis number` = no, `Analysis name` = name,
    `Analysis group name` = "Drug versus placebo", `Data source` = "Custom input",
    `Data source eligibility` = "#N/A", `Data type` = dtype, `Log-scale data` = log,
    Outcome = "", `Intervention grouping` = "", `Experimental intervention` = "",
    `Control intervention` = "", `Subgroup by` = "", `Filter criteria` = "",
    `Experimental group label` = "", `Control group label` = "", `Statistical method` = method,
    `Effect measure` = measure, `Unit of effect measure` = "", `Analysis model` = model,
    `Subgroup estimates` = if (is.null(sg)) "false" else "true", `Overall estimates` = "true",
    `Test for subgroup differences` = if (is.null(sg)) "false" else "true",
    `Swap event and non-event` = "false", `Study CI` = "95%", `Estimate CI` = "95%",
    `Experimental cases` = "", `Experimental N` = "", `Control cases` = "", `Control N` = "",
    res_cols(s, model), `Subgroup ChiSQ` = sgc[1], `Subgroup df` = sgc[2],
    `Subgroup P` = sgc[3], `Subgroup ISQ` = sgc[4], ID = paste0("analysis:", no))
}
sub_row <- function(no, name, j, s, model) c(
  `Analysis group` = "1", `Analysis number` = no, Subgroup = name, `Subgroup number` = j,
  `Experimental cases` = "", `Experimental N` = "", `Control cases` = "", `Control N` = "",
  Weight = "", res_cols(s, model), ID = paste0("subgroup:", no, ".", j))
data_row <- function(no, name, sg, id, d = list()) {
  st <- studies[studies$id == id, ]
  v <- function(k) if (is.null(d[[k]])) "0.0" else num(d[[k]])
  c(`Analysis group` = "1", `Analysis number` = no, `Analysis name` = name, Subgroup = sg,
    Applicability = "SUBGROUP_AND_OVERALL", Study = st$name, `Study year` = st$year,
    `GIV Mean` = v("yi"), `GIV SE` = v("sei"), `Experimental mean` = v("m1i"),
    `Experimental SD` = v("sd1i"), `Experimental cases` = v("ai"), `Experimental N` = v("n1i"),
    `Control mean` = v("m2i"), `Control SD` = v("sd2i"), `Control cases` = v("ci"),
    `Control N` = v("n2i"), `O-E` = "0.0", Variance = "0.0", Weight = "0", Mean = "0",
    `CI start` = "0", `CI end` = "0", Footnotes = "")
}
rows_of <- function(no, name, d, sg = "") lapply(seq_len(nrow(d)), function(i)
  data_row(no, name, sg, d$id[i], as.list(d[i, setdiff(names(d), "id")])))
ov <- list(
  overall_row("1", "Response (dose subgroups)", "Dichotomous", "true", "MH", "Risk Ratio",
              "Random effects", all1$s, subgroup_test(sub1)),
  overall_row("2", "Serious adverse events", "Dichotomous", "true", "Peto", "Peto Odds Ratio",
              "Fixed effect", f2$s),
  overall_row("3", "Pain score", "Continuous", "false", "IV", "Std. Mean Difference",
              "Random effects", f3$s),
  overall_row("4", "Weight change (kg)", "Continuous", "false", "IV", "Mean Difference",
              "Fixed effect", all4$s, subgroup_test(sub4)),
  overall_row("5", "Overall survival", "Generic inverse variance", "true", "IV", "Hazard Ratio",
              "Random effects", f5$s),
  overall_row("7", "Relapse", "Dichotomous", "true", "IV", "Odds Ratio", "Random effects", f7$s))
sgs <- list(sub_row("1", o1[[1]]$name, "1", sub1[[1]]$s, "Random effects"),
            sub_row("1", o1[[2]]$name, "2", sub1[[2]]$s, "Random effects"),
            sub_row("4", o4[[1]]$name, "1", sub4[[1]]$s, "Fixed effect"),
            sub_row("4", o4[[2]]$name, "2", sub4[[2]]$s, "Fixed effect"))
dr <- c(rows_of("1", "Response (dose subgroups)", o1[[1]]$d, o1[[1]]$name),
        rows_of("1", "Response (dose subgroups)", o1[[2]]$d, o1[[2]]$name),
        rows_of("2", "Serious adverse events", o2), rows_of("3", "Pain score", o3),
        rows_of("4", "Weight change (kg)", o4[[1]]$d, o4[[1]]$name),
        rows_of("4", "Weight change (kg)", o4[[2]]$d, o4[[2]]$name),
        rows_of("5", "Overall survival", o5), rows_of("7", "Relapse", o7))
write_pkg <- function(rows, file) {
  m <- do.call(rbind, rows)
  colnames(m) <- gsub("SQ", "\u00b2", colnames(m))  # Tau\u00b2, Chi\u00b2, I\u00b2 as RevMan Web spells them
  q <- function(x) ifelse(grepl('[,"]', x), paste0('"', gsub('"', '""', x), '"'), x)
  lines <- c(paste(q(colnames(m)), collapse = ","), apply(m, 1, function(r) paste(q(r), collapse = ",")))
  con <- file(file.path(pkgdir, file), open = "wb")
  writeBin(as.raw(c(0xef, 0xbb, 0xbf)), con)
  writeBin(charToRaw(enc2utf8(paste0(paste(lines, collapse = "\r\n"), "\r\n"))), con)
  close(con)
}
write_pkg(ov, "SYN-overall-estimates-and-settings.csv")
write_pkg(sgs, "SYN-subgroup-estimates.csv")
write_pkg(dr, "SYN-data-rows.csv")
cat("wrote", file.path(here, "revman_escalc.json"), file.path(datadir, "synthetic.rm5"), "and",
    pkgdir, "\n")
