"""A model by plugin name, from scratch or from shipped pretrained weights (`NAME:TAG`), fine-tuned to
other classes or leads where asked: `ecgzoo.create_model` and `ecgzoo.list_pretrained`."""

from __future__ import annotations

from typing import Any

from ecgzoo.core.create import create
from ecgzoo.core.model import EcgModel


def create_model(name: str, pretrained: str | None = None, **config: Any) -> EcgModel:
    """A model by plugin name; `pretrained="TAG"` (or a name `MODEL:TAG`) loads shipped weights, verified, in eval mode.

    With pretrained weights the architecture options are the weights' own. `num_classes` and/or `in_leads`
    fine-tune: every tensor whose shape fits is loaded, the head (other classes) and the stem's first
    convolution (other leads) are initialised afresh, and `model.init_summary` lists what was loaded and
    replaced (`ecgzoo.models.finetune`). Other options are an error.
    """
    model_name, _, tag = name.partition(":")
    tag = pretrained or tag
    if not tag:
        return create("model", name, **config)
    from ecgzoo.core.manifest import PretrainedError
    from ecgzoo.models.pretrained import load_pretrained_model

    counts = {k: config.pop(k) for k in ("num_classes", "in_leads") if k in config}
    if config:
        raise PretrainedError(f"create_model({name!r}, pretrained={tag!r}) takes the weights' own options; got {sorted(config)}")
    if counts:
        from ecgzoo.models.finetune import adapt_pretrained

        return adapt_pretrained(model_name, tag, **counts)
    return load_pretrained_model(model_name, tag)


def list_pretrained(pattern: str = "*") -> list[str]:
    """`MODEL:TAG` names of the installed pretrained weights matching a shell-style pattern."""
    from ecgzoo.models.pretrained import list_pretrained as _list

    return _list(pattern)
