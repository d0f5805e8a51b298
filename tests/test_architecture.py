"""The house's shape: imports run one way (docs/architecture.md).

commands -> probes -> core/net; diagnose and report read results only; fleet builds on report.
A lower room importing a higher one fails here, so the shape cannot drift unnoticed. Inside a
room, modules sit in tiers (``LAYERS``): a building block never imports what is built on it.
Imports by name count too: ``importlib.import_module("roomprobe...")`` and ``__import__(...)``
with a string constant (or a name assigned one in the same function) are imports like any other.
The checker is a plain walk over the source with ``ast`` (no new dependency), and it is itself
tested on small trees that break each rule.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Which rooms each room may import (itself included). "probes" is the installed roomprobe.probes.
# Bottom up: core; net (bytes on the wire); host (what the OS says); proxy (which proxy a URL
# takes); peer (both halves of the roomprobe-to-roomprobe protocol); probes; diagnose and report
# read results only; fleet runs many checks; commands wire it all to the command line.
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "net": {"core", "net"},
    "host": {"core", "net", "host"},
    "proxy": {"core", "net", "host", "proxy"},
    "peer": {"core", "net", "host", "proxy", "peer"},
    "probes": {"core", "net", "host", "proxy", "peer", "probes"},
    "diagnose": {"core", "diagnose"},
    "report": {"core", "diagnose", "report"},
    "fleet": {"core", "net", "host", "proxy", "peer", "diagnose", "report", "fleet"},
    "commands": {"core", "net", "host", "proxy", "peer", "probes", "diagnose", "report", "fleet",
                 "commands"},
    # cli.py finds its commands by name (import_module), so it imports core only.
    "cli": {"core", "cli"},
    "top": {"core", "cli", "top"},
}

# The order inside each room, bottom tier first. The rule: a module may import a module of an
# earlier tier, or one of its own unit; modules side by side in one tier are independent of each
# other. A unit is one module, a sub-package with all its submodules ("osnet"), or names joined
# by "+" that knowingly import each other. A module not listed sits above every tier: it may
# import anything in its room and no listed module may import it (new modules start on top;
# list one when a lower module needs it).
LAYERS: dict[str, list[list[str]]] = {
    "core": [
        ["errors", "redact", "threads", "oscmd", "selfexec", "proxyurl", "output"],
        ["fsutil"],                       # atomic writes; bad paths are UsageErrors
        ["settings"],                     # typed settings, read through fsutil
        ["probe"],                        # the probe contract names each probe's Options
        ["targets", "registry", "runner"],
    ],
    "net": [
        # codecs, receive helpers, the trust store, published facts
        ["icmperr", "udprecv", "wire", "tlstrust", "zoomranges", "stun", "portfindings"],
        # what a handshake proves; the one TCP connect classifier
        ["tlsverdict", "tcpconnect"],
        # the one way through a proxy (CONNECT, SOCKS5), built on tcpconnect's error words
        ["tunnel"],
        # measurements built on them; traceroute picks its OS's trace_* module, each built on
        # traceroute's types
        ["httpsprobe", "tcpsweep", "traceroute+trace_linux+trace_icmp+trace_windows"],
    ],
    "host": [
        ["displays", "appconns", "evidence"],
        ["osnet"],  # osnet.winuser names the app's connections (appconns)
        ["dnsconf", "wifi+wlanapi"],  # wifi picks wlanapi on Windows; wlanapi reuses wifi's parsers
    ],
    "proxy": [["sources"], ["resolver"]],
    "peer": [
        ["port", "link", "tls", "mediastats", "mediawire"],
        ["speed", "servetls", "reflector"],
        ["mediaflow", "agent"],  # mediaflow reuses speed's token header for its session grant
        ["serve"],               # serve hosts the agent beside the speed endpoint
    ],
    # a probe never imports another probe; shared probe-side helpers go below them
    "probes": [
        ["_cloudpath", "_pathjudge"],
        ["interfaces", "subnet", "controller_port", "dns", "cloud", "proxy", "bandwidth",
         "quality", "wifi", "path"],
    ],
    "diagnose": [["catalog"], ["rules"], ["mapping"]],
    "report": [
        ["model"],                        # the report's types; everything else reads them
        ["build", "measures", "pathview"],
        ["ticket", "jsonout", "nagios"],  # ticket: loading a saved report, the evidence pack
        ["text"],                         # the text format appends the evidence pack for a ticket
        ["html", "markdown"],
    ],
    "fleet": [
        ["history", "metrics", "outbox", "webhook", "schedule", "sd", "webconfig", "history_out"],
        ["sweep", "deploy", "after_run", "exporter_modules"],
        ["sweep_out", "exporter_probe"],  # sweep_out: what the sweep's formats share
        ["sweep_text", "sweep_json", "sweep_csv", "sweep_html"],
        ["exporter"],
    ],
    "commands": [
        ["formats"],                      # the one registry of output formats
        ["check"],
        ["explain", "history", "probes", "report", "schedule", "serve", "sweep", "path", "exporter"],
    ],
}

_BY_NAME = {"import_module", "__import__"}


def room_of(module: str) -> str | None:
    """roomprobe.host.osnet.parsers -> host; roomprobe.cli -> cli; non-roomprobe -> None."""
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


def _constants(scope: ast.AST) -> dict[str, str]:
    """Names assigned a string constant anywhere in ``scope`` (``mod = "roomprobe.fleet"``)."""
    out: dict[str, str] = {}
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            out.update((t.id, node.value.value) for t in node.targets if isinstance(t, ast.Name))
    return out


def imported_by_name(tree: ast.AST) -> set[str]:
    """Modules named to ``import_module``/``__import__`` by a string constant, or by a name
    assigned a constant in the same function (or at module level). A name computed at run time
    (cli.py's table of commands, the probe registry) is not an import of a fixed module."""
    found: set[str] = set()
    for scope in ast.walk(tree):
        if not isinstance(scope, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        consts = _constants(scope)
        for node in ast.walk(scope):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            fn = node.func
            name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else ""
            if name not in _BY_NAME:
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in consts:
                found.add(consts[arg.id])
    return found


def imported(module: str, path: Path, modules: dict[str, Path] | None = None) -> set[str]:
    """Every roomprobe name ``module`` imports, at any depth of the file (lazy imports count);
    ``from X import y`` imports X.y when that is one of ``modules``, else X."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = imported_by_name(tree)
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
            submodules = {f"{target}.{a.name}" for a in node.names} & set(modules or ())
            found.update(submodules or {target})
            # "from roomprobe import report" names a room, not an attribute of the top package.
            if target == "roomprobe":
                found.update(f"roomprobe.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] == "roomprobe"}


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name lives in: roomprobe.proxy.sources.Source -> roomprobe.proxy.sources
    (None when only the top package matches: the name is then checked as written)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name if "." in name else None


def place(module: str) -> tuple[int, str]:
    """(tier, unit) of a module in its room's LAYERS; unlisted modules sit on top, alone."""
    room = room_of(module) or ""
    tiers = LAYERS.get(room, [])
    rel = module.split(".", 2)[2] if module.count(".") >= 2 else ""
    for i, tier in enumerate(tiers):
        for unit in tier:
            if any(rel == n or rel.startswith(n + ".") for n in unit.split("+")):
                return i, unit
    return len(tiers), module


def _order_problem(module: str, target: str) -> str | None:
    (tier, unit), (target_tier, target_unit) = place(module), place(target)
    if unit == target_unit or target == f"roomprobe.{room_of(module)}":
        return None
    tiers = LAYERS.get(room_of(module) or "", [])
    if tier == len(tiers):
        return None  # unlisted: on top of its room
    if target_tier == len(tiers):
        return f"imports {target}, which is not listed in LAYERS (list it below {module})"
    if target_tier >= tier:
        return f"(tier {tier}) imports {target} (tier {target_tier}): only earlier tiers"
    return None


def violations(root: Path) -> list[str]:
    bad = []
    modules = source_modules(root)
    for module, path in sorted(modules.items()):
        room = room_of(module)
        allowed = ALLOWED.get(room or "", set())
        for name in sorted(imported(module, path, modules)):
            target = _known(name, modules) or name
            if target in (module, "roomprobe", "roomprobe.__version__"):
                continue  # the top package holds only the version: everyone may read it
            target_room = room_of(target)
            if target_room not in allowed:
                bad.append(f"{path.relative_to(root)}: {room} imports {target} ({target_room})")
            elif target_room == room and target in modules and (problem := _order_problem(module, target)):
                bad.append(f"{path.relative_to(root)}: {module} {problem}")
    return sorted(set(bad))


def test_every_room_is_known():
    rooms = {room_of(m) for m in source_modules(REPO)}
    assert rooms <= set(ALLOWED), rooms - set(ALLOWED)
    # The rooms the architecture page names exist as packages with a docstring saying what may import.
    for room in ("core", "net", "host", "proxy", "peer", "diagnose", "report", "fleet", "commands"):
        init = REPO / "roomprobe" / room / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text("utf-8")))
        assert doc and "May import" in doc, room
    assert "May import" in (ast.get_docstring(ast.parse((REPO / "probes" / "__init__.py").read_text())) or "")


def test_every_layered_name_exists():
    """A name in LAYERS that matches no module is a typo that would leave a module unordered."""
    modules = source_modules(REPO)
    for room, tiers in LAYERS.items():
        for tier in tiers:
            for name in (n for unit in tier for n in unit.split("+")):
                assert f"roomprobe.{room}.{name}" in modules, (room, name)


def test_imports_run_one_way():
    assert violations(REPO) == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _only(found: list[str], *expected: str) -> None:
    """Each expected violation is reported, and nothing else."""
    for text in expected:
        assert any(text in v for v in found), (text, found)
    assert len(found) == len(expected), found


def test_checker_catches_a_lower_room_importing_a_higher_one(tmp_path):
    found = violations(_tree(tmp_path, {
        "roomprobe/__init__.py": "",
        "roomprobe/core/__init__.py": "",
        "roomprobe/core/probe.py": "def f():\n    from roomprobe.report import build\n",
        "roomprobe/net/__init__.py": "",
        "roomprobe/net/wire.py": "from ..core import probe\nfrom roomprobe import fleet\n",
        "roomprobe/report/__init__.py": "",
        "roomprobe/report/build.py": "import roomprobe.probes.dns\n",
        "probes/__init__.py": "",
        "probes/dns.py": "from roomprobe.diagnose import mapping\n",
    }))
    _only(found,
          "core imports roomprobe.report",
          "net imports roomprobe.fleet",
          "report imports roomprobe.probes.dns",
          "probes imports roomprobe.diagnose")
    assert not any("net imports roomprobe.core" in v for v in found), found  # relative, allowed


def test_checker_catches_imports_by_name(tmp_path):
    found = violations(_tree(tmp_path, {
        "roomprobe/__init__.py": "",
        "roomprobe/net/__init__.py": "",
        "roomprobe/net/wire.py": "import importlib\n"
                                 "def f():\n    return importlib.import_module('roomprobe.fleet.history')\n",
        "roomprobe/net/stun.py": "def f():\n    return __import__('roomprobe.report.build')\n",
        "probes/__init__.py": "",
        "probes/dns.py": "from importlib import import_module\n"
                         "def f():\n    name = 'roomprobe.diagnose.mapping'\n    return import_module(name)\n",
        # a name computed at run time (cli.py, the registry) is lookup by name, not a fixed import
        "probes/cloud.py": "from importlib import import_module\n"
                           "def f(ref):\n    mod, _, attr = ref.partition(':')\n"
                           "    return getattr(import_module(mod), attr)\n",
    }))
    _only(found,
          "net/wire.py: net imports roomprobe.fleet.history",
          "net/stun.py: net imports roomprobe.report.build",
          "dns.py: probes imports roomprobe.diagnose.mapping")


def test_checker_keeps_the_order_inside_a_room(tmp_path):
    found = violations(_tree(tmp_path, {
        "roomprobe/__init__.py": "",
        "roomprobe/host/__init__.py": "",
        # a building block importing the module built on it
        "roomprobe/host/osnet/__init__.py": "from roomprobe.host import wifi\n",
        # ... also through a submodule and by name
        "roomprobe/proxy/__init__.py": "",
        "roomprobe/proxy/sources/__init__.py": "",
        "roomprobe/proxy/sources/env.py": "import importlib\n"
                                          "def f():\n    importlib.import_module('roomprobe.proxy.resolver')\n",
        "roomprobe/proxy/resolver.py": "from roomprobe.proxy.sources import env\n",
        # side by side in one tier: independent
        "roomprobe/net/__init__.py": "",
        "roomprobe/net/stun.py": "from . import wire\n",
        "roomprobe/net/wire.py": "",
        # allowed: an earlier tier, its own sub-package, its own '+' unit
        "roomprobe/net/httpsprobe.py": "from roomprobe.net.tcpconnect import x\nfrom roomprobe.net import wire\n",
        "roomprobe/net/tcpconnect.py": "",
        "roomprobe/host/osnet/_linux.py": "from roomprobe.host.osnet import parsers\n",
        "roomprobe/host/osnet/parsers.py": "from roomprobe.host import osnet\n",
        "roomprobe/host/wifi.py": "def f():\n    from . import wlanapi\n",
        "roomprobe/host/wlanapi.py": "from roomprobe.host import wifi\n",
        # unlisted: on top; a listed module may not import it
        "roomprobe/peer/__init__.py": "",
        "roomprobe/peer/newthing.py": "from roomprobe.peer import speed\n",
        "roomprobe/peer/speed.py": "",
        "roomprobe/peer/link.py": "from roomprobe.peer import newthing\n",
        "probes/__init__.py": "",
        "probes/dns.py": "from roomprobe.probes import cloud\n",
        "probes/cloud.py": "from roomprobe.probes import _cloudpath\n",
        "probes/_cloudpath.py": "",
    }))
    _only(found,
          "host.osnet (tier 1) imports roomprobe.host.wifi (tier 2)",
          "proxy.sources.env (tier 0) imports roomprobe.proxy.resolver (tier 1)",
          "net.stun (tier 0) imports roomprobe.net.wire (tier 0)",
          "probes.dns (tier 1) imports roomprobe.probes.cloud (tier 1)",
          "peer.link imports roomprobe.peer.newthing, which is not listed")


# Functions longer than MAX_LINES (def line to last line, docstring included), each with why it
# is still long. Split the function and drop its line here; never add one without a reason.
MAX_LINES = 80
LONG_FUNCTIONS: dict[str, str] = {}


def long_functions(root: Path) -> dict[str, int]:
    """Every function or method in roomprobe/ and probes/ over MAX_LINES: {path:name: lines}."""
    out: dict[str, int] = {}
    for base in ("roomprobe", "probes"):
        for path in sorted((root / base).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_LINES:
                        out[f"{path.relative_to(root).as_posix()}:{node.name}"] = lines
    return out


def test_no_function_over_80_lines():
    found = long_functions(REPO)
    assert {k: v for k, v in found.items() if k not in LONG_FUNCTIONS} == {}, \
        "split these into named helpers that read top to bottom"
    # An exception that is no longer long goes from the list, so the list stays true.
    assert set(LONG_FUNCTIONS) <= set(found), set(LONG_FUNCTIONS) - set(found)


def test_long_function_check_counts_lines(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES - 1))
    _tree(tmp_path, {"roomprobe/a.py": f"def ok():\n{body}",
                     "probes/b.py": f"class C:\n    def long(self):\n    {body.replace(chr(10), chr(10) + '    ')}"
                                    "    return 1\n"})
    assert long_functions(tmp_path) == {"probes/b.py:long": MAX_LINES + 1}


# Files that still write the peer port as a number, each with why.
PEER_PORT_LITERALS: dict[str, str] = {}


def test_the_peer_port_is_defined_once():
    """serve listens where check --peer, the probes and the sweep's agent look: one number."""
    found = {path.relative_to(REPO).as_posix()
             for path in source_modules(REPO).values()
             for node in ast.walk(ast.parse(path.read_text("utf-8")))
             if isinstance(node, ast.Constant) and node.value == 9095 and not isinstance(node.value, bool)}
    assert found - set(PEER_PORT_LITERALS) == {"roomprobe/peer/port.py"}, found
    assert set(PEER_PORT_LITERALS) <= found  # an exception that uses PEER_PORT now goes


def unnamed_modules(root: Path) -> list[str]:
    """Modules the tree on docs/architecture.md does not name under their room (a module of a
    sub-package such as osnet/ is named with it; a probe may be named with - for _)."""
    tree = (root / "docs" / "architecture.md").read_text("utf-8").split("```")[1]
    sections: dict[str, str] = {}
    room = None
    for line in tree.splitlines():
        head = re.match(r"^  (\w+)(?:/|\.py)\s", line) or re.match(r"^(probes)/\s", line)
        room = head.group(1) if head else room
        if room:
            sections[room] = sections.get(room, "") + line + "\n"
    missing = []
    for module in sorted(source_modules(root)):
        parts = module.split(".")
        if room_of(module) == "top" or len(parts) < 3:
            continue
        section = sections.get(room_of(module) or "", "")
        names = {parts[2], parts[2].replace("_", "-")}
        if not any(re.search(rf"(?<![\w-]){re.escape(n)}(\.py|/)?(?![\w-])", section) for n in names):
            missing.append(module)
    return missing


def test_every_module_is_named_in_the_architecture_page():
    """docs/architecture.md is where a newcomer looks first: a module missing there is lost."""
    assert unnamed_modules(REPO) == []


def test_unnamed_module_check(tmp_path):
    _tree(tmp_path, {"roomprobe/__init__.py": "", "roomprobe/net/__init__.py": "",
                     "roomprobe/net/wire.py": "", "roomprobe/net/osnet/__init__.py": "",
                     "roomprobe/net/osnet/_linux.py": "", "roomprobe/net/stun.py": "",
                     "probes/__init__.py": "", "probes/controller_port.py": "", "probes/dns.py": "",
                     "docs/architecture.md": "x\n```\nroomprobe/\n  net/   sockets\n    wire.py  heads\n"
                                             "    osnet/  per OS\nprobes/   controller-port\n```\n"})
    assert unnamed_modules(tmp_path) == ["roomprobe.net.stun", "roomprobe.probes.dns"]


def probe_imports_that_do_not_resolve(root: Path) -> list[str]:
    """``from roomprobe.probes.X import name`` where X has no such name. mypy does not follow
    roomprobe.probes (the installed name of probes/), so a renamed constant would only fail
    at run time."""
    import importlib.util

    bad = []
    for module, path in sorted(source_modules(root).items()):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and not node.level \
                    and (node.module or "").startswith("roomprobe.probes"):
                target = importlib.import_module(node.module or "")
                for alias in node.names:
                    submodule = hasattr(target, "__path__") \
                        and importlib.util.find_spec(f"{node.module}.{alias.name}") is not None
                    if not hasattr(target, alias.name) and not submodule:
                        bad.append(f"{module}: {node.module} has no {alias.name}")
    return bad


def test_imports_from_probes_resolve():
    assert probe_imports_that_do_not_resolve(REPO) == []
