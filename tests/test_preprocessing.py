from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.preprocessing import QuantileTransformer, StandardScaler

from hepsel.exceptions import NonFiniteError
from hepsel.models.preprocessing import FeatureScaler


@pytest.fixture
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([rng.lognormal(8.0, 1.0, 3000), rng.normal(0.0, 5.0, 3000)])


@pytest.mark.parametrize("method", ["standard", "quantile", "none"])
def test_json_round_trip_matches(X, method):
    scaler = FeatureScaler(method, random_state=0).fit(X)
    restored = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    Z = scaler.transform(X)
    np.testing.assert_array_equal(restored.transform(X), Z)
    np.testing.assert_allclose(restored.inverse_transform(Z), X, rtol=1e-9)


def test_standard_matches_sklearn_weighted(X):
    w = np.random.default_rng(1).uniform(0.1, 2.0, X.shape[0])
    ours = FeatureScaler("standard").fit(X, sample_weight=w).transform(X)
    ref = StandardScaler().fit(X, sample_weight=w).transform(X)
    np.testing.assert_allclose(ours, ref)


def test_quantile_matches_sklearn(X):
    ours = FeatureScaler("quantile", n_quantiles=500, subsample=None).fit(X).transform(X)
    ref = QuantileTransformer(n_quantiles=500, output_distribution="normal", subsample=None)
    np.testing.assert_allclose(ours, ref.fit_transform(X))


def test_quantile_inverse_stays_in_training_range(X):
    scaler = FeatureScaler("quantile").fit(X)
    back = scaler.inverse_transform(np.random.default_rng(2).normal(0, 10, size=(1000, 2)))
    assert (back >= X.min(axis=0)).all()
    assert (back <= X.max(axis=0)).all()


def test_few_events_do_not_warn():
    FeatureScaler("quantile").fit(np.arange(20.0).reshape(10, 2))


def test_errors(X):
    with pytest.raises(ValueError, match="unknown scaling method"):
        FeatureScaler("minmax").fit(X)
    with pytest.raises(NonFiniteError, match="columns \\[1\\]"):
        FeatureScaler().fit(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="3 features"):
        FeatureScaler().fit(X).transform(np.ones((2, 3)))
    with pytest.raises(ValueError, match="not a serialised FeatureScaler"):
        FeatureScaler.from_dict({"method": "standard"})
