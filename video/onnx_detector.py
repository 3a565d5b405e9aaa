"""A site-supplied YOLO-style ONNX model through cv2.dnn: output decoding and NMS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from video.frames import Candidate
from video.models import Box
from video.settings import OnnxSettings


class OnnxOutputError(ValueError):
    """The model's output does not have a YOLO shape for the configured classes."""


def decode_yolo(
    output: npt.NDArray[Any],
    class_names: Sequence[str],
    fmt: str,
    confidence: float,
    nms_iou: float,
    scale_x: float,
    scale_y: float,
) -> list[Candidate]:
    """Boxes from a YOLO output tensor, in frame pixels, after per-class NMS.

    yolov5: rows of (cx, cy, w, h, objectness, class scores...), shape [1, N, 5+C];
    yolov8: columns of (cx, cy, w, h, class scores...), shape [1, 4+C, N].
    Box coordinates are in model-input pixels; scale_x/scale_y map them to the frame.
    """
    n_cls = len(class_names)
    out = np.asarray(output, dtype=np.float32)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise OnnxOutputError(f"output batch must be 1, got shape {out.shape}")
        out = out[0]
    if out.ndim != 2:
        raise OnnxOutputError(f"output must be [1, rows, cols], got shape {output.shape}")
    if fmt == "auto":
        if out.shape[1] == 5 + n_cls:
            fmt = "yolov5"
        elif out.shape[0] == 4 + n_cls:
            fmt = "yolov8"
        elif out.shape[1] == 4 + n_cls:
            fmt, out = "yolov8", out.T
        else:
            raise OnnxOutputError(
                f"output shape {output.shape} fits neither yolov5 [1, N, {5 + n_cls}] nor "
                f"yolov8 [1, {4 + n_cls}, N] for {n_cls} class names"
            )
    if fmt == "yolov8":
        if out.shape[0] == 4 + n_cls and out.shape[1] != 4 + n_cls:
            out = out.T
        if out.shape[1] != 4 + n_cls:
            raise OnnxOutputError(f"yolov8 output {output.shape} needs {4 + n_cls} channels")
        cls_scores = out[:, 4:]
        obj = np.ones(len(out), dtype=np.float32)
    else:
        if out.shape[1] != 5 + n_cls:
            raise OnnxOutputError(f"yolov5 output {output.shape} needs {5 + n_cls} columns")
        cls_scores = out[:, 5:]
        obj = out[:, 4]
    cls_ids = np.argmax(cls_scores, axis=1)
    scores = obj * cls_scores[np.arange(len(out)), cls_ids]
    keep = scores >= confidence
    if not keep.any():
        return []
    rows, scores, cls_ids = out[keep], scores[keep], cls_ids[keep]
    found: list[Candidate] = []
    for c in np.unique(cls_ids):
        sel = np.flatnonzero(cls_ids == c)
        rects = [
            [
                float((rows[i, 0] - rows[i, 2] / 2) * scale_x),
                float((rows[i, 1] - rows[i, 3] / 2) * scale_y),
                float(rows[i, 2] * scale_x),
                float(rows[i, 3] * scale_y),
            ]
            for i in sel
        ]
        kept = cv2.dnn.NMSBoxes(rects, [float(scores[i]) for i in sel], confidence, nms_iou)
        for k in np.ravel(kept):
            x, y, w, h = rects[int(k)]
            found.append(
                Candidate(
                    class_names[int(c)],
                    float(scores[sel[int(k)]]),
                    Box(round(x), round(y), round(w), round(h)),
                    "onnx",
                )
            )
    return found


class OnnxDetector:
    """Loads the model once per worker; the whole frame is resized to the square input."""

    def __init__(self, settings: OnnxSettings) -> None:
        self.settings = settings
        try:
            self._net = cv2.dnn.readNetFromONNX(str(settings.model_path))
        except cv2.error as err:
            raise OnnxOutputError(f"cannot load ONNX model {settings.model_path}: {err}") from err

    def detect(self, frame: npt.NDArray[np.uint8]) -> list[Candidate]:
        height, width = frame.shape[:2]
        size = self.settings.input_size
        blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, (size, size), swapRB=True, crop=False)
        self._net.setInput(blob)
        output = self._net.forward()
        return decode_yolo(
            output,
            self.settings.class_names,
            self.settings.output_format,
            self.settings.confidence,
            self.settings.nms_iou,
            width / size,
            height / size,
        )
