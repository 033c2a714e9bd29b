# Fits every dataset of the correctness sweep with lme4 or glmmTMB (tests/sweep/README.md).
#
#   Rscript tests/sweep/fit_r.R <data dir> <manifest.csv> <out.csv>
#
# <data dir> holds one CSV per dataset (written by make_references.py); the results table
# has one row per dataset: R's log-likelihood (REML fits: -REMLcrit / 2, as logLik reports
# it), whether R warned (convergence warnings; lme4's "boundary (singular) fit" is a
# message and counted as singular, not as a warning), the warnings' text, isSingular, the
# fixed effects, the random-effect SDs and R's optimizer parameters (glmmTMB's fit$fit$par,
# named; lme4's theta then beta).
# Made with R 4.2.2, lme4 1.1-31, glmmTMB 1.1.5 (Debian packages).
suppressPackageStartupMessages({ library(lme4); library(glmmTMB) })
args <- commandArgs(trailingOnly = TRUE)
data_dir <- args[1]; man <- read.csv(args[2], stringsAsFactors = FALSE); out_file <- args[3]

fam_of <- function(name, link) {
  link <- if (is.na(link) || link == "") NULL else link
  switch(name,
         gaussian = if (is.null(link)) gaussian() else gaussian(link = link),
         poisson = if (is.null(link)) poisson() else poisson(link = link),
         binomial = if (is.null(link)) binomial() else binomial(link = link),
         nbinom2 = nbinom2(),
         Gamma = Gamma(link = if (is.null(link)) "inverse" else link),
         beta = beta_family(),
         stop("unknown family ", name))
}

fit_one <- function(row) {
  d <- read.csv(file.path(data_dir, paste0(gsub("/", "__", row$id), ".csv")), stringsAsFactors = TRUE)
  f <- as.formula(row$formula)
  warns <- character(0)
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(tryCatch({
    if (row$engine == "lmer") {
      lmer(f, d, REML = as.logical(row$reml))
    } else if (row$engine == "glmer") {
      glmer(f, d, family = fam_of(row$family, row$link))
    } else {
      zi <- if (is.na(row$zi) || row$zi == "") ~0 else as.formula(row$zi)
      disp <- if (is.na(row$disp) || row$disp == "") ~1 else as.formula(row$disp)
      glmmTMB(f, d, family = fam_of(row$family, row$link), ziformula = zi, dispformula = disp)
    }
  }, error = function(e) e),
  warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
  message = function(m) invokeRestart("muffleMessage"))
  elapsed <- proc.time()[["elapsed"]] - t0
  if (inherits(fit, "error")) {
    return(data.frame(id = row$id, r_loglik = NA, r_warned = 1L, r_warning = substr(conditionMessage(fit), 1, 200),
                      r_singular = NA, r_fixef = "", r_sd = "", r_par = "", r_seconds = elapsed))
  }
  if (row$engine == "glmmTMB") {
    ll <- as.numeric(logLik(fit))
    sing <- NA
    vc <- VarCorr(fit)$cond
    sds <- unlist(lapply(vc, function(v) attr(v, "stddev")))
    fx <- fixef(fit)$cond
    pd <- fit$sdr$pdHess
    if (!isTRUE(pd)) warns <- c(warns, "non-positive-definite Hessian")
    if (fit$fit$convergence != 0) warns <- c(warns, paste("convergence code", fit$fit$convergence, fit$fit$message))
    par <- fit$fit$par
  } else {
    ll <- as.numeric(logLik(fit))
    sing <- isSingular(fit)
    sds <- as.data.frame(VarCorr(fit))
    sds <- sds$sdcor[is.na(sds$var2) & sds$grp != "Residual"]
    fx <- fixef(fit)
    par <- c(setNames(getME(fit, "theta"), rep("theta", length(getME(fit, "theta")))),
             setNames(getME(fit, "beta"), rep("beta", length(getME(fit, "beta")))))
    msgs <- fit@optinfo$conv$lme4$messages
    if (length(msgs)) warns <- c(warns, msgs)
  }
  warns <- unique(warns[!grepl("boundary \\(singular\\)", warns)])
  data.frame(id = row$id, r_loglik = sprintf("%.12f", ll), r_warned = as.integer(length(warns) > 0),
             r_warning = substr(paste(warns, collapse = " | "), 1, 200), r_singular = as.integer(sing),
             r_fixef = paste(sprintf("%.8g", fx), collapse = ";"), r_sd = paste(sprintf("%.8g", sds), collapse = ";"),
             r_par = paste(names(par), sprintf("%.15g", par), sep = "=", collapse = ";"),
             r_seconds = round(elapsed, 3))
}

rows <- lapply(seq_len(nrow(man)), function(i) fit_one(man[i, ]))
res <- do.call(rbind, rows)
write.csv(res, out_file, row.names = FALSE)
cat(sprintf("%d datasets fitted, %d with warnings or errors\n", nrow(res), sum(res$r_warned)))
