"""Figure of ``verify.images``: training images, each network's samples, and its best machine's from the same noise."""
from __future__ import annotations

import numpy as np

SHOWN = 8  # samples per row


def plot(path: str, result: dict) -> None:
    """Rows: training images; then per network its samples and, below, its best machine's samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    side, samples = result["side"], result["samples"]
    rows = [("training images", result["train"])]
    for name, row in result["creativity"].items():
        if "best_machine" in row:
            rows += [(name, samples[name]), (f"{row['best_machine']} (r^2 {row['best_r2']:.2f})",
                                             samples[row["best_samples"]])]
    fig, axes = plt.subplots(len(rows), SHOWN, figsize=(SHOWN * 0.9 + 2.2, len(rows) * 0.95), squeeze=False)
    for (label, images), line in zip(rows, axes):
        for k, ax in enumerate(line):
            ax.imshow(np.clip(images[k].reshape(side, side), -1, 1), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        line[0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)
