"""mkdocs hooks of the ecgzoo docs site (mkdocs.yml `hooks:`), run by `mkdocs build` (and by tests/test_docs.py).

Pages that are generated rather than written, so they never drift from their source:

* `cli.md`: the marker `<!-- cli-reference -->` is replaced by every sub-command's `--help`, taken
  from the argparse parsers `ecgzoo.cli.build_parser` builds (the same text `ecgzoo COMMAND --help` prints).
* `benchmarks.md` and `architecture.md`: BENCHMARKS.md and ARCHITECTURE.md of the repository, as they are.
* `plugin-package.md`: examples/plugin-package, its README and every file of the package in full.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugin-package"
CLI_MARKER = "<!-- cli-reference -->"
#: the package files shown, in this order, with the language of their code block
EXAMPLE_FILES = (("pyproject.toml", "toml"), ("ecgzoo_example_plugin/__init__.py", "python"),
                 ("tests/test_examplenet.py", "python"))


def cli_reference() -> str:
    """Markdown: one section per sub-command with its --help text (wrapped at 100 columns)."""
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width: fix it, so the page does not depend on it
    from ecgzoo.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["```text", parser.format_help().rstrip(), "```"]
    for name, command in sub.choices.items():
        parts += [f"\n## ecgzoo {name}\n", "```text", command.format_help().rstrip(), "```"]
    return "\n".join(parts)


def plugin_package_page() -> str:
    """Markdown: the example package's README (its links made to point into this site) and its files."""
    readme = (EXAMPLE / "README.md").read_text(encoding="utf-8")
    readme = readme.replace("](../../README.md)", "](index.md)")
    parts = [readme.rstrip(), "\n## The files\n"]
    for rel, lang in EXAMPLE_FILES:
        parts += [f"`examples/plugin-package/{rel}`\n", f"```{lang}", (EXAMPLE / rel).read_text(encoding="utf-8").rstrip(), "```\n"]
    return "\n".join(parts)


def on_files(files: Files, config) -> Files:
    for page, source in (("benchmarks.md", "BENCHMARKS.md"), ("architecture.md", "ARCHITECTURE.md")):
        files.append(File.generated(config, page, content=(REPO / source).read_text(encoding="utf-8")))
    files.append(File.generated(config, "plugin-package.md", content=plugin_package_page()))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARKER in markdown:
        return markdown.replace(CLI_MARKER, cli_reference())
    return markdown
