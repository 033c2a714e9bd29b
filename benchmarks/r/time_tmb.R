#!/usr/bin/env Rscript
## time_tmb.R -- time glmmTMB's fit of glmmTMB reference models (their JSON `call`), for
## benchmarks/bench_tmb.py, which runs this script and compares the times with glmmjax's.
##
## Usage:
##   Rscript benchmarks/r/time_tmb.R [--reps N] [--out FILE] REF.json [REF.json ...]
## --reps: timed fits per model after one untimed warm-up fit (default 5)
## --out:  output CSV (default: standard output); progress goes to standard error.
##
## Data: a JSON whose `dataset_location` is missing or "glmmjax" fits the dataset bundled
## with glmmjax (tests/fixtures/load_data.R: R's column types and factor levels); otherwise
## the CSV named by `dataset` next to the JSON (simulated data), its character columns
## made factors, as the make_refs scripts do. The data frame is bound under the CSV's base
## name and the JSON's `call` is evaluated as written (glmmTMB's default settings unless
## the call sets some, as t_fam_start's start = ...). A `call` that is not glmmTMB(...)
## (the lognormal reference, fitted with a TMB template) is reported with status
## "not a glmmTMB call" and no times.
##
## Output columns:
##   id        the JSON's id
##   status    "ok", "not a glmmTMB call" or "error: <message>"
##   reps      timed fits
##   min_s     minimum over the timed fits of system.time(<call>)["elapsed"] (gc first):
##             model construction, nlminb optimisation and sdreport (glmmTMB's default
##             se = TRUE), in a warm session (package loaded, data in memory, one warm-up fit)
##   median_s  their median
##   min_cpu_s minimum of the CPU time (user + system) of the same fits: less sensitive to
##             other processes competing for the cores than the elapsed time
##   logLik    logLik of the fit (to check it against the JSON's: the same data and model)
##   loadavg_1m  1-minute load average when the model finished

suppressPackageStartupMessages({
  library(glmmTMB)
  library(jsonlite)
})
options(contrasts = c(unordered = "contr.treatment", ordered = "contr.poly"))

get_script_dir <- function() {
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) return(dirname(normalizePath(sub("^--file=", "", a[1]))))
  getwd()
}
HERE <- get_script_dir()
FIXTURES <- normalizePath(file.path(HERE, "..", "..", "tests", "fixtures"))
source(file.path(FIXTURES, "load_data.R"))   # DATA_DIR, load_data()

args <- commandArgs(trailingOnly = TRUE)
REPS <- 5L
OUT <- ""
files <- character()
i <- 1L
while (i <= length(args)) {
  a <- args[i]
  if (a == "--reps") { REPS <- as.integer(args[i + 1L]); i <- i + 2L }
  else if (a == "--out") { OUT <- args[i + 1L]; i <- i + 2L }
  else { files <- c(files, a); i <- i + 1L }
}
if (!length(files)) stop("usage: time_tmb.R [--reps N] [--out FILE] REF.json ...")
if (is.na(REPS) || REPS < 1L) stop("--reps needs a positive integer")

loadavg <- function() tryCatch(as.numeric(strsplit(readLines("/proc/loadavg"), " ")[[1]][1]),
                               error = function(e) NA_real_)
quiet_eval <- function(expr, env) suppressWarnings(suppressMessages(eval(expr, envir = env)))

read_local_csv <- function(file) {
  d <- read.csv(file, stringsAsFactors = FALSE)
  for (nm in names(d)) if (is.character(d[[nm]])) d[[nm]] <- factor(d[[nm]])
  d
}

rows <- list()
data_cache <- list()
for (f in files) {
  ref <- fromJSON(f, simplifyVector = FALSE)
  name <- sub("\\.csv$", "", ref$dataset)
  loc <- if (is.null(ref$dataset_location)) "glmmjax" else ref$dataset_location
  row <- data.frame(id = ref$id, status = "ok", reps = NA_integer_, min_s = NA_real_, median_s = NA_real_,
                    min_cpu_s = NA_real_, logLik = NA_real_, loadavg_1m = NA_real_, stringsAsFactors = FALSE)
  cat(sprintf("[%s] %-24s ", format(Sys.time(), "%H:%M:%S"), ref$id), file = stderr())
  if (!grepl("^\\s*glmmTMB\\(", ref$call)) {
    row$status <- "not a glmmTMB call"
  } else {
    key <- if (loc == "glmmjax") name else normalizePath(file.path(dirname(f), ref$dataset))
    if (is.null(data_cache[[key]]))
      data_cache[[key]] <- if (loc == "glmmjax") load_data(name) else read_local_csv(key)
    env <- new.env(parent = globalenv())
    assign(name, data_cache[[key]], envir = env)
    expr <- str2lang(ref$call)
    res <- tryCatch({
      m <- quiet_eval(expr, env)                                     # warm-up
      row$logLik <- as.numeric(logLik(m))
      vapply(seq_len(REPS), function(k) {
        st <- system.time(quiet_eval(expr, env))
        c(unname(st["elapsed"]), unname(st["user.self"] + st["sys.self"]))
      }, c(0, 0))
    }, error = function(e) e)
    if (inherits(res, "error")) {
      row$status <- paste("error:", gsub("[\r\n]+", " ", conditionMessage(res)))
    } else {
      row$reps <- REPS; row$min_s <- min(res[1, ]); row$median_s <- median(res[1, ])
      row$min_cpu_s <- min(res[2, ])
    }
  }
  row$loadavg_1m <- loadavg()
  cat(sprintf("%s  min %.4f s  median %.4f s\n", row$status, row$min_s, row$median_s), file = stderr())
  rows[[length(rows) + 1L]] <- row
}

res <- do.call(rbind, rows)
res$min_s <- signif(res$min_s, 5); res$median_s <- signif(res$median_s, 5); res$min_cpu_s <- signif(res$min_cpu_s, 5); res$logLik <- signif(res$logLik, 12)
if (nzchar(OUT)) write.csv(res, OUT, row.names = FALSE, na = "") else write.csv(res, stdout(), row.names = FALSE, na = "")
