"""Pure statistics on arrays: figures of merit, efficiency intervals, trigger
rates, performance figures, generative fidelity, score uncertainty and
distance correlation.

Nothing here reads or writes files, draws, or imports a
model (checked by the import-linter contracts in ``pyproject.toml``).
"""
