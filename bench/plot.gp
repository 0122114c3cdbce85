# gnuplot -e "dir='RESULTS'" bench/plot.gp: the plots of a bench/run result
# directory (from report.py's .dat files), each as SVG and PNG.
set datafile missing "NaN"
set key top right
set grid ytics
hs_label = "full handshakes per second (one connection at a time)"

do for [t in "svg pngcairo"] {
    ext = (t eq "svg") ? "svg" : "png"
    eval("set terminal ".t." size 1100,560 font 'sans,10'")

    set output dir."/handshakes.".ext
    set ylabel hs_label
    set title "PSK handshakes per second by server and key count, 127.0.0.1"
    set style data histograms
    set style histogram clustered gap 1
    set style fill solid 0.8 border -1
    set xtics rotate by -40 scale 0
    set logscale y
    set yrange [1:*]
    unset logscale x
    unset xlabel
    plot dir."/handshakes.dat" using 2:xtic(1) title "TLS 1.2", "" using 3 title "TLS 1.3"

    set style data linespoints
    set logscale x
    set xtics auto rotate by 0 scale 1
    set xlabel "keys in the server's store or PSK file"
    do for [what in "scaling cpu"] {
        set output dir."/".what.".".ext
        if (what eq "scaling") {
            set ylabel hs_label
            set multiplot layout 1,2 title "Handshakes per second against the number of keys"
        } else {
            set ylabel "server CPU per handshake, µs (utime + stime)"
            set multiplot layout 1,2 title "Server CPU per handshake against the number of keys"
        }
        do for [v in "tls1.2 tls1.3"] {
            f = dir."/".what."-".v.".dat"
            n = int(system("head -1 '".f."' | wc -w"))
            set title v
            plot for [i=2:n] f using 1:i title columnheader(i) lw 2 pt 7
        }
        unset multiplot
    }
    unset logscale
}
