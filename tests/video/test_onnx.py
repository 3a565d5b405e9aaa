"""The ONNX path: a tiny model built here emits a fixed YOLO tensor; decoding is checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from video.frames import FrameTask
from video.models import Box
from video.onnx_detector import OnnxDetector, OnnxOutputError, decode_yolo
from video.pipeline import CameraPipeline
from video.settings import CameraSettings, DetectorName, OnnxSettings, VideoSettings
from video.synthetic import Scene, SyntheticCamera

NAMES = ["person", "truck", "excavator"]


def fixed_model(path: Path, table: np.ndarray, side: int = 64) -> Path:
    """A model whose output is `table` whatever the image (0 x mean(image) + table)."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, side, side])
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, list(table.shape))
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["zeros"]),
        helper.make_node("Reshape", ["zeros", "shape"], ["zeros3"]),
        helper.make_node("Add", ["zeros3", "table"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(np.zeros((1,), np.float32), "zero"),
        numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape"),
        numpy_helper.from_array(table.astype(np.float32), "table"),
    ]
    model = helper.make_model(
        helper.make_graph(nodes, "fixed", [inp], [out], inits),
        opset_imports=[helper.make_opsetid("", 13)],
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def v5_table() -> np.ndarray:
    t = np.zeros((1, 5, 5 + len(NAMES)), np.float32)
    t[0, 0] = [32, 32, 16, 32, 0.9, 0.0, 0.95, 0.0]  # truck, centre of the input
    t[0, 1] = [33, 32, 16, 32, 0.8, 0.0, 0.90, 0.0]  # same truck, weaker: NMS drops it
    t[0, 2] = [10, 10, 8, 8, 0.9, 0.8, 0.0, 0.0]  # a person top-left
    t[0, 3] = [50, 50, 8, 8, 0.1, 0.0, 0.0, 0.9]  # low objectness: 0.09 < 0.25
    return t  # row 4 is all zero


def test_onnx_detector_decodes_a_model_output(tmp_path: Path) -> None:
    path = fixed_model(tmp_path / "fixed.onnx", v5_table())
    det = OnnxDetector(OnnxSettings(model_path=path, class_names=NAMES, input_size=64))
    image = np.zeros((480, 640, 3), np.uint8)
    found = sorted(det.detect(image), key=lambda c: c.label)
    assert [(c.label, round(c.score, 3)) for c in found] == [("person", 0.72), ("truck", 0.855)]
    # Input pixels scale to the frame: x by 640/64, y by 480/64.
    assert found[1].box == Box(240, 120, 160, 240)
    assert found[0].box == Box(60, 45, 80, 60)


@pytest.mark.parametrize("fmt", ["auto", "yolov8"])
def test_yolov8_layout(fmt: str) -> None:
    # [1, 4+C, N]: a column per candidate, no objectness.
    t = np.zeros((1, 4 + len(NAMES), 6), np.float32)
    t[0, :, 0] = [32, 32, 10, 10, 0.0, 0.0, 0.7]
    found = decode_yolo(t, NAMES, fmt, 0.25, 0.45, 1.0, 1.0)
    assert [(c.label, c.box) for c in found] == [("excavator", Box(27, 27, 10, 10))]


@pytest.mark.parametrize(
    ("shape", "fmt", "message"),
    [
        ((1, 5, 9), "auto", "fits neither"),
        ((2, 5, 8), "auto", "batch must be 1"),
        ((1, 5, 9), "yolov5", "needs 8 columns"),
    ],
)
def test_wrong_output_shape_is_named(shape: tuple[int, ...], fmt: str, message: str) -> None:
    with pytest.raises(OnnxOutputError, match=message):
        decode_yolo(np.zeros(shape, np.float32), NAMES, fmt, 0.25, 0.45, 1.0, 1.0)


def test_onnx_runs_in_the_pipeline_when_something_moves(tmp_path: Path) -> None:
    path = fixed_model(tmp_path / "fixed.onnx", v5_table())
    camera = CameraSettings(
        id="c",
        detectors=[DetectorName.ONNX],
        onnx=OnnxSettings(model_path=path, class_names=NAMES, input_size=64),
    )
    pipe = CameraPipeline(camera, VideoSettings())
    cam = SyntheticCamera(Scene(movers=1))
    labels = set()
    for i in range(20):
        r = pipe.process(FrameTask("c", i / 5, 0.0, cam.jpeg(i)))
        labels |= {u.label for u in r.updates if u.started}
    assert labels == {"truck", "person"}


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OnnxOutputError, match="cannot load ONNX model"):
        OnnxDetector(OnnxSettings(model_path=tmp_path / "nope.onnx", class_names=NAMES))
