"""Finding plugins and creating what they provide.

Three sources feed one pluggy PluginManager, and every plugin goes through the same
hooks (`ecgzoo.core.hookspecs`):

1. `registry.toml` of the reference plugins (package data of `ecgzoo_plugins`, i.e. `plugins/`
   in the source tree, read with `importlib.resources` so every install layout finds it: source
   checkout, wheel, `--user`, pipx, a zipped app): modules to load, plus names, aliases, default
   configs and variants. `$ECGZOO_REGISTRY` names another file. A registry that cannot be read is
   a broken entry that `ecgzoo list` shows and every failed lookup mentions: never silent;
2. the Python entry-point group `ecgzoo` (third-party packages);
3. `register_plugin(obj)` from code (notebooks, tests).

A plugin that fails to import or whose hook raises is recorded as broken and shown
by `ecgzoo list`; it never stops the other plugins from loading.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import importlib.metadata
import importlib.resources
import os
import tomllib
import traceback
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import pluggy

from ecgzoo.core import hookspecs
from ecgzoo.core.config import describe_fields, validate_config
from ecgzoo.core.plugin_spec import PluginSpec

ENTRY_POINT_GROUP = "ecgzoo"
#: the package that ships the reference plugins and their registry.toml
REFERENCE_PACKAGE = "ecgzoo_plugins"
KINDS = tuple(hookspecs.KIND_HOOKS)


class PluginError(LookupError):
    """A plugin cannot be found, is broken, or two plugins claim one name."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """A usable plugin: its spec (defaults from registry.toml already merged) and where it came from."""

    kind: str
    spec: PluginSpec
    source: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def summary(self) -> str:
        return self.spec.summary


@dataclasses.dataclass(frozen=True)
class BrokenPlugin:
    """A plugin source that could not be used, and why."""

    source: str
    error: str
    kind: str = ""
    name: str = ""


def default_registry_file() -> Path | Traversable:
    """`$ECGZOO_REGISTRY`, else `registry.toml` inside the installed reference-plugin package."""
    env = os.environ.get("ECGZOO_REGISTRY")
    if env:
        return Path(env)
    return importlib.resources.files(REFERENCE_PACKAGE) / "registry.toml"


def _short_error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


@dataclasses.dataclass
class _Collection:
    """The entries being gathered by `Registry._collect`, with the names claimed so far."""

    entries: dict[str, dict[str, Entry]] = dataclasses.field(default_factory=lambda: {k: {} for k in KINDS})
    aliases: dict[str, dict[str, str]] = dataclasses.field(default_factory=lambda: {k: {} for k in KINDS})
    conflicts: dict[tuple[str, str], list[str]] = dataclasses.field(default_factory=dict)
    broken: list[BrokenPlugin] = dataclasses.field(default_factory=list)

    def claim(self, kind: str, name: str, source: str) -> bool:
        """True when `name` is free; otherwise record the conflict (the name then belongs to nobody)."""
        other = self.entries[kind].get(name)
        other_src = other.source if other else None
        if other_src is None and name in self.aliases[kind]:
            other_src = self.entries[kind][self.aliases[kind][name]].source
        if other_src is None and (kind, name) in self.conflicts:
            self.conflicts[(kind, name)].append(source)
            return False
        if other_src is not None:
            self.conflicts[(kind, name)] = [other_src, source]
            self.entries[kind].pop(name, None)
            return False
        return True

    def add_hook_specs(self, kind: str, hook_name: str, hook: Any, source: str) -> None:
        """The PluginSpecs one hook implementation returns; a hook that raises is a broken entry."""
        try:
            specs = list(hook() or [])
            bad = [s for s in specs if not isinstance(s, PluginSpec)]
            if bad:
                raise TypeError(f"{hook_name}() must return PluginSpec objects, got {bad[0]!r}")
        except Exception as exc:  # noqa: BLE001
            self.broken.append(BrokenPlugin(source, f"{hook_name}(): {_short_error(exc)}", kind))
            return
        for spec in specs:
            if self.claim(kind, spec.name, source):
                self.entries[kind][spec.name] = Entry(kind, spec, source)

    def apply_overlay(self, kind: str, name: str, overlay: dict[str, Any]) -> None:
        """A registry.toml table: new summary/aliases/defaults for `name`, or a variant when it has `base`."""
        where = f"registry.toml [{kind}.{name}]"
        extra = set(overlay) - {"base", "summary", "aliases", "defaults"}
        if extra:
            self.broken.append(BrokenPlugin(where, f"unknown keys {sorted(extra)}", kind, name))
            return
        base_name = overlay.get("base", name)
        base = self.entries[kind].get(base_name)
        if base is None:
            self.broken.append(BrokenPlugin(where, f"no {kind} plugin named {base_name!r} is loaded", kind, name))
            return
        variant = "base" in overlay
        spec = dataclasses.replace(
            base.spec,
            name=name,
            summary=overlay.get("summary", base.spec.summary),
            aliases=tuple(overlay.get("aliases", () if variant else base.spec.aliases)),
            defaults={**base.spec.defaults, **overlay.get("defaults", {})},
        )
        if variant and not self.claim(kind, name, where):
            return
        self.entries[kind][name] = Entry(kind, spec, where if variant else base.source)

    def validate_and_alias(self) -> None:
        """Drop entries whose defaults do not validate; register aliases; conflicts become broken entries."""
        for kind in KINDS:
            for entry in list(self.entries[kind].values()):
                try:
                    validate_config(entry.spec.config, entry.spec.defaults, f"{kind} plugin {entry.name!r}")
                except Exception as exc:  # noqa: BLE001 - bad defaults make that one plugin broken
                    self.broken.append(BrokenPlugin(entry.source, str(exc), kind, entry.name))
                    self.entries[kind].pop(entry.name)
                    continue
                for alias in entry.spec.aliases:
                    if alias in self.entries[kind] or alias in self.aliases[kind]:
                        first = self.entries[kind][self.aliases[kind].get(alias, alias)].source
                        self.conflicts[(kind, alias)] = [first, entry.source]
                    else:
                        self.aliases[kind][alias] = entry.name
        for (kind, name), sources in self.conflicts.items():
            self.broken.append(BrokenPlugin(" and ".join(sources), f"both claim the {kind} name {name!r}", kind, name))


class Registry:
    """All plugins of one process. `ecgzoo.list_plugins`, `create_model` etc. use a shared one."""

    def __init__(self, registry_file: Path | Traversable | None | bool = True, entry_points: bool = True):
        """`registry_file`: True for the reference plugins' registry, a path, or None/False for none."""
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._registry_file = registry_file if registry_file is not False else None
        self._use_entry_points = entry_points
        self._sources: dict[str, str] = {}  # pluggy plugin name -> human-readable source
        self._load_broken: list[BrokenPlugin] = []
        self._overlays: dict[str, dict[str, dict[str, Any]]] = {}
        self._presets: dict[str, dict[str, Any]] = {}
        self._entries: dict[str, dict[str, Entry]] | None = None
        self._aliases: dict[str, dict[str, str]] = {}
        self._conflicts: dict[tuple[str, str], list[str]] = {}
        self._broken: list[BrokenPlugin] = []
        self._sources_loaded = False

    # -- sources --------------------------------------------------------------------------

    def _load_sources(self) -> None:
        if self._sources_loaded:
            return
        self._sources_loaded = True
        if self._registry_file is True:
            try:
                self._registry_file = default_registry_file()
            except ImportError as exc:
                self._load_broken.append(BrokenPlugin(
                    "registry.toml", f"the reference plugins' package {REFERENCE_PACKAGE!r} is not importable ({exc}); "
                    "reinstall ecgzoo, or set $ECGZOO_REGISTRY to a registry file"))
                self._registry_file = None
        if self._registry_file is not None:
            self._load_registry_file(self._registry_file)
        if self._use_entry_points:
            self._load_entry_points()

    def _load_registry_file(self, path: Path | Traversable) -> None:
        where = f"registry.toml ({path})"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            self._load_broken.append(BrokenPlugin(where, f"the plugin registry cannot be read ({_short_error(exc)}): no "
                                                         "reference plugin is available; reinstall ecgzoo or fix $ECGZOO_REGISTRY"))
            return
        except tomllib.TOMLDecodeError as exc:
            self._load_broken.append(BrokenPlugin(where, _short_error(exc)))
            return
        for i, item in enumerate(data.get("plugin", [])):
            module = item.get("module") if isinstance(item, dict) else None
            if not isinstance(module, str):
                self._load_broken.append(BrokenPlugin(where, f"[[plugin]] #{i + 1} needs module = \"dotted.name\""))
                continue
            source = f"registry.toml: {module}"
            try:
                obj = importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - any import failure makes the plugin broken, not fatal
                self._load_broken.append(BrokenPlugin(source, _short_error(exc)))
                continue
            self._register(obj, module, source)
        for kind in KINDS:
            table = data.get(kind, {})
            if not isinstance(table, dict):
                self._load_broken.append(BrokenPlugin(where, f"[{kind}] must be a table of names"))
                continue
            for name, overlay in table.items():
                self._overlays.setdefault(kind, {})[name] = dict(overlay)
        presets = data.get("preset", {})
        if isinstance(presets, dict) and all(isinstance(v, dict) for v in presets.values()):
            self._presets.update({name: dict(table) for name, table in presets.items()})
        else:
            self._load_broken.append(BrokenPlugin(where, "[preset.NAME] must be tables of run options"))
        unknown = set(data) - set(KINDS) - {"plugin", "preset"}
        if unknown:
            self._load_broken.append(
                BrokenPlugin(where, f"unknown tables {sorted(unknown)}; expected [[plugin]], [preset.NAME] or {list(KINDS)}")
            )

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            dist_name = f" from {dist.metadata['Name']} {dist.version}" if dist is not None else ""
            source = f"entry point {ep.name} = {ep.value}{dist_name}"
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001
                self._load_broken.append(BrokenPlugin(source, _short_error(exc)))
                continue
            self._register(obj, f"ep:{ep.name}", source)

    def _register(self, obj: object, name: str, source: str) -> str:
        if self.pm.get_plugin(name) is not None:
            if self.pm.get_plugin(name) is obj:
                return name
            raise PluginError(f"a plugin is already registered as {name!r} ({self._sources.get(name)})")
        try:
            self.pm.register(obj, name=name)
            self.pm.check_pending()  # a misspelt hook name is an error, not a silently ignored function
        except Exception as exc:  # noqa: BLE001 - e.g. a hook with a misspelt name or wrong arguments
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            self._load_broken.append(BrokenPlugin(source, _short_error(exc)))
            return name
        self._sources[name] = source
        self._entries = None
        return name

    def register(self, plugin: object, name: str | None = None) -> str:
        """Add a plugin (module, class or object with hook implementations) from code."""
        self._load_sources()
        name = name or getattr(plugin, "__name__", None) or f"code:{id(plugin)}"
        return self._register(plugin, name, f"code: {name}")

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._sources.pop(name, None)
        self._entries = None

    def pretrained(self) -> list[Any]:
        """Every manifest the plugins' `ecgzoo_pretrained` hooks return; a failing hook is recorded as broken."""
        from ecgzoo.core.manifest import PretrainedError, PretrainedManifest, read_manifest

        self._load_sources()
        found: list[PretrainedManifest] = []
        for impl in self.pm.hook.ecgzoo_pretrained.get_hookimpls():
            source = self._sources.get(impl.plugin_name, impl.plugin_name)
            try:
                items = impl.function() or []
                found += [m if isinstance(m, PretrainedManifest) else read_manifest(m) for m in items]
            except (PretrainedError, Exception) as exc:  # noqa: BLE001 - one bad plugin must not hide the others
                self._load_broken.append(BrokenPlugin(source, f"ecgzoo_pretrained: {_short_error(exc)}"))
                self._entries = None
        return found

    # -- collecting the specs -------------------------------------------------------------

    def _collect(self) -> dict[str, dict[str, Entry]]:
        """Every usable entry by kind: hook specs, then registry.toml overlays and variants, then
        config validation and aliases; conflicts and failures become broken entries."""
        self._load_sources()
        if self._entries is not None:
            return self._entries
        found = _Collection(broken=list(self._load_broken))
        for kind, hook_name in hookspecs.KIND_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                found.add_hook_specs(kind, hook_name, impl.function, self._sources.get(impl.plugin_name, impl.plugin_name))
        for kind, table in self._overlays.items():
            for name, overlay in table.items():
                found.apply_overlay(kind, name, overlay)
        found.validate_and_alias()
        self._entries, self._aliases, self._conflicts, self._broken = found.entries, found.aliases, found.conflicts, found.broken
        return found.entries

    # -- queries --------------------------------------------------------------------------

    def entries(self, kind: str | None = None, pattern: str = "*") -> list[Entry]:
        """Usable plugins of one kind (or all), names matching a shell-style pattern, sorted."""
        if kind is not None and kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        collected = self._collect()
        kinds = [kind] if kind else list(KINDS)
        return [
            e
            for k in kinds
            for _, e in sorted(collected[k].items())
            if fnmatch.fnmatch(e.name, pattern) or any(fnmatch.fnmatch(a, pattern) for a in e.spec.aliases)
        ]

    def presets(self) -> dict[str, dict[str, Any]]:
        """The run presets registry.toml declares: name -> run options (with per-plugin `model`/`dataset` tables)."""
        self._load_sources()
        return {name: dict(table) for name, table in self._presets.items()}

    def broken(self) -> list[BrokenPlugin]:
        self._collect()
        return list(self._broken)

    def resolve(self, name: str, kind: str | None = None) -> Entry:
        """The entry called `name` (or one of its aliases), with errors that say what exists."""
        collected = self._collect()
        kinds = [kind] if kind else list(KINDS)
        if kind is not None and kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        found = []
        for k in kinds:
            if (k, name) in self._conflicts:
                raise PluginError(
                    f"{k} name {name!r} is claimed by more than one plugin: {' and '.join(self._conflicts[(k, name)])}"
                )
            real = self._aliases[k].get(name, name)
            if real in collected[k]:
                found.append(collected[k][real])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise PluginError(
                f"{name!r} names plugins of several kinds ({', '.join(e.kind for e in found)}); say which kind"
            )
        for b in self._broken:
            if b.name == name and (kind is None or b.kind == kind):
                raise PluginError(f"{b.kind or 'plugin'} {name!r} is broken: {b.error} [{b.source}]")
        what = f"{kind} plugin" if kind else "plugin"
        names = sorted({n for k in kinds for n in [*collected[k], *self._aliases[k]]})
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        broken = [b for b in self._broken if kind is None or b.kind in ("", kind)]
        note = f" ({len(broken)} broken plugin source(s): run `ecgzoo list` to see why.)" if broken else ""
        raise UnknownPluginError(f"no {what} named {name!r}.{hint} Available: {', '.join(names) or '(none)'}.{note}")

    def make_config(self, entry: Entry, overrides: Mapping[str, Any] | None = None) -> Any:
        """The validated config of a plugin: its class defaults < spec defaults < `overrides`."""
        values = {**entry.spec.defaults, **dict(overrides or {})}
        return validate_config(entry.spec.config, values, f"{entry.kind} plugin {entry.name!r}")

    def create(self, kind: str, name: str, **options: Any) -> Any:
        """Instantiate plugin `name` of `kind` with validated options."""
        entry = self.resolve(name, kind)
        config = self.make_config(entry, options)
        obj = entry.spec.factory(config)
        for attr, value in (("plugin_name", entry.name), ("config", config)):
            if getattr(obj, attr, None) is None:
                try:
                    setattr(obj, attr, value)
                except (AttributeError, TypeError):
                    pass
        return obj

    def info(self, name: str, kind: str | None = None) -> dict[str, Any]:
        """Everything `ecgzoo info` prints: source, summary, options with defaults and docs, facts."""
        entry = self.resolve(name, kind)
        facts: dict[str, Any] = {}
        if entry.spec.facts is not None:
            try:
                facts = dict(entry.spec.facts(self.make_config(entry)))
            except Exception as exc:  # noqa: BLE001 - facts are informative; show why they are missing
                facts = {"error": _short_error(exc)}
        return {
            "name": entry.name,
            "kind": entry.kind,
            "source": entry.source,
            "summary": entry.summary,
            "aliases": list(entry.spec.aliases),
            "options": describe_fields(entry.spec.config, entry.spec.defaults),
            "schema": entry.spec.config.model_json_schema(),
            "facts": facts,
        }


class UnknownPluginError(PluginError):
    """No plugin of that name (nor alias) is installed or registered in this process."""


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def reset_registry() -> None:
    """Forget every loaded plugin; the next call rescans registry.toml and entry points."""
    global _default
    _default = None
