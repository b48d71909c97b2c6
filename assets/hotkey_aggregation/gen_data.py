#!/usr/bin/env python3
"""Generate one partition of the hotkey_aggregation event table (setup only).

Writes a CSV with columns event_time (epoch seconds, sorted), key_id, region
(0..7) and value (log-normal, 3 decimals), plus <out>.json with the row count
and the hot key.  Keys follow a Zipf-like law over --keys distinct ids; with
--hot-share > 0 one key (--hot-key) additionally takes that share of all rows.
Everything is vectorised with numpy; the same arguments give the same file.
"""
import argparse
import json

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--keys", type=int, default=200_000)
    ap.add_argument("--hot-key", type=int, default=4242)
    ap.add_argument("--hot-share", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    rng = np.random.default_rng(a.seed)
    n = a.rows
    weights = 1.0 / np.arange(1, a.keys + 1) ** 1.1
    ids = rng.permutation(a.keys) + 100_000          # popular keys are not the small ids
    keys = ids[rng.choice(a.keys, size=n, p=weights / weights.sum())]
    hot = rng.random(n) < a.hot_share
    keys[hot] = a.hot_key
    value = rng.lognormal(3.0, 1.0, n)
    value[hot] *= 1.5                                 # the hot key's values differ a little
    df = pd.DataFrame({
        "event_time": 1710028800 + np.sort(rng.integers(0, 86_400, n)),
        "key_id": keys,
        "region": rng.integers(0, 8, n).astype(np.int8),
        "value": np.round(value, 3),
    })
    df.to_csv(a.out, index=False)
    with open(a.out + ".json", "w") as f:
        json.dump({"rows": n, "hot_key": a.hot_key if a.hot_share > 0 else None,
                   "hot_rows": int(hot.sum())}, f)


if __name__ == "__main__":
    main()
