"""Light-ASD's published state dicts (``pretrain_AVA_CVPR.model``, ``finetuning_TalkSet.model``; keys ``model.*``,
``lossAV.*``, ``lossV.*``) -> ``LightAsdModel``: the name map. Reading, checking and writing: ``published.py``.
"""

from __future__ import annotations

import re

from asd_se.models.published import Family, block_index, prefix_renamer

# Parts of a Light-ASD block -> parts of MultiScaleBlock (visual s/t and audio m/t: first/second convolution).
BLOCK_PARTS = {"s_3": "branches.0.first", "m_3": "branches.0.first", "t_3": "branches.0.second",
               "s_5": "branches.1.first", "m_5": "branches.1.first", "t_5": "branches.1.second", "last": "merge"}
PREFIXES = (("model.visualEncoder.", "visual.layers."), ("model.audioEncoder.", "audio.layers."),
            ("model.GRU.gru_forward.", "backend.forward_gru."), ("model.GRU.gru_backward.", "backend.backward_gru."),
            ("lossAV.FC.", "head."), ("lossV.FC.", "visual_head."))
BLOCK_KEY = re.compile(r"^block(\d)\.(bn_)?([a-z]+_\d|last)\.(.+)$")


def block_part(rest: str) -> str | None:
    """``block2.bn_s_3.weight`` -> ``2.branches.0.first_bn.weight`` (None for what no block has)."""
    match = BLOCK_KEY.match(rest)
    if match is None or match[3] not in BLOCK_PARTS:
        return None
    block, norm, part, tail = match.groups()
    return f"{block_index(block)}.{BLOCK_PARTS[part]}{'_bn' if norm else ''}.{tail}"


LIGHTASD = Family("Light-ASD", "lightasd", "Light-ASD (Liao et al., CVPR 2023), "
                  "https://github.com/Junhua-Liao/Light-ASD", prefix_renamer(PREFIXES, block_part))
