"""One interpreter_rows task: generate N order rows and aggregate them (stdlib only).

Usage: job.py --rows N [--users U] [--out FILE]

Rows come from a fixed 64-bit LCG (the same N give the same rows): user id,
category (one of 16), region (one of 8), amount in cents and hour of day.  The
job sums count and amount per category, per (region, hour) and per user in
dicts, writes a report (default report.txt in the cwd) and checks that the
group totals add up to the row count and the overall amount.  Exit status 0 on
success, 1 when a check fails, 2 on bad usage.
"""
import sys


def parse_args(argv):
    opts = {"--rows": None, "--users": "50000", "--out": "report.txt"}
    it = iter(argv)
    for a in it:
        if a not in opts:
            raise ValueError("unknown argument %r" % a)
        opts[a] = next(it)
    if opts["--rows"] is None:
        raise ValueError("--rows is required")
    rows, users = int(opts["--rows"]), int(opts["--users"])
    if rows < 1 or users < 1:
        raise ValueError("--rows and --users must be >= 1")
    return rows, users, opts["--out"]


def main():
    try:
        rows, users, out = parse_args(sys.argv[1:])
    except (ValueError, StopIteration) as e:
        print("usage: job.py --rows N [--users U] [--out FILE]: %s" % e, file=sys.stderr)
        return 2

    mask = (1 << 64) - 1
    state = 0x2545F4914F6CDD1D
    by_cat_n = [0] * 16
    by_cat_sum = [0] * 16
    by_region_hour = {}
    by_user = {}
    total = 0
    for _ in range(rows):
        state = (state * 6364136223846793005 + 1442695040888963407) & mask
        r = state >> 16
        user = r % users
        cat = (r >> 20) & 15
        region = (r >> 24) & 7
        hour = (r >> 27) % 24
        amount = 100 + (r >> 32) % 50000           # cents
        total += amount
        by_cat_n[cat] += 1
        by_cat_sum[cat] += amount
        key = (region, hour)
        by_region_hour[key] = by_region_hour.get(key, 0) + amount
        u = by_user.get(user)
        if u is None:
            by_user[user] = [1, amount]
        else:
            u[0] += 1
            u[1] += amount

    top = sorted(by_user.items(), key=lambda kv: (-kv[1][1], kv[0]))[:10]
    with open(out, "w") as f:
        f.write("rows %d total_cents %d users_seen %d\n" % (rows, total, len(by_user)))
        for c in range(16):
            f.write("category %2d count %d sum %d\n" % (c, by_cat_n[c], by_cat_sum[c]))
        for (region, hour), s in sorted(by_region_hour.items()):
            f.write("region %d hour %2d sum %d\n" % (region, hour, s))
        for user, (n, s) in top:
            f.write("top_user %d count %d sum %d\n" % (user, n, s))

    ok = (sum(by_cat_n) == rows and sum(by_cat_sum) == total
          and sum(by_region_hour.values()) == total
          and sum(u[0] for u in by_user.values()) == rows
          and sum(u[1] for u in by_user.values()) == total)
    print("%s: rows %d total_cents %d" % ("PASS" if ok else "FAIL", rows, total))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
