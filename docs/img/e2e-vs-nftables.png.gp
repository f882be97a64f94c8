set terminal pngcairo size 900,520 noenhanced
set output 'docs/img/e2e-vs-nftables.png'
set datafile separator ','
set key below
set grid ytics
set title 'magline run (af_packet, DNAT) against nftables DNAT, same namespaces, same run: medians of 3'
set ylabel 'Magline / nftables'
set yrange [0:2]
set style fill solid 0.6 border -1
set boxwidth 0.5
set xrange [-0.6:2.6]
goal(m) = m eq 'udp' ? 1.5 : (m eq 'tcp' ? 1.0 : 1/0)
plot 'docs/img/e2e-vs-nftables.csv' every ::1 using 0:9:xticlabels(stringcolumn(1).' ('.stringcolumn(2).')') with boxes title 'Magline / nftables (median)', \
     '' every ::1 using 0:9:($3/$7):($5/$7) with yerrorbars lc 'black' pt 0 title 'Magline min..max / nftables median', \
     '' every ::1 using 0:(goal(stringcolumn(1))) with points pt 7 ps 1.5 lc 'red' title 'goal (issue 19)', \
     1 with lines dt 2 lc 'gray' notitle
