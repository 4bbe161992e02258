#!/usr/bin/env Rscript
# Expected values for the analysis reference tests, computed with R's survey package.
#
# Usage (from anywhere):  Rscript tests/analysis/reference/make_reference.R [OUTDIR]
# Reads tests/analysis/data/*.csv (made by make_data.py) and writes one CSV per weighting
# configuration to OUTDIR (default: tests/analysis/reference/expected), in the tidy layout of
# analysis.compute_indices, plus the weight of every respondent.
#
# Estimators, all on svydesign(ids = ~1) with weights 1, calibrated with postStratify() or
# rake(), optionally trimWeights(); subgroups are domains of the full design (des[idx, ]):
#   - criterion index: svyciprop(~s, method = "xlogit") on the answered part of the group
#     (estimate, SE, interval); Clopper-Pearson (binom.test) instead when the index is 0 or
#     1, none below 2 answers; mean score: svymean(~y) on the answered part of the group;
#     both are the ratio estimators sum(w s)/sum(w a), checked against svyby(svyratio);
#   - element and overall (SIPAS) indices: svytotal() of [y >= 4] and [answered] over the
#     group, then svycontrast() of the mean of the defined criterion ratios and of the mean
#     of the defined element means: the joint covariance of the criteria is used (the
#     criterion ratios from the same svycontrast are checked against the svymean ones);
#   - every interval (mean scores rescaled to 0-1): logit interval with the stratified
#     variance of the group's cells (with floors) and the smaller of Satterthwaite's df and
#     the design's (see split_var and logit_t below; composites: also at least the
#     variance their criteria's intervals imply, see floor_el; raked:
#     SE sqrt((N - 1) / N n / df), df = n less the respondents' leverage in the margins'
#     projection, N the file's respondents); where the SE is 0, the Clopper-Pearson
#     interval on the Kish effective n (criteria at 0% or 100% too).

suppressPackageStartupMessages(library(survey))

args <- commandArgs(trailingOnly = TRUE)
file_arg <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
here <- dirname(normalizePath(file_arg))
datadir <- file.path(here, "..", "data")
outdir <- if (length(args)) args[1] else file.path(here, "expected")
dir.create(outdir, showWarnings = FALSE, recursive = TRUE)

read <- function(name) {
  read.csv(file.path(datadir, name), fileEncoding = "UTF-8-BOM", encoding = "UTF-8",
           colClasses = "character", na.strings = character(0), check.names = FALSE)
}

d <- read("responses.csv")
emap <- read("elements.csv")
crit <- emap$item
elements <- unique(emap$element)
for (cr in crit) {
  v <- suppressWarnings(as.integer(d[[cr]]))
  stopifnot(all(is.na(v) == (d[[cr]] == "")), all(is.na(v) | v %in% 1:5))
  d[[paste0("a_", cr)]] <- as.numeric(!is.na(v))
  d[[paste0("s_", cr)]] <- ifelse(is.na(v), 0, as.numeric(v >= 4))
  d[[paste0("y_", cr)]] <- ifelse(is.na(v), 0, v)
}
d$one <- 1
n_file <- nrow(d)
base <- svydesign(ids = ~1, weights = ~one, data = d)

pop_table <- function(tab, vars) {
  out <- tab[, vars, drop = FALSE]
  out$Freq <- as.numeric(tab$count)
  out
}

totals <- read("totals_agency_field.csv")
poststrat <- postStratify(base, ~agency + field, pop_table(totals, c("agency", "field")))

m_agency <- read("margin_agency.csv")
m_field <- read("margin_field.csv")
m_gender <- read("margin_gender.csv")
# A share margin is scaled to the total of the first count margin.
share <- as.numeric(m_gender$share)
m_gender$count <- share / sum(share) * sum(as.numeric(m_agency$count))
raked <- rake(base, list(~agency, ~field, ~gender),
              list(pop_table(m_agency, "agency"), pop_table(m_field, "field"),
                   pop_table(m_gender, "gender")),
              control = list(maxit = 1000, epsilon = 1e-12))
# Raked intervals: each respondent's leverage in the projection on the margins' dummy
# columns (diagonal of the hat matrix; the calibration's lost degrees of freedom).
margin_x <- cbind(model.matrix(~ agency - 1, d), model.matrix(~ field - 1, d),
                  model.matrix(~ gender - 1, d))
margin_qr <- qr(margin_x)
leverage <- rowSums(qr.Q(margin_qr)[, seq_len(margin_qr$rank), drop = FALSE]^2)

TRIM <- 1.5  # cap at 1.5 x the mean weight
trimmed <- function(des) trimWeights(des, upper = TRIM * mean(weights(des)), strict = TRUE)

designs <- list(
  none = base,
  poststrat = poststrat,
  rake = raked,
  poststrat_trim = trimmed(poststrat),
  rake_trim = trimmed(raked)
)

groupings <- list(character(0), "agency", "gender", c("agency", "period"), "age_band")
group_vars <- c("agency", "gender", "period", "age_band")
MIN_N <- 30
Z <- qnorm(0.975)

clip <- function(x, lo, hi) pmin(pmax(x, lo), hi)
# Clopper-Pearson bounds for x = e m successes in m = min(Kish n_eff, n_obs) trials (qbeta
# takes a non-integer x and m); with m = n_obs and x whole, binom.test()'s interval.
exact <- function(e, n_obs, kn, method = "exact-zero-se") {
  m <- min(kn, n_obs); x <- min(max(e, 0), 1) * m
  lo <- if (x > 1e-12) qbeta(0.025, x, m - x + 1) else 0
  hi <- if (x < m - 1e-12) qbeta(0.975, x + 1, m - x) else 1
  list(ci = c(lo, hi), method = method, df = NA)
}
# Fewer than 2 effective respondents (n* = min(Kish n_eff, n_obs) < 2): no interval.
no_interval <- function() list(ci = c(NA, NA), method = "none", df = NA)
heavy <- function(n_obs, kn) min(kn, n_obs) < 2 - 1e-9

one_group <- function(des, idx, by_label, labels) {
  w <- weights(des)[idx]
  dg <- des[idx, ]
  vars <- c(paste0("s_", crit), paste0("a_", crit))
  tot <- svytotal(make.formula(vars), dg)
  a_tot <- coef(tot)[paste0("a_", crit)]
  defined <- a_tot > 0
  ratio_expr <- function(cr) sprintf("(s_%s/a_%s)", cr, cr)
  exprs <- list()
  for (cr in crit[defined]) exprs[[paste0("ratio_", cr)]] <- parse(text = ratio_expr(cr))[[1]]
  elem_text <- character(0)
  for (el in elements) {
    crs <- crit[emap$element == el & defined]
    if (length(crs) == 0) next
    txt <- sprintf("((%s)/%d)", paste(sapply(crs, ratio_expr), collapse = "+"), length(crs))
    elem_text[el] <- txt
    exprs[[paste0("elem_", el)]] <- parse(text = txt)[[1]]
  }
  if (length(elem_text)) {
    exprs[["overall"]] <- parse(text = sprintf("((%s)/%d)", paste(elem_text, collapse = "+"),
                                               length(elem_text)))[[1]]
  }
  est <- se <- numeric(0)
  if (length(exprs)) {
    con <- svycontrast(tot, exprs)
    est <- coef(con)
    se <- sqrt(pmax(diag(vcov(con)), 0))
    names(est) <- names(se) <- names(exprs)
  }
  get <- function(name, what) if (name %in% names(what)) unname(what[name]) else NA_real_

  n <- sum(idx)
  wsum <- sum(w)
  neff <- wsum^2 / sum(w^2)
  rows <- list()
  add <- function(level, key, estimate, se, lo, hi, method, df, n_answered, wsa, kn, dk, deff) {
    row <- data.frame(by = by_label, level = level, key = key, estimate = estimate, se = se,
                      ci_low = lo, ci_high = hi, ci_method = method, df = df, n = n,
                      n_answered = n_answered, weight_sum = wsum, weight_sum_answered = wsa,
                      kish_neff = kn, deff_kish = dk, deff = deff,
                      flag = if (n < MIN_N) "small_n" else "", stringsAsFactors = FALSE)
    for (v in group_vars) row[[v]] <- if (v %in% names(labels)) labels[[v]] else NA
    rows[[length(rows) + 1]] <<- row
  }
  # Interval on the 0-1 scale: logit(e) +- t(df) SE* / (e (1 - e)) back-transformed, or,
  # where the SE is 0, the Clopper-Pearson interval for x = e n* successes in
  # n* = min(Kish n_eff, n_obs) trials. Post-stratified or unweighted, SE*^2 = sum_h v_h
  # with v_h = w_h^2 sum_(i in h) (z_i - mean_h z)^2 m_h / (m_h - 1) (n / (n - 1) where
  # m_h < 2) over the weighting cells h, z the influence values of the estimate (0 outside
  # the group), m_h the group's respondents in h (who answered, for a criterion), and
  # Satterthwaite's df = (sum v_h)^2 / sum v_h^2 / max(m_h - 1, 1), to two decimals; raked,
  # df = max(n_obs - L, 1) and SE* = SE sqrt((n - 1) / n * n_obs / df), L = max(sum of the
  # leverages of the n_obs respondents, 1) in the projection on every margin's dummy columns
  # (the diagonal of the hat matrix, here from a QR decomposition).
  w_all <- weights(des)
  # Floors (METHODS section 4): each cell's sum of squares of a criterion's (kind "s") or
  # mean score's ("y") influence is at least m/(m+1) (SSD + m/(m+1) (ybar - G)^2 + V_G) / D^2,
  # m the cell's answerers in the group, ybar and SSD their mean and sum of squares, G the
  # group's estimate, V_G its weighted variance per answerer and D their weight: the m
  # answers and one pseudo-respondent like the group. Composites: comp_floor below.
  cell_floor <- function(cr, kind = "s") {
    a <- d[[paste0("a_", cr)]] * idx
    v <- d[[paste0(kind, "_", cr)]]
    v[is.na(v)] <- 0
    D <- sum(w_all * a)
    m <- tapply(a, cell_now, sum)
    if (D == 0) return(m * 0)
    G <- sum(w_all * a * v) / D
    VG <- sum(w_all * a * (v - G)^2) / D
    ybar <- tapply(a * v, cell_now, sum) / pmax(m, 1)
    ssd <- tapply(a * (v - ybar[cell_now])^2, cell_now, sum)
    m / (m + 1) * (ssd + m / (m + 1) * (ybar - G)^2 + VG) / D^2
  }
  # Composites (z their influence values, 0 outside the group): per cell of m group members
  # with influence sum t and within-cell sum of squares SSD, at least
  # m/(m+1) (SSD + m/(m+1) (t/m)^2 + V), V the group's weighted mean of z^2.
  comp_floor <- function(z, counted) {
    m <- tapply(as.numeric(counted), cell_now, sum)
    t <- tapply(z, cell_now, sum)
    sq <- tapply(z^2, cell_now, sum)
    ssd <- pmax(sq - t^2 / pmax(m, 1), 0)
    V <- sum(w_all * z^2) / sum(w_all * counted)
    m / (m + 1) * (ssd + m / (m + 1) * (t / pmax(m, 1))^2 + V)
  }
  # The df: the smallest of Satterthwaite's from the cells' sums of squares with and without
  # the floors and the design's (each cell's variance w_h^2 m_h, a common variance per
  # respondent).
  split_var <- function(z, counted, floor = NULL) {
    if (raking) return(list(used = max(sum(leverage[counted]), 1)))
    zbar <- ave(z, cell_now)
    ssd <- tapply((z - zbar)^2, cell_now, sum)
    m <- tapply(as.numeric(counted), cell_now, sum)
    ssd_raw <- ssd
    if (!is.null(floor)) ssd <- pmax(ssd, floor)
    wh <- tapply(w_all, cell_now, function(x) x[1])
    f <- ifelse(m >= 2, m / pmax(m - 1, 1), n_file / (n_file - 1))
    v <- wh^2 * ssd * f
    v_raw <- wh^2 * ssd_raw * f
    sat <- function(v) sum(v)^2 / sum(v^2 / pmax(m - 1, 1))
    a <- wh^2 * m
    list(var = sum(v), var_raw = sum(v_raw), df = min(sat(v), sat(v_raw), sat(a), na.rm = TRUE))
  }
  # Effective respondents: n* = min(Kish n_eff, n_obs) of those behind the estimate (a
  # composite: who answered any of its criteria); df at most cap - 1 (cap = n*, or for a
  # composite the group's min(n_eff, n)); an SE* below step sqrt((n* - 1) / n*^3) (a single
  # dissenting answer among n*) gets the exact bound ("exact-small-se").
  logit_t <- function(e, s, n_obs, kn, split, step = 1, cap = min(kn, n_obs),
                      n_var = n_obs, floor_var = 0) {
    if (is.na(e) || n_obs < 2 || heavy(n_obs, kn)) return(no_interval())
    if (s <= 1e-9 || e <= 0 || e >= 1) return(exact(e, n_obs, kn))
    if (is.null(split)) {
      df <- n_obs - 1; s_ci <- s * sqrt(n_obs / df)
    } else if (!is.null(split$used)) {
      df <- max(n_var - split$used, 1)
      s_ci <- max(sqrt(max((s * sqrt((n_file - 1) / n_file * n_var / df))^2, floor_var)), s)
      df <- max(round(df, 2), 1)
    } else {
      df <- max(round(split$df, 2), 1); s_ci <- max(sqrt(max(split$var, floor_var)), s)
    }
    # the test for an SE that measures nothing uses the sums of squares without the floors
    s_test <- if (is.null(split$var_raw)) s_ci else max(sqrt(split$var_raw), s)
    df <- max(min(df, round(cap - 1, 2)), 1)
    ns <- min(kn, n_obs)
    least <- step * sqrt((ns - 1) / ns^3)
    half <- qt(0.975, df) * s_ci / (e * (1 - e))
    t_ci <- plogis(qlogis(e) + c(-1, 1) * half)
    if (s_test < least) {
      # the exact bound, widened to the t interval of the floored SE where that is above
      ex <- exact(e, n_obs, kn, "exact-small-se")
      if (s_ci >= least) ex$ci <- c(min(ex$ci[1], t_ci[1]), max(ex$ci[2], t_ci[2]))
      return(ex)
    }
    list(ci = t_ci, method = "logit-t", df = df, s_ci = s_ci)
  }
  # influence values of the criterion ratios (0 outside the group and where undefined)
  z_of <- function(cr, kind = "criterion") {
    a <- d[[paste0("a_", cr)]]
    v <- d[[paste0(if (kind == "criterion") "s_" else "y_", cr)]]
    wsa <- sum(w_all[idx] * a[idx])
    if (wsa == 0) return(rep(0, n_file))
    e <- sum(w_all[idx] * v[idx]) / wsa
    idx * (v - e * a) / wsa
  }
  z_elem <- list()
  for (el in elements) {
    crs <- crit[emap$element == el & defined]
    if (length(crs)) z_elem[[el]] <- Reduce(`+`, lapply(crs, z_of)) / length(crs)
  }
  z_all <- if (length(z_elem)) Reduce(`+`, z_elem) / length(z_elem) else rep(0, n_file)

  # who answered any criterion of a composite, and their Kish effective n
  behind <- function(crs) {
    any_a <- idx & rowSums(as.matrix(d[paste0("a_", crs)])) > 0
    list(n = sum(any_a), kn = if (any(any_a)) sum(w_all[any_a])^2 / sum(w_all[any_a]^2) else 0)
  }
  vstar <- list(); vexact <- list()
  for (kind in c("criterion", "mean_score")) {
    for (cr in crit) {
      a <- d[[paste0("a_", cr)]][idx]
      v <- d[[paste0(if (kind == "criterion") "s_" else "y_", cr)]][idx]
      n_ans <- sum(a)
      answered_here <- idx & d[[paste0("a_", cr)]] == 1
      wsa <- sum(w * a)
      kn <- if (n_ans > 0) wsa^2 / sum(w^2 * a) else NA
      dk <- if (n_ans > 0) n_ans / kn else NA
      e <- s <- lo <- hi <- df <- deff <- NA; method <- "none"
      if (n_ans > 0) {
        answered <- des[idx & d[[paste0("a_", cr)]] == 1, ]
        variable <- make.formula(paste0(if (kind == "criterion") "s_" else "y_", cr))
        cp <- NULL
        if (kind == "criterion" && n_ans >= 2) {
          cp <- svyciprop(variable, answered, method = "xlogit")
          e <- as.numeric(cp); s <- sqrt(as.numeric(attr(cp, "var")))
        }
        if (is.null(cp) || e <= 0 || e >= 1) {
          m <- svymean(variable, answered)
          e <- unname(coef(m)); s <- unname(SE(m))
        }
        if (kind == "criterion") {
          # the same ratio from the joint svycontrast (used for the composites)
          name <- paste0("ratio_", cr)
          stopifnot(abs(est[name] - e) < 1e-12, abs(se[name] - s) <= 1e-8 * s + 1e-6)
        }
        sigma2 <- sum(w * a * (v - e)^2) / wsa
        spread <- length(unique(v[a == 1])) > 1
        if (n_ans >= 2 && spread && sigma2 > 0) deff <- s^2 / (sigma2 / (n_ans - 1))
        if (kind == "mean_score") {
          sp <- split_var(z_of(cr, "mean") / 4, answered_here,
                          if (raking) NULL else cell_floor(cr, "y") / 16)
          ci <- logit_t((e - 1) / 4, s / 4, n_ans, kn, sp, 0.25)
          lo <- 1 + 4 * ci$ci[1]; hi <- 1 + 4 * ci$ci[2]; method <- ci$method; df <- ci$df
        } else if (n_ans >= 2) {
          if (e > 0 && e < 1 && s > 1e-9) {
            stopifnot(degf(answered) == n_ans - 1)
            # svyciprop's xlogit interval, with the SE scaled by sqrt(n / (n - 1))
            ci <- attr(cp, "ci")
            half <- qt(0.975, n_ans - 1) * s / (e * (1 - e))
            stopifnot(abs(ci[1] - plogis(qlogis(e) - half)) < 1e-9)
            ci <- logit_t(e, s, n_ans, kn, split_var(z_of(cr), answered_here,
                                                     if (raking) NULL else cell_floor(cr)))
            lo <- ci$ci[1]; hi <- ci$ci[2]; method <- ci$method; df <- ci$df
          } else {
            ci <- if (heavy(n_ans, kn)) no_interval() else exact(e, n_ans, kn)
            lo <- ci$ci[1]; hi <- ci$ci[2]; method <- ci$method
          }
        }
      }
      if (kind == "criterion" && n_ans > 0) {
        # thin: an exact bound or none, or answered by fewer than half of the group
        vexact[[cr]] <- as.numeric(method != "logit-t" || n_ans < n / 2)
        # thin: V* the variance of a normal interval as wide as the published one (none:
        # the Clopper-Pearson bound on n* = max(min(Kish n, n), 1)); the others: SE*^2
        vstar[[cr]] <- if (vexact[[cr]] == 0) ci$s_ci^2 else if (is.na(lo) || is.na(hi)) {
          cp_m <- max(min(kn, n_ans), 1); x <- min(max(e, 0), 1) * cp_m
          lo_v <- if (x > 1e-12) qbeta(0.025, x, cp_m - x + 1) else 0
          hi_v <- if (x < cp_m - 1e-12) qbeta(0.975, x + 1, cp_m - x) else 1
          ((hi_v - lo_v) / (2 * Z))^2
        } else ((hi - lo) / (2 * Z))^2
      }
      k <- if (kind == "criterion") 100 else 1
      add(kind, cr, k * e, k * s, k * lo, k * hi, method, df, n_ans, wsa, kn, dk, deff)
    }
  }
  k_el <- sapply(elements, function(el) max(sum(emap$element == el & defined), 1))
  b_all <- behind(crit)
  # the criteria's own uncertainty: sum of (share)^2 V* over the defined criteria
  # (criteria answered by most with a t interval as if independent, the thin ones as if
  # perfectly correlated), only where a composite has thin criteria
  part_el <- sapply(elements, function(el) {
    crs <- crit[emap$element == el & defined]
    if (!length(crs)) return(0)
    t_crs <- crs[unlist(vexact[crs]) == 0]; x_crs <- crs[unlist(vexact[crs]) == 1]
    (sum(as.numeric(unlist(vstar[t_crs]))) +
      sum(sqrt(as.numeric(unlist(vstar[x_crs]))))^2) / length(crs)^2
  })
  thin_el <- sapply(elements, function(el) {
    crs <- crit[emap$element == el & defined]
    length(crs) > 0 && any(unlist(vexact[crs]) == 1)
  })
  floor_el <- ifelse(thin_el, part_el, 0)
  n_el <- sum(sapply(elements, function(el) any(emap$element == el & defined)))
  floor_all <- if (any(thin_el)) sum(part_el) / max(n_el, 1)^2 else 0
  ci <- logit_t(get("overall", est), get("overall", se), b_all$n, b_all$kn,
                split_var(z_all, idx, if (raking) NULL else comp_floor(z_all, idx)),
                1 / (max(length(elem_text), 1) * max(k_el)),
                min(neff, n), n, floor_var = floor_all)
  e <- get("overall", est); s <- get("overall", se)
  add("overall", "SIPAS", 100 * e, 100 * s, 100 * ci$ci[1], 100 * ci$ci[2],
      ci$method, ci$df, NA, NA, neff, n / neff, NA)
  for (el in elements) {
    e <- get(paste0("elem_", el), est); s <- get(paste0("elem_", el), se)
    b_el <- behind(crit[emap$element == el])
    ci <- logit_t(e, s, b_el$n, b_el$kn, if (is.null(z_elem[[el]])) NULL else
      split_var(z_elem[[el]], idx, if (raking) NULL else comp_floor(z_elem[[el]], idx)),
      1 / k_el[[el]], min(neff, n), n, floor_var = floor_el[[el]])
    add("element", el, 100 * e, 100 * s, 100 * ci$ci[1], 100 * ci$ci[2],
        ci$method, ci$df, NA, NA, neff, n / neff, NA)
  }
  do.call(rbind, rows)
}

# Cross-check: the criterion SEs from svytotal + svycontrast equal svyby(svyratio).
check_svyby <- function(des, out, grouping) {
  if (!identical(grouping, "gender")) return(invisible())
  keep <- d[[grouping]] != ""
  sub <- des[keep, ]
  for (cr in crit) {
    rs <- svyby(make.formula(paste0("s_", cr)), make.formula(grouping), sub, svyratio,
                denominator = make.formula(paste0("a_", cr)), na.rm.all = TRUE)
    got <- out[out$level == "criterion" & out$key == cr, ]
    m <- match(as.character(rs[[grouping]]), got[[grouping]])
    se_by <- 100 * SE(rs)
    ok <- is.na(se_by) | abs(se_by - got$se[m]) <= 1e-8 * pmax(1, abs(se_by))
    if (!all(ok)) stop("svyby(svyratio) disagrees for ", cr, " by ", grouping)
  }
}

run_grouping <- function(config, grouping) {
  des <- designs[[config]]
  # weighting cells: post-strata (agency x field) when post-stratified, else one cell
  raking <<- startsWith(config, "rake")
  cell_now <<- if (startsWith(config, "poststrat")) paste(d$agency, d$field, sep = "\r") else
    rep("1", n_file)
  if (length(grouping) == 0) return(one_group(des, rep(TRUE, n_file), "ALL", list()))
  keys <- d[, grouping, drop = FALSE]
  complete <- apply(keys != "", 1, all)
  combos <- unique(keys[complete, , drop = FALSE])
  part <- list()
  for (i in seq_len(nrow(combos))) {
    idx <- complete
    for (v in grouping) idx <- idx & d[[v]] == combos[i, v]
    part[[i]] <- one_group(des, idx, paste(grouping, collapse = "+"),
                           as.list(combos[i, , drop = FALSE]))
  }
  part <- do.call(rbind, part)
  check_svyby(des, part, grouping)
  part
}

# One task per configuration x grouping, the slow raking ones first.
tasks <- expand.grid(g = seq_along(groupings),
                     config = c("rake", "rake_trim", "none", "poststrat", "poststrat_trim"),
                     stringsAsFactors = FALSE)
stopifnot(setequal(unique(tasks$config), names(designs)))
started <- proc.time()[["elapsed"]]
done <- parallel::mclapply(seq_len(nrow(tasks)), function(i) {
  run_grouping(tasks$config[i], groupings[[tasks$g[i]]])
}, mc.cores = min(2L, parallel::detectCores()), mc.preschedule = FALSE)
failed <- vapply(done, inherits, logical(1), "try-error")
if (any(failed)) stop(paste(unlist(done[failed]), collapse = "\n"))

for (config in names(designs)) {
  out <- do.call(rbind, done[tasks$config == config])
  out <- out[, c("by", group_vars, "level", "key", "estimate", "se", "ci_low", "ci_high",
                 "ci_method", "df", "n", "n_answered", "weight_sum", "weight_sum_answered",
                 "kish_neff", "deff_kish", "deff", "flag")]
  write.csv(out, file.path(outdir, paste0(config, ".csv")), row.names = FALSE, na = "",
            fileEncoding = "UTF-8")
  write.csv(data.frame(response_id = d$response_id, weight = weights(designs[[config]])),
            file.path(outdir, paste0(config, "_weights.csv")), row.names = FALSE,
            fileEncoding = "UTF-8")
  cat(config, ": ", nrow(out), " rows\n", sep = "")
}
cat(sprintf("%.1f s\n", proc.time()[["elapsed"]] - started))

# Differences of each group from the whole file (diff, diff_se), an independent route:
# svytotal() on the FULL design of s and a inside the group and over everyone, then
# svycontrast() of (group ratio) - (whole ratio) for every criterion, for the first element
# (mean of its defined criterion ratios) and for the overall index (mean of the element
# means): the covariance of the group with the whole it belongs to comes from the design,
# not from our influence algebra. Post-stratified (min_cell_n = 1 semantics: R's
# postStratify) and unweighted; groupings agency and gender. Written to differences.csv.
diff_rows <- list()
for (config in c("none", "poststrat")) {
  des <- designs[[config]]
  for (grouping in c("agency", "gender")) {
    values <- sort(unique(d[[grouping]][d[[grouping]] != ""]))
    for (value in values) {
      inside <- as.numeric(d[[grouping]] == value)
      extra <- list()
      for (cr in crit) {
        extra[[paste0("gs_", cr)]] <- inside * d[[paste0("s_", cr)]]
        extra[[paste0("ga_", cr)]] <- inside * d[[paste0("a_", cr)]]
      }
      dg <- do.call(update, c(list(des), extra))
      vars <- c(paste0("gs_", crit), paste0("ga_", crit), paste0("s_", crit), paste0("a_", crit))
      tot <- svytotal(make.formula(vars), dg)
      g_def <- coef(tot)[paste0("ga_", crit)] > 0
      a_def <- coef(tot)[paste0("a_", crit)] > 0
      ratio_g <- function(cr) sprintf("(gs_%s/ga_%s)", cr, cr)
      ratio_a <- function(cr) sprintf("(s_%s/a_%s)", cr, cr)
      mean_of <- function(parts) sprintf("((%s)/%d)", paste(parts, collapse = "+"), length(parts))
      exprs <- list(); levels <- character(0); keys <- character(0)
      for (cr in crit[g_def & a_def]) {
        exprs[[length(exprs) + 1]] <- parse(text = sprintf("%s-%s", ratio_g(cr), ratio_a(cr)))[[1]]
        levels <- c(levels, "criterion"); keys <- c(keys, cr)
      }
      elem_g <- elem_a <- character(0)
      for (el in elements) {
        cg <- crit[emap$element == el & g_def]; ca <- crit[emap$element == el & a_def]
        if (length(cg)) elem_g[el] <- mean_of(sapply(cg, ratio_g))
        if (length(ca)) elem_a[el] <- mean_of(sapply(ca, ratio_a))
      }
      first <- elements[1]
      if (!is.na(elem_g[first]) && !is.na(elem_a[first])) {
        exprs[[length(exprs) + 1]] <- parse(text = sprintf("%s-%s", elem_g[first], elem_a[first]))[[1]]
        levels <- c(levels, "element"); keys <- c(keys, first)
      }
      if (length(elem_g) && length(elem_a)) {
        exprs[[length(exprs) + 1]] <- parse(
          text = sprintf("%s-%s", mean_of(elem_g), mean_of(elem_a)))[[1]]
        levels <- c(levels, "overall"); keys <- c(keys, "SIPAS")
      }
      names(exprs) <- paste(levels, keys)
      con <- svycontrast(tot, exprs)
      row <- data.frame(config = config, by = grouping, level = levels, key = keys,
                        diff = 100 * unname(coef(con)),
                        diff_se = 100 * sqrt(pmax(unname(diag(vcov(con))), 0)),
                        stringsAsFactors = FALSE)
      for (v in group_vars) row[[v]] <- if (v == grouping) value else NA
      diff_rows[[length(diff_rows) + 1]] <- row
    }
  }
}
diffs <- do.call(rbind, diff_rows)
diffs <- diffs[, c("config", "by", group_vars, "level", "key", "diff", "diff_se")]
write.csv(diffs, file.path(outdir, "differences.csv"), row.names = FALSE, na = "",
          fileEncoding = "UTF-8")
cat("differences: ", nrow(diffs), " rows\n", sep = "")
