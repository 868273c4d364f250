# Regenerates placement_unallocated.png from placement_default_curve.csv (run from docs/):
#   gpu-autoscaler simulate ... --arrived-curve placement_default_curve.csv && gnuplot placement_unallocated.gp
set datafile separator ','
set terminal png size 1000,620 font ',11'
set output 'placement_unallocated.png'
set title "openb default trace: unallocated GPU vs arrived workload (mean of seeds 42-51)"
set xlabel 'arrived GPU workload (% of cluster GPU capacity)'
set ylabel 'unallocated GPU (% of capacity)'
set xrange [70:130]
set yrange [0:35]
set key top left
set grid
names = "Random DotProduct GpuClustering GpuPacking BestFit FGD FirstFit WorstFit FragLookahead"
plot for [i=1:9] 'placement_default_curve.csv' every ::1 using 1:(100-column(2+3*(i-1))) with lines lw (i==9?3:(i==6?2:1.5)) title word(names,i)
