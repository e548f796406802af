"""Benchmark metrics exactly as DAVIS and VOT define them. See book/10_measuring.py."""
