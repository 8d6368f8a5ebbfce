#!/usr/bin/env bash
# The report's headline study on the shared qlib data (docs/protocol.md, docs/evaluation.md):
# the rolling protocol for v2, v2.1, v2.2, v2.3, every factor evaluated beside the one-line
# baselines, and a side-by-side table with the report's numbers.
#
#   bash scripts/reproduce.sh [--market] [--gpu | --smoke] OUT
#
# Universes:
#   default   CSI300 members of ../shared/data/ashare-qlib, predictions 2016-01 .. 2026-05;
#   --market  the report's universe and span: every stock of ashare-qlib-market.tar.zst (unpacked
#             once into cache/market, git-ignored), predictions 2011-01-31 .. 2021-06-30, plus the
#             weekly CSI500 enhancement on a proxy of the index (docs/evaluation.md#csi500-proxy).
# Budgets (the report: 10 seeds, retrain every 6 months on 1500 in-sample days, every 2nd date):
#   default  CPU. CSI300: 10 seeds, retrain every year on 1000 in-sample days, at most 15 epochs
#            (patience 4), lr 1e-3, two shards of one thread: 440 jobs, 80 minutes on the 2-core
#            build machine. Market: 4 seeds, retrain every year on 750 in-sample days, every 4th
#            date, at most 12 epochs (patience 4), lr 1e-3, rank labels, per-picture scaling,
#            two shards of one thread: 176 jobs (README.md shows the output and its wall time);
#   --gpu    the report's budget on cuda:0: 10 seeds, every 6 months, 1500 days, every 2nd date;
#   --smoke  a few minutes, to check the pipeline: 1 seed, one short window, 1 epoch.
#
# ALPHANET_SHARED: the shared data folder (default ../shared); ALPHANET_BIN: the binary (default:
# built here with cargo); ALPHANET_CACHE: where the market tarball is unpacked (default cache).
# Rerunning with the same OUT resumes the run where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/reproduce.sh [--market] [--gpu | --smoke] OUT" >&2
    exit 2
}
universe=csi300
budget=cpu
while [[ $# -gt 1 ]]; do
    case $1 in
    --market) universe=market ;;
    --gpu) budget=gpu ;;
    --smoke) budget=smoke ;;
    *) usage ;;
    esac
    shift
done
[[ $# -eq 1 && $1 != --* ]] || usage
out=$1
shared=${ALPHANET_SHARED:-../shared}
industry="$shared/data/industry/stock_industry_csrc.csv"
if [[ $universe == market ]]; then
    tarball="$shared/data/ashare-qlib-market.tar.zst"
    cache=${ALPHANET_CACHE:-cache}
    qlib="$cache/market"
    need=("$tarball" "$industry")
else
    qlib="$shared/data/ashare-qlib"
    need=("$qlib/calendars/day.txt" "$industry")
fi
for p in "${need[@]}"; do
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

# 1. The panel.
if [[ $universe == market ]]; then
    # The whole market, point in time as listed (delisted stocks are absent upstream); history
    # from 2010-01-04 (the data's first date: the first windows have less than their in-sample
    # days, run.json says how many), labels for the last prediction dates up to 2021-12-31.
    if [[ ! -e "$qlib/calendars/day.txt" ]]; then
        mkdir -p "$cache"
        echo "unpacking $tarball into $cache"
        tar --zstd -xf "$tarball" -C "$cache"
    fi
    panel="$out/panel-market"
    range=(--start 2010-01-04 --end 2021-12-31)
    [[ -d "$panel" ]] || "$bin" import qlib --src "$qlib" --out "$panel" --instruments all \
        "${range[@]}" --industry "$industry"
else
    # CSI300 point-in-time universe; history from 2012 so that the first window (2016) has its
    # in-sample days and pictures.
    panel="$out/panel-csi300"
    [[ -d "$panel" ]] || "$bin" import qlib --src "$qlib" --out "$panel" --instruments csi300 \
        --start 2012-01-04 --industry "$industry"
fi

# 2. The rolling protocol.
common=(--panel "$panel" --out "$out/run" --variants "$variants" --split 4:1 --select-by rankic
    --lr 1e-3)
if [[ $universe == market ]]; then
    common+=(--label rank --input-norm picture)
    span=(--start 2011-01-31 --end 2021-06-30)
    case $budget in
    cpu) args=(--seeds 4 --retrain-every 1Y --insample-days 750 --sample-every 4 --epochs 12
        --patience 4) ;;
    gpu) args=(--seeds 10 --retrain-every 6M --insample-days 1500 --sample-every 2) ;;
    smoke) span=(--start 2021-01-04 --end 2021-03-31)
        args=(--seeds 1 --retrain-every 6M --insample-days 120 --sample-every 4 --epochs 1) ;;
    esac
else
    # The settings of the CSI300 study in README.md (before rank labels and picture scaling).
    common+=(--label zscore --input-norm none --sample-every 2)
    case $budget in
    cpu) span=(--start 2016-01-04)
        args=(--seeds 10 --retrain-every 1Y --insample-days 1000 --epochs 15 --patience 4) ;;
    gpu) span=(--start 2016-01-04)
        args=(--seeds 10 --retrain-every 6M --insample-days 1500) ;;
    smoke) span=(--start 2025-06-02)
        args=(--seeds 1 --retrain-every 6M --insample-days 250 --epochs 1) ;;
    esac
fi
args=("${common[@]}" "${span[@]}" "${args[@]}")
case $budget in
cpu)
    "$bin" run "${args[@]}" --device cpu --threads 1 --shard 0/2 &
    first=$!
    "$bin" run "${args[@]}" --device cpu --threads 1 --shard 1/2
    wait "$first"
    "$bin" merge "$out/run"
    ;;
gpu) "$bin" run "${args[@]}" --device cuda:0 ;;
smoke) "$bin" run "${args[@]}" --device cpu ;;
esac
train_s=$((SECONDS - t0))

# 3. Every variant's ensemble factor beside the baselines, on the same dates and stocks.
factors=()
for v in ${variants//,/ }; do
    factors+=(--factor "$v=$out/run/factors/$v/factor.csv")
done
rm -rf "$out/report"
"$bin" eval --panel "$panel" "${factors[@]}" --baselines --out "$out/report" | tee "$out/eval.txt"

# 4. The weekly CSI500 enhancement of each variant and of the best one-line baseline's factor.
if [[ $universe == market ]]; then
    # The same market with the CSI500 proxy as its benchmark.
    enhance_panel="$out/panel-market-csi500"
    [[ -d "$enhance_panel" ]] || "$bin" import qlib --src "$qlib" --out "$enhance_panel" \
        --instruments all "${range[@]}" --industry "$industry" --benchmark csi500-proxy
    for v in ${variants//,/ }; do
        rm -rf "$out/enhance-$v"
        "$bin" enhance --panel "$enhance_panel" --factor "$v=$out/run/factors/$v/factor.csv" \
            --out "$out/enhance-$v" | tail -n 3
    done
fi

# 5. Side by side with the report (full A-share market, 2011-01-31 .. 2021-06-30).
python3 scripts/reproduction_tables.py --universe "$universe" --budget "$budget" --out "$out" \
    --wall-s "$((SECONDS - t0))" --train-s "$train_s" >"$out/reproduction.md"
echo "reproduction: $out/reproduction.md"
