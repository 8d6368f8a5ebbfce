#!/usr/bin/env bash
# The rolling protocol (`alphanet run`) on a Slurm cluster: a job array with one task per shard,
# one GPU each, and a merge job that starts once every task has succeeded.
#
#   scripts/slurm_rolling.sh SHARDS RUN [alphanet run flags...]
#
#   scripts/slurm_rolling.sh 40 runs/csi-all --panel data/qlib-cn --variants v2,v2.1,v2.2,v2.3 \
#       --seeds 10 --start 2011-01-31 --retrain-every 6M --insample-days 1500 --sample-every 2
#
# Task k runs `alphanet run --out RUN --shard k/SHARDS --device $DEVICE --threads $CPUS FLAGS`
# (so do not pass --out, --shard, --device or --threads in FLAGS); the merge job runs
# `alphanet merge RUN`. Submitting the same command again resumes: finished jobs are skipped.
#
# Environment (all optional):
#   ALPHANET      the binary (default: target/release/alphanet; build it with cargo build --release)
#   DEVICE        --device of each task (default cuda:0: Slurm shows each task its own GPU as 0)
#   CPUS          CPU cores per task, also its --threads (default 8)
#   TIME          time limit per task (default 24:00:00)
#   MAX_PARALLEL  cap on tasks running at once (default: no cap)
#   LOGS          log folder (default: RUN.logs)
#   SBATCH_ARGS   extra sbatch flags for both jobs, e.g. "--partition=gpu --account=me"
set -euo pipefail

if [[ $# -lt 2 || ! $1 =~ ^[1-9][0-9]*$ ]]; then
  sed -n '2,22p' "$0" >&2
  exit 2
fi
shards=$1
run=$2
shift 2

alphanet=${ALPHANET:-target/release/alphanet}
device=${DEVICE:-cuda:0}
cpus=${CPUS:-8}
logs=${LOGS:-${run%/}.logs}
array="0-$((shards - 1))${MAX_PARALLEL:+%$MAX_PARALLEL}"
read -r -a extra <<<"${SBATCH_ARGS:-}"
mkdir -p "$logs"

# Every argument is quoted for the shell that runs --wrap; $SLURM_ARRAY_TASK_ID is expanded there.
task=$(printf '%q ' "$alphanet" run --out "$run" --device "$device" --threads "$cpus" "$@")
task+="--shard \"\$SLURM_ARRAY_TASK_ID/$shards\""
merge=$(printf '%q ' "$alphanet" merge "$run")

array_id=$(sbatch --parsable "${extra[@]}" \
  --job-name=alphanet-rolling --array="$array" \
  --gres=gpu:1 --cpus-per-task="$cpus" --time="${TIME:-24:00:00}" \
  --output="$logs/shard-%a.out" \
  --wrap="$task")
array_id=${array_id%%;*}

merge_id=$(sbatch --parsable "${extra[@]}" \
  --job-name=alphanet-merge --dependency="afterok:$array_id" \
  --cpus-per-task=2 --time=01:00:00 \
  --output="$logs/merge.out" \
  --wrap="$merge")

echo "submitted array job $array_id ($shards shards) and merge job ${merge_id%%;*}; logs in $logs"
