"""Cameras that only stream: RTSP/HTTP (or a file) pulled through cv2.VideoCapture."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from video.intake import FrameIntake
from video.settings import CameraSettings, VideoSettings

log = logging.getLogger(__name__)

_BACKOFF_MIN_S, _BACKOFF_MAX_S = 1.0, 30.0


def _redacted(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


class StreamPuller:
    """One thread per stream: reads continuously (so no stale buffer builds up), hands on
    frames at the camera's rate, reconnects with backoff when the stream fails."""

    def __init__(
        self, camera: CameraSettings, settings: VideoSettings, intake: FrameIntake
    ) -> None:
        if camera.url is None:
            raise ValueError(f"camera {camera.id} has no url to pull")
        self.camera = camera
        self.url = camera.url
        self.interval = 1.0 / settings.camera_fps(camera)
        self.intake = intake
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"video-pull-{self.camera.id}",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        import cv2

        backoff = _BACKOFF_MIN_S
        is_file = self.url.startswith("file://")
        source = self.url.removeprefix("file://") if is_file else self.url
        while not self._stop.is_set():
            cap = cv2.VideoCapture(source)
            if not cap.isOpened():
                log.warning("camera %s: cannot open %s; retrying in %.0fs", self.camera.id,
                            _redacted(self.url), backoff)  # fmt: skip
                cap.release()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                continue
            self.connected = True
            log.info("camera %s: pulling %s", self.camera.id, _redacted(self.url))
            next_due = 0.0
            while not self._stop.is_set():
                if not cap.grab():
                    break
                now = time.monotonic()
                if now >= next_due:
                    ok, image = cap.retrieve()
                    if ok:
                        self.intake.image_received(self.camera, image, datetime.now(UTC))
                        backoff = _BACKOFF_MIN_S
                    next_due = now + self.interval
                if is_file:
                    self._stop.wait(self.interval)  # a file replays in real time
            cap.release()
            self.connected = False
            if not self._stop.is_set():
                log.warning("camera %s: stream ended; reconnecting in %.0fs", self.camera.id,
                            backoff)  # fmt: skip
                self._stop.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
