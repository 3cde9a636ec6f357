"""Named groups of MediaPipe FaceMesh indices (478 points, ``refine_landmarks``).

Index sets marked "mediapipe" equal ``mp.solutions.face_mesh_connections``' sets,
flattened and sorted (a test checks them); the others were picked on real faces
(docs/operations.md). "Right" and "left" are the subject's: the subject's right eye
is on the image left of a frontal face.

:data:`FEATURE_GROUPS` partitions the features into disjoint named groups. Each op of
the catalog names the groups it may move (``OpSpec.moves``); every other group is held,
and its motion is the op's collateral (:mod:`warps.locality`).
"""

from __future__ import annotations

# --- mediapipe: FACEMESH_* sets, flattened and sorted ---------------------------------------
FACE_OVAL = (10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172,
             176, 234, 251, 284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389,
             397, 400, 454)  # fmt: skip
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_IRIS = (474, 475, 476, 477)
RIGHT_IRIS = (469, 470, 471, 472)
LEFT_EYEBROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_EYEBROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185,
        191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405,
        409, 415)  # fmt: skip
NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294,
        326, 327, 344, 440)  # fmt: skip

# --- Hand-picked -----------------------------------------------------------------------------
RIGHT_IRIS_CENTRE, LEFT_IRIS_CENTRE = 468, 473
RIGHT_EYE_ALL = RIGHT_EYE + RIGHT_IRIS + (RIGHT_IRIS_CENTRE,)
LEFT_EYE_ALL = LEFT_EYE + LEFT_IRIS + (LEFT_IRIS_CENTRE,)
#: Lower eyebrow rows (inner to outer).
RIGHT_BROW_LOWER, LEFT_BROW_LOWER = (55, 65, 52, 53, 46), (285, 295, 282, 283, 276)
#: Cheek under the eye, outer canthus side, medial side by the nose.
RIGHT_EYE_RING = RIGHT_BROW_LOWER + (143, 117, 118, 119, 120, 121, 128, 122, 193)
LEFT_EYE_RING = LEFT_BROW_LOWER + (372, 346, 347, 348, 349, 350, 357, 351, 417)
NOSE_RIDGE = (168, 6, 197, 195, 5)
RIGHT_NOSE_BRIDGE, LEFT_NOSE_BRIDGE = (196, 3, 51), (419, 248, 281)
RIGHT_ALA = (48, 49, 64, 98, 102, 115, 129, 219, 235, 240)
LEFT_ALA = (278, 279, 294, 327, 331, 344, 358, 439, 455, 460)
NOSE_TIP = (1, 2, 4, 19, 94)
UPPER_LIP_OUTER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
UPPER_LIP_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_LIP_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
LOWER_LIP_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
MOUTH_CORNERS = (61, 291, 78, 308)
#: Eye corners and lid midpoints.
EYES_HOLD = (33, 133, 159, 145, 263, 362, 386, 374)
RIGHT_CHEEK, LEFT_CHEEK = (50, 205, 207, 212, 214), (280, 425, 427, 432, 434)
RIGHT_CHEEKBONE, LEFT_CHEEKBONE = (234, 93, 127, 116, 123), (454, 323, 356, 345, 352)
RIGHT_TEMPLE, LEFT_TEMPLE = (21, 54, 162, 71, 139), (251, 284, 389, 301, 368)
RIGHT_JAW, LEFT_JAW = (58, 172, 136, 150), (288, 397, 365, 379)
CHIN = (152, 148, 176, 149, 377, 400, 378, 175, 171, 396, 199)
CHIN_SIDES = (148, 176, 149, 377, 400, 378, 171, 396)
FOREHEAD_TOP = (10, 109, 338, 67, 297, 103, 332)
FOREHEAD_MID = (151, 108, 337, 69, 299, 104, 333)
MIDLINE = (168, 6, 1, 2, 0, 17, 152)

#: The face's features as disjoint named groups (the face oval is split among forehead,
#: temples, cheekbones, jaw and chin). Public contract: QA and the build compute collateral
#: motion from it (warps.locality).
FEATURE_GROUPS: dict[str, tuple[int, ...]] = {
    "right_eye": RIGHT_EYE,
    "left_eye": LEFT_EYE,
    "right_iris": RIGHT_IRIS + (RIGHT_IRIS_CENTRE,),
    "left_iris": LEFT_IRIS + (LEFT_IRIS_CENTRE,),
    "right_brow": RIGHT_EYEBROW,
    "left_brow": LEFT_EYEBROW,
    "nose_bridge": NOSE_RIDGE + RIGHT_NOSE_BRIDGE + LEFT_NOSE_BRIDGE,
    "nose_tip": NOSE_TIP,
    "nose_alae": RIGHT_ALA + LEFT_ALA,
    "upper_lip": UPPER_LIP_OUTER + UPPER_LIP_INNER,
    "lower_lip": LOWER_LIP_OUTER + LOWER_LIP_INNER,
    "mouth_corners": MOUTH_CORNERS,
    "cheeks": (50, 205, 207, 280, 425, 427),
    "cheekbones": RIGHT_CHEEKBONE + LEFT_CHEEKBONE,
    "temples": RIGHT_TEMPLE + LEFT_TEMPLE,
    "forehead": FOREHEAD_TOP + FOREHEAD_MID,
    "jaw": RIGHT_JAW + LEFT_JAW + (132, 361),
    "chin": CHIN,
}
#: Shorthands for ``OpSpec.moves``.
EYES = ("right_eye", "left_eye", "right_iris", "left_iris")
BROWS = ("right_brow", "left_brow")
MOUTH = ("upper_lip", "lower_lip", "mouth_corners")
