"""Seeded initial noise, one image per filter, independent of how filters are batched."""

import numpy as np

DISTRIBUTIONS = ("uniform", "normal")


def initial_images(
    filter_indices,
    *,
    height: int,
    width: int,
    channels: int,
    seed: int,
    distribution: str = "uniform",
    low: float = 0.0,
    high: float = 1.0,
) -> np.ndarray:
    """Draws the starting image of each filter.

    Each filter's noise comes from its own generator seeded with `(seed, filter_index)`, so a
    filter starts from the same image whether it runs alone, in any chunk, or after a resume.

    Args:
        filter_indices: The filters, one image each.
        height: Image height in pixels.
        width: Image width in pixels.
        channels: Image channels.
        seed: The run's seed.
        distribution: "uniform" draws from U[low, high); "normal" from a normal distribution
            with mean (low + high) / 2 and standard deviation (high - low) / 2. Defaults to
            "uniform".
        low: Lower end of the range. Defaults to 0.
        high: Upper end of the range. Defaults to 1.

    Returns:
        Float32 array (len(filter_indices), height, width, channels).

    Raises:
        ValueError: For an unknown distribution.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"unknown init_distribution {distribution!r}; choose one of: {', '.join(DISTRIBUTIONS)}"
        )
    shape = (height, width, channels)
    images = np.empty((len(filter_indices),) + shape, dtype=np.float32)
    for position, filter_index in enumerate(filter_indices):
        generator = np.random.default_rng([seed, int(filter_index)])
        if distribution == "uniform":
            images[position] = generator.uniform(low, high, size=shape)
        else:
            # A wide normal's tails can pass the float32 range: they start as infinity, and the
            # ascent marks that filter failed.
            with np.errstate(over="ignore"):
                images[position] = generator.normal((low + high) / 2, (high - low) / 2, size=shape)
    return images
