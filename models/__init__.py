"""Casewise's models layer: the classifier, its training, calibration, artifacts and registry.

Nothing here imports Qt; long work takes a progress callback and a cancel flag.
"""
