#!/usr/bin/env python3
"""Generate the viral_product_analytics retail tables (setup only).

  gen_data.py catalog DIR
      DIR/products.csv (product_id, category, brand, list_price) and
      DIR/stores.csv (store_id, region, format)
  gen_data.py transactions --rows N [--viral-product ID --viral-share F] --seed S --out FILE
      FILE (CSV: ts, store_id, customer_id, product_id, quantity, discount_pct)
      and FILE.json (row count and viral product).  Product popularity is
      Zipf-like; with --viral-share one product takes that share of the rows
      on top, bought mostly in the evening, as a trending product would be.
Vectorised with numpy; the same arguments give the same files.
"""
import argparse
import json
import os

import numpy as np
import pandas as pd

N_PRODUCTS = 20_000
N_STORES = 300
N_CUSTOMERS = 500_000
DAY = 1710028800  # 2024-03-10 00:00:00 UTC
CATEGORIES = ["electronics", "phones", "computers", "audio", "cameras", "toys", "games",
              "books", "music", "movies", "kitchen", "home", "garden", "tools", "sports",
              "outdoor", "fashion", "shoes", "jewelry", "beauty", "health", "baby", "pets",
              "grocery", "drinks", "office", "automotive", "crafts", "travel", "gifts"]
REGIONS = ["north", "south", "east", "west", "central", "coast", "mountain", "islands"]
FORMATS = ["mall", "street", "outlet", "online"]


def catalog(out_dir):
    rng = np.random.default_rng(12345)
    products = pd.DataFrame({
        "product_id": np.arange(1, N_PRODUCTS + 1),
        "category": rng.choice(CATEGORIES, N_PRODUCTS),
        "brand": ["brand_%03d" % b for b in rng.integers(0, 500, N_PRODUCTS)],
        "list_price": np.round(rng.lognormal(3.0, 1.0, N_PRODUCTS) + 0.99, 2),
    })
    stores = pd.DataFrame({
        "store_id": np.arange(1, N_STORES + 1),
        "region": rng.choice(REGIONS, N_STORES),
        "format": rng.choice(FORMATS, N_STORES, p=[0.3, 0.4, 0.1, 0.2]),
    })
    products.to_csv(os.path.join(out_dir, "products.csv"), index=False)
    stores.to_csv(os.path.join(out_dir, "stores.csv"), index=False)


def transactions(rows, viral_product, viral_share, seed, out):
    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, N_PRODUCTS + 1) ** 1.05
    ranked = rng.permutation(N_PRODUCTS) + 1
    product = ranked[rng.choice(N_PRODUCTS, rows, p=w / w.sum())]
    ts = DAY + rng.integers(0, 86_400, rows)
    viral = rng.random(rows) < viral_share
    k = int(viral.sum())
    product[viral] = viral_product
    # the trend peaks in the evening: 18:00 +- 2 h
    ts[viral] = DAY + np.clip(rng.normal(18 * 3600, 7200, k), 0, 86_399).astype(np.int64)
    df = pd.DataFrame({
        "ts": ts,
        "store_id": rng.integers(1, N_STORES + 1, rows),
        "customer_id": rng.integers(1, N_CUSTOMERS + 1, rows),
        "product_id": product,
        "quantity": rng.geometric(0.6, rows),
        "discount_pct": rng.choice([0, 0, 0, 5, 10, 15, 20, 30], rows),
    }).sort_values("ts", kind="stable")
    df.to_csv(out, index=False)
    with open(out + ".json", "w") as f:
        json.dump({"rows": rows, "viral_product": viral_product if k else None,
                   "viral_rows": k}, f)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("catalog")
    c.add_argument("dir")
    t = sub.add_parser("transactions")
    t.add_argument("--rows", type=int, required=True)
    t.add_argument("--viral-product", type=int, default=7777)
    t.add_argument("--viral-share", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "catalog":
        catalog(a.dir)
    else:
        transactions(a.rows, a.viral_product, a.viral_share, a.seed, a.out)


if __name__ == "__main__":
    main()
