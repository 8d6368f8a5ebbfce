"""Per-kernel GPU time from an Nsight Compute CSV (`ncu --metrics gpu__time_duration.sum --csv
--print-units base ...`): launches, total and mean time per kernel, largest first.

Usage: python3 scripts/ncu_summary.py NCU.csv
"""
import collections
import csv
import io
import sys

lines = open(sys.argv[1]).read().splitlines()
header = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
if header is None:
    sys.exit(f"{sys.argv[1]}: no ncu CSV table in it (did ncu profile anything?)")
total = collections.defaultdict(float)
count = collections.Counter()
shape = {}
for row in csv.DictReader(io.StringIO("\n".join(lines[header:]))):
    if row["Metric Name"] != "gpu__time_duration.sum":
        continue
    name = row["Kernel Name"]
    total[name] += float(row["Metric Value"].replace(",", ""))
    count[name] += 1
    shape[name] = f"grid {row['Grid Size']} block {row['Block Size']}"
whole = sum(total.values())
print(f"{sum(count.values())} launches, {whole / 1e6:.3f} ms of kernel time")
print(f"{'kernel':<30} {'launches':>8} {'total ms':>9} {'share':>6} {'mean us':>8}  last launch")
for name, ns in sorted(total.items(), key=lambda kv: -kv[1]):
    print(f"{name:<30} {count[name]:>8} {ns / 1e6:>9.3f} {100 * ns / whole:>5.1f}% "
          f"{ns / count[name] / 1e3:>8.1f}  {shape[name]}")
