#!/usr/bin/env python3
"""Build a release for this OS: binaries, the installer, an SBOM and checksums, in one folder.

The public workflow (.github/workflows/ci.yml) calls exactly this on its Windows and macOS runners;
the tests call it on Linux with ``--stand-in`` (a fake one-folder payload instead of PyInstaller,
and wixl instead of WiX 3), so the MSI's tables, the SBOM and the checksums are checked here.

    python packaging/build_release.py OUTDIR [--stand-in] [--installer msi|pkg|none]

Steps:
1. the version from its one place (``roomprobe/__init__.py``); on a tag build the tag must match;
2. PyInstaller: the one-file binary (a technician's USB stick) and the one-folder build (the
   installers' payload), via packaging/build-binary.sh;
3. signing of the executables when a certificate is configured (skipped, and said so, when not);
4. the installer: MSI on Windows (WiX 3, or wixl where WiX 3 is absent), pkg on macOS;
5. a CycloneDX SBOM of the Python environment that was frozen;
6. SHA256SUMS for every artifact.

Signing configuration (environment; the workflow maps its secrets here):
    ROOMPROBE_SIGN_PFX, ROOMPROBE_SIGN_PASSWORD     Windows: signtool with this .pfx
    ROOMPROBE_CODESIGN_IDENTITY                     macOS: "Developer ID Application: ..."
    ROOMPROBE_INSTALLER_IDENTITY                    macOS: "Developer ID Installer: ..."
    ROOMPROBE_NOTARY_PROFILE                        macOS: a notarytool keychain profile
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UPGRADE_CODE = "6E0C1B5A-8E55-4B8B-9A2B-1D1C3F3F2A10"  # never changes: MajorUpgrade finds older installs by it
# Public MSI properties: secure so they reach the elevated install (see packaging/windows/roomprobe.wxs).
MSI_PUBLIC = ("CONTROLLER", "INTERVAL", "CONFIGFILE", "WEBHOOKFILE", "KEEPHISTORY")


class BuildError(Exception):
    """One line for the person running the build."""


def version() -> str:
    """``__version__`` from roomprobe/__init__.py; a tag build (v1.2.3) must carry the same."""
    text = (REPO / "roomprobe" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if not m:
        raise BuildError("roomprobe/__init__.py has no __version__ line")
    ver = m.group(1)
    if os.environ.get("GITHUB_REF_TYPE") == "tag":
        tag = os.environ.get("GITHUB_REF_NAME", "").removeprefix("v")
        if tag != ver:
            raise BuildError(f"tag v{tag} does not match roomprobe.__version__ {ver}: bump the version "
                             "in roomprobe/__init__.py, or tag the right commit")
    return ver


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    done = subprocess.run(cmd, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise BuildError(f"{Path(cmd[0]).name} failed (exit {done.returncode})")


def freeze(out: Path, python: str) -> Path:
    """PyInstaller one-file + one-folder builds; returns the one-folder payload."""
    env = {**os.environ, "PYTHON": python, "ROOMPROBE_LAYOUT": "both"}
    run(["bash", str(REPO / "packaging" / "build-binary.sh"), str(out)], env=env)
    return out / "onedir" / "roomprobe"


def stand_in(out: Path) -> Path:
    """A fake one-folder payload (tests): the layout PyInstaller makes, with tiny files."""
    root = out / "onedir" / "roomprobe"
    for rel in ("roomprobe.exe", "roomprobe-w.exe", "_internal/python311.dll",
                "_internal/roomprobe/report/schema/report-v1.json", "_internal/dukpy/jsmodules/a b.js"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"stand-in {rel}\n".encode())
    return root


def sign_windows(files: list[Path]) -> bool:
    pfx, password = os.environ.get("ROOMPROBE_SIGN_PFX"), os.environ.get("ROOMPROBE_SIGN_PASSWORD", "")
    if not pfx:
        print("signing skipped: no ROOMPROBE_SIGN_PFX (unsigned build)")
        return False
    for f in files:
        run(["signtool", "sign", "/fd", "SHA256", "/tr", "http://timestamp.digicert.com", "/td", "SHA256",
             "/f", pfx, "/p", password, str(f)])
    return True


def sign_macos(files: list[Path]) -> bool:
    identity = os.environ.get("ROOMPROBE_CODESIGN_IDENTITY")
    if not identity:
        print("signing skipped: no ROOMPROBE_CODESIGN_IDENTITY (unsigned build)")
        return False
    # Notarisation wants every Mach-O inside signed (libraries first, the executables last).
    inner = list(dict.fromkeys(p for d in sorted({f.parent for f in files}) for p in sorted(d.rglob("*"))
                               if p.is_file() and p not in files and _is_macho(p)))
    for f in [*inner, *files]:
        run(["codesign", "--force", "--timestamp", "--options", "runtime", "--sign", identity, str(f)])
    return True


MACHO_MAGIC = {b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe",
               b"\xca\xfe\xba\xbe"}


def _is_macho(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in MACHO_MAGIC


def build_msi(payload: Path, out: Path, ver: str) -> Path:
    """The MSI from packaging/windows: WiX 3 where installed (the Windows runner), else wixl."""
    wxs_dir = REPO / "packaging" / "windows"
    harvested = out / "payload.wxs"
    sys.path.insert(0, str(wxs_dir))
    from harvest import harvest

    harvested.write_text(harvest(payload), encoding="utf-8")
    msi = out / f"roomprobe-{ver}-x64.msi"
    if shutil.which("candle") and shutil.which("light"):
        objs = out / "wixobj"
        run(["candle", "-nologo", "-arch", "x64", f"-dVersion={ver}", f"-dPayloadDir={payload}",
             "-out", f"{objs}{os.sep}",
             str(wxs_dir / "roomprobe.wxs"), str(harvested)])
        run(["light", "-nologo", "-sval", "-out", str(msi), str(objs / "roomprobe.wixobj"),
             str(objs / "payload.wixobj")])
    elif shutil.which("wixl"):
        run(["wixl", "-a", "x64", "-D", f"Version={ver}", "-D", f"PayloadDir={payload.name}", "-o", str(msi),
             str(wxs_dir / "roomprobe.wxs"), str(harvested)], cwd=payload.parent, stderr=subprocess.DEVNULL)
        # wixl ignores Secure="yes": write the list WiX 3 would have written.
        secure = ";".join((*MSI_PUBLIC, "WIX_DOWNGRADE_DETECTED", "WIX_UPGRADE_DETECTED"))
        run(["msibuild", str(msi), "-q", f"UPDATE `Property` SET `Value` = '{secure}' "
             "WHERE `Property` = 'SecureCustomProperties'"])
    else:
        raise BuildError("no WiX 3 (candle, light) and no wixl: install WiX 3 (Windows) or msitools/wixl")
    harvested.unlink()
    return msi


def build_pkg(payload: Path, out: Path, ver: str) -> Path:
    """The macOS pkg (pkgbuild + productbuild, macOS only) via packaging/macos/build-pkg.sh."""
    pkg = out / f"roomprobe-{ver}.pkg"
    run(["bash", str(REPO / "packaging" / "macos" / "build-pkg.sh"), str(payload), ver, str(pkg)])
    return pkg


def tarball(payload: Path, out: Path, ver: str) -> Path:
    """Linux: the one-folder build as a tar.gz (unpack to /opt/roomprobe)."""
    path = out / f"roomprobe-{ver}-linux-{platform.machine().lower()}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(payload, arcname="roomprobe")
    return path


def sbom(out: Path, python: str, ver: str) -> Path:
    """CycloneDX JSON of the environment ``python`` froze (every package PyInstaller could ship)."""
    path = out / f"roomprobe-{ver}.cdx.json"
    cdx = [sys.executable, "-m", "cyclonedx_py"]
    run([*cdx, "environment", "--pyproject", str(REPO / "pyproject.toml"), "--output-format", "JSON",
         "--output-file", str(path), python])
    # The version is dynamic in pyproject.toml (one place: roomprobe/__init__.py), which cyclonedx
    # cannot evaluate: name it here, so the SBOM says which roomprobe it describes.
    bom = json.loads(path.read_text(encoding="utf-8"))
    bom["metadata"]["component"]["version"] = ver
    path.write_text(json.dumps(bom, indent=2) + "\n", encoding="utf-8")
    return path


def build_venv(out: Path) -> str:
    """A clean venv holding roomprobe, its runtime dependencies and PyInstaller, and nothing else:
    what is frozen, and so what the SBOM lists (no test tools, no system site-packages)."""
    venv = out / "build-venv"
    run([sys.executable, "-m", "venv", "--clear", str(venv)])
    python = str(venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))
    run([python, "-m", "pip", "install", "-q", str(REPO), "pyinstaller>=6"])
    return python


def checksums(out: Path, artifacts: list[Path]) -> Path:
    """SHA256SUMS in the format ``sha256sum -c`` reads (two spaces, file name)."""
    lines = []
    for a in sorted(artifacts):
        digest = hashlib.sha256(a.read_bytes()).hexdigest()
        lines.append(f"{digest}  {a.name}\n")
    path = out / "SHA256SUMS"
    path.write_text("".join(lines), encoding="ascii")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="output folder (created)")
    ap.add_argument("--stand-in", action="store_true", help="fake payload instead of PyInstaller (tests)")
    ap.add_argument("--installer", choices=("msi", "pkg", "tar", "none"), default=None,
                    help="default: msi on Windows, pkg on macOS, tar elsewhere")
    ap.add_argument("--python", default=None,
                    help="the Python whose environment is frozen [default: a clean build venv; with "
                         "--stand-in, this Python]")
    args = ap.parse_args(argv)
    try:
        ver = version()
        out = args.out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        python = args.python or (sys.executable if args.stand_in else build_venv(out))
        payload = stand_in(out) if args.stand_in else freeze(out, python)
        exes = [p for p in (out / "roomprobe.exe", out / "roomprobe", payload / "roomprobe.exe",
                            payload / "roomprobe-w.exe", payload / "roomprobe") if p.is_file()]
        if not args.stand_in:
            (sign_windows if sys.platform == "win32" else sign_macos if sys.platform == "darwin"
             else lambda _f: False)(exes)
        kind = args.installer or {"win32": "msi", "darwin": "pkg"}.get(sys.platform, "tar")
        artifacts = [p for p in (out / "roomprobe.exe", out / "roomprobe") if p.is_file()]
        if kind == "msi":
            msi = build_msi(payload, out, ver)
            if not args.stand_in and sys.platform == "win32":
                sign_windows([msi])
            artifacts.append(msi)
        elif kind == "pkg":
            artifacts.append(build_pkg(payload, out, ver))
        elif kind == "tar":
            artifacts.append(tarball(payload, out, ver))
        artifacts.append(sbom(out, python, ver))
        checksums(out, artifacts)
        for a in artifacts:
            print(f"artifact: {a.name} ({a.stat().st_size} bytes)")
        return 0
    except BuildError as exc:
        print(f"build_release: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
