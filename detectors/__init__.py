"""Person, face-mesh, pose and outline detectors behind one protocol, fully offline.

Importing this package turns ultralytics' network features off for the whole process before
ultralytics can be imported through it (``detectors.yolo_person`` is the project's only import
of ultralytics): ``YOLO_OFFLINE=1`` stops the DNS probe ultralytics runs when first imported
(``ultralytics.utils.ONLINE``) and ``YOLO_AUTOINSTALL=false`` stops it pip-installing extras.
"""

import os

os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "false"
