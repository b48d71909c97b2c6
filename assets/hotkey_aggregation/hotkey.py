#!/usr/bin/env python3
"""One hotkey_aggregation task: per-key statistics of a skewed event table.

Usage: hotkey.py INPUT.csv OUTPUT_DIR

Reads the CSV written by gen_data.py and computes, per key: count, sum, mean,
standard deviation, min, max and the 50/90/99 % quantiles (pandas sorts each
group for the quantiles, so one huge group is expensive); per region and key:
sum; per minute: count and mean.  Writes the results as CSV files into
OUTPUT_DIR.  Checks that every row was counted and, when the partition holds
the hot key (INPUT.csv.json), that the hot key is the most frequent one.
Exit status 0 on success, 1 when a check fails.
"""
import os

# one thread: set before numpy/pandas are imported
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "NUMEXPR_MAX_THREADS"):
    os.environ[_var] = "1"

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402

# Debian's pandas calls platform.uname() when imported, and Python fills in
# uname().processor by running `uname -p` in a child process.  Fill the cached
# field in first (with what `uname -p` gives on Linux: "unknown", reported as
# ""), so that the task starts no helper process with a foreign comm.
try:
    platform.uname().__dict__.setdefault("processor", "")
except AttributeError:
    pass

import pandas as pd  # noqa: E402

pd.set_option("compute.use_numexpr", False)


def main():
    if len(sys.argv) != 3:
        print("usage: hotkey.py INPUT.csv OUTPUT_DIR", file=sys.stderr)
        return 2
    src, out = sys.argv[1], sys.argv[2]
    with open(src + ".json") as f:
        meta = json.load(f)

    df = pd.read_csv(src, dtype={"event_time": "int64", "key_id": "int64",
                                 "region": "int8", "value": "float64"})
    by_key = df.groupby("key_id")["value"]
    stats = by_key.agg(["count", "sum", "mean", "std", "min", "max"])
    quantiles = by_key.quantile([0.5, 0.9, 0.99]).unstack()
    quantiles.columns = ["p50", "p90", "p99"]
    stats = stats.join(quantiles).sort_values("count", ascending=False)
    by_region = df.groupby(["region", "key_id"])["value"].sum().rename("value_sum")
    per_minute = df.groupby(df["event_time"] // 60)["value"].agg(["count", "mean"])

    stats.to_csv(os.path.join(out, "key_stats.csv"))
    by_region.to_csv(os.path.join(out, "region_key_sums.csv"))
    per_minute.to_csv(os.path.join(out, "per_minute.csv"))

    errors = []
    if int(stats["count"].sum()) != meta["rows"] or len(df) != meta["rows"]:
        errors.append("counted %d rows, expected %d" % (stats["count"].sum(), meta["rows"]))
    if meta["hot_key"] is not None and stats.index[0] != meta["hot_key"]:
        errors.append("most frequent key %s is not the hot key %s" % (stats.index[0], meta["hot_key"]))
    if stats[["p50", "p90", "p99"]].isna().any().any():
        errors.append("missing quantiles")
    top = stats.iloc[0]
    print("%d rows, %d keys; top key %s: %d rows, p99 %.3f"
          % (len(df), len(stats), stats.index[0], top["count"], top["p99"]))
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
