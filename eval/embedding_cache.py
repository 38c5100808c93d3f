"""Embeddings are the slow part (~0.25 s a face here): cache them on disk by content.

The key is a hash of the embedder's name, the pixels it sees and the face box, so a cached row
can never belong to other pixels; re-running the evaluation after a new model lands only scores
the crops again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from snapseal.daemon.types import Box
from snapseal.eval.embedders import Embedder


def face_key(embedder_name: str, image: np.ndarray, box: Box) -> str:
    digest = hashlib.sha256()
    digest.update(embedder_name.encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    digest.update(str(image.shape).encode())
    digest.update(np.asarray(box.as_list(), np.float64).round(4).tobytes())
    return digest.hexdigest()[:32]


class CachedEmbedder:
    def __init__(self, embedder: Embedder, cache_dir: Path | None) -> None:
        self.embedder = embedder
        self.name = embedder.name
        self.dim = embedder.dim
        self._path = cache_dir / f"embeddings-{embedder.name}.npz" if cache_dir else None
        self._rows: dict[str, np.ndarray] = {}
        if self._path is not None and self._path.is_file():
            with np.load(self._path) as stored:
                self._rows = dict(zip(stored["keys"].tolist(), stored["rows"]))
        self._dirty = False

    def embed(self, images_bgr: Sequence[np.ndarray], boxes: Sequence[Box], progress: str | None = None) -> np.ndarray:
        keys = [face_key(self.name, image, box) for image, box in zip(images_bgr, boxes)]
        todo = [i for i, key in enumerate(keys) if key not in self._rows]
        if todo:
            chunks = [todo[i:i + 32] for i in range(0, len(todo), 32)]
            if progress:
                from tqdm import tqdm

                chunks = tqdm(chunks, desc=f"{progress} ({self.name}, {len(todo)} new)", unit="batch")
            for chunk in chunks:
                rows = self.embedder.embed([images_bgr[i] for i in chunk], [boxes[i] for i in chunk])
                for i, row in zip(chunk, rows):
                    self._rows[keys[i]] = row
            self._dirty = True
        return np.stack([self._rows[key] for key in keys]) if keys else np.zeros((0, self.dim), np.float32)

    def save(self) -> None:
        if self._path is None or not self._dirty:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self._rows)
        temporary = self._path.with_suffix(".tmp.npz")
        np.savez(temporary, keys=np.array(keys), rows=np.stack([self._rows[k] for k in keys]))
        temporary.replace(self._path)
        self._dirty = False
