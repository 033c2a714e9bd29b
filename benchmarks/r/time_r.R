#!/usr/bin/env Rscript
## time_r.R -- time the R reference fits (lme4 / glmmTMB) for comparison with glmmjax.
##
## Usage (from anywhere; one core, like the reference suite):
##   taskset -c 1 Rscript benchmarks/r/time_r.R
## Environment variables (all optional):
##   R_REPS        timed in-process fits per model after one warm-up fit (default 5)
##   R_PROC_REPS   fresh-process runs per model (default 3)
##   R_BOOT_NSIM   bootMer simulations for the grouseticks loc+index model (default 100)
##   R_ONLY        regular expression; only model ids matching it are timed
##   R_REFS_DIR    reference JSON directory (default <repo>/tests/fixtures/reference)
##   R_DATA_DIR    CSV directory             (default <repo>/glmmjax/datasets/data)
##   R_OUT         output CSV                (default <this dir>/r_times.csv)
##   R_WRITE_SCRIPTS  a directory: write each model's fresh-process script there as <id>.R
##                 and stop, timing nothing (benchmarks/bench_reference.py runs them itself,
##                 alternating with its own fresh-process fits)
##
## Output columns: id, engine, median_s, min_s, reps, process_s, process_reps, loadavg_1m
##   median_s / min_s : elapsed seconds of system.time(<call>) (gc first) over R_REPS
##                      fits in an already-warm R session (packages loaded, data in memory,
##                      one warm-up fit done).
##   process_s        : median elapsed seconds over R_PROC_REPS runs of a fresh
##                      `Rscript file.R` that loads the package, reads the CSV, rebuilds
##                      the factors and evaluates the call (i.e. cold start, end to end).
##   row bootMer_grouseticks_loc_index: median_s = min_s = seconds per bootstrap refit
##                      (elapsed of bootMer(..., nsim, FUN = fixef) / nsim), reps = nsim.
##   loadavg_1m       : 1-minute load average (/proc/loadavg) when the row finished; a
##                      value well above 1 means other processes competed for the CPU.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(jsonlite)
})

get_script_dir <- function() {
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) return(dirname(normalizePath(sub("^--file=", "", a[1]))))
  getwd()
}
HERE <- get_script_dir()
REPO <- normalizePath(file.path(HERE, "..", ".."))
REFS_DIR  <- Sys.getenv("R_REFS_DIR", file.path(REPO, "tests", "fixtures", "reference"))
DATA_DIR  <- Sys.getenv("R_DATA_DIR", file.path(REPO, "glmmjax", "datasets", "data"))
OUT       <- Sys.getenv("R_OUT", file.path(HERE, "r_times.csv"))
REPS      <- as.integer(Sys.getenv("R_REPS", "5"))
PROC_REPS <- as.integer(Sys.getenv("R_PROC_REPS", "3"))
NSIM      <- as.integer(Sys.getenv("R_BOOT_NSIM", "100"))
ONLY      <- Sys.getenv("R_ONLY", "")
SCRIPTS   <- Sys.getenv("R_WRITE_SCRIPTS", "")
RSCRIPT   <- file.path(R.home("bin"), "Rscript")
options(contrasts = c(unordered = "contr.treatment", ordered = "contr.poly"))

## ------------------------------------------------------------------ data
## Same approach as tests/fixtures/reference/make_refs.R: read every column with the
## class recorded in the JSON, then rebuild factor / ordered columns with exactly the
## recorded levels.
col_classes <- function(cols)
  vapply(cols, function(s) switch(s$type, factor = , ordered = , character = "character",
                                  integer = "integer", numeric = "numeric",
                                  logical = "logical", "character"), "")

read_data <- function(csv, cols) {
  d <- read.csv(csv, colClasses = unname(col_classes(cols)), na.strings = "NA",
                check.names = FALSE, stringsAsFactors = FALSE, fileEncoding = "UTF-8")
  stopifnot(identical(names(d), vapply(cols, `[[`, "", "name")))
  for (s in cols) if (s$type %in% c("factor", "ordered"))
    d[[s$name]] <- factor(d[[s$name]], levels = as.character(unlist(s$levels)),
                          ordered = s$type == "ordered")
  d
}

loadavg <- function() tryCatch(as.numeric(strsplit(readLines("/proc/loadavg"), " ")[[1]][1]),
                               error = function(e) NA_real_)

quiet_eval <- function(expr, env)
  suppressWarnings(suppressMessages(eval(expr, envir = env)))

## Fresh-process script: load the engine, read the CSV, rebuild factors, fit.
write_proc_script <- function(file, ref, csv) {
  cols <- ref$columns
  fac <- Filter(function(s) s$type %in% c("factor", "ordered"), cols)
  lines <- c(
    sprintf("suppressMessages(library(%s))", ref$engine),
    "options(contrasts = c(unordered = 'contr.treatment', ordered = 'contr.poly'))",
    sprintf("%s <- read.csv(%s, colClasses = %s, na.strings = 'NA', check.names = FALSE, stringsAsFactors = FALSE, fileEncoding = 'UTF-8')",
            ref$dataset_name, deparse(csv),
            paste(deparse(unname(col_classes(cols)), width.cutoff = 500L), collapse = "")),
    vapply(fac, function(s)
      sprintf("%s[[%s]] <- factor(%s[[%s]], levels = %s, ordered = %s)",
              ref$dataset_name, deparse(s$name), ref$dataset_name, deparse(s$name),
              paste(deparse(as.character(unlist(s$levels)), width.cutoff = 500L), collapse = ""),
              s$type == "ordered"), ""),
    sprintf("fit <- suppressWarnings(%s)", ref$call),
    "invisible(fit)")
  writeLines(lines, file)
}

## ------------------------------------------------------------------ main loop
files <- sort(list.files(REFS_DIR, pattern = "\\.json$", full.names = TRUE))
tmp <- tempfile("time_r_"); dir.create(tmp)
rows <- list(); data_cache <- list()
for (f in files) {
  ref <- fromJSON(f, simplifyVector = FALSE)
  if (is.null(ref$call) || is.null(ref$dataset)) next
  if (nzchar(ONLY) && !grepl(ONLY, ref$id)) next
  ref$dataset_name <- sub("\\.csv$", "", ref$dataset)
  ref$engine <- if (is.null(ref$engine)) (if (grepl("^glmmTMB", ref$call)) "glmmTMB" else "lme4") else ref$engine
  csv <- file.path(DATA_DIR, ref$dataset)
  if (nzchar(SCRIPTS)) {
    write_proc_script(file.path(SCRIPTS, paste0(ref$id, ".R")), ref, csv)
    next
  }
  if (is.null(data_cache[[ref$dataset]])) data_cache[[ref$dataset]] <- read_data(csv, ref$columns)
  env <- new.env(parent = globalenv())
  assign(ref$dataset_name, data_cache[[ref$dataset]], envir = env)
  expr <- str2lang(ref$call)

  cat(sprintf("[%s] %-38s ", format(Sys.time(), "%H:%M:%S"), ref$id)); flush.console()
  invisible(quiet_eval(expr, env))                               # warm-up
  times <- vapply(seq_len(REPS), function(i)
    unname(system.time(quiet_eval(expr, env))["elapsed"]), 0)

  pfile <- file.path(tmp, paste0(ref$id, ".R"))
  write_proc_script(pfile, ref, csv)
  ptimes <- vapply(seq_len(PROC_REPS), function(i) {
    st <- NA_integer_
    el <- system.time(st <- system2(RSCRIPT, shQuote(pfile), stdout = FALSE, stderr = FALSE))["elapsed"]
    if (!identical(as.integer(st), 0L)) stop("fresh-process fit failed for ", ref$id, " (", pfile, ")")
    unname(el)
  }, 0)

  cat(sprintf("median %.4f s  min %.4f s  process %.3f s\n", median(times), min(times), median(ptimes)))
  rows[[length(rows) + 1]] <- data.frame(
    id = ref$id, engine = ref$engine, median_s = median(times), min_s = min(times), reps = REPS,
    process_s = median(ptimes), process_reps = PROC_REPS, loadavg_1m = loadavg(),
    stringsAsFactors = FALSE)
}

if (nzchar(SCRIPTS)) quit(save = "no")

## ------------------------------------------------------------------ bootMer
if (!nzchar(ONLY) || grepl(ONLY, "bootMer_grouseticks_loc_index")) {
  gt <- fromJSON(file.path(REFS_DIR, "grouseticks_glmer_pois_loc_index.json"), simplifyVector = FALSE)
  grouseticks <- read_data(file.path(DATA_DIR, gt$dataset), gt$columns)
  m <- glmer(TICKS ~ YEAR + (1 | LOCATION) + (1 | INDEX), data = grouseticks, family = poisson)
  cat(sprintf("[%s] bootMer nsim = %d ... ", format(Sys.time(), "%H:%M:%S"), NSIM)); flush.console()
  set.seed(1)
  el <- unname(system.time(b <- suppressWarnings(suppressMessages(
    bootMer(m, FUN = fixef, nsim = NSIM, seed = 1)))) ["elapsed"])
  per <- el / NSIM
  cat(sprintf("total %.2f s, %.4f s per refit\n", el, per))
  rows[[length(rows) + 1]] <- data.frame(
    id = "bootMer_grouseticks_loc_index", engine = "lme4", median_s = per, min_s = per, reps = NSIM,
    process_s = NA_real_, process_reps = NA_integer_, loadavg_1m = loadavg(),
    stringsAsFactors = FALSE)
}

res <- do.call(rbind, rows)
res$median_s <- signif(res$median_s, 5); res$min_s <- signif(res$min_s, 5)
res$process_s <- signif(res$process_s, 5)
write.csv(res, OUT, row.names = FALSE, na = "")
unlink(tmp, recursive = TRUE)
cat("wrote", OUT, "\n")
