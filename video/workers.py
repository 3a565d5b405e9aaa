"""Detection worker processes (spawned, one core each) fed through bounded drop-oldest queues.

Each camera is pinned to one worker, because its background model and tracks live there.
A feeder thread per worker sends one frame at a time over a pipe and waits for the result;
frames wait in a deque of `queue_frames`, and when it is full the oldest frame is dropped
and counted: a late frame is worth less than a fresh one.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess

from supervise.worker import Supervised, Supervisor
from video.frames import DropReason, FrameResult, FrameTask
from video.metrics import VideoMetrics
from video.settings import CameraSettings, VideoSettings

log = logging.getLogger(__name__)

ResultHandler = Callable[[FrameTask, FrameResult], None]
_POLL_S = 0.2


def worker_main(conn: Connection, settings_json: str) -> None:
    """Entry point of a worker process: run frames through per-camera pipelines."""
    import cv2

    from video.pipeline import CameraPipeline

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s video-worker %(message)s")
    cv2.setNumThreads(1)  # one core per worker; the pool size is the parallelism
    settings = VideoSettings.model_validate_json(settings_json)
    pipelines: dict[str, CameraPipeline] = {}
    epochs: dict[str, int] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        camera, task = msg
        pipeline = pipelines.get(camera.id)
        try:
            if pipeline is None or pipeline.camera != camera or epochs[camera.id] != task.epoch:
                pipeline = pipelines[camera.id] = CameraPipeline(camera, settings)
                epochs[camera.id] = task.epoch
            result = pipeline.process(task)
        except Exception as err:  # a detector bug must cost one frame, not the worker
            logging.getLogger(__name__).exception("camera %s: detector error", camera.id)
            result = FrameResult(task.camera_id, task.time, task.received_at, failed=True,
                                 detail=f"{type(err).__name__}: {err}")  # fmt: skip
        try:
            conn.send(result)
        except (BrokenPipeError, OSError):
            return


class Worker:
    """One worker process, its feeder thread and its bounded frame queue."""

    def __init__(
        self,
        index: int,
        settings: VideoSettings,
        metrics: VideoMetrics,
        on_result: ResultHandler,
        start_method: str = "spawn",
        supervisor: Supervisor | None = None,
    ) -> None:
        self.index = index
        self.supervisor = supervisor or Supervisor()
        self.settings = settings
        self.metrics = metrics
        self.on_result = on_result
        self._mp: SpawnContext | ForkServerContext = (
            mp.get_context("forkserver")
            if start_method == "forkserver"
            else mp.get_context("spawn")
        )
        self._settings_json = settings.model_dump_json()
        self._queue: deque[tuple[CameraSettings, FrameTask]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._feeder: Supervised | None = None
        self.processed = 0
        self.busy = False

    @property
    def started(self) -> bool:
        return self._feeder is not None

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        """Spawn the process and the feeder (the pool does it at the first frame)."""
        with self._cond:
            if self._feeder is not None or self._stopping:
                return
            self._spawn()
            # A frame in a worker takes well under a second; one minute without a turn is stuck.
            self._feeder = self.supervisor.start(f"video-worker-{self.index}", self._feed_step)

    def _spawn(self) -> None:
        parent, child = self._mp.Pipe(duplex=True)
        proc = self._mp.Process(
            target=worker_main,
            args=(child, self._settings_json),
            name=f"offsite-video-{self.index}",
            daemon=True,
        )
        proc.start()
        child.close()  # so the worker's death reads as EOF here
        self._process, self._conn = proc, parent

    def submit(self, camera: CameraSettings, task: FrameTask) -> None:
        """Never blocks: when the queue is full the oldest frame is dropped and counted."""
        with self._cond:
            if len(self._queue) >= self.settings.queue_frames:
                self._queue.popleft()
                self.metrics.frames_dropped.labels(DropReason.QUEUE_FULL.value).inc()
            self._queue.append((camera, task))
            self._cond.notify()

    def _next(self) -> tuple[CameraSettings, FrameTask] | None:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait(_POLL_S)
            if self._stopping:
                return None
            self.busy = True  # under the lock, so idle() never sees a frame in no place
            return self._queue.popleft()

    def _feed_step(self) -> bool:
        """One frame through the worker process; False once stopping."""
        item = self._next()
        if item is None:
            return False
        try:
            result = self._roundtrip(item)
            if result is not None:
                self.processed += 1
                self.on_result(item[1], result)
        except Exception:  # the handler's own errors must not stop this camera's frames
            log.exception("video result handler failed for camera %s", item[0].id)
        finally:
            self.busy = False
        return True

    def _roundtrip(self, item: tuple[CameraSettings, FrameTask]) -> FrameResult | None:
        conn = self._conn
        assert conn is not None
        try:
            conn.send(item)
            while not conn.poll(_POLL_S):
                if self._process is not None and not self._process.is_alive():
                    raise EOFError
                if self._stopping:
                    return None
            result: FrameResult = conn.recv()
            return result
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            if self._stopping:
                return None
            code = self._process.exitcode if self._process is not None else None
            log.error("video worker %d died (exit code %s); restarting it", self.index, code)
            self.metrics.frames_dropped.labels(DropReason.WORKER_LOST.value).inc()
            self.metrics.worker_restarts.inc()
            conn.close()
            self._spawn()
            return None

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            left = len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if left:
            self.metrics.frames_dropped.labels(DropReason.STOPPING.value).inc(left)
        self.supervisor.retire(self._feeder, timeout)
        if self._conn is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self._conn.send(None)
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout)
        if self._conn is not None:
            self._conn.close()

    def kill_for_test(self) -> None:
        """Kill the process (used by tests to prove a crashed worker is replaced)."""
        if self._process is not None:
            self._process.kill()


class WorkerPool:
    """Pins cameras to workers: configured ones round-robin, new ones to the least loaded."""

    def __init__(
        self,
        settings: VideoSettings,
        metrics: VideoMetrics,
        on_result: ResultHandler,
        start_method: str = "spawn",
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.workers = [
            Worker(i, settings, metrics, on_result, start_method, supervisor)
            for i in range(settings.workers)
        ]
        self._assigned: dict[str, int] = {
            cam.id: i % settings.workers for i, cam in enumerate(settings.cameras)
        }
        self._lock = threading.Lock()

    def start(self) -> None:
        """Workers with configured cameras start now (spawning and importing OpenCV takes a
        second or two, frames would pile up meanwhile); others with their first frame, so a
        server without cameras spawns none."""
        for index in sorted(set(self._assigned.values())):
            self.workers[index].start()

    def stop(self) -> None:
        for w in self.workers:
            w.stop()

    def worker_of(self, camera_id: str) -> Worker:
        with self._lock:
            index = self._assigned.get(camera_id)
            if index is None:
                load = [0] * len(self.workers)
                for i in self._assigned.values():
                    load[i] += 1
                index = self._assigned[camera_id] = load.index(min(load))
        return self.workers[index]

    def submit(self, camera: CameraSettings, task: FrameTask) -> None:
        worker = self.worker_of(camera.id)
        if not worker.started:
            worker.start()
        worker.submit(camera, task)
        self.metrics.queue_depth.set(sum(w.depth for w in self.workers))

    def idle(self) -> bool:
        """No frame waiting or in a worker (tests and the bench wait for this)."""
        return all(w.depth == 0 and not w.busy for w in self.workers)
