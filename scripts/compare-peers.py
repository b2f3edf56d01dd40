#!/usr/bin/env python3
"""Side-by-side timing of `ebm bench` and the JAX (or PyTorch) peer programs.

Runs each workload alternately in ebm and in the peer, ROUNDS times, so that both see the same
machine state, and prints a Markdown table of the medians of the per-run medians and their ratio
(ebm / peer; below 1 means ebm is faster).

    pip install jax numpy
    cargo build --release -p ebm-cli
    python3 scripts/compare-peers.py dsm-mlp ssm-mlp esm-mlp [--rounds 5] [--framework jax]

The peer programs live in ../shared/peers (override with --peers DIR).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--framework", default="jax", choices=["jax", "torch"])
    ap.add_argument("--peers", default=os.path.join(ROOT, "..", "shared", "peers"))
    ap.add_argument("--ebm", default=os.path.join(ROOT, "target", "release", "ebm"))
    args = ap.parse_args()

    rows = []
    for w in args.workloads:
        ours, peer, version = [], [], "?"
        for r in range(args.rounds):
            e = run_json([args.ebm, "bench", w, "--json"])
            p = run_json([sys.executable, os.path.join(args.peers, "run.py"), w,
                          "--framework", args.framework, "--json"])
            ours.append(e["median_ms_per_step"])
            peer.append(p["median_ms_per_step"])
            version = p["version"]
            print(f"{w} round {r + 1}: ebm {ours[-1]:.3f} ms, {args.framework} {peer[-1]:.3f} ms",
                  file=sys.stderr)
        mo, mp = statistics.median(ours), statistics.median(peer)
        rows.append((w, mo, min(ours), mp, min(peer), version))

    print(f"| workload | ebm ms/step (median, best) | {args.framework} ms/step (median, best) | ratio |")
    print("|---|---|---|---|")
    for w, mo, bo, mp, bp, version in rows:
        print(f"| `{w}` | {mo:.3f} ({bo:.3f}) | {mp:.3f} ({bp:.3f}) | {mo / mp:.2f} |")
    print(f"\n{args.framework} {rows[0][5] if rows else ''}, {args.rounds} alternating rounds, "
          "each a full run of the workload's default steps (2 threads).")


if __name__ == "__main__":
    main()
