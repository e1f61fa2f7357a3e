"""The docs site builds with `mkdocs build --strict` (a broken link, a missing page or a page left out of the
navigation fails), its generated pages say what their sources say, and the README's links lead to pages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_docs_site_builds_strictly_with_the_generated_pages(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(site)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for page in ("getting-started", "plugins", "explainers", "pretrained", "cli", "benchmarks", "plugin-package"):
        assert (site / page / "index.html").is_file(), page
    assert (site / "tutorial.ipynb").is_file()  # offered for download beside the pages
    cli = (site / "cli" / "index.html").read_text()
    from ecgzoo.cli import COMMANDS

    for command in COMMANDS:  # every sub-command's --help, taken from its parser
        assert f"usage: ecgzoo {command}" in cli, command
    assert "--explainer EXPLAINER" in cli and "--preset" in cli
    package = (site / "plugin-package" / "index.html").read_text()
    assert "[project.entry-points.ecgzoo]" in package and "class ExampleNet" in package


def test_a_broken_link_fails_the_strict_build(tmp_path):
    """The check the test above relies on: strict mode turns a link to a missing page into a failure."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# x\n\n[gone](missing.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "missing.md" in done.stderr


def test_the_readme_is_a_landing_page_whose_links_lead_to_files():
    readme = (REPO / "README.md").read_text()
    links = [target for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", readme) if "://" not in target]
    assert sum(t.startswith("docs/") and t.endswith(".md") for t in links) >= 8  # a table of contents into the pages
    missing = [t for t in links if not (REPO / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
    assert len(readme.splitlines()) < 150  # a landing page; the pages hold the text
