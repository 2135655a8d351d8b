#!/usr/bin/env python3
"""A small synthetic churn dataset for the main job: two features, a label, a train and a test split.

    make_dataset.py DIR [--seed N]
The label depends on the features through a noisy linear boundary, so logistic regression can learn it."""
import argparse
import pathlib

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    features = rng.normal(size=(args.rows, 2)).astype(np.float32)
    logits = 2.0 * features[:, 0] - 1.5 * features[:, 1] + 0.3 + rng.normal(scale=0.7, size=args.rows)
    labels = (logits > 0).astype(np.int64)
    args.dir.mkdir(parents=True, exist_ok=True)
    split = int(args.rows * 0.8)
    for name, rows in (("train.csv", slice(0, split)), ("test.csv", slice(split, None))):
        with open(args.dir / name, "w") as out:
            out.write("tenure,charges,churned\n")
            for (a, b), label in zip(features[rows], labels[rows]):
                out.write(f"{a:.6f},{b:.6f},{label}\n")


if __name__ == "__main__":
    main()
