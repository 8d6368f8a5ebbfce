#!/usr/bin/env bash
# The report's headline study on the shared qlib data (docs/protocol.md, docs/evaluation.md):
# the CSI300 panel, the rolling protocol for v2, v2.1, v2.2, v2.3 from 2016 on, every factor
# evaluated beside the one-line baselines, and a side-by-side table with the report's numbers.
#
#   bash scripts/reproduce.sh [--gpu | --smoke] OUT
#
# Budgets (the report: 10 seeds, retrain every 6 months on 1500 in-sample days):
#   default  CPU: 10 seeds (as the report), retrain every year on 1000 in-sample days, at most
#            15 epochs (patience 4), lr 1e-3, two shards side by side, one thread each; 440 jobs,
#            80 minutes on the 2-core build machine shared with other work (README.md shows
#            its output);
#   --gpu    the report's budget on cuda:0: 10 seeds, every 6 months, 1500 days, lr 1e-3;
#   --smoke  a few minutes, to check the pipeline: 1 seed, from 2025-06, 250 days, 1 epoch.
#
# ALPHANET_SHARED: the shared data folder (default ../shared); ALPHANET_BIN: the binary (default:
# built here with cargo). Rerunning with the same OUT resumes the run where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=cpu
case "${1:-}" in
--gpu) budget=gpu; shift ;;
--smoke) budget=smoke; shift ;;
esac
out=${1:?usage: scripts/reproduce.sh [--gpu | --smoke] OUT}
shared=${ALPHANET_SHARED:-../shared}
qlib="$shared/data/ashare-qlib"
industry="$shared/data/industry/stock_industry_csrc.csv"
for p in "$qlib/calendars/day.txt" "$industry"; do
    [[ -e "$p" ]] || { echo "reproduce.sh: $p not found: set ALPHANET_SHARED to the shared data's parent folder" >&2; exit 2; }
done
if [[ -z "${ALPHANET_BIN:-}" ]]; then
    cargo build --release --bin alphanet
    ALPHANET_BIN=target/release/alphanet
fi
bin=$ALPHANET_BIN
variants=v2,v2.1,v2.2,v2.3
mkdir -p "$out"
t0=$SECONDS

# 1. The panel: CSI300 point-in-time universe, CSRC industries; history from 2012 so that the
#    first window (2016) has its in-sample days and pictures.
panel="$out/panel-csi300"
[[ -d "$panel" ]] || "$bin" import qlib --src "$qlib" --out "$panel" --instruments csi300 \
    --start 2012-01-04 --industry "$industry"

# 2. The rolling protocol.
common=(--panel "$panel" --out "$out/run" --variants "$variants" --sample-every 2 --split 4:1
    --select-by rankic --lr 1e-3)
case $budget in
cpu)
    args=("${common[@]}" --start 2016-01-04 --seeds 10 --retrain-every 1Y --insample-days 1000
        --epochs 15 --patience 4 --device cpu --threads 1)
    "$bin" run "${args[@]}" --shard 0/2 &
    first=$!
    "$bin" run "${args[@]}" --shard 1/2
    wait "$first"
    "$bin" merge "$out/run"
    ;;
gpu)
    "$bin" run "${common[@]}" --start 2016-01-04 --seeds 10 --retrain-every 6M \
        --insample-days 1500 --device cuda:0
    ;;
smoke)
    "$bin" run "${common[@]}" --start 2025-06-02 --seeds 1 --retrain-every 6M \
        --insample-days 250 --epochs 1 --device cpu
    ;;
esac

# 3. Every variant's ensemble factor beside the baselines, on the same dates and stocks.
factors=()
for v in ${variants//,/ }; do
    factors+=(--factor "$v=$out/run/factors/$v/factor.csv")
done
rm -rf "$out/report"
"$bin" eval --panel "$panel" "${factors[@]}" --baselines --out "$out/report" | tee "$out/eval.txt"

# 4. Side by side with the report (full A-share market, 2011-01-31 .. 2021-06-30).
{
    echo "# Reproduction on CSI300 of the shared qlib data ($budget budget)"
    echo
    echo "Budget: $budget (scripts/reproduce.sh). Settings in $out/run/run.json, every job in"
    echo "$out/run/manifest.json; $((SECONDS - t0)) s in all. Factors industry + size neutralized,"
    echo "RankIC every 10 days; the seed ensemble of each variant, beside the one-line baselines."
    echo
    grep '^|' "$out/eval.txt"
    echo
    # The style exposures (v2.2 aims them at 0) and where the learning curves are.
    awk '/^## Style exposure/ {on = 1} /^## Layered/ {on = 0} on' "$out/report/report.md"
    echo "Learning curves (mean over jobs per epoch): $out/run/learning_curves.json,"
    echo "$out/run/learning_curves_rankic.png, $out/run/learning_curves_loss.png."
    echo
    echo "The report (full A-share market, 2011-01-31 .. 2021-06-30, 10 seeds):"
    echo
    echo "| model | RankIC mean | RankIC std | IC_IR | IC>0 | top-group ann. excess | long-short ann. | LS Sharpe | TOP IR | TOP win |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    echo "| v2   | 11.25% | 9.87% | 1.14 | 88.51% | 15.03% | 52.19% | 6.18 | 3.45 | 82.40% |"
    echo "| v2.1 | 11.45% | 10.44% | 1.10 | 88.89% | 15.79% | 54.29% | 6.14 | 3.42 | 79.20% |"
    echo "| v2.2 | 7.99% | 6.96% | 1.15 | 89.66% | 10.79% | 37.72% | 6.05 | 3.55 | 76.00% |"
    echo "| v2.3 | 11.70% | 10.78% | 1.09 | 86.97% | 16.90% | 56.05% | 6.03 | 3.79 | 81.60% |"
} >"$out/reproduction.md"
echo "reproduction: $out/reproduction.md"
