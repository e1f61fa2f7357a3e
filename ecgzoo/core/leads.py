"""Lead names: which electrode pair each row of a signal is, and the checks that keep them straight.

A 12-lead model fed leads in another order, or a 1-lead model fed lead V1 instead of the lead it
learnt, computes confident nonsense. So records carry lead names (`Record.lead_names`), a run
stores the names its model was trained on, and every place where a record meets a model calls
`check_leads`, whose error names both lists. Reordering or zero-filling happens only in the
`select-leads` preprocessor, where the user asks for it, and when a recording that names its
leads meets a multi-lead model that names its own (`ecgzoo predict`, `ecgzoo explain`): there the
rows are matched by name whatever their order (`lead_order`), and a missing lead is an error.

Names are matched after `canonical_lead_name` (case and the usual spellings of the augmented
limb leads: 'AVR', 'avr' -> 'aVR'), so headers of different databases compare equal.
"""

from __future__ import annotations

from collections.abc import Sequence

#: the standard 12 leads in the order of the clinical layout and of PTB-XL / CinC 2021 headers
STANDARD_12: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_CANONICAL = {name.upper(): name for name in STANDARD_12}


class LeadMismatchError(ValueError):
    """A record's leads are not the ones a model or step expects; the message names both lists."""


def canonical_lead_name(name: str) -> str:
    """'avr' / 'AVR' -> 'aVR', 'v1' -> 'V1', 'i' -> 'I'; other names are kept (stripped)."""
    name = str(name).strip()
    return _CANONICAL.get(name.upper(), name)


def canonical_leads(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(canonical_lead_name(n) for n in names)


def check_leads(expected: Sequence[str] | None, actual: Sequence[str] | None, where: str) -> None:
    """Raise LeadMismatchError unless both lists name the same leads in the same order.

    Either side unknown (None) is accepted: data without lead names (a bare .npy) can only be
    checked by count, which the caller does.
    """
    if expected is None or actual is None:
        return
    exp, act = canonical_leads(expected), canonical_leads(actual)
    if exp == act:
        return
    hint = "same leads in another order" if sorted(exp) == sorted(act) else "different leads"
    raise LeadMismatchError(
        f"{where}: leads {list(act)} do not match the expected {list(exp)} ({hint}); "
        f"add a 'select-leads' preprocessing step with leads = {list(exp)} to select and reorder them"
    )


def lead_order(expected: Sequence[str], actual: Sequence[str], where: str, wanted_by: str = "the model") -> list[int]:
    """The row of `actual` holding each lead of `expected`, matched by name whatever the order.

    Names compare after `canonical_lead_name` ('AVR' = 'aVR', 'v1' = 'V1'); leads of `actual` that
    `expected` does not name are left out. A lead of `expected` that `actual` lacks (a file with
    'MLII', which is no 12-lead name, has no lead II) or holds twice is a LeadMismatchError naming
    the lead and listing what `actual` has.
    """
    exp, act = canonical_leads(expected), canonical_leads(actual)
    missing = [n for n in exp if n not in act]
    if missing:
        foreign = [n for n in act if n not in STANDARD_12]
        kind = "not a standard 12-lead name" if len(foreign) == 1 else "not standard 12-lead names"
        aside = f" ({kind}: {', '.join(foreign)})" if foreign else ""
        raise LeadMismatchError(f"{where}: lead{'s' * (len(missing) > 1)} {', '.join(missing)} missing: the file has leads "
                                f"{list(actual)}{aside}; {wanted_by} takes {list(exp)}")
    twice = [n for n in exp if act.count(n) > 1]
    if twice:
        raise LeadMismatchError(f"{where}: lead {twice[0]} appears {act.count(twice[0])} times in the file's leads {list(actual)}; "
                                f"cannot tell which one {wanted_by} should get")
    return [act.index(n) for n in exp]
