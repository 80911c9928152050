#!/bin/sh
# Run the benchmarks of a build; results as JSON lines (one object per
# measurement) and plot data under bench/results/, plots if gnuplot is there.
#   bench/run.sh BUILD            the full run (make bench)
#   BENCH_QUICK=1 bench/run.sh BUILD   fewer samples, under a minute (make bench-quick)
# BENCH_KVM=0 skips the real-KVM part (this host's /dev/kvm).
set -eu
build=$1
out=bench/results
mkdir -p "$out"
dir=$(mktemp -d /dev/shm/kvmstats-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
export KVMSTATS_SHM_DIR="$dir"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	reader="-n 3000 -r 3"; sizes=8,64,256; pub="-n 200 -r 50"; intf="-n 200 -t 300"
	kvm_reader="-n 2000"; exporter="-n 30 -b 5 -c 1x8,64x8"; top_secs=5; qemu_calls=40
else
	reader="-n ${BENCH_SAMPLES:-30000} -r 5"; sizes=8,64,256; pub="-n ${BENCH_SWEEPS:-2000} -r 300"
	intf="-n 2000 -t 2000"; kvm_reader="-n 20000"; exporter="-n 300 -b 30"; top_secs=30
	qemu_calls=400
fi

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "kernel:  $(uname -r)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (a shared machine: compare ratios, not absolutes)"
echo
# shellcheck disable=SC2086
"$build/bench/bench_reader" -v $sizes $reader -j "$out/reader.json" -p "$out/reader.tsv"
echo
# shellcheck disable=SC2086
"$build/bench/bench_publisher" $pub -j "$out/publisher.json" -p "$out/publisher.tsv"
echo
# The sched provider's cost beside kvm alone, 8 and 64 vCPUs, in one run.
"$build/bench/bench_sched" -n "${BENCH_SWEEPS:-2000}" -j "$out/sched.json"
echo
# shellcheck disable=SC2086
"$build/bench/bench_interference" $intf -j "$out/interference.json" \
	-p "$out/interference.tsv" -q "$out/interference-reader.tsv"
echo
# shellcheck disable=SC2086
"$build/bench/bench_exporter" $exporter -j "$out/exporter.json"
echo
/usr/bin/python3 bench/bench_top.py "$build" "$top_secs" "$out/top.json"
if [ "${BENCH_KVM:-1}" = 1 ]; then
	echo
	echo "real KVM stats fds: this host's /dev/kvm (a nested VM: the figures are the"
	echo "nested kernel's; the test guest of make test-kvm runs under TCG, too slow to time)"
	# shellcheck disable=SC2086
	"$build/bench/bench_reader" -k -v 8 $kvm_reader -j "$out/reader-kvm.json"
	# shellcheck disable=SC2086
	"$build/bench/bench_publisher" -k $pub -j "$out/publisher-kvm.json" \
		-p "$out/publisher-kvm.tsv"
	echo
	# Real QEMUs (7.2 under the shim, 10 under --attach): QMP query-stats
	# through QEMU, through kvmstats qmp, and the reader library, one VM.
	/usr/bin/python3 bench/bench_qemu.py "$build" "$qemu_calls" "$out/qemu.json"
fi
cat "$out"/*.json > "$out/all.json.tmp" && mv "$out/all.json.tmp" "$out/all.jsonl"
if command -v gnuplot >/dev/null 2>&1; then
	gnuplot -e "dir='$out'" bench/plots.gp && echo "plots: $out/*.png"
else
	echo "no gnuplot: no plots (bench/install-deps.sh installs it)"
fi
echo
echo "results: $out/*.json (one JSON object per measurement; all of them in $out/all.jsonl)"
echo "targets: $(grep -c '"met":true' "$out/all.jsonl" || true) met," \
     "$(grep -c '"met":false' "$out/all.jsonl" || true) missed:"
grep '"met":false' "$out/all.jsonl" | sed 's/.*"name":"\([^"]*\)".*"ratio":\([0-9.]*\).*"target":"\([^"]*\)".*/  MISSED \1: ratio \2 (\3)/' || true
