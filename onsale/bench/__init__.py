"""Benchmarks run by ``onsale bench``: each prints ratios against a baseline in the same run."""
