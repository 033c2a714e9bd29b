#!/usr/bin/env Rscript
## time_profile.R -- time lme4's profile confidence intervals, confint(m) (method = "profile"),
## for comparison with glmmjax (benchmarks/bench_profile.py).
##
## Usage (one core, like time_r.R):
##   taskset -c 1 Rscript benchmarks/r/time_profile.R
## Environment variables (all optional):
##   R_REPS     timed confint() calls per model after the fit (default 3)
##   R_ONLY     regular expression; only model ids matching it are timed
##   R_DATA_DIR CSV directory (default <repo>/glmmjax/datasets/data)
##   R_OUT      output CSV    (default <this dir>/profile_times.csv)
##
## Output columns: id, call, median_s, min_s, reps, loadavg_1m
##   median_s / min_s : elapsed seconds of system.time(confint(m)) (gc first) over R_REPS
##                      calls in a warm R session (packages loaded, model fitted); the fit
##                      itself is not timed.
##   loadavg_1m       : 1-minute load average when the row finished (above ~1: other
##                      processes competed for the CPU).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
options(contrasts = c(unordered = "contr.treatment", ordered = "contr.poly"))

get_script_dir <- function() {
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) return(dirname(normalizePath(sub("^--file=", "", a[1]))))
  getwd()
}
HERE <- get_script_dir()
REPO <- normalizePath(file.path(HERE, "..", ".."))
DATA_DIR <- Sys.getenv("R_DATA_DIR", file.path(REPO, "glmmjax", "datasets", "data"))
OUT <- Sys.getenv("R_OUT", file.path(HERE, "profile_times.csv"))
REPS <- as.integer(Sys.getenv("R_REPS", "3"))
ONLY <- Sys.getenv("R_ONLY", "")

load_data <- function(name) {
  spec <- fromJSON(file.path(DATA_DIR, paste0(name, ".json")), simplifyVector = FALSE)
  cols <- spec$columns
  cls <- vapply(cols, function(s) switch(s$type, factor = , ordered = , character = "character",
                                         integer = "integer", numeric = "numeric",
                                         logical = "logical"), "")
  d <- read.csv(file.path(DATA_DIR, spec$file), colClasses = unname(cls), na.strings = "NA",
                check.names = FALSE, stringsAsFactors = FALSE, fileEncoding = "UTF-8")
  for (s in cols) if (s$type %in% c("factor", "ordered"))
    d[[s$name]] <- factor(d[[s$name]], levels = unlist(s$levels), ordered = s$type == "ordered")
  d
}
loadavg <- function() tryCatch(as.numeric(strsplit(readLines("/proc/loadavg"), " ")[[1]][1]),
                               error = function(e) NA_real_)

models <- list(
  sleepstudy = list(dataset = "sleepstudy",
                    call = "lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy, REML = TRUE)"),
  cbpp = list(dataset = "cbpp",
              call = "glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial)"),
  grouseticks = list(dataset = "grouseticks",
                     call = "glmer(TICKS ~ YEAR + (1 | LOCATION), data = grouseticks, family = poisson)")
)

rows <- list()
for (id in names(models)) {
  if (nzchar(ONLY) && !grepl(ONLY, id)) next
  mod <- models[[id]]
  assign(mod$dataset, load_data(mod$dataset))
  m <- eval(parse(text = mod$call))
  times <- vapply(seq_len(REPS), function(i) {
    gc()
    unname(system.time(suppressMessages(confint(m)))["elapsed"])
  }, 0)
  rows[[id]] <- data.frame(id = id, call = mod$call, median_s = median(times), min_s = min(times),
                           reps = REPS, loadavg_1m = loadavg())
  cat(id, format(median(times), digits = 4), "s\n")
}
write.csv(do.call(rbind, rows), OUT, row.names = FALSE)
