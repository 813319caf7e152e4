"""THE audio front end: 16 kHz mono waveform -> 13 MFCC at 100 frames/s, 4 per video frame at 25 fps.

MFCC rather than log-mel: 13 decorrelated coefficients are what TalkNet and Light-ASD feed their audio
encoders, they carry the envelope and formant structure that lip sync needs, and they keep the audio encoder
small. A plain torch module (``torch.stft`` + a mel filterbank + a DCT matrix), so train, evaluate and render
compute identical features on CPU and GPU, and it moves with the model (``model.to(device)``).

One computation, two styles (``config.FRONTENDS``), chosen by ``model.frontend`` and recorded in every checkpoint:
- ``asd-se``: 25 ms Hann windows centred on their 10 ms slot, librosa's 40-band Slaney mel filterbank
  (20 Hz-8 kHz), log(energy + 1e-6), DCT-II.
- ``lightasd``: python_speech_features' ``mfcc`` as Light-ASD computes it — the waveform on the int16 scale,
  pre-emphasis 0.97, 25 ms rectangular windows starting every 10 ms, |FFT_512|² / 512, its 26 triangular mel
  filters (0-8 kHz, FFT bins floored), natural log (exact zeros become float eps), DCT-II, lifter 22, and c0
  replaced by the log frame energy. In float64, as the reference is.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np
import torch
from scipy.fft import dct
from torch import nn

from asd_se.core.media import AUDIO_RATE

HOP = 160  # 10 ms -> 100 frames/s
WINDOW = 400  # 25 ms
N_FFT = 512
N_MFCC = 13
MFCC_PER_FRAME = 4  # 100 MFCC frames/s over 25 video frames/s


@dataclass(frozen=True)
class MfccStyle:
    """The parameters that tell the two styles apart (see the module docstring)."""

    window_start: int  # where a frame's window starts relative to 160·k (its 10 ms slot starts at 160·k)
    hann: bool
    scale: float  # the waveform is multiplied by this first (python_speech_features reads int16 samples)
    preemphasis: float
    power_divisor: float
    lifter: int
    energy_c0: bool
    double: bool  # compute in float64
    context: tuple[int, int]  # samples before / after 640·T the features read (asd-se: zeros, as trained)


STYLES = {"asd-se": MfccStyle(window_start=-(WINDOW - HOP) // 2, hann=True, scale=1.0, preemphasis=0.0,
                              power_divisor=1.0, lifter=0, energy_c0=False, double=False, context=(0, 0)),
          "lightasd": MfccStyle(window_start=0, hann=False, scale=32768.0, preemphasis=0.97, power_divisor=N_FFT,
                                lifter=22, energy_c0=True, double=True, context=(1, WINDOW - HOP))}


def psf_filterbank(filters: int = 26, n_fft: int = N_FFT, rate: int = AUDIO_RATE) -> np.ndarray:
    """``(filters, n_fft // 2 + 1)`` triangular mel filters as python_speech_features defines them (0 Hz to
    rate / 2, HTK mel scale, edges at floored FFT bins)."""
    high_mel = 2595.0 * np.log10(1.0 + (rate / 2) / 700.0)
    hz = 700.0 * (10.0 ** (np.linspace(0.0, high_mel, filters + 2) / 2595.0) - 1.0)
    edges = np.floor((n_fft + 1) * hz / rate).astype(int)
    bank = np.zeros((filters, n_fft // 2 + 1))
    for j in range(filters):
        low, centre, high = edges[j], edges[j + 1], edges[j + 2]
        bank[j, low:centre] = (np.arange(low, centre) - low) / (centre - low)
        bank[j, centre:high] = (high - np.arange(centre, high)) / (high - centre)
    return bank


class MfccFrontEnd(nn.Module):
    """Waveform -> MFCC ``(B, 13, 4·T)`` for T video frames. The waveform is ``(B, 640·T)``, or with the style's
    ``context`` ``(before, after)``: ``(B, before + 640·T + after)`` — the sample before the clip (its
    pre-emphasis) and the samples its last window reaches past the end. Given without, the context is zeros."""

    def __init__(self, style: str = "asd-se"):
        super().__init__()
        self.style = style
        params = self.params = STYLES[style]
        dtype = np.float64 if params.double else np.float32
        if style == "asd-se":
            bank = librosa.filters.mel(sr=AUDIO_RATE, n_fft=N_FFT, n_mels=40, fmin=20.0, fmax=AUDIO_RATE / 2)
        else:
            bank = psf_filterbank()
        basis = dct(np.eye(len(bank)), type=2, norm="ortho", axis=0)[:N_MFCC]
        if params.lifter:
            basis = basis * (1 + params.lifter / 2 * np.sin(np.pi * np.arange(N_MFCC) / params.lifter))[:, None]
        self.register_buffer("mel", torch.from_numpy(bank.astype(dtype)), persistent=False)
        self.register_buffer("dct", torch.from_numpy(basis.astype(dtype)), persistent=False)
        torch_dtype = torch.float64 if params.double else torch.float32
        window = torch.hann_window(WINDOW, dtype=torch_dtype) if params.hann else torch.ones(WINDOW, dtype=torch_dtype)
        self.register_buffer("window", window, persistent=False)
        self.context = params.context
        # the waveform a clip's windows read past its frames (the sample before, for pre-emphasis), in samples
        overhang = (-params.window_start + (1 if params.preemphasis else 0), params.window_start + WINDOW - HOP)
        # video frames of it not given as context (so zeros in a clip): under one frame, either side
        self.reach = int(any(over > given for over, given in zip(overhang, self.context)))

    def forward(self, waveform: torch.Tensor, frames: int) -> torch.Tensor:
        params = self.params
        before, after = self.context
        span = HOP * MFCC_PER_FRAME * frames
        if waveform.shape[1] == span:
            waveform = nn.functional.pad(waveform, (before, after))
        elif waveform.shape[1] != before + span + after:
            raise ValueError(f"{waveform.shape[1]} audio samples for {frames} frames: expected {span}, or "
                             f"{before + span + after} with the front end's context")
        x = waveform.to(torch.float64 if params.double else torch.float32) * params.scale
        # pre-emphasis with the sample before the clip, as over the whole recording (zero before its start)
        x = x[:, before:] - params.preemphasis * x[:, before - 1:-1] if params.preemphasis else x[:, before:]
        count = MFCC_PER_FRAME * frames
        # torch.stft centres the WINDOW-long window in each N_FFT-long frame: shift so it starts at 160·k + start
        left = (N_FFT - WINDOW) // 2 - params.window_start
        needed = HOP * (count - 1) + N_FFT
        x = nn.functional.pad(x, (left, max(0, needed - left - x.shape[1])))[:, :needed]
        spec = torch.stft(x, N_FFT, hop_length=HOP, win_length=WINDOW, window=self.window, center=False,
                          return_complex=True)
        power = (spec.real ** 2 + spec.imag ** 2) / params.power_divisor  # (B, F, count)
        if params.energy_c0:
            tiny = torch.finfo(power.dtype).eps
            bands = torch.einsum("mf,bft->bmt", self.mel, power)
            cepstra = torch.einsum("cm,bmt->bct", self.dct, torch.log(torch.where(bands == 0, tiny, bands)))
            energy = power.sum(dim=1)
            cepstra[:, 0] = torch.log(torch.where(energy == 0, tiny, energy))
        else:
            cepstra = torch.einsum("cm,bmt->bct", self.dct,
                                   torch.log(torch.einsum("mf,bft->bmt", self.mel, power) + 1e-6))
        return cepstra.float()
