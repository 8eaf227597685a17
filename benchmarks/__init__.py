"""dbkeeper's benchmarks: workload latency, pooler, engine and backup overhead, operator scale.

Run them all with ``make bench`` (``python -m benchmarks``), or a selection with
``python -m benchmarks --only latency,pooler --scale 2000``. Each benchmark starts what it
needs (a throwaway PostgreSQL cluster, PgBouncer, the test Kubernetes control plane), prints a
table with every target next to its measured value, and the whole run is written as JSON
under ``benchmarks/results/``. See docs/performance.md for the latest numbers.
"""
