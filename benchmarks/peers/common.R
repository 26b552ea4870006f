# Shared by lme4.R and brms.R: arguments, the table, the group mean of x, and a small JSON writer
# (so that the scripts need no package beyond the one they measure).

args_list <- function() {
  argv <- commandArgs(trailingOnly = TRUE)
  keys <- sub("^--", "", argv[c(TRUE, FALSE)])
  values <- as.list(argv[c(FALSE, TRUE)])
  names(values) <- keys
  values
}

read_table <- function(path) {
  frame <- read.csv(path)
  frame$group <- factor(frame$group)
  frame$xbar <- ave(frame$x, frame$group)  # the Mundlak term: the group mean of x
  frame
}

json_value <- function(value) {
  if (is.null(value) || (length(value) == 1 && is.atomic(value) && is.na(value))) return("null")
  if (is.list(value)) {
    if (length(value) == 0) return("{}")
    items <- vapply(names(value), function(k) paste0(json_value(k), ": ", json_value(value[[k]])), "")
    return(paste0("{", paste(items, collapse = ", "), "}"))
  }
  if (is.character(value)) {
    text <- gsub("\\\\", "\\\\\\\\", value)
    text <- gsub("\"", "\\\\\"", text)
    text <- gsub("[[:cntrl:]]", " ", text)
    return(paste0("\"", text, "\""))
  }
  if (is.logical(value)) return(if (value) "true" else "false")
  if (is.numeric(value)) return(if (is.finite(value)) format(value, digits = 15) else "null")
  stop("cannot write ", class(value))
}

write_json <- function(value, path) {
  tmp <- paste0(path, ".tmp")
  writeLines(json_value(value), tmp)
  invisible(file.rename(tmp, path))
}

peak_mib <- function() {
  # R's own account of the heap's peak (gc's "max used"), in MiB; the process's peak RSS is measured
  # by the parent from the kernel.
  used <- gc()
  sum(used[, ncol(used)])
}

EFFECTS <- list(bxy = "x", bzy = "z", buy = "xbar")
