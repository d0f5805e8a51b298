"""Text output for people: the verdict first, one line per probe, then what to do."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.report.model import DiagnosisEntry, Report

COLORS = {"pass": "green", "warn": "yellow", "fail": "red", "error": "magenta", "skip": "bright_black",
          "info": "cyan", "unknown": "magenta"}


def _tag(word: str, color: bool) -> str:
    text = f"{word.upper():<5}"
    return click.style(text, fg=COLORS.get(word), bold=word in ("fail", "error", "unknown")) if color else text


def verdict(report: Report) -> str:
    """One line a technician can read aloud: the status and the most important finding."""
    fails = [f for f in report.findings if f.severity == "fail"]
    warns = [f for f in report.findings if f.severity == "warn"]
    errors = [p for p in report.probes if p.status == "error"]
    if fails:
        head = fails[0].message
    elif warns:
        head = warns[0].message
    elif errors:
        head = f"{len(errors)} probe(s) could not finish: {', '.join(p.id for p in errors)}"
    else:
        ran = [p for p in report.probes if p.status == "pass"]
        head = (f"no problem found ({len(ran)} probe(s) passed)" if ran
                else "nothing was measured (every probe was skipped)")
    counts = f"{len(fails)} failure(s), {len(warns)} warning(s)"
    tail = ""
    if not report.complete:
        unfinished = ", ".join(f"{p.id}: {p.reason}" for p in errors)
        tail = f" [INCOMPLETE: {unfinished or 'interrupted'}]"
    return f"{head} ({counts}, {report.duration_s:.2f} s){tail}"


def ssid_notes(report: Report) -> list[str]:
    """Why a Wi-Fi interface shows no SSID (the OS hid it: location permission), one line each.

    The probe summaries name the SSID when there is one; without this line a hidden SSID would
    read as "not on Wi-Fi".
    """
    host = report.host or {}
    return [f"  {'':5} {i['name']} (Wi-Fi): {i['ssid_note']}" for i in host.get("interfaces", [])
            if i.get("ssid_note") and not i.get("ssid")]


def render_text(report: Report, *, color: bool = False, verbose: bool = False) -> str:
    """The check's text: the verdict, one line per probe, the hop table, findings, diagnosis."""
    lines = [f"{_tag(report.status, color)} {verdict(report)}", ""]
    width = max((len(p.id) for p in report.probes), default=8)
    for p in report.probes:
        lines.append(f"  {_tag(p.status, color)} {p.id:<{width}}  {p.summary}")
        if verbose and p.evidence:
            for ln in json.dumps(p.evidence, indent=2).splitlines():
                lines.append(f"        {ln}")
    lines += ssid_notes(report)
    from roomprobe.report import pathview  # the path probe's hop table

    for path in pathview.paths(report):
        lines += ["", *pathview.text_lines(path)]
    if report.findings:
        lines += ["", "Findings:"]
        for f in report.findings:
            lines.append(f"  {_tag(f.severity.value, color)} {f.id}: {f.message}")
            if f.hint:
                lines.append(f"        -> {f.hint}")
    if report.diagnosis:
        lines += ["", "Likely Zoom error codes:"]
        for d in report.diagnosis:
            lines += _diagnosis_lines(d, verbose)
    return "\n".join(lines) + "\n"


def _diagnosis_lines(d: DiagnosisEntry, verbose: bool) -> list[str]:
    because = f" (because: {', '.join(d.because)})" if d.because else ""
    lines = [f"  {d.product} {d.code} [{d.likelihood}]: {d.title}{because}"]
    if d.cause:
        lines.append(f"        {d.cause}")
    for i, step in enumerate(d.fix[:3], 1):
        lines.append(f"        {i}. {step}")
    if d.ruled_out and verbose:
        lines.append("        ruled out:")
        lines += [f"          - {cause}" + (f" ({how})" if how else "") for cause, how in ruled_out(d)]
    elif d.ruled_out:
        lines.append(f"        ({len(d.ruled_out)} other cause(s) ruled out; -v lists them)")
    return lines


def ruled_out(diagnosis: DiagnosisEntry) -> list[tuple[str, str]]:
    """(cause, how) of each ruled-out cause, as text, whatever shape a schema-valid report gave
    them (the schema leaves ``ruled_out`` open: an object cause or a missing ``how`` must not
    crash a renderer). Shared by the text, markdown and html renderers."""
    items = diagnosis.ruled_out or []
    out = []
    for r in items if isinstance(items, list) else [items]:
        cause, how = (r.get("cause", r), r.get("how", "")) if isinstance(r, dict) else (r, "")
        out.append((str(cause), "" if how is None else str(how)))
    return out


class TextFormat:
    """``--format text``: the check's verdict for a person; for a ticket (``roomprobe report``)
    with the evidence pack under it."""

    name = "text"

    def render(self, report: Report, term: Terminal, opts: RenderOptions) -> str:
        from roomprobe.report.ticket import render_evidence_text

        out = render_text(report, color=opts.color and term.color, verbose=opts.verbose)
        return out + "\n" + render_evidence_text(report) if opts.evidence_pack else out


FORMAT = TextFormat()
