"""`startup.choose_cpu_kernels`: the same TensorFlow kernels on every x86 processor."""

import pytest

from keras_filters import startup


@pytest.mark.parametrize(
    "machine, before, after",
    [
        ("x86_64", None, "1"),  # TensorFlow would leave oneDNN off on an AMD processor.
        ("x86_64", "0", "0"),  # The user's choice stands.
        ("aarch64", None, None),  # Not an x86 build: TensorFlow's own default.
    ],
)
def test_choose_cpu_kernels_asks_for_onednn_on_x86_unless_the_user_chose(
    monkeypatch, machine, before, after
):
    monkeypatch.setattr(startup.platform, "machine", lambda: machine)
    if before is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", before)
    startup.choose_cpu_kernels()
    assert startup.os.environ.get("TF_ENABLE_ONEDNN_OPTS") == after
