"""dlt's side of ``benchmarks.shopify_rowpath``: load Shopify orders with dlt's ``rest_api``
source into PostgreSQL and print one JSON line with the figures.

Runs in its *own* virtualenv (dlt is not a dependency of the project; see
``benchmarks/requirements-dlt.txt``), so it imports nothing from ``sync_pipelines``:

    .venv-dlt/bin/python benchmarks/dlt_shopify_runner.py --base-url URL --token T --dsn DSN --work DIR

The source is configured as a Shopify user would: the access-token header, the RFC 8288
``Link`` header paginator (``header_link``, which drops the first request's params when it
follows a ``page_info`` link, as Shopify requires), ``orders`` under the ``orders`` key, primary
key ``id``, merge write disposition, into a fresh dataset. Everything else is dlt's default
(normalize in-process, nested lists as child tables, the postgres destination's insert format).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True, help=".../admin/api/<version>")
    parser.add_argument("--token", required=True)
    parser.add_argument("--dsn", required=True, help="postgresql://user@host:port/db")
    parser.add_argument("--work", required=True, help="directory for dlt's pipelines_dir")
    parser.add_argument("--dataset", default="dlt_shopify")
    parser.add_argument("--page-size", type=int, default=250)
    args = parser.parse_args()

    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {
            "base_url": args.base_url.rstrip("/") + "/",
            "headers": {"X-Shopify-Access-Token": args.token, "Accept": "application/json"},
            "paginator": {"type": "header_link"},
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [{
            "name": "orders",
            "endpoint": {
                "path": "orders.json",
                "params": {"limit": args.page_size, "status": "any", "order": "updated_at asc"},
                "data_selector": "orders",
            },
        }],
    })
    pipeline = dlt.pipeline(
        pipeline_name="shopify_rowpath_bench", pipelines_dir=args.work,
        destination=dlt.destinations.postgres(credentials=args.dsn), dataset_name=args.dataset,
        progress="log" if False else None,
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    info = pipeline.run(source)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with pipeline.sql_client() as client:
        orders = client.execute_sql(f"SELECT count(*) FROM {args.dataset}.orders")[0][0]
        line_items = client.execute_sql(f"SELECT count(*) FROM {args.dataset}.orders__line_items")[0][0]
    print(json.dumps({
        "dlt_version": dlt.__version__,
        "wall_seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "children_cpu_seconds": round(children.ru_utime + children.ru_stime, 3),
        "orders_in_table": orders,
        "line_items_in_table": line_items,
        "loads": len(info.loads_ids),
        "has_failed_jobs": info.has_failed_jobs,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
