"""A small classifier of the dataset's labels, the realism proxy: its confidence and its feature space.

``d -> 128 -> 64 -> classes`` with ReLU, trained with Adam on cross-entropy; the 64 penultimate
activations are the features a Frechet distance is measured in.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from numerics.validation import finite_array, positive_int

FEATURES = 64


class Classifier(nn.Module):
    def __init__(self, d: int, classes: int):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, FEATURES), nn.ReLU())
        self.head = nn.Linear(FEATURES, classes)

    def forward(self, x):
        return self.head(self.features(x))

    @torch.no_grad()
    def embed(self, x) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate features and the maximum class probability (the confidence) of each row of ``x``."""
        h = self.features(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        return h.numpy().astype(np.float64), torch.softmax(self.head(h), dim=1).max(dim=1).values.numpy()


def train_classifier(x, labels, *, steps: int = 600, batch: int = 128, lr: float = 2e-3, seed: int = 0) -> Classifier:
    """Fit on flat images ``x`` ``(n, d)`` and integer ``labels``; weights and batches from ``seed``."""
    x = torch.as_tensor(finite_array(x, "x", ndim=2), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    steps, batch = positive_int(steps, "steps"), positive_int(batch, "batch")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Classifier(x.shape[1], int(y.max()) + 1)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        rows = torch.randint(len(x), (batch,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
