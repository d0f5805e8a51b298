#!/usr/bin/env python3
"""Harvest a PyInstaller one-folder build into a WiX fragment (``ComponentGroup Id="Payload"``).

Why not WiX's heat or msitools' wixl-heat: each exists on one side only (heat on the Windows
runner, wixl-heat on Linux), and the IDs must be the same on both so an upgrade built on either
replaces the same components. Here every ID and component GUID derives from the file's path
inside the folder (uuid5), so the same payload always harvests to the same fragment, and a
file that stays at its path keeps its component across versions (the Windows Installer rule).
Sources are ``$(var.PayloadDir)/<path>``: candle takes an absolute -dPayloadDir, wixl (which
refuses absolute sources) a relative one from the payload's parent folder.

    python packaging/windows/harvest.py DIST/roomprobe > payload.wxs
"""

from __future__ import annotations

import hashlib
import re
import sys
import uuid
from pathlib import Path
from xml.sax.saxutils import quoteattr

NAMESPACE = uuid.UUID("1f0d2a4e-5b1c-4c55-9a51-7e3f2f6f7b10")  # roomprobe's payload namespace
# Files the installer's custom actions name by FileKey: their IDs are fixed.
FIXED_IDS = {"roomprobe.exe": "roomprobe.exe", "roomprobe-w.exe": "roomprobe_w.exe"}
_BAD = re.compile(r"[^A-Za-z0-9_.]")


def _id(prefix: str, rel: str) -> str:
    """A valid, stable WiX identifier (<= 72 chars): readable stem + a hash of the full path."""
    digest = hashlib.sha1(rel.encode()).hexdigest()[:10]
    stem = _BAD.sub("_", rel)[-40:].lstrip(".")
    return f"{prefix}{digest}_{stem}"


def harvest(root: Path) -> str:
    """The fragment for every file below ``root`` (installed under INSTALLDIR)."""
    if not root.is_dir():
        raise SystemExit(f"harvest: {root} is not a folder; build the one-folder payload first")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not any(p.relative_to(root).as_posix() == "roomprobe.exe" for p in files):
        raise SystemExit(f"harvest: {root} has no roomprobe.exe at its top; is it the one-folder build?")
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">', "  <Fragment>"]
    by_dir: dict[str, list[Path]] = {}
    for p in files:
        by_dir.setdefault(p.relative_to(root).parent.as_posix(), []).append(p)
    all_dirs: set[str] = set()
    for d in by_dir:
        parts = [] if d == "." else d.split("/")
        all_dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    # Components nested in their Directory (the form both WiX 3 and wixl accept), then one group.
    out.append('    <DirectoryRef Id="INSTALLDIR">')
    out += _components(root, by_dir.get(".", []), 3)
    out += _dir_tree(root, sorted(all_dirs), by_dir, "", 3)
    out.append("    </DirectoryRef>")
    out.append('    <ComponentGroup Id="Payload">')
    out += [f'      <ComponentRef Id="{_id("c", p.relative_to(root).as_posix())}"/>' for p in files]
    out += ["    </ComponentGroup>", "  </Fragment>", "</Wix>", ""]
    return "\n".join(out)


def _components(root: Path, files: list[Path], depth: int) -> list[str]:
    pad = "  " * depth
    lines: list[str] = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        guid = str(uuid.uuid5(NAMESPACE, rel)).upper()
        lines.append(f'{pad}<Component Id="{_id("c", rel)}" Guid="{guid}" Win64="yes">')
        lines.append(f'{pad}  <File Id="{FIXED_IDS.get(rel, _id("f", rel))}" Name={quoteattr(p.name)} '
                     f'Source={quoteattr("$(var.PayloadDir)/" + rel)} KeyPath="yes"/>')
        lines.append(f"{pad}</Component>")
    return lines


def _dir_tree(root: Path, all_dirs: list[str], by_dir: dict[str, list[Path]], parent: str,
              depth: int) -> list[str]:
    lines: list[str] = []
    children = [d for d in all_dirs if (d.rsplit("/", 1)[0] if "/" in d else "") == parent]
    for d in children:
        pad = "  " * depth
        lines.append(f'{pad}<Directory Id="{_id("d", d)}" Name={quoteattr(d.rsplit("/", 1)[-1])}>')
        lines += _components(root, by_dir.get(d, []), depth + 1)
        lines += _dir_tree(root, all_dirs, by_dir, d, depth + 1)
        lines.append(f"{pad}</Directory>")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: harvest.py ONEDIR_BUILD > payload.wxs", file=sys.stderr)
        return 3
    sys.stdout.write(harvest(Path(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
