"""The simulated LHCb-like samples: the generator (pure arrays) and the writer of its ROOT files."""
