#!/bin/sh
# Run the benchmarks of a build; results as JSON lines under bench/results/.
#   bench/run.sh BUILD
set -eu
build=$1
out=bench/results
mkdir -p "$out"
dir=$(mktemp -d /dev/shm/kvmstats-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
export KVMSTATS_SHM_DIR="$dir"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "kernel:  $(uname -r)"
echo
"$build/bench/bench_reader" -v 8 -n "${BENCH_SAMPLES:-100000}" -j "$out/reader.json"
echo
"$build/bench/bench_publisher" -n "${BENCH_SWEEPS:-2000}" -j "$out/publisher.json"
echo
echo "results: $out/reader.json $out/publisher.json"
