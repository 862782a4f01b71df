"""`pyk shards balance [--dry-run]`: measure each shard's load and move partitions to even it out;
`pyk shards move TOPIC PARTITION SHARD`: move one partition.

Runs on the broker's host: it talks to the orchestrator's shard balancer over the admin socket in
the broker's first log dir (pyk/server/balancer.py), which measures the bytes in and out of every
partition over a window, plans the moves and, without --dry-run, makes them while clients keep
producing and consuming.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from typing import Any

from rich.console import Console
from rich.table import Table

from pyk.server.balancer import ADMIN_SOCKET


def add_parser(sub: Any) -> None:
    p = sub.add_parser("shards", help="the broker's shards: balance their load")
    actions = p.add_subparsers(dest="action", required=True)
    b = actions.add_parser("balance", help="move partitions from the hottest shard to the coolest")
    b.add_argument("--log-dir", default="/tmp/kafka-logs", help="the broker's first log dir (log.dirs)")
    b.add_argument("--dry-run", action="store_true", help="show the plan, move nothing")
    b.add_argument("--window-ms", type=int, default=0,
                   help="how long to measure the load (default: the broker's shard.balancer.window.ms)")
    b.add_argument("--json", action="store_true", help="print the plan as JSON")
    m = actions.add_parser("move", help="move one partition to another shard")
    m.add_argument("--log-dir", default="/tmp/kafka-logs", help="the broker's first log dir (log.dirs)")
    m.add_argument("topic")
    m.add_argument("partition", type=int)
    m.add_argument("shard", type=int)


def request(log_dir: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One request to the broker's balancer; its answer (or {"error": ...})."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(os.path.join(log_dir, ADMIN_SOCKET))
        sock.sendall(json.dumps(body).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    answer: dict[str, Any] = json.loads(data)
    return answer


def run(args: argparse.Namespace) -> int:
    if args.action == "move":
        body: dict[str, Any] = {"op": "move", "topic": args.topic, "partition": args.partition, "shard": args.shard}
    else:
        body = {"op": "balance", "dry_run": args.dry_run, "window_ms": args.window_ms}
    try:
        # Long enough for the window, then the moves.
        answer = request(args.log_dir, body, (args.window_ms or 600_000) / 1000 + 120 if args.action == "balance" else 120)
    except (OSError, ValueError) as exc:
        print(f"error: no answer from the broker's admin socket in {args.log_dir}: {exc}")
        return 1
    if "error" in answer:
        print(f"error: {answer['error']}")
        return 1
    if args.action == "move":
        print(f"moved {args.topic}-{args.partition} to shard {args.shard}" if answer["moved"]
              else f"{args.topic}-{args.partition} was not moved (see the broker's log)")
        return 0 if answer["moved"] else 1
    return _show_plan(answer, args.json)


def _show_plan(plan: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(plan, indent=1))
        return 0
    console = Console()
    shards = Table(title=f"Shard load over {plan['window_s']:.1f}s (bytes in + out per second)")
    for column in ("shard", "now", "after the moves"):
        shards.add_column(column, justify="right")
    for i, (before, after) in enumerate(zip(plan["before"], plan["after"], strict=True)):
        shards.add_row(str(i), f"{before:,.0f}", f"{after:,.0f}")
    shards.add_row("skew", f"{plan['skew_before']:.1f} %", f"{plan['skew_after']:.1f} %", style="bold")
    console.print(shards)
    if not plan["moves"]:
        console.print("balanced: nothing to move")
        return 0
    moves = Table(title="Moves" + ("" if plan["executed"] else " (planned, not made)"))
    for column in ("topic", "partition", "from shard", "to shard", "bytes/s"):
        moves.add_column(column, justify="left" if column == "topic" else "right")
    if plan["executed"]:
        moves.add_column("moved")
    for m in plan["moves"]:
        row = [m["topic"], str(m["partition"]), str(m["source"]), str(m["target"]), f"{m['bytes_per_sec']:,.0f}"]
        moves.add_row(*row, *(["yes" if m["done"] else "no"] if plan["executed"] else []))
    console.print(moves)
    return 0 if not plan["executed"] or all(m["done"] for m in plan["moves"]) else 1
