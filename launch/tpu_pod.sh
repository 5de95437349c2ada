#!/usr/bin/env bash
# Runs gan.main on every host (worker) of a Cloud TPU VM pod slice, through
# `gcloud compute tpus tpu-vm ssh --worker=all`. On each host,
# jax.distributed.initialize() (gan.main --distributed) finds the coordinator,
# process count and process id from the TPU metadata.
#
# Usage (from your workstation, in the repository root):
#   launch/tpu_pod.sh copy                            # this checkout -> $REPO_DIR on all workers
#   launch/tpu_pod.sh setup                           # pip install -e . "jax[tpu]" on all workers
#   launch/tpu_pod.sh train CONFIG WORKDIR [gan.main flags...]
#   launch/tpu_pod.sh logs                            # last lines of each worker's log (BACKGROUND=1)
#   launch/tpu_pod.sh run 'COMMAND'                   # any command, in $REPO_DIR on all workers
#
# Example:
#   export TPU_NAME=my-v4-32 ZONE=us-central2-b
#   launch/tpu_pod.sh copy && launch/tpu_pod.sh setup
#   launch/tpu_pod.sh run 'python3 -c "import jax; jax.distributed.initialize(); print(jax.device_count())"'
#   launch/tpu_pod.sh train configs/biggan128.py /mnt/runs/biggan128 \
#       --config.data.data_dir=gs://my-bucket/tensorflow_datasets
#
# The code (same version) and `setup` must be on ALL workers before `train`:
# run `copy` (or git clone on each worker) and `setup` after every change of
# code or dependencies. WORKDIR must be a directory every host sees at the same
# path, e.g. a GCS bucket mounted with gcsfuse or an NFS (Filestore) mount: all
# hosts write the orbax checkpoints there together and resume from it. The
# dataset (config.data.data_dir) must also be readable from every host; TFDS
# reads gs:// paths directly.
#
# Variables:
#   TPU_NAME    (required) name of the TPU VM.
#   ZONE        (required) its zone, e.g. us-central2-b.
#   PROJECT     GCP project (default: gcloud's configured project).
#   REPO_DIR    checkout on the workers, relative to the home directory or
#               absolute (default: gan).
#   PYTHON      interpreter on the workers (default: python3).
#   BACKGROUND  1: `train` starts the run with nohup and returns at once; each
#               worker logs to $REPO_DIR/train.<hostname>.log (see `logs`).
#               Default: foreground, output of all workers streamed here (a
#               dropped ssh connection then stops the run).
#   TAIL_LINES  lines per worker shown by `logs` (default: 20).
#   DRY_RUN     1: print the gcloud commands instead of running them.
#   ALLOW_GS_WORKDIR  1: accept a gs:// WORKDIR (refused by default, see `train`).
set -euo pipefail

PYTHON=${PYTHON:-python3}
REPO_DIR=${REPO_DIR:-gan}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
case $1 in -h|--help|help) usage ;; esac
: "${TPU_NAME:?set TPU_NAME (the TPU VM name); see launch/tpu_pod.sh --help}"
: "${ZONE:?set ZONE (the TPU VM zone); see launch/tpu_pod.sh --help}"

GCLOUD_FLAGS=(--zone="$ZONE")
if [[ -n ${PROJECT:-} ]]; then GCLOUD_FLAGS+=(--project="$PROJECT"); fi

run_or_print() {
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    printf '%q ' "$@"
    echo
  else
    "$@"
  fi
}

# Runs a shell command string on all workers.
on_all_workers() {
  run_or_print gcloud compute tpus tpu-vm ssh "$TPU_NAME" "${GCLOUD_FLAGS[@]}" --worker=all \
      --command="$1"
}

# REPO_DIR quoted for the remote shell, keeping a leading ~/ expandable.
remote_repo_dir() {
  if [[ $REPO_DIR == "~/"* ]]; then
    printf '~/%q' "${REPO_DIR#"~/"}"
  else
    printf '%q' "$REPO_DIR"
  fi
}
cd_repo() { echo "cd $(remote_repo_dir)"; }

cmd=$1
shift
case $cmd in
  copy)
    # The working tree without .git, build outputs and local run directories.
    tarball=$(mktemp "${TMPDIR:-/tmp}/gan_src.XXXXXX.tar.gz")
    trap 'rm -f "$tarball"' EXIT
    tar -C "$REPO" -czf "$tarball" --exclude=.git --exclude=__pycache__ --exclude='*.egg-info' \
        --exclude=workdirs --exclude=.venv --exclude=.pytest_cache .
    run_or_print gcloud compute tpus tpu-vm scp "${GCLOUD_FLAGS[@]}" --worker=all \
        "$tarball" "$TPU_NAME:gan_src.tar.gz"
    on_all_workers "mkdir -p $(remote_repo_dir) && tar -xzf gan_src.tar.gz -C $(remote_repo_dir) && rm gan_src.tar.gz"
    ;;
  setup)
    on_all_workers "$(cd_repo) && $PYTHON -m pip install -U pip && $PYTHON -m pip install -e . 'jax[tpu]'"
    ;;
  train)
    [[ $# -ge 2 ]] || { echo "usage: launch/tpu_pod.sh train CONFIG WORKDIR [gan.main flags...]" >&2; exit 2; }
    config=$1
    workdir=$2
    shift 2
    if [[ $workdir == gs://* && ${ALLOW_GS_WORKDIR:-0} != 1 ]]; then
      # gan/ writes every workdir file through etils.epath (GCS-aware), but a
      # gs:// workdir has not been run end to end yet: mounted buckets are the
      # tested path. Opt in explicitly to try gs:// directly.
      echo "WORKDIR=$workdir: gs:// workdirs are untested; mount the bucket on every worker" \
           "(gcsfuse) and pass the mount path, e.g. /mnt/gcs/runs/name, or set" \
           "ALLOW_GS_WORKDIR=1 to write to gs:// directly." >&2
      exit 2
    fi
    train_cmd="$PYTHON -m gan.main --distributed $(printf '%q ' "--config=$config" "--workdir=$workdir" "$@")"
    if [[ ${BACKGROUND:-0} == 1 ]]; then
      train_cmd="nohup $train_cmd > train.\$(hostname).log 2>&1 < /dev/null & echo started on \$(hostname)"
    fi
    on_all_workers "$(cd_repo) && export PYTHONUNBUFFERED=1 && $train_cmd"
    ;;
  logs)
    on_all_workers "$(cd_repo) && for f in train.*.log; do echo \"== \$f\"; tail -n ${TAIL_LINES:-20} \"\$f\"; done"
    ;;
  run)
    [[ $# -eq 1 ]] || { echo "usage: launch/tpu_pod.sh run 'COMMAND'" >&2; exit 2; }
    on_all_workers "$(cd_repo) && $1"
    ;;
  *)
    echo "unknown command '$cmd'; one of: copy, setup, train, logs, run" >&2
    exit 2
    ;;
esac
