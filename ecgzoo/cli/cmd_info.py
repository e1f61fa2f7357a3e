"""`ecgzoo info NAME`: a plugin's source, summary, options (type, default, doc) and facts."""

from __future__ import annotations

import argparse
import json

from ecgzoo._infra.jsonio import dumps
from ecgzoo.core.registry import KINDS, get_registry

HELP = "show a plugin's options with defaults and docs (its config schema) and facts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="plugin name or alias")
    p.add_argument("--kind", choices=KINDS, help="needed only when two kinds share the name")
    p.add_argument("--json", action="store_true", help="print the JSON schema and facts for machines")


def _fmt(value: object) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def main(args: argparse.Namespace) -> int:
    info = get_registry().info(args.name, args.kind)
    if info["kind"] == "model":
        from ecgzoo.models.pretrained import list_pretrained

        info["pretrained"] = [n.split(":", 1)[1] for n in list_pretrained(f"{info['name']}:*")]
    if args.json:
        print(dumps(info, indent=2))
        return 0
    print(f"{info['name']} ({info['kind']})  {info['summary']}")
    print(f"source: {info['source']}")
    if info["aliases"]:
        print(f"aliases: {', '.join(info['aliases'])}")
    if info.get("pretrained"):
        tags = ", ".join(info["pretrained"])
        print(f"pretrained: {tags}  (create_model({info['name']!r}, pretrained=TAG); ecgzoo predict {info['name']}:TAG ...)")
    print("\noptions:")
    if not info["options"]:
        print("  (none)")
    width = max([len(o["name"]) for o in info["options"]] + [4])
    for o in info["options"]:
        print(f"  {o['name']:<{width}}  {o['type']} = {_fmt(o['default'])}")
        if o["doc"]:
            print(f"  {'':<{width}}    {o['doc']}")
    if info["facts"]:
        print("\nfacts:")
        fw = max(len(k) for k in info["facts"])
        for k, v in info["facts"].items():
            print(f"  {k:<{fw}}  {v}")
    return 0
