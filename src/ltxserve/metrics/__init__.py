"""Prometheus metrics (docs/operations.md): where they live across processes, and what.

``multiproc`` chooses the shared directory before anything imports the Prometheus
client; ``instruments`` holds the metric objects processes observe. The API's
``/metrics`` route (ltxserve.api.metrics) adds the job counts it reads from the
database at scrape time.
"""
