"""From input files to the prepared data set: cuts and cut-flows, derived
features, per-file ingestion, gathering and weights, and input shifts for
robustness studies.
"""
