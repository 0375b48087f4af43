"""Differentiable image transforms applied inside the gradient tape, in order.

A transform has `num_draws` and is called as `transform(images, draws)`: `draws` is a float32
tensor (batch, num_draws) of U[0, 1) numbers. The draws are made on the host, per image, from a
generator seeded with `(seed, key, step)` (`random_draws`), so an image sees the same
transforms whatever its batch, chunk or resume. The list is empty in the published recipes.
"""

from collections.abc import Sequence

import numpy as np


class Compose:
    """Applies `transforms` in order, each with its own columns of the draws.

    Args:
        transforms: Objects with `num_draws` and `__call__(images, draws)`.
    """

    def __init__(self, transforms: Sequence = ()):
        self.transforms = tuple(transforms)
        self.num_draws = sum(transform.num_draws for transform in self.transforms)

    def __call__(self, images, draws):
        start = 0
        for transform in self.transforms:
            images = transform(images, draws[:, start : start + transform.num_draws])
            start += transform.num_draws
        return images

    def __len__(self) -> int:
        return len(self.transforms)


def random_draws(seed: int, keys, step: int, num_draws: int) -> np.ndarray:
    """The U[0, 1) draws of every image for one step: (len(keys), num_draws) float32.

    Image i's row comes from a generator seeded with `(seed, keys[i], step)` alone.
    """
    draws = np.empty((len(keys), num_draws), dtype=np.float32)
    if num_draws:
        for position, key in enumerate(keys):
            generator = np.random.default_rng([seed, int(key), int(step)])
            draws[position] = generator.random(num_draws, dtype=np.float32)
    return draws
