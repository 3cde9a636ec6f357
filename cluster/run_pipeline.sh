#!/usr/bin/env bash
# Every stage of dvc.yaml, in its order, without DVC: the pipeline of a one-shot cluster run
# (the KubeRay RayJob's entrypoint). Stops at the first failing stage; verify fails on any
# problem, so training starts only on verified shards. Training asks for one GPU: with
# RAY_ADDRESS set (as it is inside a Ray job) cluster/run_stage.py submits it as its own Ray job,
# which Ray places on a GPU node; without RAY_ADDRESS it runs here.
#
#   MIRRORSET_SOURCE=sample MIRRORSET_OUT=out/sample MIRRORSET_TRAIN_OUT=out/train \
#     bash cluster/run_pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source=${MIRRORSET_SOURCE:?set MIRRORSET_SOURCE: a photo folder, a .parquet/.csv list, a URI or "sample"}
out=${MIRRORSET_OUT:?set MIRRORSET_OUT: where the dataset goes, a path or an object-store URI}
train_out=${MIRRORSET_TRAIN_OUT:?set MIRRORSET_TRAIN_OUT: where training writes checkpoints and metrics}

mirrorset build --stage ingest --source "$source" --out "$out"
mirrorset build --stage detect --out "$out"
for subset in simulated professional; do
  mirrorset build --stage shards --subset "$subset" --out "$out"
done
mirrorset verify "$out" --report "$out/verify.json"
python cluster/run_stage.py train --entrypoint-num-gpus 1 -- \
  mirrorset train --data "$out" --report "$out/verify.json" --out "$train_out"
