"""``make demo``: a synthetic walk-by video from real faces, the daemon run on it, a picture per track.

``walkby`` composes the video (and knows its ground truth, which the tracker measurement and the
tests use), ``track_eval`` measures the trackers on it, ``figures`` draws the per-track strips,
``__main__`` runs the whole demo (``python -m snapseal.eval.scenes``).
"""
