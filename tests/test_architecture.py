"""The house's shape: imports run one way (docs/architecture.md).

commands -> probes -> core/net; diagnose and report read results only; fleet builds on report.
A lower room importing a higher one fails here, so the shape cannot drift unnoticed. The checker
is a plain walk over the source with ``ast`` (no new dependency), and it is itself tested on a
small tree that breaks the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Which rooms each room may import (itself included). "probes" is the installed roomprobe.probes.
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "net": {"core", "net"},
    "probes": {"core", "net", "probes"},
    "diagnose": {"core", "diagnose"},
    "report": {"core", "diagnose", "report"},
    "fleet": {"core", "net", "diagnose", "report", "fleet"},
    "commands": {"core", "net", "probes", "diagnose", "report", "fleet", "commands"},
    # cli.py finds its commands by name (import_module), so it imports core only.
    "cli": {"core", "cli"},
    "top": {"core", "cli", "top"},
}


def room_of(module: str) -> str | None:
    """roomprobe.net.osnet.parsers -> net; roomprobe.cli -> cli; non-roomprobe -> None."""
    parts = module.split(".")
    if parts[0] != "roomprobe":
        return None
    if len(parts) == 1 or parts[1] in ("__init__", "__main__", "__version__"):
        return "top"
    return parts[1]


def source_modules(root: Path) -> dict[str, Path]:
    """Every module of the installed layout: roomprobe/** and probes/** (as roomprobe.probes)."""
    out: dict[str, Path] = {}
    for base, prefix in ((root / "roomprobe", ("roomprobe",)), (root / "probes", ("roomprobe", "probes"))):
        for path in base.rglob("*.py"):
            parts = prefix + path.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imported(module: str, path: Path) -> set[str]:
    """Every roomprobe module ``module`` imports, at any depth of the file (lazy imports count)."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # "from roomprobe import report" names a room, not an attribute of the top package.
            if target == "roomprobe":
                found.update(f"roomprobe.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("roomprobe")}


def violations(root: Path) -> list[str]:
    bad = []
    for module, path in sorted(source_modules(root).items()):
        room = room_of(module)
        allowed = ALLOWED.get(room or "", set())
        for target in sorted(imported(module, path)):
            target_room = room_of(target)
            if target_room is None or target in ("roomprobe", "roomprobe.__version__"):
                continue  # the top package holds only the version: everyone may read it
            if target_room not in allowed:
                bad.append(f"{path.relative_to(root)}: {room} imports {target} ({target_room})")
    return bad


def test_every_room_is_known():
    rooms = {room_of(m) for m in source_modules(REPO)}
    assert rooms <= set(ALLOWED), rooms - set(ALLOWED)
    # The rooms the architecture page names exist as packages with a docstring saying what may import.
    for room in ("core", "net", "diagnose", "report", "fleet", "commands"):
        init = REPO / "roomprobe" / room / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text("utf-8")))
        assert doc and "May import" in doc, room
    assert "May import" in (ast.get_docstring(ast.parse((REPO / "probes" / "__init__.py").read_text())) or "")


def test_imports_run_one_way():
    assert violations(REPO) == []


def test_checker_catches_a_lower_room_importing_a_higher_one(tmp_path):
    for rel, text in {
        "roomprobe/__init__.py": "",
        "roomprobe/core/__init__.py": "",
        "roomprobe/core/probe.py": "def f():\n    from roomprobe.report import build\n",
        "roomprobe/net/__init__.py": "",
        "roomprobe/net/wire.py": "from ..core import probe\nfrom roomprobe import fleet\n",
        "roomprobe/report/__init__.py": "",
        "roomprobe/report/build.py": "import roomprobe.probes.dns\n",
        "probes/__init__.py": "",
        "probes/dns.py": "from roomprobe.diagnose import mapping\n",
    }.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    found = violations(tmp_path)
    assert any("core imports roomprobe.report " in v for v in found), found
    assert any("net imports roomprobe.fleet " in v for v in found), found
    assert any("report imports roomprobe.probes.dns " in v for v in found), found
    assert any("probes imports roomprobe.diagnose " in v for v in found), found
    assert not any("net imports roomprobe.core" in v for v in found), found  # relative, allowed
    assert len(found) == 4, found
