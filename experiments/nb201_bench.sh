#!/usr/bin/env bash
# Reproduce the NB201 discrete-search table of experiments/nb201_bench.md:
#   bash experiments/nb201_bench.sh [QUERIES] [RUNS] > experiments/nb201_bench_results.jsonl
set -euo pipefail
Q=${1:-100}
R=${2:-500}
for ds in cifar10 cifar100 imagenet16; do
  for s in random rea reinforce bo; do
    jaxnas bench nb201 --strategy "$s" --queries "$Q" --runs "$R" --dataset "$ds" --seed 0 --json
  done
done
