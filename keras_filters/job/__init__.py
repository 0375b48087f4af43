"""The main job: a resumable run that writes the mosaic, the tiles and run.json."""
