"""Downloading data files for dataset plugins (PhysioNet 2017, PTB-XL): checksums, resume, atomic.

Each file is fetched into `<name>.part` (continuing with an HTTP Range request after an
interruption), verified against PhysioNet's SHA-256, and only then renamed to its final name;
the zip is unpacked into a temporary folder that is renamed into place in one step.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """The data could not be fetched or did not verify; the message says what and where."""


def reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to the URL's host opens within `timeout` seconds (fail fast offline)."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def attempt_download(enabled: bool, url: str, fetch: Callable[[], Path]) -> tuple[Path | None, str]:
    """(what `fetch` returned, "") or (None, why not): allowed? reachable? did it work? (shared by the datasets)."""
    if not enabled:
        return None, "automatic download is off (download = false)"
    if not reachable(url):
        return None, f"{url} is not reachable (offline?)"
    try:
        return fetch(), ""
    except DownloadError as exc:
        return None, f"download failed: {exc}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_sha256sums(text: str) -> dict[str, str]:
    """{relative path: hex digest} from `sha256sum` output lines (`<hex>  <path>`, `*` binary marker allowed)."""
    sums = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and len(parts[0]) == 64:
            sums[parts[1].lstrip("*").strip()] = parts[0].lower()
    return sums


def fetch_text(url: str, timeout: float = 30.0) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # IncompleteRead: cut short
        raise DownloadError(f"cannot fetch {url}: {exc!r}") from None


def download_file(url: str, dest: Path, sha256: str | None = None, progress: bool = True, timeout: float = 30.0) -> Path:
    """Fetch `url` to `dest`, resuming `dest.part` if present, verifying `sha256`, renaming at the end."""
    from tqdm import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file is already complete
            response = None
        else:
            raise DownloadError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"cannot fetch {url}: {exc}") from None
    if response is not None:
        with response:
            resumed = response.status == 206
            if not resumed:
                have = 0  # the server ignored the Range header: start over
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            with open(part, "ab" if resumed else "wb") as out, tqdm(
                total=total, initial=have, unit="B", unit_scale=True, desc=dest.name, disable=not progress
            ) as bar:
                received = 0
                try:
                    for block in iter(lambda: response.read(CHUNK), b""):
                        out.write(block)
                        received += len(block)
                        bar.update(len(block))
                except (OSError, http.client.HTTPException) as exc:
                    raise DownloadError(f"download of {url} interrupted ({exc}); run again to resume from {part}") from None
                if length is not None and received < int(length):  # the connection closed early
                    raise DownloadError(f"download of {url} interrupted after {have + received} of {total} bytes; "
                                        f"run again to resume from {part}")
    if sha256 is not None:
        got = sha256_of(part)
        if got != sha256:
            part.unlink()
            raise DownloadError(f"{dest.name}: SHA-256 {got} does not match the published {sha256}; the partial file was removed")
    os.replace(part, dest)
    return dest


def extract_zip_atomically(archive: Path, dest: Path) -> Path:
    """Unpack `archive` so that `dest` appears complete or not at all."""
    if dest.exists():
        return dest
    tmp = dest.with_name(f".{dest.name}.unpacking-{uuid.uuid4().hex[:8]}")
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(tmp)
        inner = [p for p in tmp.iterdir() if not p.name.startswith("__MACOSX")]
        source = inner[0] if len(inner) == 1 and inner[0].is_dir() else tmp
        try:
            os.rename(source, dest)
        except OSError:
            if not dest.exists():
                raise
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive} is not a valid zip file ({exc}); delete it and try again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch_listed_files(base_url: str, root: Path, wanted: Callable[[str], bool], progress: bool = True,
                       timeout: float = 30.0, workers: int = 8) -> list[Path]:
    """Download every file of `base_url`'s SHA256SUMS.txt whose path `wanted` accepts, verified, under `root`.

    For data sets shipped as many small files (PTB-XL: 21,799 records x 2 files per rate). Files
    already present with the right checksum are kept, so an interrupted download continues where
    it stopped; `workers` files are fetched at a time.
    """
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    if not base_url.endswith("/"):
        base_url += "/"
    sums = parse_sha256sums(fetch_text(base_url + "SHA256SUMS.txt", timeout))
    names = sorted(n for n in sums if wanted(n))
    if not names:
        raise DownloadError(f"{base_url}SHA256SUMS.txt lists none of the files needed; PhysioNet's layout changed")
    root = Path(root)
    with ThreadPoolExecutor(max(1, workers)) as pool, tqdm(total=len(names), unit="file", disable=not progress) as bar:
        def one(name: str) -> Path:
            path = download_file(base_url + name, root / name, sums[name], progress=False, timeout=timeout)
            bar.update(1)
            return path
        return list(pool.map(one, names))
