"""The evaluation (workstation only; the daemon never imports it): does the quality score help
face recognition, and how fast does it run?

- ``erc.py``        the error-versus-reject math (one definition, documented there)
- ``embedders.py``  offline face recognizers (dlib ResNet, FaceNet) behind one Protocol
- ``dataset.py``    references, probes (degraded, pose-warped, video) and user folders
- ``warps.py``      pose-like warps the degradation suite lacks
- ``methods.py``    baselines and heuristics; ``vae_variants.py`` the VAE's variants
- ``evaluate.py``   the ERC experiment; ``frames.py`` + ``selection.py`` frame selection on video
- ``report.py``     docs/RESULTS.md sections and the plots in docs/img/
- ``bench.py``      ``make bench``: one table of speed ratios
- ``__main__.py``   ``make eval`` / ``python -m snapseal.eval [--folder ROOT]``
"""
