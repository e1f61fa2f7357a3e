"""The paper's data recipe (Goodfellow et al., MLHC 2018) as data the dataset plugins declare.

Not a plugin (no hooks): `physionet2017`, `synthetic` and `wfdb-folder` name these as their
`default_preprocessing` and `scored_classes`, so the core holds no preprocessing plugin names
and no class names.
"""

from __future__ import annotations

from typing import Any

#: FIR band-pass 3-45 Hz, R-peaks, amplitude / median R-peak amplitude, zero padding to 60 s
PAPER_PIPELINE: tuple[dict[str, Any], ...] = (
    {"name": "bandpass"},
    {"name": "rpeaks"},
    {"name": "rpeak-normalize"},
    {"name": "pad-crop"},
)

#: the PhysioNet/CinC 2017 challenge averages its F1 over these (the noisy class is classified, not scored)
CHALLENGE_CLASSES: tuple[str, ...] = ("N", "A", "O")
