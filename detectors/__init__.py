"""Person, face-mesh and pose detectors behind one protocol, fully offline."""
