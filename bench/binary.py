#!/usr/bin/env python3
"""Build the single-file binary with PyInstaller and run ``check`` with it (too slow for CI).

1. ``packaging/build-binary.sh`` into a temp dir (about a minute), size and build time.
2. ``roomprobe check --room 127.0.0.1 --only interfaces,controller-port --format json`` with the
   binary on this machine: the JSON must validate against the schema, both probes must report.
3. ``roomprobe report`` of that JSON in markdown and html with the binary (package data, jsonschema).
4. If the network lab is available (root, ip netns): the binary runs ``check`` in a controller
   namespace against a room namespace listening on 9090, with ARP (scapy inside the binary):
   it must pass with ``subnet`` ARP answered and ``controller-port`` open.

    python bench/binary.py [--keep DIR] [--no-lab]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROOMPROBE_CONFIG": os.devnull, "NO_COLOR": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, **kw)  # type: ignore[arg-type]


def validate(text: str) -> dict:
    import jsonschema

    from roomprobe.report.build import load_schema

    data = json.loads(text)
    jsonschema.validate(data, load_schema())
    return data


def lab_check(binary: Path) -> dict:
    """The binary inside a lab namespace: controller-side check of a healthy room."""
    from lab import Lab, lab_unavailable_reason

    reason = lab_unavailable_reason()
    if reason:
        return {"skipped": reason}
    with Lab() as lab:
        room = lab.add_host("room", "lan", 20)
        ctrl = lab.add_host("ctrl", "lan", 30)
        room.listen(9090, comm="ZoomRooms")
        t0 = time.monotonic()
        out = ctrl.run([str(binary), "check", "--room", room.addr, "--format", "json"], check=False,
                       env={**os.environ, "ROOMPROBE_CONFIG": str(lab.config_path)})
        seconds = time.monotonic() - t0
    rep = validate(out.stdout)
    probes = {p["id"]: p for p in rep["probes"]}
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert probes["controller-port"]["evidence"]["state"] == "open", probes["controller-port"]
    arp = probes["subnet"]["evidence"]["arp"]
    assert arp["status"] == "done" and arp["answered"], arp
    return {"rc": out.returncode, "seconds": round(seconds, 2), "arp_rtt_ms": arp.get("rtt_ms")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="build into DIR and keep the binary")
    ap.add_argument("--no-lab", action="store_true", help="skip the lab run")
    args = ap.parse_args()
    out_dir = args.keep or Path(tempfile.mkdtemp(prefix="roomprobe-bin."))
    try:
        t0 = time.monotonic()
        build = subprocess.run([str(REPO / "packaging" / "build-binary.sh"), str(out_dir)],
                               capture_output=True, text=True, timeout=900,
                               env={**os.environ, "PYTHON": sys.executable})
        build_s = time.monotonic() - t0
        if build.returncode != 0:
            print(build.stdout[-3000:], build.stderr[-3000:], sep="\n")
            return 1
        binary = out_dir / "roomprobe"
        results: dict[str, object] = {"build_s": round(build_s, 1),
                                      "size_mb": round(binary.stat().st_size / 1e6, 1)}

        t0 = time.monotonic()
        out = run([str(binary), "check", "--room", "127.0.0.1", "--only", "interfaces,controller-port",
                   "--format", "json"])
        results["check_s"] = round(time.monotonic() - t0, 2)
        rep = validate(out.stdout)
        assert out.returncode in (0, 1, 2), (out.returncode, out.stderr)
        assert [p["id"] for p in rep["probes"]] == ["interfaces", "controller-port"], rep["probes"]
        assert all(p["status"] != "error" for p in rep["probes"]), rep["probes"]
        results["check_rc"] = out.returncode

        saved = out_dir / "report.json"
        saved.write_text(out.stdout)
        for fmt in ("markdown", "html"):
            rendered = run([str(binary), "report", str(saved), "--format", fmt])
            assert rendered.returncode == 0 and "controller-port" in rendered.stdout, rendered.stderr
        bad = run([str(binary), "report", "/etc/hostname"])
        assert bad.returncode == 3 and "is not a roomprobe report" in bad.stderr, bad
        t0 = time.monotonic()
        run([str(binary), "--version"])
        results["version_s"] = round(time.monotonic() - t0, 2)

        if not args.no_lab:
            results["lab"] = lab_check(binary)
        print(json.dumps(results, indent=2))
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
