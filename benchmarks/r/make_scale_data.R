## The research-scale benchmark data (benchmarks/bench_scale.py), written to benchmarks/data/
## (not committed; run this once per machine):
##   Rscript benchmarks/r/make_scale_data.R
## Every simulated dataset starts from set.seed(20240601). x1 ~ N(0, 1), x2 ~ Bernoulli(0.5),
## groups of equal size n / m:
##   poisson_N:  y ~ Poisson(exp(0.5 + 0.3 x1 - 0.2 x2 + b_g)), b_g ~ N(0, 0.6^2)
##   gauss_100k: y = 1 + 0.5 x1 - 0.3 x2 + b_g + e, b_g ~ N(0, 0.7^2), e ~ N(0, 1)
##   ml1m:       a MovieLens-1M-sized crossed LMM: 1M ratings of 3706 items by 6040 users,
##               users and items drawn with gamma(0.7)-distributed activity (a few very active),
##               y = 3.6 + b_user + b_item + e, b ~ N(0, 0.5^2) each, e ~ N(0, 0.9^2)
##   poisson_crossed_1m: 1M rows, g1 with 10000 levels crossed with g2 with 1000,
##               y ~ Poisson(exp(0.5 + 0.3 x1 + b1 + b2)), b1 ~ N(0, 0.5^2), b2 ~ N(0, 0.3^2)
##   insteval:   lme4::InstEval (73421 rows: s, d, dept, service, y)
suppressPackageStartupMessages(library(lme4))
here <- dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE))))
out <- file.path(dirname(here), "data")
dir.create(out, showWarnings = FALSE)
w <- function(d, name) {
  write.csv(d, file.path(out, paste0(name, ".csv")), row.names = FALSE)
  cat(name, nrow(d), "rows\n")
}
grouped <- function(n, m) {
  set.seed(20240601)
  g <- rep(seq_len(m), each = n / m)
  x1 <- rnorm(n); x2 <- rbinom(n, 1, 0.5)
  list(g = g, x1 = x1, x2 = x2)
}
for (n in c(1e6, 1e5, 1e4)) {
  d <- grouped(n, n / 10)
  b <- rnorm(n / 10, 0, 0.6)
  y <- rpois(n, exp(0.5 + 0.3 * d$x1 - 0.2 * d$x2 + b[d$g]))
  w(data.frame(y = y, x1 = d$x1, x2 = d$x2, g = d$g), paste0("poisson_", c("1m", "100k", "10k")[match(n, c(1e6, 1e5, 1e4))]))
}
d <- grouped(1e5, 1e4)
b <- rnorm(1e4, 0, 0.7)
w(data.frame(y = 1 + 0.5 * d$x1 - 0.3 * d$x2 + b[d$g] + rnorm(1e5), x1 = d$x1, x2 = d$x2, g = d$g), "gauss_100k")

set.seed(20240601)
nu <- 6040; ni <- 3706; n <- 1e6
pu <- rgamma(nu, 0.7); pi <- rgamma(ni, 0.7)
user <- sample.int(nu, n, replace = TRUE, prob = pu)
item <- sample.int(ni, n, replace = TRUE, prob = pi)
y <- 3.6 + rnorm(nu, 0, 0.5)[user] + rnorm(ni, 0, 0.5)[item] + rnorm(n, 0, 0.9)
w(data.frame(y = y, user = user, item = item), "ml1m")

set.seed(20240601)
n <- 1e6
g1 <- sample.int(10000, n, replace = TRUE); g2 <- sample.int(1000, n, replace = TRUE)
x1 <- rnorm(n)
y <- rpois(n, exp(0.5 + 0.3 * x1 + rnorm(10000, 0, 0.5)[g1] + rnorm(1000, 0, 0.3)[g2]))
w(data.frame(y = y, x1 = x1, g1 = g1, g2 = g2), "poisson_crossed_1m")

data(InstEval)
w(InstEval[, c("s", "d", "dept", "service", "y")], "insteval")
