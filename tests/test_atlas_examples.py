"""Dataset examples: the streaming top-k against a brute-force search over the same crops."""

import dataclasses
import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_filters.atlas import examples
from keras_filters.atlas import receptive_field as receptive_field_lib

IMAGE_SIZE = 16
TOP_K = 3


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Fourteen generated pictures: sizes from 16 to 64 px, JPEG and PNG, grey, RGBA, palette,
    in a subfolder too; plus a broken JPEG and a text file."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(5)
    os.makedirs(folder / "more")
    sizes = [(16, 16), (20, 30), (50, 17), (64, 40), (33, 33), (18, 60), (40, 40)]
    for number in range(14):
        height, width = sizes[number % len(sizes)]
        rows, columns = np.mgrid[0:height, 0:width]
        pixels = rng.integers(0, 256, size=(height, width, 3)).astype(np.float64)
        pixels[(rows // (2 + number % 5) + columns // 3) % 2 == 0] *= 0.3  # Some structure.
        image = Image.fromarray(pixels.astype(np.uint8), "RGB")
        mode, extension = [
            ("RGB", "png"),
            ("RGB", "jpg"),
            ("L", "png"),
            ("RGBA", "png"),
            ("P", "png"),
            ("RGB", "jpeg"),
        ][number % 6]
        image = image.convert(mode)
        where = folder / "more" if number % 4 == 3 else folder
        image.save(where / f"picture{number:02d}.{extension}")
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("not an image")
    return str(folder)


def tiny_model(padding="valid", strides=1):
    initializer = keras.initializers.GlorotUniform(seed=7)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(
        4,
        3,
        padding=padding,
        strides=strides,
        activation="relu",
        kernel_initializer=initializer,
        name="conv1",
    )(inputs)
    x = keras.layers.MaxPooling2D(2, padding=padding, name="pool")(x)
    x = keras.layers.Conv2D(
        5, 3, padding=padding, kernel_initializer=initializer, bias_initializer="ones", name="conv2"
    )(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, name="logits", kernel_initializer=initializer)(x)
    return keras.Model(inputs, outputs)


def sub_model(model, layer):
    return keras.Model(model.inputs[0], model.get_layer(layer).output)


def test_list_images_finds_pictures_in_sorted_order(photo_folder, tmp_path):
    files = examples.list_images(photo_folder)
    names = [os.path.relpath(path, photo_folder) for path in files]
    assert len(names) == 15 and "broken.jpg" in names and "notes.txt" not in names
    assert names == sorted(names[:12]) + sorted(names[12:])  # Top folder, then "more/".
    assert names[-1].startswith("more" + os.sep)
    with pytest.raises(ValueError, match="holds no image"):
        examples.list_images(str(tmp_path))


def test_load_image_brings_any_picture_to_the_input_size(photo_folder):
    for path in examples.list_images(photo_folder):
        if path.endswith("broken.jpg"):
            with pytest.raises(OSError):
                examples.load_image(path, IMAGE_SIZE)
            continue
        pixels = examples.load_image(path, (IMAGE_SIZE, IMAGE_SIZE + 4))
        assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE + 4, 3) and pixels.dtype == np.uint8


def brute_force_over_crops(model, layer, files, field, top_k):
    """Every receptive-field crop of every image through the model alone; per filter, the
    top-k images by their best crop (ties to the earlier image, then the earlier position)."""
    extractor = sub_model(model, layer)
    rows, columns = field.output_size
    found = []  # (image number, position, activations of every filter)
    for number, path in enumerate(files):
        try:
            pixels = examples.load_image(path, IMAGE_SIZE)
        except OSError:
            continue
        crops = [
            pixels[slice(*field.box(r, c)[0::2]), slice(*field.box(r, c)[1::2])]
            for r in range(rows)
            for c in range(columns)
        ]
        values = keras.ops.convert_to_numpy(
            extractor(examples.unit_inputs(np.stack(crops)))
        ).reshape(len(crops), -1)  # Each crop gives one 1x1 output: its position's activation.
        best = values.argmax(axis=0)
        for filter_index, position in enumerate(best):
            found.append(
                (
                    filter_index,
                    -values[position, filter_index],
                    number,
                    divmod(int(position), columns),
                    crops[position],
                )
            )
    table = {}
    for filter_index, negative, number, position, crop in sorted(found, key=lambda item: item[:3]):
        table.setdefault(filter_index, [])
        if len(table[filter_index]) < top_k:
            table[filter_index].append((-negative, number, position, crop))
    return table


def test_crops_are_descending_and_match_a_brute_force_search_over_the_crops(photo_folder):
    model = tiny_model()
    files = examples.list_images(photo_folder)
    field = receptive_field_lib.receptive_field(model, "conv2", IMAGE_SIZE)
    assert (field.size, field.stride, field.start, field.output_size) == (
        (8, 8),
        (2, 2),
        (0, 0),
        (5, 5),
    )
    result = examples.scan(sub_model(model, "conv2"), files, field, top_k=TOP_K, batch_size=5)
    crops = examples.cut_crops(result)
    assert [os.path.basename(path) for path, _ in result.skipped] == ["broken.jpg"]
    expected = brute_force_over_crops(model, "conv2", files, field, TOP_K)
    assert sorted(result.examples) == list(range(5))
    for filter_index, found in result.examples.items():
        activations = [example.activation for example in found]
        assert len(found) == TOP_K
        assert activations == sorted(activations, reverse=True)
        wanted = expected[filter_index]
        assert [(e.image_number, e.position) for e in found] == [(n, p) for _, n, p, _ in wanted]
        np.testing.assert_allclose(activations, [value for value, *_ in wanted], rtol=1e-5)
        for example, (_, _, _, crop) in zip(found, wanted, strict=True):
            assert example.file == files[example.image_number]
            assert example.box == field.box(*example.position)
            np.testing.assert_array_equal(crops[filter_index, example.rank], crop)


def test_results_do_not_depend_on_the_batch_size(photo_folder):
    model = tiny_model()
    files = examples.list_images(photo_folder)
    field = receptive_field_lib.receptive_field(model, "conv1", IMAGE_SIZE)
    runs = [
        examples.scan(sub_model(model, "conv1"), files, field, top_k=4, batch_size=batch_size)
        for batch_size in (1, 6, 64)
    ]
    keys = [
        {f: [(e.image_number, e.position) for e in found] for f, found in run.examples.items()}
        for run in runs
    ]
    assert keys[0] == keys[1] == keys[2]


def test_same_padding_crops_are_the_clipped_field_of_the_maximum(photo_folder):
    model = tiny_model(padding="same", strides=2)
    files = examples.list_images(photo_folder)
    extractor = sub_model(model, "conv2")
    result, crops = examples.find_examples(
        model,
        "conv2",
        photo_folder,
        image_size=IMAGE_SIZE,
        top_k=2,
        batch_size=4,
        filters=[4, 1],
    )
    assert list(result.examples) == [4, 1]
    for filter_index, found in result.examples.items():
        for example in found:
            pixels = examples.load_image(files[example.image_number], IMAGE_SIZE)
            maps = keras.ops.convert_to_numpy(extractor(examples.unit_inputs(pixels[None])))[0]
            assert maps[..., filter_index].max() == pytest.approx(example.activation, rel=1e-5)
            assert np.unravel_index(maps[..., filter_index].argmax(), maps.shape[:2]) == (
                example.position
            )
            top, left, bottom, right = example.box
            assert 0 <= top < bottom <= IMAGE_SIZE and 0 <= left < right <= IMAGE_SIZE
            assert crops[filter_index, example.rank].shape == (bottom - top, right - left, 3)


def test_a_layer_without_spatial_axes_gives_whole_images(photo_folder):
    model = tiny_model()
    result, crops = examples.find_examples(
        model, "logits", photo_folder, image_size=IMAGE_SIZE, top_k=2
    )
    assert result.field.is_global
    assert all(crop.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) for crop in crops.values())


def test_top_k_keeps_the_highest_and_gives_ties_to_the_earlier_image():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, size=(40, 3)).astype(np.float32)  # Many ties.
    table = examples.TopK(3, 5)
    for start in range(0, 40, 7):
        stop = min(start + 7, 40)
        table.add(values[start:stop], np.arange(start, stop), np.zeros((stop - start, 3), int))
    for filter_index in range(3):
        order = sorted(range(40), key=lambda number: (-values[number, filter_index], number))[:5]
        assert table.image_numbers[filter_index].tolist() == order
    assert table.values.shape == (3, 5)  # Bounded: k entries per filter, whatever was seen.


def test_activations_of_the_wrong_size_are_refused(photo_folder):
    model = tiny_model()
    field = receptive_field_lib.receptive_field(model, "conv2", IMAGE_SIZE)
    wrong = dataclasses.replace(field, output_size=(4, 4))
    with pytest.raises(ValueError, match=r"\(1, 5, 5, 5\) do not match .* layer 'conv2'"):
        examples.scan(sub_model(model, "conv2"), examples.list_images(photo_folder)[:2], wrong)


def test_crops_written_for_the_site_show_on_filter_pages(photo_folder, tmp_path):
    from keras_filters.atlas import site

    model = tiny_model()
    result, crops = examples.find_examples(
        model, "conv2", photo_folder, image_size=IMAGE_SIZE, top_k=2
    )
    outdir = str(tmp_path / "site")
    folder = site.layer_folder(0, "conv2")
    shown = examples.write_crops(result, crops, outdir, f"{folder}/examples")
    filters = tuple(
        site.FilterEntry(index=index, image=None, objective=1.0, examples=shown[index])
        for index in range(5)
    )
    layer = site.LayerEntry("conv2", "Conv2D", (None, 5, 5, 5), 5, 0, 1.0, None, filters)
    site.write_site(outdir, site.Atlas(site.ModelSummary("tiny"), (layer,)))
    assert site.broken_references(outdir) == []
    with open(os.path.join(outdir, folder, "filter-0003.html"), encoding="utf-8") as file:
        page = file.read()
    for example in result.examples[3]:
        assert f"filter-0003-{example.rank}.png" in page
        assert f"activation {example.activation:.4g}" in page
    written = Image.open(os.path.join(outdir, folder, "examples", "filter-0003-0.png"))
    assert np.array_equal(np.asarray(written), crops[3, 0])
