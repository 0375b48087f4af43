"""Visualizes the filters of one layer: the same program as the `keras-filters` command.

python scripts/visualize.py --config=configs/quickstart.py --outdir=/tmp/quickstart
"""

from keras_filters import cli

if __name__ == "__main__":
    cli.run()
