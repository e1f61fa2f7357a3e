"""`select-leads`: keep the named leads, in the named order (and zero-fill absent ones only when asked).

The one place where the leads of a record are chosen or reordered: a 12-lead record for a model
trained on leads I and II, a CinC 2021 record whose header lists the leads in another order,
a 6-lead subset for a 12-lead model (`fill_missing = "zeros"`, recorded in
`record.meta["zero_filled_leads"]`). Names match after `ecgzoo.core.leads.canonical_lead_name`
('AVR' = 'aVR'). A record without lead names, or without a requested lead, is an error naming
both lists: nothing is reordered or filled silently.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pydantic

import ecgzoo
from ecgzoo.plugin_api import canonical_lead_name, canonical_leads


class SelectLeadsConfig(ecgzoo.PluginConfig):
    leads: list[str] = pydantic.Field(
        ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"], min_length=1,
        description="lead names to keep, in output order (default: the standard 12)",
    )
    fill_missing: Literal["error", "zeros"] = pydantic.Field(
        "error", description="a requested lead the record lacks: error (default), or a row of zeros (listed in meta)"
    )

    @pydantic.field_validator("leads")
    @classmethod
    def _distinct(cls, leads: list[str]) -> list[str]:
        names = [canonical_lead_name(n) for n in leads]
        if len(set(names)) != len(names):
            raise ValueError(f"lead names must be distinct, got {leads}")
        return names


class SelectLeads(ecgzoo.Preprocessor):
    """Rows of the signal picked by lead name."""

    def __init__(self, config: SelectLeadsConfig):
        self.config = config

    def __call__(self, record: ecgzoo.Record) -> ecgzoo.Record:
        wanted = list(self.config.leads)
        if record.lead_names is None:
            raise ecgzoo.RecordError(record.record_id, f"select-leads: the record has no lead names, cannot select {wanted}")
        have = list(canonical_leads(record.lead_names))
        missing = [n for n in wanted if n not in have]
        if missing and self.config.fill_missing == "error":
            raise ecgzoo.RecordError(
                record.record_id,
                f"select-leads: record has leads {list(record.lead_names)}, missing {missing} of the requested {wanted} "
                f"(set fill_missing = \"zeros\" to zero-fill them)",
            )
        out = np.zeros((len(wanted), record.samples), dtype=np.float32)
        for i, name in enumerate(wanted):
            if name in have:
                out[i] = record.signal[have.index(name)]
        meta = dict(record.meta)
        if missing:
            meta["zero_filled_leads"] = missing
        return record.replace(signal=out, lead_names=tuple(wanted), meta=meta)


@ecgzoo.hookimpl
def ecgzoo_preprocessors() -> list[ecgzoo.PluginSpec]:
    return [ecgzoo.PluginSpec("select-leads", SelectLeads, SelectLeadsConfig,
                              summary="keep/reorder leads by name; missing leads are errors unless zero-filling is asked for")]
