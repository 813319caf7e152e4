"""The core layer: what every other part of asd-se shares and that imports nothing above it — devices, the
AVA vocabulary (labels, the join key, annotation and prediction CSVs), boxes, media I/O, THE face crop, the
25 fps sampling grid, atomic files, worker pools and progress."""
