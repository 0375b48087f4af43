"""From optimized images to pictures: deprocess, mosaics, titled panels. NumPy and PIL only."""
