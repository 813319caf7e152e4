"""LR-ASD's published state dicts (``pretrain_AVA.model``, ``finetuning_TalkSet.model``; keys ``model.*``,
``lossAV.*``, ``lossV.*``) -> ``LrAsdModel``: the name map. Reading, checking and writing: ``published.py``.
"""

from __future__ import annotations

import re

from asd_se.models.published import Family, block_index, prefix_renamer

# A block's convolutions and norms (visual s/t, audio m/t; 1 = kernel 5, 2 = kernel 3) -> the chain's steps.
STEPS = {"s_1": 0, "m_1": 0, "s_2": 1, "m_2": 1, "t_1": 2, "t_2": 3}
NORMS = {"s_norm_1": 0, "m_norm_1": 0, "s_norm_2": 1, "m_norm_2": 1, "t_norm_1": 2, "t_norm_2": 3}
PREFIXES = (("model.visualEncoder.", "visual.layers."), ("model.audioEncoder.", "audio.layers."),
            ("model.fusion.attention.", "fusion.mix."), ("model.fusion.bn.", "fusion.bn."),
            ("model.detector.gru_forward.", "backend.forward_gru."),
            ("model.detector.gru_backward.", "backend.backward_gru."),
            ("model.detector.attention.attention.", "backend.gate.mix."),
            ("model.detector.attention.bn.", "backend.gate.bn."),
            ("lossAV.FC.", "head."), ("lossV.FC.", "visual_head."))
BLOCK_KEY = re.compile(r"^block(\d)\.([a-z]_(?:norm_)?\d)\.(.+)$")


def block_part(rest: str) -> str | None:
    """``block2.t_norm_1.weight`` -> ``2.2.bn.weight`` (None for what no block has)."""
    match = BLOCK_KEY.match(rest)
    if match is None or match[2] not in {**STEPS, **NORMS}:
        return None
    block, part, tail = match.groups()
    step, kind = (STEPS[part], "conv") if part in STEPS else (NORMS[part], "bn")
    return f"{block_index(block)}.{step}.{kind}.{tail}"


LRASD = Family("LR-ASD", "lrasd", "LR-ASD (Liao et al., IJCV 2025), https://github.com/Junhua-Liao/LR-ASD",
               prefix_renamer(PREFIXES, block_part))
