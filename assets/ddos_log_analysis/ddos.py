#!/usr/bin/env python3
"""One ddos_log_analysis task: a pandas ETL over a gzipped web access log.

Usage: ddos.py INPUT.log.gz OUTPUT_DIR

Parses the log (pandas read_csv on the space-separated, quoted fields), turns
the time stamps into datetimes, splits the request line and folds ids and
query strings out of the URLs, then builds a per-minute traffic table
(requests, errors, distinct clients, p95 latency), flags spike minutes against
a robust baseline (median + 6 x MAD of the request rate), and ranks the
clients and endpoints behind the errors during the spike.  Writes CSV reports
and summary.json into OUTPUT_DIR.  Exits 1 if no spike is found or the
flagged minutes miss the spike window recorded in INPUT.log.gz.json.
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

COLUMNS = ["ip", "ident", "user", "time", "tz", "request", "status", "bytes",
           "referer", "agent", "ms"]


def main():
    if len(sys.argv) != 3:
        print("usage: ddos.py INPUT.log.gz OUTPUT_DIR", file=sys.stderr)
        return 2
    src, out = sys.argv[1], sys.argv[2]
    with open(src + ".json") as f:
        meta = json.load(f)

    df = pd.read_csv(src, sep=" ", header=None, names=COLUMNS, quotechar='"',
                     usecols=["ip", "time", "request", "status", "bytes", "agent", "ms"],
                     dtype={"status": "int16", "bytes": "int64", "ms": "int64"},
                     compression="gzip", na_filter=False)
    df["time"] = pd.to_datetime(df["time"].str.slice(1), format="%d/%b/%Y:%H:%M:%S")
    req = df["request"].str.split(" ", n=2, expand=True)
    df["method"] = req[0]
    df["endpoint"] = (req[1].str.replace(r"\?.*$", "", regex=True)
                      .str.replace(r"/\d+", "/:id", regex=True))
    df["minute"] = df["time"].dt.floor("min")
    df["error"] = (df["status"] >= 500) | (df["status"] == 429)
    df["status_class"] = (df["status"] // 100).astype(str) + "xx"

    per_minute = df.groupby("minute").agg(requests=("status", "size"),
                                          errors=("error", "sum"),
                                          clients=("ip", "nunique"),
                                          bytes=("bytes", "sum"))
    per_minute["p95_ms"] = df.groupby("minute")["ms"].quantile(0.95)
    per_minute["error_rate"] = per_minute["errors"] / per_minute["requests"]
    median = per_minute["requests"].median()
    mad = (per_minute["requests"] - median).abs().median()
    threshold = median + 6.0 * max(mad, 1.0)
    per_minute["spike"] = (per_minute["requests"] > threshold) | (per_minute["error_rate"] > 0.5)
    spike_minutes = per_minute.index[per_minute["spike"]]

    in_spike = df["minute"].isin(spike_minutes)
    attackers = (df[in_spike & df["error"]].groupby("ip")
                 .agg(errors=("status", "size"), endpoints=("endpoint", "nunique"),
                      mean_ms=("ms", "mean"))
                 .sort_values("errors", ascending=False))
    targets = (df[in_spike].groupby(["endpoint", "status"]).size()
               .rename("requests").sort_values(ascending=False))
    status_by_endpoint = pd.crosstab(df["endpoint"], df["status_class"])
    agents = df[in_spike & df["error"]]["agent"].value_counts()

    per_minute.to_csv(os.path.join(out, "per_minute.csv"))
    attackers.head(100).to_csv(os.path.join(out, "top_attackers.csv"))
    targets.to_csv(os.path.join(out, "spike_targets.csv"))
    status_by_endpoint.to_csv(os.path.join(out, "status_by_endpoint.csv"))

    start = pd.Timestamp(meta["start_epoch"], unit="s") + pd.Timedelta(minutes=meta["spike_start_minute"])
    window = pd.date_range(start, periods=meta["spike_minutes"], freq="min")
    hit = len(set(spike_minutes) & set(window))
    summary = {
        "lines": int(len(df)),
        "errors": int(df["error"].sum()),
        "baseline_requests_per_minute": float(median),
        "threshold": float(threshold),
        "spike_minutes": [str(t) for t in spike_minutes],
        "spike_minutes_in_true_window": hit,
        "attacker_ips": int(len(attackers)),
        "top_agent_in_spike": str(agents.index[0]) if len(agents) else None,
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("%d lines, %d errors, %d spike minute(s) (%d in the true window), %d attacker IPs"
          % (len(df), summary["errors"], len(spike_minutes), hit, len(attackers)))
    expected = meta["normal_lines"] + meta["error_lines"]
    if len(df) != expected:
        print("FAIL: parsed %d lines, expected %d" % (len(df), expected), file=sys.stderr)
        return 1
    if hit == 0:
        print("FAIL: no spike detected in the attack window", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
