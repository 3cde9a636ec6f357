"""Person outlines from selfie segmentation, split among overlapping people."""

from __future__ import annotations

import cv2
import numpy as np

from detectors.evaluation import load_annotations
from detectors.geometry import box_iou, expand
from detectors.segmentation import SEGMENT_MARGIN
from pipeline.imageio import load_image

BUS = next(a for a in load_annotations() if a.name == "bus")


def _person_for(record, box):
    return max(range(len(record.persons)), key=lambda j: box_iou(record.persons[j].box, box))


def test_bus_outlines_hold_their_own_joints_only(detector):
    record = detector.detect(load_image(BUS.file()))
    indices = [_person_for(record, annotated.box) for annotated in BUS.persons]
    assert len(set(indices)) == 2
    for own, annotated in zip(indices, BUS.persons):
        outlines = record.outlines(own)
        polygon = outlines.outline.reshape(-1, 1, 2)
        assert polygon.dtype == np.float32 and 8 <= len(polygon) <= 400
        # Inside, or within the annotations' own uncertainty (3 % of the box diagonal) of the edge.
        slack = 0.03 * float(np.hypot(*(annotated.box[2:] - annotated.box[:2])))
        for joint in annotated.joints.values():
            assert cv2.pointPolygonTest(polygon, tuple(map(float, joint)), True) >= -slack
        others = {j: outline for j, outline, _ in outlines.others}
        assert set(others) == set(range(len(record.persons))) - {own}
        neighbour = next(i for i in indices if i != own)
        other_annotated = BUS.persons[indices.index(neighbour)]
        for joint in other_annotated.joints.values():
            assert cv2.pointPolygonTest(polygon, tuple(map(float, joint)), True) < -slack
        # The outline follows the body: head to feet, shoulder to shoulder, within the grown box.
        box = record.persons[own].box
        x0, y0, x1, y1 = expand(box, SEGMENT_MARGIN)
        assert np.all((polygon[:, 0, 0] >= x0) & (polygon[:, 0, 0] <= x1) & (polygon[:, 0, 1] >= y0) & (polygon[:, 0, 1] <= y1))
        assert np.ptp(polygon[:, 0, 1]) > 0.85 * (box[3] - box[1]) and np.ptp(polygon[:, 0, 0]) > 0.5 * (box[2] - box[0])
