set terminal pngcairo size 900,520 noenhanced
set output 'docs/img/bench-memif-flows.png'
set datafile separator ','
set key below
set grid ytics
set title 'magline-bench: magline run (one worker) over net_memif, by flows'
set xlabel 'flows'
set ylabel 'Mpps'
set yrange [0:*]
set style data linespoints
plot 'docs/img/bench-memif-flows.csv' every ::1 using 0:8:xticlabels(1) title 'testpmd macswap (same generator, memif)', '' every ::1 using 0:6 title 'Magline transmitted', '' every ::1 using 0:($7 > 0 ? $7 : 1/0) title 'Magline capacity (busy cycles)', '' every ::1 using 0:($20 > 0 ? $6 : 1/0) with points pt 6 ps 2.5 lc 'red' title 'disturbed (ring macswap < 0.8x testpmd)'
