# Regenerates placement_unallocated.png from placement_default_curve.csv (run from docs/):
#   build/default/bench/placement_report --traces default --seeds 42-51
#     --policies FGD,Random,DotProduct,GpuClustering,GpuPacking,BestFit,FirstFit,WorstFit,FragLookahead
#     --curve-dir DIR    (one command line), then copy DIR/default.csv here and run gnuplot on this file.
set datafile separator ','
set terminal pngcairo size 1000,620 font ',11'
set output 'placement_unallocated.png'
set title "openb default trace: unallocated GPU vs arrived workload (mean of seeds 42-51)"
set xlabel 'arrived GPU workload (% of cluster GPU capacity)'
set ylabel 'unallocated GPU (% of capacity)'
set xrange [70:130]
set yrange [0:35]
set key top left
set grid
# Columns: arrived_pct, FGD, Random, DotProduct, GpuClustering, GpuPacking, BestFit,
# FirstFit, WorstFit, FragLookahead, bound.
names = "FGD Random DotProduct GpuClustering GpuPacking BestFit FirstFit WorstFit FragLookahead"
colors = "#d62728 #8c564b #17becf #bcbd22 #9467bd #2ca02c #ff7f0e #7f7f7f #1f77b4"
plot for [i=1:9] 'placement_default_curve.csv' every ::1 using 1:(100-column(1+i)) with lines lw (i==9?3:(i==1?2.5:1.5)) lc rgb word(colors,i) title word(names,i), 'placement_default_curve.csv' every ::1 using 1:(100-column(11)) with lines lw 2 dt 2 lc rgb 'black' title 'upper bound (LP, any policy)', 'placement_default_curve.csv' every ::1 using 1:($1 >= 95 ? 0.75*(100-column(2)) : 1/0) with lines lw 1.5 dt 3 lc rgb '#d62728' title 'target: 25% less than FGD (once FGD refuses pods)'
