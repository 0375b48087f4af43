"""The quality recipe: pictures that show what a filter sees, for your own models (issue 10).

What the feature-visualization literature since 2016 learned (Distill 2017; lucid, lucent,
xplique), tuned on small trained models of the kind people bring and measured with
`scripts/evaluate_quality.py` (README, "How good are the pictures"):

- the picture is a Fourier image: a 1/f-scaled spectrum in a decorrelated colour space,
  squashed into [0, 1] by a sigmoid and mapped into the model's input range inside the graph
  (`input_range`: found from a Keras Applications family, the demo model or a leading Rescaling
  layer; set it for other model files);
- it is optimized on a canvas twice the image size and downsampled with a windowed-sinc
  antialiasing filter (cutoff 0.25 cycles per pixel) inside the step, so pooling-grid
  checkerboards cannot form;
- every step sees it through one random shift (±1/4 of the size), zoom (0.8–1.2) and
  rotation (±20°), resampled once with reflected borders and differentiated exactly, so it
  must work wherever it lands (twice as wide as the robustness measure's ±1/8, 0.9–1.1, ±10°:
  robust well within that);
- a grey picture is the luminance axis of the colour space alone, so the same learning rate
  suits grey and colour models;
- Adam, 256 steps, learning rate 0.3 falling to 0.03 on a cosine;
- the first 32 steps pass ReLU gradients to filters that noise does not excite (the warm-up),
  so no filter stays dead for want of a direction;
- after the ascent, a filter whose picture excites it less than another filter's picture does
  starts again from that picture for 64 steps (rival restarts, up to 4 rounds): an ascent from
  noise can stop in a poorer optimum than the one a related filter found;
- the tiles show each picture as it is ("picture" deprocess), the first filters in index order.

Only `model`, `layer` and, for a model file that does not say it, `input_range` change per
model:

    keras-filters --config=configs/quality.py --config.model=my_model.keras \\
        --config.layer=conv4 --config.input_range="(0, 255)" --outdir=out/quality

Runtime: about 0.5–0.6 s per filter for a 32×32 model on 2 CPU cores of the README's table
(0.8–1.1 s on an AMD EPYC whose matrix products run at about a third of that speed).
"""

from configs import base


def get_config():
    """Returns the quality configuration."""
    config = base.get_config()
    config.parameterization = "fourier"
    config.fourier_decay = 1.0
    config.fourier_gain = 0.25
    config.fourier_init_std = 0.01
    config.decorrelate_colour = True
    config.canvas_factor = 2
    config.downsample_cutoff = 0.25
    config.transforms = ("shift(0.25)", "scale(0.8, 1.2)", "rotate(20)")
    config.optimizer = "adam"
    config.num_steps = 256
    config.step_size = 0.3
    config.schedule = "cosine"
    config.final_step_fraction = 0.1
    config.relu_warmup_steps = 32
    config.rival_rounds = 4
    config.rival_steps = 64
    config.deprocess = "picture"
    config.selection = "first"
    config.max_filters = 64
    return config
