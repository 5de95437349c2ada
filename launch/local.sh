#!/usr/bin/env bash
# Runs NUM_PROCESSES copies of gan.main on this machine, connected with
# jax.distributed over localhost: a single-machine rehearsal of a multi-host run
# (CPU), or one process per GPU group on a multi-GPU box.
#
# Usage:
#   launch/local.sh NUM_PROCESSES CONFIG WORKDIR [extra gan.main flags...]
#
# Examples:
#   # 2 processes x 2 CPU devices = 4 global devices:
#   DEVICES_PER_PROCESS=2 launch/local.sh 2 configs/quickstart.py /tmp/gan_mp
#   # 4 processes on an 8-GPU machine, 2 GPUs each:
#   launch/local.sh 4 configs/biggan128.py /data/runs/biggan128 --config.train.batch_size=256
#
# Environment:
#   DEVICES_PER_PROCESS  If set: CPU run, each process sees this many CPU devices
#                        (XLA_FLAGS=--xla_force_host_platform_device_count=D and
#                        JAX_PLATFORMS=cpu are exported to the processes).
#                        If unset and GPUs are visible (CUDA_VISIBLE_DEVICES or
#                        nvidia-smi), the GPUs are split evenly between the
#                        processes with CUDA_VISIBLE_DEVICES; otherwise every
#                        process uses JAX's default backend as it is.
#   PORT                 Coordinator port on 127.0.0.1 (default: a free port).
#   PYTHON               Python interpreter (default: python).
#
# Every line of output is prefixed with [pI]. The script waits for all
# processes and exits with the first failure's status (killing the others as
# soon as one fails), or 0 if all succeeded.
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 3 ]] || usage
NUM_PROCESSES=$1
CONFIG=$2
WORKDIR=$3
shift 3
[[ $NUM_PROCESSES =~ ^[1-9][0-9]*$ ]] || { echo "NUM_PROCESSES must be a positive integer, got '$NUM_PROCESSES'" >&2; exit 2; }

PYTHON=${PYTHON:-python}
if [[ -z ${PORT:-} ]]; then
  PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
COORDINATOR=127.0.0.1:$PORT

# Make `gan` importable from the repository this script lives in, even without `pip install -e .`.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

# Per-process device assignment.
GPU_LIST=()
if [[ -n ${DEVICES_PER_PROCESS:-} ]]; then
  [[ $DEVICES_PER_PROCESS =~ ^[1-9][0-9]*$ ]] || { echo "DEVICES_PER_PROCESS must be a positive integer" >&2; exit 2; }
  export JAX_PLATFORMS=cpu
  export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_force_host_platform_device_count=$DEVICES_PER_PROCESS"
  echo "local.sh: $NUM_PROCESSES processes x $DEVICES_PER_PROCESS CPU devices, coordinator $COORDINATOR" >&2
elif [[ ${JAX_PLATFORMS:-} != cpu ]]; then
  if [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then
    IFS=, read -r -a GPU_LIST <<< "$CUDA_VISIBLE_DEVICES"
  elif command -v nvidia-smi > /dev/null 2>&1; then
    mapfile -t GPU_LIST < <(nvidia-smi --query-gpu=index --format=csv,noheader 2> /dev/null || true)
  fi
fi
GPUS_PER_PROCESS=0
if [[ ${#GPU_LIST[@]} -gt 0 ]]; then
  if (( ${#GPU_LIST[@]} % NUM_PROCESSES )); then
    echo "local.sh: ${#GPU_LIST[@]} GPUs do not split evenly into $NUM_PROCESSES processes" >&2
    exit 2
  fi
  GPUS_PER_PROCESS=$(( ${#GPU_LIST[@]} / NUM_PROCESSES ))
  echo "local.sh: $NUM_PROCESSES processes x $GPUS_PER_PROCESS GPUs, coordinator $COORDINATOR" >&2
fi

# Each process runs in its own process group (set -m), so that killing it also
# kills its output filter; PIDS[i] is that group's id.
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM -- "-$pid" 2> /dev/null || true
  done
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# Line-by-line (awk/mawk and sed may buffer their input when it is a pipe).
prefix_lines() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    printf '%s%s\n' "$1" "$line"
  done
}

set -m
for (( i = 0; i < NUM_PROCESSES; i++ )); do
  (
    if (( GPUS_PER_PROCESS > 0 )); then
      gpus=("${GPU_LIST[@]:i * GPUS_PER_PROCESS:GPUS_PER_PROCESS}")
      CUDA_VISIBLE_DEVICES=$(IFS=,; echo "${gpus[*]}")
      # Explicit, so that JAX's SLURM detection (inside an allocation) does not
      # narrow each process to one GPU.
      JAX_LOCAL_DEVICE_IDS=$(seq -s, 0 $((GPUS_PER_PROCESS - 1)))
      export CUDA_VISIBLE_DEVICES JAX_LOCAL_DEVICE_IDS
    fi
    "$PYTHON" -m gan.main --config="$CONFIG" --workdir="$WORKDIR" \
        --coordinator_address="$COORDINATOR" --num_processes="$NUM_PROCESSES" \
        --process_id="$i" "$@" 2>&1 | prefix_lines "[p$i] "
  ) &
  PIDS+=("$!")
done
set +m

# Poll, so that the first failure is noticed whichever process it is.
STATUS=0
RUNNING=("${PIDS[@]}")
while [[ ${#RUNNING[@]} -gt 0 ]]; do
  STILL=()
  for idx in "${!RUNNING[@]}"; do
    pid=${RUNNING[$idx]}
    if kill -0 "$pid" 2> /dev/null; then
      STILL+=("$pid")
      continue
    fi
    rc=0
    wait "$pid" || rc=$?
    if (( rc != 0 && STATUS == 0 )); then
      STATUS=$rc
      for i in "${!PIDS[@]}"; do
        [[ ${PIDS[$i]} == "$pid" ]] && echo "local.sh: process $i exited with status $rc; stopping the others" >&2
      done
      cleanup
    fi
  done
  RUNNING=("${STILL[@]+"${STILL[@]}"}")
  [[ ${#RUNNING[@]} -gt 0 ]] && sleep 1
done
trap - EXIT
exit "$STATUS"
