"""The analysis config: its schema and loader, the expression language, the
analysis module's functions, and which settings each step reads (provenance,
output ownership).

Depends on :mod:`hepsel.io` (input paths) and :mod:`hepsel.models`
(model parameters are checked against their estimator at load time).
"""
