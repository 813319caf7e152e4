"""THE audio front end: 16 kHz mono waveform -> 13 MFCC at 100 frames/s, 4 per video frame at 25 fps.

MFCC rather than log-mel: 13 decorrelated coefficients are what TalkNet and Light-ASD feed their audio
encoders, they carry the envelope and formant structure that lip sync needs, and they keep the audio encoder
small. A plain torch module (``torch.stft`` + librosa's mel filterbank + a DCT matrix), so train, evaluate and
render compute identical features on CPU and GPU, and it moves with the model (``model.to(device)``).
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
from scipy.fft import dct
from torch import nn

from asd_se.core.media import AUDIO_RATE

HOP = 160  # 10 ms -> 100 frames/s
WINDOW = 400  # 25 ms
N_FFT = 512
N_MELS = 40
N_MFCC = 13


class MfccFrontEnd(nn.Module):
    """Waveform ``(B, N)`` with N = 640·T -> MFCC ``(B, 13, 4·T)``; frames are centred on their 10 ms slot."""

    def __init__(self) -> None:
        super().__init__()
        mel = librosa.filters.mel(sr=AUDIO_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=20.0, fmax=AUDIO_RATE / 2)
        self.register_buffer("mel", torch.from_numpy(mel.astype(np.float32)), persistent=False)
        basis = dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)[:N_MFCC]
        self.register_buffer("dct", torch.from_numpy(basis.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(WINDOW), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        pad = (N_FFT - HOP) // 2  # torch.stft frames span n_fft samples: this gives exactly N / HOP frames
        padded = nn.functional.pad(waveform.float(), (pad, pad))
        spec = torch.stft(padded, N_FFT, hop_length=HOP, win_length=WINDOW, window=self.window, center=False,
                          return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2  # (B, F, frames)
        log_mel = torch.log(torch.einsum("mf,bft->bmt", self.mel, power) + 1e-6)
        return torch.einsum("cm,bmt->bct", self.dct, log_mel)
