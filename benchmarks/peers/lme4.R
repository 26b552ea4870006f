# lme4's point estimates of the strategies, timed, on the shared table:
#   naive      glm(y ~ x + z, family = binomial)
#   multilevel glmer(y ~ x + z + (1 | group), family = binomial)        (Laplace)
#   mundlak    glmer(y ~ x + z + xbar + (1 | group), family = binomial)
# Usage: Rscript lme4.R --here DIR --data data.csv --model mundlak --json out.json
start <- proc.time()[["elapsed"]]
a <- commandArgs(trailingOnly = TRUE)
source(file.path(a[which(a == "--here") + 1], "common.R"))
args <- args_list()
suppressPackageStartupMessages(library(lme4))
import_s <- proc.time()[["elapsed"]] - start

formulas <- list(
  naive = y ~ x + z,
  multilevel = y ~ x + z + (1 | group),
  mundlak = y ~ x + z + xbar + (1 | group)
)
frame <- read_table(args$data)
invisible(gc(reset = TRUE))
warned <- character(0)
t0 <- proc.time()[["elapsed"]]
fit <- withCallingHandlers(
  if (args$model == "naive") {
    glm(formulas$naive, data = frame, family = binomial)
  } else {
    glmer(formulas[[args$model]], data = frame, family = binomial)
  },
  warning = function(w) {
    warned <<- c(warned, trimws(conditionMessage(w)))
    invokeRestart("muffleWarning")
  },
  message = function(m) {
    warned <<- c(warned, trimws(conditionMessage(m)))
    invokeRestart("muffleMessage")
  }
)
fit_s <- proc.time()[["elapsed"]] - t0
table <- summary(fit)$coefficients
effects <- list()
for (key in names(EFFECTS)) {
  term <- EFFECTS[[key]]
  if (term %in% rownames(table)) {
    effects[[key]] <- list(term = term, mean = table[term, 1], sd = table[term, 2])
  }
}
write_json(list(
  versions = list(R = paste(R.version$major, R.version$minor, sep = "."), lme4 = as.character(packageVersion("lme4"))),
  call = paste(if (args$model == "naive") "glm" else "glmer", deparse(formulas[[args$model]]),
               "family = binomial"),
  import_s = import_s,
  fit_s = fit_s,
  loglik = as.numeric(logLik(fit)),
  tau = if (args$model == "naive") NULL else as.data.frame(VarCorr(fit))$sdcor[1],
  warnings = paste(unique(warned), collapse = "; "),
  r_heap_peak_mib = peak_mib(),
  units = nrow(frame),
  groups = nlevels(frame$group),
  effects = effects
), args$json)
