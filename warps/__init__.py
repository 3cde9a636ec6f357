"""Liquify engine: moving-least-squares warps, the operation catalog, chains and
self-augmentation transforms. Pure numpy/opencv/scipy: no I/O, no logging, no Ray."""
