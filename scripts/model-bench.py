#!/usr/bin/env python3
"""How often a model gets through schedgen's loop: N independent `generate` runs per case.

Each run is `schedgen generate --test CASE --provider openai --seed I` in a throw-away root
(the checkout's library is never touched), by default with `--verify-only` (stop at the first
verified candidate). With `--benchmark`, runs go on to the benchmark verdict and, when the candidate
is below target or a copy of the reference, an improvement round that runs head to head against
it. Options after `--` go to `generate` as they are (for example the benchmark's sizes). Prints,
as Markdown, one table per reply stage, one per run, and with `--benchmark` one of the rounds.

    eval "$(bash scripts/local-llm.sh env)"
    python3 scripts/model-bench.py --cases ctest_suite,same_binary_args --n 6

The model and endpoint come from OPENAI_BASE_URL and SCHEDGEN_MODEL (or --base-url, --model).
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
# How far a reply got, in order; an attempt's outcome names where it stopped.
STAGES = [
    ("extract", {"llm_error", "no_code"}),
    ("static checks", {"static_check"}),
    ("compile", {"compile_error"}),
    ("verifier", {"verifier_rejected"}),
    ("under load", {"attach_failed", "stall", "bpf_error", "kernel_error", "sandbox_error"}),
]


def run_one(exe, case, seed, args, out_dir):
    root = pathlib.Path(tempfile.mkdtemp(dir=out_dir, prefix=f"{case}-{seed}-"))
    for sub in ["cases", "assets", "bpf-reference", "prompts"]:
        (root / sub).symlink_to(REPO / sub)
    cmd = [
        str(exe), "--root", str(root), "generate", "--test", case, "--provider", "openai",
        "--seed", str(seed), "--max-rounds", str(args.max_rounds),
        "--max-attempts", str(args.max_attempts), "--llm-timeout", "900",
        "--temperature", str(args.temperature), "--dialect", args.dialect,
    ]
    if args.base_url:
        cmd += ["--base-url", args.base_url]
    if args.model:
        cmd += ["--model", args.model]
    if not args.benchmark:
        cmd += ["--verify-only", "--verify-duration", "4"]
    cmd += args.generate_args
    t = time.time()
    p = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    wall = time.time() - t
    gens = list(root.glob("runs/*/*/generation.json"))
    if not gens:
        print(f"{case} seed {seed}: no generation.json (exit {p.returncode})\n{p.stderr[-2000:]}",
              file=sys.stderr)
        return None
    gen = json.loads(gens[0].read_text())
    gen["_wall_s"] = wall
    gen["_exit"] = p.returncode
    gen["_stdout"] = p.stdout
    return gen


def stage_reached(outcome):
    """Index of the first stage this outcome failed at (len(STAGES) for passed/below_target)."""
    for i, (_, failed) in enumerate(STAGES):
        if outcome in failed:
            return i
    return len(STAGES)


def pct(a, b):
    return f"{100.0 * a / b:.0f}% ({a}/{b})" if b else "–"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="ctest_suite")
    ap.add_argument("--n", type=int, default=6, help="runs per case")
    ap.add_argument("--first-seed", type=int, default=1, help="seeds are K, K+1, … [1]")
    ap.add_argument("--max-attempts", type=int, default=3)
    ap.add_argument("--max-rounds", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--dialect", default="schedgen")
    ap.add_argument("--benchmark", action="store_true", help="go on to the benchmark verdict")
    ap.add_argument("--base-url")
    ap.add_argument("--model")
    ap.add_argument("--exe", default=None, help="the schedgen binary [target/release/schedgen]")
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temp dir)")
    ap.add_argument("generate_args", nargs="*", help="after --: more options for generate")
    args = ap.parse_args()
    # A copy of its own (--exe) lets a rebuild of the checkout go on during a long measurement:
    # the VM boots the schedgen binary the run started with.
    exe = pathlib.Path(args.exe) if args.exe else REPO / "target/release/schedgen"
    if not exe.exists():
        sys.exit(f"{exe} does not exist: build first (cargo build --release)")
    out_dir = pathlib.Path(args.out or tempfile.mkdtemp(prefix="schedgen-model-bench-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    model = args.model or os.environ.get("SCHEDGEN_MODEL", "?")
    started = time.strftime("%Y-%m-%d %H:%M")

    runs = []
    for case in args.cases.split(","):
        for seed in range(args.first_seed, args.first_seed + args.n):
            g = run_one(exe, case, seed, args, out_dir)
            if g is None:
                continue
            runs.append((case, seed, g))
            outs = [a["outcome"] for a in g["attempts"]]
            print(f"{case} seed {seed}: {g['reason']} · {outs} · {g['_wall_s']:.0f} s",
                  file=sys.stderr)

    replies = [(c, a) for c, _, g in runs for a in g["attempts"]]
    print(f"# {model} through schedgen's loop ({started}, {len(runs)} runs, "
          f"{len(replies)} replies, temperature {args.temperature}, dialect {args.dialect})\n")
    print("| case | replies | extract | static checks | compile | verifier | under load | "
          "copies of the reference | constants only | prompt tok/reply | completion tok/reply "
          "| s/reply |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in args.cases.split(",") + ["all"]:
        rs = [a for c, a in replies if case in ("all", c)]
        if not rs:
            continue
        reached = [stage_reached(a["outcome"]) for a in rs]
        cells = [pct(sum(1 for r in reached if r > i), len(rs)) for i in range(len(STAGES))]
        kinds = [(a.get("contribution") or {}).get("kind") for a in rs]
        usage = [a["call"]["usage"] for a in rs if a.get("call") and a["call"].get("usage")]
        secs = [a["seconds"].get("generate") or 0 for a in rs]
        print(f"| {case} | {len(rs)} | " + " | ".join(cells) + " | "
              f"{pct(kinds.count('copy'), len(rs))} | {pct(kinds.count('constants_only'), len(rs))} | "
              f"{sum(u['prompt_tokens'] for u in usage) / max(len(usage), 1):.0f} | "
              f"{sum(u['completion_tokens'] for u in usage) / max(len(usage), 1):.0f} | "
              f"{sum(secs) / max(len(secs), 1):.0f} |")
    print()
    print("| case | runs | verified within the attempts | attempts to the first verified | "
          "verified and not a copy | benchmark PASS | wall s/run |")
    print("|---|---|---|---|---|---|---|")
    for case in args.cases.split(",") + ["all"]:
        rs = [g for c, _, g in runs if case in ("all", c)]
        if not rs:
            continue
        verified = []
        own = 0
        for g in rs:
            first = next((i + 1 for i, a in enumerate(g["attempts"])
                          if stage_reached(a["outcome"]) == len(STAGES)), None)
            if first:
                verified.append(first)
                a = g["attempts"][first - 1]
                if (a.get("contribution") or {}).get("kind") == "changed":
                    own += 1
        passed = sum(1 for g in rs if (g.get("benchmark") or {}).get("verdict", {}).get("pass"))
        bench = "–" if not args.benchmark else pct(passed, len(rs))
        mean_first = f"{sum(verified) / len(verified):.1f}" if verified else "–"
        print(f"| {case} | {len(rs)} | {pct(len(verified), len(rs))} | {mean_first} | "
              f"{pct(own, len(rs))} | {bench} | {sum(g['_wall_s'] for g in rs) / len(rs):.0f} |")
    if args.benchmark:
        print_rounds(args, runs)
    print(f"\nruns kept in {out_dir}")


def cut_text(c):
    if not c:
        return "–"
    return f"{100 * c['cut']:.1f}% [{100 * c['ci_low']:.1f}, {100 * c['ci_high']:.1f}]"


def print_rounds(args, runs):
    """Every benchmarked round: what the model contributed, the verdict, and head to head."""
    print()
    print("| case | seed | round | candidate | cut vs default | verdict | vs the round before, "
          "head to head | kept |")
    print("|---|---|---|---|---|---|---|---|")
    for case, seed, g in runs:
        for r in g.get("rounds", []):
            kind = (r.get("contribution") or {}).get("kind", "?")
            beat = r.get("beat_incumbent")
            h2h = "–" if r.get("incumbent") is None else (
                f"{cut_text(r.get('vs_incumbent'))} ({'beat' if beat else 'not shown better'})")
            print(f"| {case} | {seed} | {r['round']} | {kind} | {cut_text(r.get('cut'))} | "
                  f"{'PASS' if r['pass'] else 'FAIL'} | {h2h} | "
                  f"{'yes' if g.get('kept_round') == r['round'] else ''} |")


if __name__ == "__main__":
    main()
