"""The OS-command layer never raises: missing program, timeout, exit code, undecodable bytes."""

from __future__ import annotations

import sys

from roomprobe.core import oscmd
from roomprobe.proxy import sources as proxysrc
from roomprobe.proxy.sources import Source
from roomprobe.proxy.sources import windows as winproxy


def test_missing_program_is_an_error_not_an_exception():
    out = oscmd.run(["roomprobe-no-such-program-xyz"], timeout=2)
    assert not out.ok and "not found" in out.error and out.text == ""


def test_timeout_is_an_error():
    out = oscmd.run([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)
    assert not out.ok and "no answer within" in out.error


def test_nonzero_exit_keeps_text_and_says_why():
    out = oscmd.run([sys.executable, "-c", "print('Zugriff verweigert'); raise SystemExit(5)"], timeout=5)
    assert out.returncode == 5 and "exited with 5: Zugriff verweigert" in out.error
    assert out.text.strip() == "Zugriff verweigert"


def test_bytes_that_do_not_decode_are_replaced(monkeypatch):
    monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t: oscmd.RawOutput(b"Status : \xff\xfe ok\r\n", 0))
    out = oscmd.run(["x"], encoding="utf-8")
    assert out.ok and out.text == "Status : \ufffd\ufffd ok\n"


def test_a_raising_runner_is_still_the_sources_error(monkeypatch):
    def boom(cmd, t):
        raise UnicodeDecodeError("utf-8", b"\x81", 0, 1, "invalid start byte")

    monkeypatch.setattr(oscmd, "run_bytes", boom)
    out = oscmd.run(["netsh"])
    assert not out.ok and "UnicodeDecodeError" in out.error


def test_code_page_names(monkeypatch):
    monkeypatch.setattr(oscmd, "_is_windows", lambda: True)
    for page, name in ((850, "cp850"), (932, "cp932"), (866, "cp866"), (437, "cp437"), (65001, "utf-8")):
        monkeypatch.setattr(oscmd, "_windows_oem_page", lambda p=page: p)
        assert oscmd.console_encoding() == name
    monkeypatch.setattr(oscmd, "_windows_oem_page", lambda: 0)
    assert oscmd.console_encoding() == "cp437"  # unknown: the US page, errors replaced
    monkeypatch.setattr(oscmd, "_is_windows", lambda: False)
    assert oscmd.console_encoding() == "utf-8"


def test_one_failing_windows_proxy_source_does_not_hide_the_other(monkeypatch):
    def broken() -> Source:
        raise UnicodeDecodeError("cp1252", b"\x81", 0, 1, "undefined")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(winproxy, "READERS", (
        ("wininet", "HKCU", lambda: Source("wininet", "HKCU", proxies={"all": "http://p:8080"})),
        ("winhttp", "HKLM", broken)))
    sources = {s.name: s for s in proxysrc.system_sources()}
    assert sources["wininet"].proxies == {"all": "http://p:8080"} and sources["wininet"].error is None
    assert "UnicodeDecodeError" in sources["winhttp"].error
    assert "env" in sources


class _Kernel32:
    """GetConsoleOutputCP / GetOEMCP of a console switched to UTF-8 (``chcp 65001``) on a
    Western-European (cp850) or Japanese (cp932) Windows."""

    def __init__(self, oem: int, console: int = 65001) -> None:
        self.oem, self.console = oem, console

    def GetConsoleOutputCP(self) -> int:  # noqa: N802 - the Win32 name
        return self.console

    def GetOEMCP(self) -> int:  # noqa: N802 - the Win32 name
        return self.oem


def test_children_are_decoded_with_the_oem_page_of_their_hidden_console(monkeypatch):
    """run_bytes starts commands with CREATE_NO_WINDOW: each gets a new hidden console on the
    OEM page, whatever ``chcp`` the operator's console has. The .oem twins are the bytes netsh
    and ipconfig write there; decoded with the console's 65001 they would be garbled."""
    import ctypes
    import types
    from pathlib import Path

    samples = Path(__file__).parent / "data" / "samples" / "windows"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(oscmd, "_is_windows", lambda: True)
    for rel, oem in (("ipconfig-all/de-win11", 850), ("netsh-wlan-show-interfaces/fr-win11-connected", 850),
                     ("netsh-winhttp-show-proxy/ja-proxy-bypass-list", 932)):
        monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=_Kernel32(oem)), raising=False)
        raw = (samples / f"{rel}.oem").read_bytes()
        monkeypatch.setattr(oscmd, "run_bytes", lambda cmd, t, raw=raw: oscmd.RawOutput(raw, 0))
        out = oscmd.run(["netsh"])
        assert out.encoding == f"cp{oem}"
        want = (samples / f"{rel}.txt").read_text("utf-8").replace("\u2019", "'")
        assert out.text.strip() == want.strip(), rel
