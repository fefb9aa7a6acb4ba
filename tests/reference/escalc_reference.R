# Reference effect sizes for tests/test_effects.py, computed with R metafor::escalc().
#
# Run once from the repository root (needs R with metafor >= 3.8 and jsonlite):
#     Rscript tests/reference/escalc_reference.R
# It writes
#   tests/reference/datasets/<name>.csv  - public example datasets (bundled with R package
#                                         metadat, loaded by metafor) in bayesmtor's counts shape
#                                         study,events_trt,n_trt,events_ctl,n_ctl
#   tests/reference/escalc_reference.json - escalc() output (yi, vi) for a grid of measures and
#                                         zero-cell options, with the exact R call of each case
#                                         and the R / metafor / metadat versions.
# The tests read only these files; R is not needed to run them.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
outdir <- if (length(script) == 1L) dirname(normalizePath(script)) else "tests/reference"
dir.create(file.path(outdir, "datasets"), showWarnings = FALSE)

# ---- datasets ---------------------------------------------------------------------------------
datasets <- list(
  nielweise2007 = list(
    data = with(dat.nielweise2007, data.frame(
      study = paste(author, year), events_trt = ai, n_trt = n1i, events_ctl = ci, n_ctl = n2i)),
    r_object = "metadat::dat.nielweise2007 (all 18 trials)",
    citation = paste(
      "Niel-Weise BS, Stijnen T, van den Broek PJ (2007). Anti-infective-treated central venous",
      "catheters: a systematic review of randomized controlled trials. Intensive Care Medicine",
      "33(12), 2058-2068. Via R package metadat (White et al. 2022), dataset dat.nielweise2007.")
  ),
  yusuf1985 = list(
    data = with(subset(dat.yusuf1985, table == "9" & !is.na(ai)), data.frame(
      study = trial, events_trt = ai, n_trt = n1i, events_ctl = ci, n_ctl = n2i)),
    r_object = paste(
      "metadat::dat.yusuf1985, table == '9' (beta blockers, mortality in short-term trials",
      "after myocardial infarction), trials 3.23 Ayerst and 3.24 ISIS dropped (counts NA)"),
    citation = paste(
      "Yusuf S, Peto R, Lewis J, Collins R, Sleight P (1985). Beta blockade during and after",
      "myocardial infarction: an overview of the randomized trials. Progress in Cardiovascular",
      "Diseases 27(5), 335-371. Via R package metadat (White et al. 2022), dataset",
      "dat.yusuf1985.")
  ),
  bcg = list(
    data = with(dat.bcg, data.frame(
      study = paste(author, year), events_trt = tpos, n_trt = tpos + tneg,
      events_ctl = cpos, n_ctl = cpos + cneg)),
    r_object = "metadat::dat.bcg (all 13 trials)",
    citation = paste(
      "Colditz GA, Brewer TF, Berkey CS, et al. (1994). Efficacy of BCG vaccine in the",
      "prevention of tuberculosis: meta-analysis of the published literature. JAMA 271(9),",
      "698-702. Via R package metadat (White et al. 2022), dataset dat.bcg.")
  )
)

for (nm in names(datasets)) {
  d <- datasets[[nm]]$data
  stopifnot(!anyDuplicated(d$study), !anyNA(d))
  zero <- d$events_trt == 0 | d$events_ctl == 0 | d$events_trt == d$n_trt |
    d$events_ctl == d$n_ctl
  double <- (d$events_trt == 0 & d$events_ctl == 0) |
    (d$events_trt == d$n_trt & d$events_ctl == d$n_ctl)
  datasets[[nm]]$zero_cells <- sprintf(
    "%d of %d trials with a zero cell, %d double-zero trials%s", sum(zero), nrow(d), sum(double),
    if (any(double)) paste0(" (", paste(d$study[double], collapse = ", "), ")") else "")
  write.csv(d, file.path(outdir, "datasets", paste0(nm, ".csv")), row.names = FALSE)
}

readme <- c(
  "# Public example datasets used as test references",
  "",
  "Written by `tests/reference/escalc_reference.R` from the datasets bundled with the R package",
  "metadat (loaded by metafor). Columns: study, events_trt, n_trt, events_ctl, n_ctl.",
  "",
  "White T, Noble D, Senior A, Hamilton WK, Viechtbauer W (2022). metadat: Meta-Analysis",
  paste0("Datasets. R package version ", as.character(packageVersion("metadat")), "."),
  ""
)
for (nm in names(datasets)) {
  readme <- c(readme, paste0("## ", nm, ".csv"), "",
              paste0("- Source: ", datasets[[nm]]$r_object),
              paste0("- Citation: ", datasets[[nm]]$citation),
              paste0("- Zero cells: ", datasets[[nm]]$zero_cells), "")
}
writeLines(readme, file.path(outdir, "datasets", "README.md"))

# ---- escalc grid -------------------------------------------------------------------------------
settings <- list(
  list(add = 0.5, to = "only0",  drop00 = TRUE),
  list(add = 0.5, to = "only0",  drop00 = FALSE),
  list(add = 0.5, to = "all",    drop00 = FALSE),
  list(add = 0.5, to = "all",    drop00 = TRUE),
  list(add = 0.5, to = "if0all", drop00 = TRUE),
  list(add = 1,   to = "only0",  drop00 = TRUE)
)

cases <- list()
for (nm in names(datasets)) {
  d <- datasets[[nm]]$data
  sets <- settings
  if (nm == "bcg") sets <- c(sets, list(list(add = 0.5, to = "none", drop00 = FALSE)))
  for (measure in c("RR", "OR", "RD")) {
    for (s in sets) {
      call_text <- sprintf(
        paste0('escalc(measure = "%s", ai = events_trt, n1i = n_trt, ci = events_ctl, ',
               'n2i = n_ctl, data = %s, add = %s, to = "%s", drop00 = %s)'),
        measure, nm, format(s$add), s$to, if (s$drop00) "TRUE" else "FALSE")
      es <- escalc(measure = measure, ai = events_trt, n1i = n_trt, ci = events_ctl,
                   n2i = n_ctl, data = d, add = s$add, to = s$to, drop00 = s$drop00)
      cases[[length(cases) + 1L]] <- list(
        dataset = nm, measure = measure, add = s$add, to = s$to, drop00 = s$drop00,
        call = call_text, study = d$study,
        yi = as.numeric(es$yi), vi = as.numeric(es$vi))
    }
  }
}

# ---- ratio with a 95% CI -> log ratio and SE ----------------------------------------------------
# metafor 3.8 has no conv.wald() (added in 4.0), so the Wald back-calculation is written out in R:
# yi = log(estimate), sei = (log(ci_high) - log(ci_low)) / (2 * qnorm(0.975)).
# PFS hazard ratios typed from Table 1 of the 2014 mTOR meta-analysis (seed document):
# Hortobagyi et al. 2011 / BOLERO-2, HR 0.44 (95% CI 0.36-0.53); Baselga et al. 2012 / BOLERO-2,
# HR 0.43 (0.35-0.54); Noguchi et al. 2013 / BOLERO-2 Asian, HR 0.62 (0.41-0.94); Bachelot et al.
# 2012 (TAMRAD), HR 0.54 (0.36-0.81).
hr <- data.frame(
  study = c("Hortobagyi 2011", "Baselga 2012", "Noguchi 2013", "Bachelot 2012"),
  estimate = c(0.44, 0.43, 0.62, 0.54),
  ci_low = c(0.36, 0.35, 0.41, 0.36),
  ci_high = c(0.53, 0.54, 0.94, 0.81))
cw <- with(hr, list(yi = log(estimate),
                    vi = ((log(ci_high) - log(ci_low)) / (2 * qnorm(0.975)))^2))
ci_case <- list(
  call = paste0("yi = log(estimate); ",
                "vi = ((log(ci_high) - log(ci_low)) / (2 * qnorm(0.975)))^2"),
  source = "Table 1 of seeds/mtor_meta_analysis_2014.txt (PFS hazard ratios, 95% CI)",
  study = hr$study, estimate = hr$estimate, ci_low = hr$ci_low, ci_high = hr$ci_high,
  yi = as.numeric(cw$yi), vi = as.numeric(cw$vi), qnorm_0975 = qnorm(0.975))

out <- list(
  generated_by = "tests/reference/escalc_reference.R",
  r_version = R.version.string,
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  note = paste("escalc() with vtype = 'LS' (default); yi/vi null where escalc returns NA",
               "(double-zero trials with drop00 = TRUE)."),
  datasets = lapply(datasets, function(x) list(
    csv = NULL, source = x$r_object, citation = x$citation, zero_cells = x$zero_cells)),
  cases = cases,
  ratio_ci = ci_case)
for (nm in names(datasets)) out$datasets[[nm]]$csv <- paste0("datasets/", nm, ".csv")

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           file.path(outdir, "escalc_reference.json"))
cat("wrote", length(cases), "escalc cases to", file.path(outdir, "escalc_reference.json"), "\n")
