# brms (rstan) posteriors of the multilevel and Mundlak strategies, timed, on the shared table, as a user
# writes them: one brm() call (Stan's compilation included), then loo().
#   multilevel brm(y ~ x + z + (1 | group), family = bernoulli())
#   mundlak    brm(y ~ x + z + xbar + (1 | group), family = bernoulli())
# Usage: Rscript brms.R --here DIR --data data.csv --model mundlak --draws 1000 --tune 1000 --chains 4
#        --cores 2 --seed 42 --json out.json
start <- proc.time()[["elapsed"]]
a <- commandArgs(trailingOnly = TRUE)
source(file.path(a[which(a == "--here") + 1], "common.R"))
args <- args_list()
suppressPackageStartupMessages({
  library(brms)
  library(posterior)
})
# Debian's r-cran-bh ships Boost as /usr/include/boost (libboost-dev), where rstan does not look.
if (!file.exists(rstan::rstan_options("boost_lib")) && dir.exists("/usr/include/boost")) {
  invisible(rstan::rstan_options(boost_lib = "/usr/include"))
}
import_s <- proc.time()[["elapsed"]] - start

formulas <- list(
  multilevel = y ~ x + z + (1 | group),
  mundlak = y ~ x + z + xbar + (1 | group)
)
frame <- read_table(args$data)
draws <- as.integer(args$draws)
tune <- as.integer(args$tune)
invisible(gc(reset = TRUE))
t0 <- proc.time()[["elapsed"]]
fit <- brm(formulas[[args$model]], data = frame, family = bernoulli(), chains = as.integer(args$chains),
           iter = tune + draws, warmup = tune, cores = as.integer(args$cores), seed = as.integer(args$seed),
           backend = "rstan", refresh = 0, silent = 2)
fit_s <- proc.time()[["elapsed"]] - t0
elapsed <- rstan::get_elapsed_time(fit$fit)
t1 <- proc.time()[["elapsed"]]
elpd <- loo(fit)
loo_s <- proc.time()[["elapsed"]] - t1

draws_all <- as_draws_df(fit)
effects <- list()
for (key in names(EFFECTS)) {
  name <- paste0("b_", EFFECTS[[key]])
  if (name %in% variables(draws_all)) {
    values <- extract_variable_matrix(draws_all, name)
    effects[[key]] <- list(term = name, mean = mean(values), sd = sd(c(values)),
                           ess_bulk = ess_bulk(values), rhat = rhat(values))
  }
}
params <- nuts_params(fit)
write_json(list(
  versions = list(R = paste(R.version$major, R.version$minor, sep = "."), brms = as.character(packageVersion("brms")),
                  rstan = as.character(packageVersion("rstan"))),
  call = paste("brm", deparse(formulas[[args$model]]), "family = bernoulli(), backend = \"rstan\""),
  import_s = import_s,
  fit_s = fit_s,
  sample_s = max(rowSums(elapsed)),
  loo_s = loo_s,
  elpd_loo = elpd$estimates["elpd_loo", "Estimate"],
  divergences = sum(params$Value[params$Parameter == "divergent__"]),
  steps_per_draw = mean(params$Value[params$Parameter == "n_leapfrog__"]),
  r_heap_peak_mib = peak_mib(),
  units = nrow(frame),
  groups = nlevels(frame$group),
  effects = effects
), args$json)
