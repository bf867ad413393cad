"""``make bench``: drive the broker and, in the same run, the sandbox backend directly.

``python -m bench`` starts a sandbox world (two backends and a broker, real processes on
loopback), obtains a consent through the real API, and runs :mod:`bench.loadgen` in its own
process against the broker and against the Dukcapil backend at several concurrencies. It
prints throughput, latency percentiles, broker CPU per exchange, broker peak RSS and the
broker/direct ratio, and a per-stage breakdown of broker CPU beside each stage's floor
(:mod:`bench.floors`, measured in the same run); the results also go to a JSON file.
"""
