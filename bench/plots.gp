# gnuplot -e "dir='bench/results'" bench/plots.gp
# The report's three plots from the benchmarks' TSV files.
set terminal pngcairo size 900,560 font "DejaVu Sans,10" noenhanced
set grid
set key top left

# reader.tsv: vcpus scalar-warm scalar-fresh record-warm record-fresh cut-warm
#             cut-fresh copy-rec-warm copy-rec-fresh copy-cut-warm copy-cut-fresh
#             cut-fresh-p99 one-way
set output dir."/latency-by-vm-size.png"
set title "Reader latency p50 by VM size (net of timer; host, simulated VM)"
set logscale xy
set xlabel "vCPUs"
set ylabel "ns"
set xtics (8, 64, 256)
plot dir."/reader.tsv" using 1:3 with linespoints lw 2 title "one stat, fresh", \
     ""  using 1:2 with linespoints title "one stat, warm", \
     ""  using 1:5 with linespoints lw 2 title "vCPU record, fresh", \
     ""  using 1:9 with linespoints dt 2 title "plain copy of a record, fresh", \
     ""  using 1:7 with linespoints lw 2 title "VM-wide cut, fresh", \
     ""  using 1:11 with linespoints dt 2 title "plain copy of the cut, fresh", \
     ""  using 1:6 with linespoints title "VM-wide cut, warm", \
     ""  using 1:13 with lines dt 3 lw 2 title "one-way line transfer"

# publisher.tsv: vcpus sweep bare ring ring+clock uring (per target) ratio
#                ring+tsc (per target) clock-per-target-ratio
set output dir."/publisher-by-vcpus.png"
set title "Publisher cost per target (p50 of a sweep / targets; host, simulated VM)"
set logscale x 2
unset logscale y
set xtics auto
set yrange [0:*]
set ylabel "ns per target"
plot dir."/publisher.tsv" using 1:2 with linespoints lw 2 title "kvmstats sweep", \
     ""  using 1:3 with linespoints lw 2 title "bare pread loop (floor)", \
     ""  using 1:4 with linespoints dt 2 title "bare pread into a segment-like ring", \
     ""  using 1:5 with linespoints dt 2 title "... plus clock_gettime per target", \
     ""  using 1:8 with linespoints dt 2 title "... plus TSC per target, two clock pairs", \
     ""  using 1:($6 > 0 ? $6 : 1/0) with linespoints dt 3 title "io_uring, one submit per sweep"

# interference.tsv: vcpus none control one-reader two-readers header-poller (sweep p50 ns)
set output dir."/interference.png"
set title "Publisher sweep p50 with readers hammering from the other CPU"
unset logscale
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xlabel "vCPUs"
set ylabel "sweep p50, relative to no reader"
set key top right horizontal
set yrange [0:1.8]
plot dir."/interference.tsv" using ($2/$2):xtic(1) title "no reader", \
     ""  using ($3/$2) title "private-copy loop (control)", \
     ""  using ($4/$2) title "1 reader", \
     ""  using ($5/$2) title "2 readers", \
     ""  using ($6/$2) title "header poller"
