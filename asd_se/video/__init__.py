"""The parts render and live share: faces found and tracked (``tracks.py``), the explainer chosen for a model
and where its maps peak (``explainers.py``), the overlay (``draw.py``) and the face record both write (``record.py``)."""
