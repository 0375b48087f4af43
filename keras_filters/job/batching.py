"""Splits a run into chunks: how many images one batch takes, from the memory it would need."""

from collections.abc import Sequence

from keras_filters import backends

# Resident memory one more image in the batch costs, per byte of the traced graph's float
# outputs. The traced sum counts every op output (Conv2D, BiasAdd and Relu separately, casts),
# while oneDNN fuses many of them and frees the rest early: one step's peak resident memory grew
# by 0.15-0.70 of the traced sum per image (VGG16 block5_conv1 at 128 and 256 px, float32 and
# mixed bfloat16; ResNet50V2 conv3_block4_out at 180 px; Xception block3_sepconv1 at 200 px;
# the demo CNN), so 1.0 leaves a margin of at least 1.4x.
MEMORY_PER_ACTIVATION_BYTE = 1.0
# Throughput of VGG16 block5_conv1 at 128 px on 2 CPU cores stops growing at about 8 images
# (40 ms per image-step at 8, 39 at 32); small models keep gaining up to 64 (the demo CNN: 1.8
# ms per image-step at 1, 0.6 at 8, 0.3 at 64). Larger batches only cost memory.
MAX_AUTO_BATCH = 64
FALLBACK_AVAILABLE_BYTES = 4 << 30


def available_memory_bytes() -> int:
    """Memory the run can still take: the accelerator's free memory where the backend reports
    it, else the system's, from /proc/meminfo (Linux), else a 4 GiB guess."""
    device_bytes = backends.current().free_device_memory()
    if device_bytes is not None:
        return device_bytes
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return FALLBACK_AVAILABLE_BYTES


def chunk_layout(keys: Sequence[int], batch_size: int) -> list[list[int]]:
    """Splits the run's images into the chunks that run as one batch each, in order.

    A resumed run reuses the layout of the run it continues, so that every image is computed
    in the same batch as before and the results are the same bit for bit.
    """
    keys = [int(key) for key in keys]
    return [keys[start : start + batch_size] for start in range(0, len(keys), batch_size)]


def shard_keys(keys, batch_size: int, num_shards: int, shard_index: int) -> list[int]:
    """Shard `shard_index`'s share of `keys`: whole chunks of the unsharded layout, as even as
    they come, in order, so that every image runs in the batch it would run in unsharded."""
    layout = chunk_layout(keys, batch_size)
    start = len(layout) * shard_index // num_shards
    end = len(layout) * (shard_index + 1) // num_shards
    return [key for chunk in layout[start:end] for key in chunk]


def auto_batch_size(
    feature_extractor,
    image_size: int,
    num_filters: int,
    budget_fraction=0.4,
    replicas: int = 1,
    read_memory: bool = True,
) -> int:
    """The largest batch whose estimated memory fits `budget_fraction` of the free memory.

    Args:
        feature_extractor: The sub-model up to the target layer.
        image_size: The largest image size the run uses.
        num_filters: How many filters the run optimizes (no batch is larger).
        budget_fraction: Share of the free memory one batch may take. Defaults to 0.4.
        replicas: Devices that share each batch: each takes batch / replicas images and
            has its own memory. Defaults to 1.
        read_memory: False where the batch must not depend on this machine's free memory
            (the workers of a cluster must agree on it): then each replica takes
            MAX_AUTO_BATCH. Defaults to True.

    Returns:
        A batch size between 1 and min(num_filters, 64 · replicas).
    """
    if not read_memory:
        return max(1, min(MAX_AUTO_BATCH * replicas, num_filters))
    channels = int(feature_extractor.input_shape[-1])
    per_image = (
        backends.current().activation_bytes(
            feature_extractor, (1, image_size, image_size, channels)
        )
        * MEMORY_PER_ACTIVATION_BYTE
    )
    budget = available_memory_bytes() * budget_fraction
    fits = int(budget // max(per_image, 1.0))
    return max(1, min(fits * replicas, MAX_AUTO_BATCH * replicas, num_filters))
