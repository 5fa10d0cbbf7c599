"""Extract throughput: REST query paging vs Bulk API 2.0 for ~100k Salesforce leads.

Both paths run through simple-salesforce against the local CRM sandbox over HTTPS and land
into an embedded DuckDB warehouse, so the figures include TLS, JSON/CSV parsing and the
raw-layer write, on this machine. Usage:

    .venv/bin/python -m benchmarks.extract_throughput [--leads 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from revops.extract.crm import extract_salesforce_object
from revops.extract.resilience import RetryPolicy
from revops.sandbox.server import running_sandbox
from revops.synthetic.world import WorldConfig, generate_world
from revops.warehouse import get_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import salesforce_settings

LEADS_PER_PROSPECT = 0.53  # what the world generator produces, measured


def measure(sandbox, method: str, directory: Path) -> dict:
    settings = salesforce_settings(sandbox, retry=RetryPolicy(base_delay=0.01), bulk_poll_seconds=0.05)
    engine = get_engine(f"duckdb:///{directory / f'{method}.duckdb'}")
    threshold = 10**12 if method == "rest" else 0
    started = time.perf_counter()
    batch = extract_salesforce_object(
        engine, settings, "Lead", datetime(2026, 11, 2), method, bulk_threshold=threshold
    )
    seconds = time.perf_counter() - started
    return {
        "method": method,
        "records": batch.records_seen,
        "seconds": seconds,
        "records_per_second": batch.records_seen / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=100_000)
    args = parser.parse_args()
    world = generate_world(WorldConfig(n_prospects=int(args.leads / LEADS_PER_PROSPECT), seed=5))
    with running_sandbox(world) as sandbox, tempfile.TemporaryDirectory() as scratch:
        results = [measure(sandbox, m, Path(scratch)) for m in ("rest", "bulk2")]
    rest, bulk = results
    print("| Path | Records | Seconds | Records/s |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['method']} | {r['records']:,} | {r['seconds']:.1f} | {r['records_per_second']:,.0f} |")
    print(f"\nBulk 2.0 / REST throughput: {bulk['records_per_second'] / rest['records_per_second']:.2f}x")


if __name__ == "__main__":
    main()
