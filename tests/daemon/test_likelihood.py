"""The paper's score in numpy (snapseal.daemon.scoring.likelihood): the one definition."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from snapseal.daemon.accel.base import Latent, PixelDist
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring import likelihood as lk


def _dist(mu: np.ndarray, log_sigma: np.ndarray) -> PixelDist:
    return PixelDist(mu=mu.astype(np.float32), log_sigma=log_sigma.astype(np.float32))


def test_gaussian_log_likelihood_matches_closed_form():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 4, 4)).astype(np.uint8)
    mu = rng.uniform(0, 1, (3, 4, 4))
    log_sigma = rng.uniform(-3, 0, (3, 4, 4))
    got = lk.gaussian_log_likelihood(crops, _dist(mu, log_sigma))
    x = crops / 255.0
    sigma = np.exp(log_sigma.astype(np.float32).astype(np.float64))
    mu32 = mu.astype(np.float32).astype(np.float64)
    pdf = np.exp(-0.5 * ((x - mu32) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    np.testing.assert_allclose(got, np.log(pdf).reshape(3, -1).sum(1), rtol=1e-12)


def test_log_rp_equals_brute_force_mean_of_likelihoods():
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 256, (5, 2, 2)).astype(np.uint8)
    latent = Latent(mu=rng.normal(size=(5, 3)).astype(np.float32), log_sigma=rng.normal(-1, 0.3, (5, 3)).astype(np.float32))
    eps = rng.normal(size=(7, 3)).astype(np.float32)

    def decode(z):  # any deterministic function of z
        mu = 1 / (1 + np.exp(-z[:, :1, None] * np.ones((1, 2, 2))))
        return _dist(mu, np.full_like(mu, -1.5) + 0.1 * z[:, 1:2, None])

    got = lk.log_rp(crops, latent, decode, eps)
    per = np.stack([lk.gaussian_log_likelihood(crops, decode(lk.sample_latents(latent, e))) for e in eps], axis=1)
    np.testing.assert_allclose(got, np.log(np.exp(per).mean(axis=1)), rtol=1e-10)


def test_log_rp_is_stable_where_exp_underflows():
    crops = np.zeros((2, 64, 64), np.uint8)
    latent = Latent(mu=np.zeros((2, 4), np.float32), log_sigma=np.zeros((2, 4), np.float32))
    eps = np.zeros((10, 4), np.float32)
    far = _dist(np.ones((2, 64, 64)), np.full((2, 64, 64), -5.0))  # likelihood ~ -1e8 nats
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = lk.log_rp(crops, latent, lambda z: far, eps)
    np.testing.assert_allclose(got, lk.gaussian_log_likelihood(crops, far), rtol=1e-12)
    assert np.all(np.isfinite(got))


def test_identical_samples_give_the_single_pass_score():
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 256, (4, 8, 8)).astype(np.uint8)
    dist = _dist(rng.uniform(0, 1, (4, 8, 8)), rng.uniform(-3, -1, (4, 8, 8)))
    latent = Latent(mu=np.zeros((4, 2), np.float32), log_sigma=np.zeros((4, 2), np.float32))
    got = lk.log_rp(crops, latent, lambda z: dist, np.ones((10, 2), np.float32))
    np.testing.assert_allclose(got, lk.log_likelihood_at_mean(crops, dist), rtol=1e-12)


def test_pixel_dist_from_output_sigmoid_and_floor():
    raw = np.zeros((1, 2, 3, 3), np.float32)
    raw[0, 0] = [[-1000, 0, 1000]] * 3
    raw[0, 1] = -100.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in exp
        dist = lk.pixel_dist_from_output(raw, log_sigma_floor=-4.0)
    np.testing.assert_array_equal(dist.mu[0, 0], np.array([0.0, 0.5, 1.0], np.float32))
    assert np.all(dist.log_sigma == np.float32(-4.0))
    with pytest.raises(SnapsealError):
        lk.pixel_dist_from_output(np.zeros((1, 3, 4, 4), np.float32))


def test_epsilon_table_is_deterministic_and_seeded():
    a = lk.epsilon_table(16, 10, seed=5)
    assert a.shape == (10, 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a, lk.epsilon_table(16, 10, seed=5))
    assert not np.array_equal(a, lk.epsilon_table(16, 10, seed=6))


def test_bad_inputs_raise_snapseal_error():
    latent = Latent(mu=np.zeros((1, 3), np.float32), log_sigma=np.zeros((1, 3), np.float32))
    dist = _dist(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(SnapsealError):
        lk.gaussian_log_likelihood(np.zeros((1, 4, 4), np.float32), dist)  # not uint8
    with pytest.raises(SnapsealError):
        lk.gaussian_log_likelihood(np.zeros((1, 5, 5), np.uint8), dist)  # shape mismatch
    with pytest.raises(SnapsealError):
        lk.log_rp(np.zeros((1, 4, 4), np.uint8), latent, lambda z: dist, np.zeros((10, 4), np.float32))


def test_kl_divergence_zero_at_prior():
    latent = Latent(mu=np.zeros((2, 5), np.float32), log_sigma=np.zeros((2, 5), np.float32))
    np.testing.assert_allclose(lk.kl_divergence(latent), 0.0)
    shifted = Latent(mu=np.ones((1, 5), np.float32), log_sigma=np.zeros((1, 5), np.float32))
    np.testing.assert_allclose(lk.kl_divergence(shifted), 2.5)
