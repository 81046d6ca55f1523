"""Files in and out: ROOT input (local or remote) and atomic writers.

The lowest layer beside :mod:`hepsel.stats`: it knows nothing of configs,
models or plots.
"""
