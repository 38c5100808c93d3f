"""Quality scores computed on the host from the accelerator's outputs (numpy only).

    from snapseal.daemon.scoring import load_scorer
    scorer = load_scorer()                      # committed bundle, emulate backend, default score
    scorer = load_scorer(bundle_dir, backend="fpga", scorer="paper")
    scores = scorer.score_batch(crops)          # N x 64 x 64 uint8 -> N float64, higher = better

Scorers (``SCORERS``):

- ``complexity`` (the default): the VAE's log-likelihood at z = mu_z plus the crop's PNG bits,
  minus the bits spent on noise and lost to under-exposure (``complexity.py``).
- ``paper``: the paper's log RP with L = 10 fixed samples (``paper.py``), reported beside it.

A scorer's constants live in the bundle manifest's ``scorers`` section under its name; missing
constants take the values measured in docs/MODEL_CARD.md. ``"default"`` (or None) means the
bundle's ``default_scorer`` when that names a known scorer, else ``DEFAULT_SCORER``.
"""

from __future__ import annotations

from pathlib import Path

from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.scoring.base import Scorer

DEFAULT_SCORER = "complexity"
SCORERS = ("complexity", "paper")


def resolve_scorer_name(requested: str | None, bundle_default: str | None) -> str:
    """The scorer to build: an explicit known name, else the bundle's default, else ours."""
    if requested not in (None, "", "default"):
        if requested not in SCORERS:
            raise SnapsealError(f"unknown scorer {requested!r}; known: default, {', '.join(SCORERS)}")
        return str(requested)
    if bundle_default in SCORERS:
        return str(bundle_default)
    return DEFAULT_SCORER


def load_scorer(bundle_dir: Path | str | None = None, backend: str = "emulate", scorer: str | None = None) -> Scorer:
    """The scorer ``scorer`` over bundle ``bundle_dir`` (None: the committed default bundle) run
    by accelerator ``backend`` ("emulate", "cpu" or "fpga"). Bad bundles, unknown names or an
    unavailable backend raise SnapsealError naming the problem."""
    from snapseal.daemon.accel import make_accelerator
    from snapseal.daemon.bundle import MANIFEST, load_bundle

    bundle = load_bundle(bundle_dir)
    name = resolve_scorer_name(scorer, bundle.default_scorer)
    accel = make_accelerator(backend, bundle)
    where = str(bundle.path / MANIFEST)
    if name == "paper":
        from snapseal.daemon.scoring.paper import PaperScorer

        return PaperScorer(accel, bundle.epsilon, bundle.model_id)
    from snapseal.daemon.scoring.complexity import ComplexityParams, ComplexityScorer

    params = ComplexityParams.from_manifest(bundle.scorers.get("complexity"), where)
    return ComplexityScorer(accel, bundle.model_id, params)


__all__ = ["DEFAULT_SCORER", "SCORERS", "Scorer", "load_scorer", "resolve_scorer_name"]
