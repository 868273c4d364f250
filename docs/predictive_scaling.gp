# Regenerates predictive_scaling.png from the replay's per-step series (run from docs/):
#   ../build/default/bench/autoscale_replay --no-progress --through-controller \
#       --series-dir . --series-hours 48
#   gnuplot predictive_scaling.gp
# Demand (peak GPUs of running and pending pods per minute, no waiting) against the GPUs
# each strategy has provisioned (ready plus in flight: what is billed), from the start of
# the report window (after the training part).
set datafile separator ','
set terminal png size 1100,900 font ',11'
set output 'predictive_scaling.png'
set multiplot layout 2,1
set grid
set key bottom right
set ylabel 'GPUs'
set xlabel 'hours into the report window'
set title "openb default pod list: the first 48 hours after the training split (8-GPU nodes, 90 s provisioning)"
plot 'autoscale_openb_series.csv' every ::1 using 1:2 with lines lw 2 lc rgb 'black' title 'demand', \
     '' every ::1 using 1:4 with steps lw 1.5 lc rgb '#d62728' title 'reactive', \
     '' every ::1 using 1:6 with steps lw 1.5 lc rgb '#1f77b4' title 'predictive', \
     '' every ::1 using 1:8 with steps lw 1.5 dt 2 lc rgb '#2ca02c' title 'oracle'
set title "GenTD26 QPS as replicas (0.5 QPS per replica, 1 GPU each): the first 6 hours after the training split"
set xrange [0:6]
set key top right
plot 'autoscale_genai_series.csv' every ::1 using 1:2 with lines lw 2 lc rgb 'black' title 'demand', \
     '' every ::1 using 1:4 with steps lw 1.5 lc rgb '#d62728' title 'reactive', \
     '' every ::1 using 1:6 with steps lw 1.5 lc rgb '#1f77b4' title 'predictive', \
     '' every ::1 using 1:8 with steps lw 1.5 dt 2 lc rgb '#2ca02c' title 'oracle'
unset multiplot
