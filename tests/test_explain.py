"""``explain`` and ``codes`` run in-process on the click commands (the lead's group wraps them)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from roomprobe.commands.explain import _PRODUCTS, codes, explain
from roomprobe.core.errors import UsageError
from roomprobe.diagnose import catalog as kb


def run(cmd, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cmd, list(args))


@pytest.mark.parametrize("query", ["2002", "zoom-rooms:2002"])
def test_explain_2002(query: str) -> None:
    r = run(explain, query)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("zoom-rooms 2002: Controller cannot connect to the room")
    for text in ["9090", "client isolation", "127.0.0.1", "10 days", "cannot be downgraded",
                 "Fix, in this order:", "1. ", "roomprobe checks: peer-other-subnet", "KB0065712",
                 "For a ticket, collect:"]:
        assert text in r.output, text


@pytest.mark.parametrize("query", ["VIDEO_CAMERA_TAKEN", "6103", "video-sdk:6103"])
def test_explain_video_camera_taken(query: str) -> None:
    r = run(explain, query)
    assert r.exit_code == 0
    assert r.output.startswith("video-sdk 6103 VIDEO_CAMERA_TAKEN: ")
    assert "stream.startVideo" in r.output and "roomprobe cannot check this code" in r.output
    assert "For a ticket" not in r.output


def test_explain_ambiguous_5003_lists_both() -> None:
    r = run(explain, "5003")
    assert r.exit_code == 0
    assert r.output.splitlines()[0].startswith("5003 means different things in different products")
    assert "zoom-client 5003: Cannot connect to Zoom's servers" in r.output
    assert "video-sdk 5003 CLIENT_SESSION_STATE_RECONNECTING" in r.output


def test_explain_ambiguous_json() -> None:
    r = run(explain, "5003", "--format", "json")
    data = json.loads(r.output)
    assert data["ambiguous"] is True
    assert [(e["product"], e["code"]) for e in data["entries"]] == [("zoom-client", 5003), ("video-sdk", 5003)]
    assert data["entries"][1]["name"] == "CLIENT_SESSION_STATE_RECONNECTING"


def test_explain_json_2002_has_ticket_evidence() -> None:
    data = json.loads(run(explain, "zoom-rooms:2002", "--format", "json").output)
    assert data["ambiguous"] is False and data["entries"][0]["code"] == 2002
    assert data["entries"][0]["fix"] and data["ticket_evidence"]


def test_explain_10002_shows_both_readings() -> None:
    out = run(explain, "10002").output
    assert "Readings (sources disagree):" in out and "install/update" in out


def test_explain_audio_sub_reasons() -> None:
    out = run(explain, "AUDIO_CAPTURE_FAILED").output
    assert "Sub-reasons:" in out and "7: the user dismissed" in out


@pytest.mark.parametrize("bad", ["99999", "zoom-phone:2002", "NOT_A_CODE"])
def test_explain_unknown_code_is_usage_error(bad: str) -> None:
    r = run(explain, bad)
    assert isinstance(r.exception, UsageError)
    assert "roomprobe codes" in str(r.exception) or "zoom-rooms, zoom-client" in str(r.exception)
    assert "\n" not in str(r.exception)


def test_explain_unknown_code_through_lead_cli(capsys: pytest.CaptureFixture[str]) -> None:
    """Through the real entry point: one line on stderr, exit 3, no traceback."""
    from roomprobe import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["explain", "99999"])
    assert exc.value.code == 3
    err = capsys.readouterr().err
    assert err.startswith("roomprobe: unknown error code '99999'") and err.count("\n") == 1
    assert "Traceback" not in err


def test_codes_by_product() -> None:
    r = run(codes, "--product", "zoom-rooms")
    assert r.exit_code == 0
    assert [ln.split()[1] for ln in r.output.splitlines()] == ["2001", "2002", "3002"]


def test_codes_search_text_and_words() -> None:
    assert "VIDEO_CAMERA_TAKEN" in run(codes, "--search", "camera taken").output
    assert run(codes, "--search", "camera", "taken").output == run(codes, "--search", "camera taken").output


def test_codes_json_whole_catalog() -> None:
    rows = json.loads(run(codes, "--format", "json").output)
    assert len(rows) == len(kb.entries())
    sdk = [r for r in rows if r["product"] == "video-sdk"]
    assert all("name" in r for r in sdk)
    assert {"product": "video-sdk", "code": 6103, "name": "VIDEO_CAMERA_TAKEN",
            "title": "Video camera taken"} in rows


def test_codes_no_match() -> None:
    r = run(codes, "--search", "no-such-word-anywhere")
    assert r.exit_code == 1 and "no code matches" in r.output
    r = run(codes, "--search", "no-such-word-anywhere", "--format", "json")
    assert r.exit_code == 1 and json.loads(r.stdout) == []


def test_codes_bad_product_is_click_usage_error() -> None:
    r = run(codes, "--product", "zoom-phone")
    assert r.exit_code == 2 and "zoom-phone" in r.output


def test_product_choices_match_kb() -> None:
    assert _PRODUCTS == kb.PRODUCTS


def test_commands_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    heavy = ("roomprobe.diagnose.catalog", "tomllib", "tomli", "roomprobe.diagnose.mapping")
    code = f"import sys, roomprobe.commands.explain; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
