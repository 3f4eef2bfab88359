#!/usr/bin/env python3
"""Prints name, median and mean (ms) from a hyperfine --export-json file, and each median's
ratio to the first command's: the figures bench/RESULTS.md records."""
import json, statistics, sys

results = json.load(open(sys.argv[1]))["results"]
base = statistics.median(results[0]["times"])
print(f"| command | median ms | mean ms | runs | median vs first |")
print(f"|---|---:|---:|---:|---:|")
for r in results:
    med = statistics.median(r["times"])
    print(f"| {r['command']} | {med*1000:.2f} | {r['mean']*1000:.2f} | {len(r['times'])} | {med/base:.2f}x |")
