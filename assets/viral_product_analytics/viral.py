#!/usr/bin/env python3
"""One viral_product_analytics task: retail analytics over one day of transactions.

Usage: viral.py TRANSACTIONS.csv PRODUCTS.csv STORES.csv OUTPUT_DIR

Reads the transactions and joins them with the product and store tables
(pandas merge), computes revenue, then: per-product units, revenue and distinct
customers; the trending product (most units) with its hourly sales curve and
regional split; revenue by category x region (pivot table); top brands; and
what else the trending product's buyers bought (category mix).  Writes CSV
reports into OUTPUT_DIR.  Exits 1 when the reports do not add up to the total
revenue or, for a partition with a known viral product (TRANSACTIONS.csv.json),
when that product is not the one found.
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
    if len(sys.argv) != 5:
        print("usage: viral.py TRANSACTIONS.csv PRODUCTS.csv STORES.csv OUTPUT_DIR",
              file=sys.stderr)
        return 2
    tx_path, products_path, stores_path, out = sys.argv[1:]
    with open(tx_path + ".json") as f:
        meta = json.load(f)

    tx = pd.read_csv(tx_path, dtype={"ts": "int64", "store_id": "int32",
                                     "customer_id": "int32", "product_id": "int32",
                                     "quantity": "int16", "discount_pct": "int8"})
    products = pd.read_csv(products_path, dtype={"product_id": "int32",
                                                 "category": "category",
                                                 "brand": "category"})
    stores = pd.read_csv(stores_path, dtype={"store_id": "int32", "region": "category",
                                             "format": "category"})

    df = (tx.merge(products, on="product_id", how="left", validate="many_to_one")
            .merge(stores, on="store_id", how="left", validate="many_to_one"))
    df["revenue"] = df["quantity"] * df["list_price"] * (1.0 - df["discount_pct"] / 100.0)
    df["hour"] = (df["ts"] // 3600 % 24).astype("int8")
    total = df["revenue"].sum()

    by_product = (df.groupby("product_id")
                  .agg(units=("quantity", "sum"), revenue=("revenue", "sum"),
                       orders=("quantity", "size"), customers=("customer_id", "nunique"))
                  .sort_values("units", ascending=False))
    trending = int(by_product.index[0])
    hot = df[df["product_id"] == trending]
    hourly = (hot.groupby("hour").agg(units=("quantity", "sum"), revenue=("revenue", "sum"))
              .join(df.groupby("hour")["quantity"].sum().rename("all_units")))
    hourly["share"] = hourly["units"] / hourly["all_units"]
    hot_regions = hot.groupby("region", observed=True)["revenue"].sum().sort_values(ascending=False)
    cat_region = df.pivot_table(index="category", columns="region", values="revenue",
                                aggfunc="sum", observed=True, fill_value=0.0)
    brands = df.groupby("brand", observed=True)["revenue"].sum().nlargest(20)
    buyers = hot["customer_id"].unique()
    co_purchases = (df[df["customer_id"].isin(buyers) & (df["product_id"] != trending)]
                    .groupby("category", observed=True)["quantity"].sum()
                    .sort_values(ascending=False))

    by_product.head(100).to_csv(os.path.join(out, "top_products.csv"))
    hourly.to_csv(os.path.join(out, "trending_hourly.csv"))
    hot_regions.to_csv(os.path.join(out, "trending_regions.csv"))
    cat_region.to_csv(os.path.join(out, "category_region_revenue.csv"))
    brands.to_csv(os.path.join(out, "top_brands.csv"))
    co_purchases.to_csv(os.path.join(out, "co_purchases.csv"))

    errors = []
    if len(df) != meta["rows"] or df["list_price"].isna().any() or df["region"].isna().any():
        errors.append("join lost or duplicated rows")
    if abs(cat_region.to_numpy().sum() - total) > 1e-6 * max(total, 1.0):
        errors.append("category x region revenue does not add up to the total")
    if meta["viral_product"] is not None and trending != meta["viral_product"]:
        errors.append("found trending product %d, expected %d" % (trending, meta["viral_product"]))
    print("%d transactions, revenue %.2f; trending product %d: %d units (%.1f %% of all), "
          "%d buyers" % (len(df), total, trending, by_product["units"].iloc[0],
                         100.0 * by_product["units"].iloc[0] / by_product["units"].sum(),
                         len(buyers)))
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
