"""What a person reads: plots, the HTML report, the headline table, comparisons
of two studies, warnings and per-rule benchmarks.
"""
