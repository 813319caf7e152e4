"""Faces: the one crop function, the detector and the tracker."""
