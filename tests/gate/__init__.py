"""Tests of the benchmark gate, ``scripts/bench_gate.py``."""
