#!/usr/bin/env bash
# Runs every BenchmarkFigure_<name> benchmark several times and prints the median of each as
#   bench: <name> <value> <unit>
# A figure benchmark reports one custom metric, whose unit is the figure's unit; one that reports
# several names each as "<figure>:<unit>".
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${BENCH_RUNS:-3}
out=.local/bench.txt
mkdir -p .local
go test -run '^$' -bench 'Figure_' -benchtime 1x -count "$runs" -timeout 90m ./... | tee "$out"
echo
awk '
  /^BenchmarkFigure_/ {
    name = $1; sub(/^BenchmarkFigure_/, "", name); sub(/-[0-9]+$/, "", name)
    for (i = 3; i < NF; i += 2) {
      unit = $(i + 1)
      if (unit == "ns/op" || unit == "B/op" || unit == "allocs/op") continue
      fig = name
      if (index(unit, ":") > 0) { fig = substr(unit, 1, index(unit, ":") - 1); unit = substr(unit, index(unit, ":") + 1) }
      vals[fig] = vals[fig] " " $i; units[fig] = unit
    }
  }
  END {
    for (name in vals) {
      n = split(substr(vals[name], 2), v, " ")
      # insertion sort, then the median
      for (i = 2; i <= n; i++) { x = v[i] + 0; j = i - 1; while (j > 0 && v[j] + 0 > x) { v[j + 1] = v[j]; j-- } v[j + 1] = x }
      med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
      printf "bench: %s %s %s\n", name, (med >= 100 ? sprintf("%.0f", med) : sprintf("%.3g", med)), units[name]
    }
  }' "$out" | sort
