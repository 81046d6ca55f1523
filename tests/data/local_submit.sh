#!/usr/bin/env bash
# A stand-in batch system for snakemake's cluster-generic executor: runs the job
# script (the last argument) in the background on this machine and prints a job id.
# Each submission is recorded in $HEPSEL_SUBMIT_LOG (if set).
set -euo pipefail
jobscript="${!#}"
[[ -n "${HEPSEL_SUBMIT_LOG:-}" ]] && echo "$jobscript" >> "$HEPSEL_SUBMIT_LOG"
nohup bash "$jobscript" > /dev/null 2>&1 &
echo "$!"
