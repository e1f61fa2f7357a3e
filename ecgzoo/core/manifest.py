"""What a plugin declares about pretrained weights: the manifest (`ecgzoo_pretrained` hook), and the input contract
of every model (weights, run folders, loaded runs).

The registry reads the manifests the plugins' hooks return (`Registry.pretrained`); loading,
verifying and downloading the weights they name is `ecgzoo.models.pretrained`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pydantic

from ecgzoo.core.leads import canonical_leads
from ecgzoo.core.plugin_spec import PluginConfig


class PretrainedError(ValueError):
    """Unknown pretrained name, a missing or damaged weights file, or an input that breaks the contract."""


class InputContract(PluginConfig):
    """What a recording must be for a model: rate, leads, units, preprocessing, window.

    The one shape of it: pretrained weights' manifests (`input`), a run folder's `run.json` (`input`,
    written by the runner) and a loaded run (`LoadedRun.input`) all hold this."""

    fs: float = pydantic.Field(gt=0, description="sampling rate in Hz the network was trained at (other rates are resampled)")
    leads: int = pydantic.Field(ge=1, description="number of leads the network takes")
    lead_names: list[str] = pydantic.Field(default_factory=list, description="what the leads are, in order")
    units: str = pydantic.Field("mV", description="signal units before preprocessing (e.g. mV)")
    window_seconds: float = pydantic.Field(gt=0, description="input length in seconds; longer recordings are classified window by window")
    pipeline: list[dict[str, Any]] = pydantic.Field(description="preprocessing steps applied to every recording, in order")
    input_fs: float | None = pydantic.Field(
        None, gt=0, description="rate of the recordings the preprocessing was built for (a run's data; a recording at another "
                                "rate is resampled to it first unless the pipeline resamples); None: `fs`")

    @property
    def samples(self) -> int:
        """The network's input length in samples (at `fs`)."""
        return round(self.window_seconds * self.fs)

    @property
    def recording_fs(self) -> float:
        """The rate recordings are brought to before the preprocessing: `input_fs`, else `fs`."""
        return self.fs if self.input_fs is None else self.input_fs

    @property
    def named_leads(self) -> tuple[str, ...] | None:
        """The model's leads by name (canonical), which predict and explain check and match a recording's leads
        against; None where the contract does not name every lead."""
        names = self.lead_names
        return canonical_leads(names) if names and len(names) == self.leads else None


class PretrainedManifest(PluginConfig):
    """One set of pretrained weights, as a plugin declares it (see `ecgzoo_pretrained` in hookspecs)."""

    model: str = pydantic.Field(description="model plugin name the weights are for")
    tag: str = pydantic.Field(pattern=r"^[A-Za-z0-9_.-]+$", description="what they were trained on, e.g. physionet2017")
    file: str | None = pydantic.Field(None, description="weights file name, beside the manifest inside the plugin's package")
    url: str | None = pydantic.Field(None, description="where to download the weights when they are not shipped")
    sha256: str = pydantic.Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the weights file")
    size: int = pydantic.Field(gt=0, description="size of the weights file in bytes")
    classes: list[str] = pydantic.Field(min_length=2, description="output classes, in the order of the logits")
    input: InputContract
    license_weights: str
    license_data: str
    data_attribution: str = ""
    training_command: str = pydantic.Field(description="the command that trained these weights")
    training: dict[str, Any] = pydantic.Field(default_factory=dict, description="wall time, machine, commit, epochs")
    metrics: dict[str, Any] = pydantic.Field(default_factory=dict, description="figures on the named splits, with intervals")
    splits_file: str | None = pydantic.Field(None, description="JSON file beside the manifest with the train/val/test record ids")
    folder: str | None = pydantic.Field(None, description="set by the loader: the folder the manifest was read from")

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> PretrainedManifest:
        if (self.file is None) == (self.url is None):
            raise ValueError(f"pretrained {self.model}:{self.tag}: give exactly one of 'file' (shipped) or 'url' (downloaded)")
        return self

    @property
    def name(self) -> str:
        return f"{self.model}:{self.tag}"


def read_manifest(path: str | os.PathLike[str]) -> PretrainedManifest:
    """A manifest from a JSON file (`*.manifest.json`); `file` and `splits_file` are relative to its folder."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PretrainedManifest(**data, folder=str(path.parent))
    except (OSError, ValueError, TypeError) as exc:
        raise PretrainedError(f"pretrained manifest {path}: {exc}") from None
