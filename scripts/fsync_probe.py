#!/usr/bin/env python3
"""Baseline for docs/PERFORMANCE.md: one-row SQLite commits per second with
WAL and synchronous=FULL on this disk, one at a time (the floor under any
per-step-durable runtime on the same machine)."""
import os
import sqlite3
import sys
import tempfile
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
with tempfile.TemporaryDirectory() as tmp:
    db = sqlite3.connect(os.path.join(tmp, "probe.db"), isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.execute("pragma synchronous=full")
    db.execute("create table t (x)")
    start = time.perf_counter()
    for i in range(n):
        db.execute("begin")
        db.execute("insert into t values (?)", (i,))
        db.execute("commit")
    elapsed = time.perf_counter() - start
print(f'{{"fsynced_commits_per_second": {n / elapsed:.0f}, "us_per_commit": {elapsed / n * 1e6:.0f}}}')
