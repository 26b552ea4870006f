#!/usr/bin/env bash
# The Vella-Verbeek union and wage panel (545 men x 8 years, shipped with linearmodels: no network):
# does marriage raise union membership and wages, once each man's unobserved, time-invariant traits are
# held fixed? Person `nr` is the group; married and exper vary within a man, educ, black and hisp do not
# (the formula sorts them into x and z by the data). The last fit adds the year as a second, crossed factor
# (two-way effects): Wooldridge's Example 14.4, married 0.047 (se 0.018), union 0.080 (se 0.019).
#
#   bash examples/wage_panel.sh                     # full draws (4 chains x 1000 + 1000), a few minutes
#   DRAWS=60 TUNE=60 CHAINS=2 bash examples/wage_panel.sh   # a quick look (what the tests run)
set -euo pipefail
GROUPFX=${GROUPFX:-groupfx}
OUT=${OUT:-wage-panel}
SAMPLING=(--draws "${DRAWS:-1000}" --tune "${TUNE:-1000}" --chains "${CHAINS:-4}" --seed "${SEED:-42}")
COVARIATES="married + exper + educ + black + hisp | nr"

mkdir -p "$OUT"
[ -f "$OUT/wage_panel.csv" ] || "$GROUPFX" dataset wage_panel --out "$OUT/wage_panel.csv"
"$GROUPFX" fit "$OUT/wage_panel.csv" --formula "union ~ $COVARIATES" --family bernoulli \
    --out "$OUT/union" "${SAMPLING[@]}"
"$GROUPFX" fit "$OUT/wage_panel.csv" --formula "lwage ~ $COVARIATES" --family gaussian \
    --out "$OUT/lwage" "${SAMPLING[@]}"
"$GROUPFX" fit "$OUT/wage_panel.csv" --formula "lwage ~ married + union + expersq | nr + year" \
    --family gaussian --out "$OUT/lwage-two-way" "${SAMPLING[@]}"
