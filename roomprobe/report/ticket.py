"""What every ticket format shares: loading a saved report safely and the evidence-pack rows.

A report file comes from a user's attachment, so it is validated against the published schema
before anything renders it: a file that is not a roomprobe report is one clear line (exit 3),
never a traceback halfway through a half-rendered page. The renderers (text, markdown, html)
all show the same evidence pack, in the same order, built here once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from roomprobe.core.errors import UsageError

if TYPE_CHECKING:
    from roomprobe.report.model import Report

MAX_REPORT_BYTES = 32 * 1024 * 1024  # a real report is well under 1 MiB; 32 leaves room


def load_report(path: str) -> Report:
    """Read and validate a saved report; any problem is a UsageError naming the file.

    Read through the bounded reader: a huge file, /dev/zero or JSON nested a thousand levels
    deep is one line, not all memory or a RecursionError.
    """
    from roomprobe.core.fsutil import load_json_bounded

    data = load_json_bounded(path, MAX_REPORT_BYTES, "report file")
    import jsonschema

    from roomprobe.report.build import load_schema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(load_schema()).iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
        raise UsageError(f"{path} is not a roomprobe report (schema roomprobe/report/v1: {where}: "
                         f"{message})")
    from roomprobe.core.redact import redact
    from roomprobe.report.model import Report

    # Reports we write are redacted already; one from an older version or edited by hand may not
    # be, and rendering it for a ticket must not print a password either.
    return Report.from_dict(redact(data))


def _addresses(iface: dict[str, Any]) -> str:
    addrs = [f"{a['address']}/{a['prefixlen']}" if a.get("prefixlen") is not None else a["address"]
             for a in iface.get("addresses", [])]
    return ", ".join(addrs) or "no address"


def interface_lines(report: Report) -> list[str]:
    """One line per non-loopback interface: name, kind, up/down, SSID, every address.

    A Wi-Fi interface whose SSID the OS withheld shows why (``ssid_note``, e.g. "SSID hidden by
    macOS (location permission)"), so a ticket never reads "no Wi-Fi name" as "not on Wi-Fi".
    """
    lines = []
    for iface in report.host["interfaces"]:
        if iface["kind"] == "loopback":
            continue
        ssid = (f', SSID "{iface["ssid"]}"' if iface.get("ssid")
                else f", {iface['ssid_note']}" if iface.get("ssid_note") else "")
        state = "up" if iface["up"] else "down"
        lines.append(f"{iface['name']} ({iface['kind']}, {state}{ssid}): {_addresses(iface)}")
    return lines


def wifi_line(report: Report) -> str | None:
    """The wifi probe's facts in one line (signal, noise, band/channel, AP, rate), or None."""
    probe = report.probe("wifi")
    if not probe:
        return None
    if probe.status == "skip":
        return f"not in use ({probe.summary})"
    links = probe.evidence.get("links")
    if not isinstance(links, list) or not links:
        return probe.summary or None
    parts = []
    for f in links:
        if not isinstance(f, dict):
            continue
        sig = f.get("signal_dbm")
        bits = [f"{sig:g} dBm{' (est.)' if f.get('signal_estimated') else ''}"
                if isinstance(sig, (int, float)) else "signal unknown"]
        if isinstance(f.get("noise_dbm"), (int, float)):
            bits.append(f"noise {f['noise_dbm']:g} dBm")
        bits.append(f"{f.get('band') or '? GHz'} channel {f.get('channel') or '?'}")
        bits.append(f"AP {f.get('bssid') or 'hidden'}")
        if isinstance(f.get("tx_mbps"), (int, float)):
            bits.append(f"{f['tx_mbps']:g} Mbit/s {f.get('phy') or ''}".strip())
        parts.append(f"{f.get('interface', '?')}: " + ", ".join(bits))
    return "; ".join(parts) or None


def evidence_rows(report: Report) -> list[tuple[str, str]]:
    """(label, value) pairs of the evidence pack, in the order a support engineer reads them.

    Fields added after a report was written are simply absent from older reports: shown as
    "not recorded" rather than failing.
    """
    host = report.host
    tgt = report.targets
    app = report.zoom_rooms_app
    tz = report.timezone
    win = report.window
    rows: list[tuple[str, str]] = [
        ("Room name", report.room_name or "not given (--room-name)"),
        ("Code the user saw", report.user_code or "not given (--code)"),
        ("Note", report.note or ""),
        ("Host", host["hostname"]),
        ("OS", f"{host['os']} {host['os_version']}".strip()),
        ("Zoom Rooms app", f"{app['version']} (from {app['source']})" if app
         else ("not recorded" if not report.has("zoom_rooms_app")
               else "no Zoom Rooms app on Linux" if host["os"] == "Linux" else "not found")),
        ("Interfaces", "; ".join(interface_lines(report)) or "none"),
        ("Wi-Fi", wifi_line(report) or ""),
        ("Default gateway", ", ".join(f"{g['gateway']} via {g.get('interface') or '?'}"
                                      for g in host["default_gateway"]) or "none"),
        ("Time zone", f"{tz['name']} (UTC{tz['utc_offset']})" if tz else "not recorded"),
        ("Time window", f"{win['started_local']} to {win['ended_local']} "
                        f"({win['started_utc']} to {win['ended_utc']})" if win
         else f"started {report.started_at}, {report.duration_s} s"),
        ("Targets", f"role {tgt.role}; controller {tgt.controller or '-'}; "
                    f"room {tgt.room or '-'}; port {9090 if tgt.port is None else tgt.port}"),
        ("roomprobe", f"{report.roomprobe_version}, "
                      f"{'complete' if report.complete else 'INCOMPLETE (a probe could not finish)'}, "
                      f"{report.duration_s} s"),
    ]
    return [(k, v) for k, v in rows if v]  # an empty note is left out


def render_evidence_text(report: Report) -> str:
    """The evidence pack as aligned text lines, appended to the text rendering of a report."""
    rows = evidence_rows(report)
    width = max(len(k) for k, _ in rows)
    return "\n".join(["Evidence pack:"] + [f"  {k:<{width}}  {v}" for k, v in rows]) + "\n"
