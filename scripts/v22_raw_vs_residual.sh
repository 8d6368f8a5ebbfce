#!/usr/bin/env bash
# The experiment behind v2.2's default factor (docs/models.md, "v2.2's factor is ŷ_res"): the
# seed ensemble of the raw network output ŷ beside the default ŷ_res, evaluated side by side on
# a finished run. Re-predicts every v2.2 job's window from its checkpoint with `predict --raw`,
# averages the seeds per window as `merge` does, and runs `alphanet eval` on both.
#
#   bash scripts/v22_raw_vs_residual.sh RUN PANEL OUT   (ALPHANET_BIN: the binary; PYTHON: one with NumPy)
set -euo pipefail
run=${1:?usage: v22_raw_vs_residual.sh RUN PANEL OUT}
panel=${2:?usage: v22_raw_vs_residual.sh RUN PANEL OUT}
out=${3:?usage: v22_raw_vs_residual.sh RUN PANEL OUT}
bin=${ALPHANET_BIN:-target/release/alphanet}
py=${PYTHON:-python3} # with NumPy
mkdir -p "$out/jobs"
predict() {
    local job=$1 id
    id=$(basename "$job")
    [[ -d "$out/jobs/$id" ]] && return
    read -r from to < <(python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['predict_dates']; print(*d)" "$job/job.json")
    "$bin" predict --raw --device cpu --threads 1 --checkpoint "$job/checkpoint" --panel "$panel" \
        --from "$from" --to "$to" --out "$out/jobs/$id" >/dev/null 2>&1
}
export -f predict
export out panel bin
ls -d "$run"/jobs/v2.2-* | xargs -P 2 -I{} bash -c 'predict {}'
first=$("$py" - "$run" "$out" <<'EOF'
import json, sys
from pathlib import Path
import numpy as np
run, out = Path(sys.argv[1]), Path(sys.argv[2])
dates = json.load(open(run / "run.json"))["panel"]["dates"]
windows = {}
for job in sorted((run / "jobs").glob("v2.2-*")):
    rec = json.load(open(job / "job.json"))
    windows.setdefault(rec["window"], []).append((rec["seed_index"], rec["predict"]["start"], np.load(out / "jobs" / job.name / "factor.npy")))
first = min(s for w in windows.values() for _, s, _ in w)
last = max(s + f.shape[0] for w in windows.values() for _, s, f in w)
n = next(iter(windows.values()))[0][2].shape[1]
total = np.full((last - first, n), np.nan, dtype=np.float32)
for members in windows.values():
    members.sort()
    start = members[0][1]
    mean = np.mean(np.stack([f.astype(np.float64) for _, _, f in members]), axis=0)
    total[start - first:start - first + mean.shape[0]] = mean.astype(np.float32)
np.save(out / "v2.2-raw.npy", total)
print(dates[first])
EOF
)
rm -rf "$out/report"
"$bin" eval --panel "$panel" --factor "v2.2=$run/factors/v2.2/factor.csv" \
    --factor "v2.2-raw=$out/v2.2-raw.npy@$first" --factor "v2=$run/factors/v2/factor.csv" \
    --out "$out/report"
