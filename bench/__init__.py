"""Benchmarks of fireorder's onset detection: accuracy against simulated truth and real files,
and speed (offline throughput, live per-chunk latency), each beside peer libraries.

``python -m bench`` runs everything and writes ``bench/out/``; ``python -m bench.accuracy``,
``python -m bench.speed`` run one part. ``--quick`` makes a small smoke run (written to
``bench/out/quick/`` so that it never overwrites the full results the README quotes).
"""
