"""Markdown for tickets: pastes cleanly into Jira, ServiceNow, Zendesk, GitHub and GitLab.

Verdict first, then what to do (the diagnosis with its fix steps), the findings, a table of the
probes, the evidence pack, and the raw per-probe evidence folded away. Everything that came
from the network or the user (SSIDs, notes, messages) is escaped so it cannot break a table or
inject markup into the ticket.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from roomprobe.report.text import ruled_out, verdict
from roomprobe.report.ticket import evidence_rows

if TYPE_CHECKING:
    from roomprobe.core.output import RenderOptions, Terminal
    from roomprobe.report.model import DiagnosisEntry, Report

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~])")
ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "skip": "SKIP", "error": "ERROR", "info": "INFO",
        "unknown": "UNKNOWN"}


def esc(text: Any) -> str:
    """Inline-safe text: markdown punctuation escaped, newlines folded, HTML neutralised."""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _code(text: str) -> str:
    """Inline code for ids (kebab-case, never containing backticks)."""
    return f"`{text.replace('`', '')}`"


def _fence(body: str, lang: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside the body."""
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def _diagnosis(d: DiagnosisEntry) -> list[str]:
    seen = " (the code the user saw)" if d.user_code else ""
    out = [f"**{esc(d.product)} {d.code}: {esc(d.title)}**{seen}, likelihood {d.likelihood}"
           + (f", because {', '.join(_code(b) for b in d.because)}" if d.because else ""), ""]
    if d.cause:
        out += [f"Cause: {esc(d.cause)}", ""]
    out += [f"{i}. {esc(step)}" for i, step in enumerate(d.fix, 1)]
    if d.ruled_out:
        out += ["", "Ruled out: " + "; ".join(esc(cause) for cause, _ in ruled_out(d))]
    out.append("")
    return out


def render_markdown(report: Report) -> str:
    """The whole report as one markdown document (ends with a newline)."""
    status = report.status
    room = report.room_name
    title = f"roomprobe: {ICON[status]}" + (f" in {esc(room)}" if room else "")
    out: list[str] = [f"## {title}", "", f"**Verdict:** {esc(verdict(report))}", ""]

    if report.diagnosis:
        out += ["### What to do", ""]
        for d in report.diagnosis:
            out += _diagnosis(d)

    if report.findings:
        out += ["### Findings", ""]
        for f in report.findings:
            out.append(f"- **{ICON[f.severity.value]}** {_code(f.id)} ({esc(f.probe)}): {esc(f.message)}")
            if f.hint:
                out.append(f"  - What to do: {esc(f.hint)}")
        out.append("")

    out += ["### Probes", "", "| Status | Probe | Result | Time |", "|---|---|---|---|"]
    for p in report.probes:
        out.append(f"| {ICON[p.status]} | {_code(p.id)} | {esc(p.summary)} | {p.duration_s:.2f} s |")
    out.append("")

    from roomprobe.report import pathview  # the path probe's hop table

    out += [x for p in pathview.paths(report) for x in ("### Path, hop by hop", "", pathview.markdown(p))]
    out += ["### Evidence pack", "", "| | |", "|---|---|"]
    out += [f"| {esc(k)} | {esc(v)} |" for k, v in evidence_rows(report)]
    out.append("")

    evidence = {p.id: p.evidence for p in report.probes if p.evidence}
    if evidence:
        out += ["<details><summary>Measurements (JSON, per probe)</summary>", "",
                _fence(json.dumps(evidence, indent=2), "json"), "", "</details>", ""]
    return "\n".join(out)


class MarkdownFormat:
    """``--format markdown``: the report to paste into a ticket."""

    name = "markdown"

    def render(self, report: Report, term: Terminal, opts: RenderOptions) -> str:
        return render_markdown(report)


FORMAT = MarkdownFormat()
