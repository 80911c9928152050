#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh BUILD SECONDS NAME... - run each fuzzer BUILD/fuzz_NAME for SECONDS.
#
# Corpus: BUILD/corpus/NAME (grows, kept between runs) seeded from
# BUILD/corpus/seeds/NAME (written by fuzz-seeds).  A crash, a hang
# (-timeout) or any sanitizer report (UBSan halts too) fails the run, leaves
# the input in BUILD/artifacts/ and shows the end of the log.
set -u
build=$1 secs=$2
shift 2
mkdir -p "$build/artifacts"
fail=0
for name in "$@"; do
	case $name in
	statsfd) len=65536 ;;
	segment|exporter) len=262144 ;;
	intake_msg) len=4352 ;;	# 16 records of 1 + 1 + 264 bytes
	*) len=4096 ;;
	esac
	mkdir -p "$build/corpus/$name" "$build/corpus/seeds/$name"
	log=$build/fuzz_$name.log
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	"$build/fuzz_$name" -max_total_time="$secs" -max_len="$len" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$build/artifacts/$name-" \
		"$build/corpus/$name" "$build/corpus/seeds/$name" >"$log" 2>&1
	rc=$?
	stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" |
		sed 's/^stat:://' | tr -s ' \n' ' ')
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
	if [ $rc -ne 0 ]; then
		echo "fuzz $name: FAILED (exit $rc), log $log:"
		tail -n 40 "$log"
		fail=1
	else
		echo "fuzz $name: ${secs}s, ${stats}${cov}, corpus $(ls "$build/corpus/$name" | wc -l) inputs"
	fi
done
exit $fail
