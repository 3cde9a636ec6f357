"""Load the portrait detector the same way everywhere: CLI, library use and the build's detect stage.

Results must not depend on how many cores a process sees (torch's intra-op threads change
YOLO's float sums; OpenCV's threads its resizes), so :func:`pin_threads` fixes both to
``DETECT_THREADS`` for the process before any model loads, and the BLAS libraries loaded by
then alike (their idle threads would spin on other cores). MediaPipe's TFLite graphs run
single-threaded per call regardless.
"""

from __future__ import annotations

from detectors.config import DetectorConfig, GateConfig

DETECT_THREADS = 1


def pin_threads() -> None:
    """Fix torch's, OpenCV's and the loaded BLAS libraries' thread counts (process-wide) to
    ``DETECT_THREADS``."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(DETECT_THREADS)
    if torch.get_num_threads() != DETECT_THREADS:
        torch.set_num_threads(DETECT_THREADS)
    threadpool_limits(limits=DETECT_THREADS, user_api="blas")


def load_portrait_detector(config: DetectorConfig = DetectorConfig(), gate_config: GateConfig = GateConfig()):
    """A loaded :class:`detectors.portrait.PortraitDetector` (threads pinned by its ``load``)."""
    from detectors.portrait import PortraitDetector

    detector = PortraitDetector(config, gate_config)
    detector.load()
    return detector
