"""k-fold cross-training of the configured models: in memory or streamed from the
data set, with negative weights handled for learners that cannot take them.
"""
