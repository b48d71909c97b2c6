#!/usr/bin/env python3
"""Generate one gzipped web access log with a DDoS-like spike (setup only).

The log is in "combined" format followed by the response time in ms:
  IP - - [10/Mar/2024:13:55:36 +0000] "GET /path HTTP/1.1" STATUS BYTES "REFERER" "AGENT" MS
--normal lines are ordinary traffic spread evenly over --span-minutes; --errors
lines come from a small botnet during a --spike-minutes window starting at
--spike-start (minutes), and are almost all 5xx/429 answers with long response
times.  Lines are sorted by time.  <out>.json records the spike window.
Random choices are drawn with numpy; the same arguments give the same file.
"""
import argparse
import gzip
import json
import time

import numpy as np

START = 1710064800  # 2024-03-10 10:00:00 UTC

NORMAL_PATHS = ["/", "/products/{}", "/api/v1/products/{}", "/api/v1/cart", "/login",
                "/api/v1/search?q=item{}", "/static/js/app.js", "/static/css/site.css",
                "/images/{}.jpg", "/api/v1/users/{}/orders", "/api/v1/checkout", "/health"]
NORMAL_PATH_P = [0.08, 0.16, 0.14, 0.08, 0.03, 0.08, 0.10, 0.08, 0.12, 0.06, 0.03, 0.04]
ATTACK_PATHS = ["/login", "/api/v1/search?q=item{}", "/api/v1/checkout", "/"]
ATTACK_PATH_P = [0.45, 0.30, 0.15, 0.10]
NORMAL_STATUS = [200, 304, 301, 404, 500]
NORMAL_STATUS_P = [0.88, 0.04, 0.02, 0.05, 0.01]
ATTACK_STATUS = [503, 429, 500, 504]
ATTACK_STATUS_P = [0.6, 0.25, 0.1, 0.05]
NORMAL_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
]
ATTACK_AGENTS = ["python-requests/2.31.0", "Go-http-client/1.1", "-"]


def ips(rng, n, first_octets):
    a = rng.choice(first_octets, n)
    b, c, d = rng.integers(0, 256, n), rng.integers(0, 256, n), rng.integers(1, 255, n)
    return ["%d.%d.%d.%d" % t for t in zip(a.tolist(), b.tolist(), c.tolist(), d.tolist())]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--normal", type=int, required=True)
    ap.add_argument("--errors", type=int, required=True)
    ap.add_argument("--span-minutes", type=int, default=120)
    ap.add_argument("--spike-start", type=int, default=70)
    ap.add_argument("--spike-minutes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    n, m = a.normal, a.errors

    clients = np.array(ips(rng, 20_000, [23, 46, 62, 81, 92, 109, 151, 178, 188, 203]))
    botnet = np.array(ips(rng, 300, [45, 185, 193]))
    w = 1.0 / np.arange(1, len(clients) + 1)

    t_normal = rng.integers(0, a.span_minutes * 60, n)
    t_attack = a.spike_start * 60 + rng.integers(0, a.spike_minutes * 60, m)
    t = np.concatenate([t_normal, t_attack])
    ip = np.concatenate([clients[rng.choice(len(clients), n, p=w / w.sum())],
                         botnet[rng.integers(0, len(botnet), m)]])
    path_i = np.concatenate([rng.choice(len(NORMAL_PATHS), n, p=NORMAL_PATH_P),
                             len(NORMAL_PATHS) + rng.choice(len(ATTACK_PATHS), m, p=ATTACK_PATH_P)])
    ids = rng.integers(1, 5000, n + m)
    method = np.where(rng.random(n + m) < 0.85, "GET", "POST")
    status = np.concatenate([rng.choice(NORMAL_STATUS, n, p=NORMAL_STATUS_P),
                             rng.choice(ATTACK_STATUS, m, p=ATTACK_STATUS_P)])
    size = np.concatenate([rng.integers(200, 60_000, n), rng.integers(0, 400, m)])
    size[(status == 304) | (status == 301)] = 0
    ms = np.concatenate([1 + rng.exponential(60, n), 500 + rng.exponential(4000, m)]).astype(int)
    agent_i = np.concatenate([rng.integers(0, len(NORMAL_AGENTS), n),
                              len(NORMAL_AGENTS) + rng.integers(0, len(ATTACK_AGENTS), m)])
    referer = np.where(rng.random(n + m) < 0.3, "https://shop.example/", "-")

    order = np.argsort(t, kind="stable")
    stamps = [time.strftime("[%d/%b/%Y:%H:%M:%S +0000]", time.gmtime(START + s))
              for s in range(a.span_minutes * 60)]
    paths = NORMAL_PATHS + ATTACK_PATHS
    agents = NORMAL_AGENTS + ATTACK_AGENTS
    lines = ['%s - - %s "%s %s HTTP/1.1" %d %d "%s" "%s" %d' % (
        ip_, stamps[t_], m_, paths[p_].format(id_), st_, sz_, ref_, agents[ag_], ms_)
        for ip_, t_, m_, p_, id_, st_, sz_, ref_, ag_, ms_ in zip(
            ip[order].tolist(), t[order].tolist(), method[order].tolist(),
            path_i[order].tolist(), ids[order].tolist(), status[order].tolist(),
            size[order].tolist(), referer[order].tolist(), agent_i[order].tolist(),
            ms[order].tolist())]
    with gzip.open(a.out, "wt", compresslevel=6) as f:
        f.write("\n".join(lines))
        f.write("\n")
    with open(a.out + ".json", "w") as f:
        json.dump({"normal_lines": n, "error_lines": m, "start_epoch": START,
                   "spike_start_minute": a.spike_start, "spike_minutes": a.spike_minutes}, f)


if __name__ == "__main__":
    main()
