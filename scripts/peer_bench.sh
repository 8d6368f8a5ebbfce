#!/usr/bin/env bash
# Training throughput of the TensorFlow peer (the public `alphanet` package's AlphaNetV2) and of
# `alphanet bench` on the same model, batch and thread count, measured in the same run: each round
# runs both, back to back, so that load from other processes hits both alike. Prints every
# round, the medians and their ratio.
#
# Usage: scripts/peer_bench.sh [--batch 1000] [--threads N] [--rounds 5] [--steps 60]
# Env:   TF_PEER_VENV (default /tmp/alphanet-tf-peer; created with ../shared/peers/setup_tf_peer.sh
#        when it does not import), ALPHANET_SHARED (default: the shared/ folder beside the repo).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${ALPHANET_SHARED:-$(dirname "$root")/shared}
venv=${TF_PEER_VENV:-/tmp/alphanet-tf-peer}
batch=1000 threads=$(nproc) rounds=5 steps=60
while [ $# -gt 0 ]; do
  case $1 in
    --batch) batch=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
peer_py=$shared/peers/tf_alphanet.py
if [ ! -f "$peer_py" ]; then
  echo "no peer script at $peer_py: set ALPHANET_SHARED to the shared/ folder" >&2
  exit 2
fi
if ! TF_USE_LEGACY_KERAS=1 "$venv/bin/python" -c "import alphanet, tensorflow" 2>/dev/null; then
  echo "setting up the TensorFlow peer in $venv …" >&2
  bash "$shared/peers/setup_tf_peer.sh" "$venv" >&2
fi
(cd "$root" && cargo build --release --quiet)
bin=$root/target/release/alphanet

# The peer's AlphaNetV2 computes the six ops of its package (no ts_mean): 270 channels.
ours_cmd=("$bin" bench --model v2 --ops peer6 --batch "$batch" --threads "$threads" --steps "$steps" --json)
peer_cmd=("$venv/bin/python" "$peer_py" --model v2 --batch "$batch" --steps "$steps" --threads "$threads")

run_peer() {
  TF_USE_LEGACY_KERAS=1 "${peer_cmd[@]}" 2>/dev/null | sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p'
}
run_ours() {
  "${ours_cmd[@]}" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["rows"][0]["train_samples_per_s"]))'
}

# The order alternates between rounds and the machine gets a second between runs, so that
# neither side always runs right after the other's exit.
peer=() ours=()
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then
    p=$(run_peer); sleep 1; o=$(run_ours)
  else
    o=$(run_ours); sleep 1; p=$(run_peer)
  fi
  sleep 1
  [ -n "$p" ] || { echo "the peer printed no samples_per_s (run: TF_USE_LEGACY_KERAS=1 ${peer_cmd[*]})" >&2; exit 1; }
  echo "round $r: tf-alphanet $p samples/s, alphanet $o samples/s"
  peer+=("$p") ours+=("$o")
done

python3 - "${#peer[@]}" "${peer[@]}" "${ours[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
peer = [float(v) for v in sys.argv[2:2 + n]]
ours = [float(v) for v in sys.argv[2 + n:]]
mp, mo = statistics.median(peer), statistics.median(ours)
print(f"median tf-alphanet: {mp:.0f} samples/s")
print(f"median alphanet:    {mo:.0f} samples/s")
print(f"ratio alphanet / tf-alphanet: {mo / mp:.2f}")
PY
echo "(model v2, 6-op features = 270 channels, batch $batch, $threads threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; training step = forward + backward + Adam, median over $steps steps)"
