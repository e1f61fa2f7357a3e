"""Trainer `trainer-beat-mask`: the reference trainer, every option as it is, plus in-distribution beat
masking of the training records (`ecgzoo_plugins.augment.BeatMask`; validation never sees it).

A plugin of its own so that the reference trainer's module stays as it is while it is reworked; the
three options below are what folding it into that trainer's `augment_*` options would add.
"""

from __future__ import annotations

import pydantic

import ecgzoo
from ecgzoo_plugins.augment import BeatMask, BeatMaskedDataset
from ecgzoo_plugins.trainer import ReferenceTrainer, TrainerConfig


class BeatMaskTrainerConfig(TrainerConfig):
    augment_beat_mask: float = pydantic.Field(
        0.0, ge=0, le=1, description="probability that a training record has whole beats replaced by ROAD noisy linear imputation "
        "(the fill faithfulness is measured with), drawn anew every epoch (0: off)"
    )
    augment_beat_mask_beats: int = pydantic.Field(4, ge=1, description="beats replaced in a masked record (one always stays)")
    augment_beat_mask_fs: float | None = pydantic.Field(
        None, gt=0, description="sampling rate (Hz) of the training input after preprocessing: the R-peak detector and the fill's "
        "50-ms smoothing need it (required when augment_beat_mask > 0)"
    )


class BeatMaskTrainer(ReferenceTrainer):
    """`ReferenceTrainer` whose training split is read through `BeatMaskedDataset`."""

    def fit(self, model: ecgzoo.EcgModel, train, val, task: ecgzoo.TrainingTask, ctx: ecgzoo.FitContext) -> ecgzoo.FitResult:
        """`ecgzoo.Trainer.fit`; the masks are drawn from torch's global generator in this process, which the
        saved training state holds, so a resumed run masks as an uninterrupted one."""
        cfg = self.config
        if cfg.augment_beat_mask > 0:
            if cfg.augment_beat_mask_fs is None:
                raise ValueError("trainer option augment_beat_mask needs augment_beat_mask_fs: the training input's sampling rate "
                                 "in Hz after preprocessing (300 for physionet2017's default pipeline)")
            if cfg.num_workers:
                raise ValueError(f"trainer option augment_beat_mask needs num_workers=0 (got {cfg.num_workers}): masks drawn in "
                                 "DataLoader workers would not resume as they were")
            train = BeatMaskedDataset(train, BeatMask(cfg.augment_beat_mask, cfg.augment_beat_mask_beats, cfg.augment_beat_mask_fs))
        return super().fit(model, train, val, task, ctx)


@ecgzoo.hookimpl
def ecgzoo_trainers() -> list[ecgzoo.PluginSpec]:
    return [
        ecgzoo.PluginSpec(
            "trainer-beat-mask", BeatMaskTrainer, BeatMaskTrainerConfig,
            summary="the reference trainer plus beat masking: whole training beats replaced by ROAD noisy linear imputation",
        )
    ]
