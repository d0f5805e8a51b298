"""Display count readers: parsers on real-format OS output, the DRM reader on a fake sysfs tree,
and detect() never raising."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roomprobe.host import displays

# `system_profiler SPDisplaysDataType -json` on an Apple-silicon Mac driving an external monitor,
# with its built-in panel and a Sidecar iPad (a virtual display, not a room screen). The keys and
# value spellings are the tool's own.
SP_THREE_LISTED = """{
  "SPDisplaysDataType" : [
    {
      "_name" : "Apple M1 Pro",
      "spdisplays_mtlgpufamilysupport" : "spdisplays_metal3",
      "spdisplays_ndrvs" : [
        {
          "_name" : "LG HDR 4K",
          "_spdisplays_displayID" : "2",
          "_spdisplays_pixels" : "3840 x 2160",
          "_spdisplays_resolution" : "1920 x 1080 @ 60.00Hz",
          "spdisplays_main" : "spdisplays_yes",
          "spdisplays_mirror" : "spdisplays_off",
          "spdisplays_online" : "spdisplays_yes",
          "spdisplays_pixelresolution" : "spdisplays_2160p",
          "spdisplays_resolution" : "1920 x 1080 @ 60.00Hz"
        },
        {
          "_name" : "Color LCD",
          "_spdisplays_displayID" : "1",
          "_spdisplays_pixels" : "3024 x 1964",
          "_spdisplays_resolution" : "1512 x 982 @ 120.00Hz",
          "spdisplays_connection_type" : "spdisplays_internal",
          "spdisplays_display_type" : "spdisplays_built-in-liquid-retina-xdr",
          "spdisplays_mirror" : "spdisplays_off",
          "spdisplays_online" : "spdisplays_yes",
          "spdisplays_pixelresolution" : "spdisplays_3024x1964Retina"
        },
        {
          "_name" : "Sidecar Display",
          "_spdisplays_displayID" : "4",
          "_spdisplays_pixels" : "2388 x 1668",
          "spdisplays_connection_type" : "spdisplays_airplay",
          "spdisplays_mirror" : "spdisplays_off",
          "spdisplays_virtualdevice" : "spdisplays_yes"
        }
      ],
      "spdisplays_vendor" : "sppci_vendor_Apple",
      "sppci_bus" : "spdisplays_builtin",
      "sppci_device_type" : "spdisplays_gpu",
      "sppci_model" : "Apple M1 Pro"
    }
  ]
}"""

# A Mac mini (no built-in panel) with no display attached: the GPU has no spdisplays_ndrvs.
SP_HEADLESS = """{
  "SPDisplaysDataType" : [
    {
      "_name" : "Apple M2",
      "spdisplays_mtlgpufamilysupport" : "spdisplays_metal3",
      "spdisplays_vendor" : "sppci_vendor_Apple",
      "sppci_model" : "Apple M2"
    }
  ]
}"""

# `xrandr --listmonitors` (X11): header, then one line per active monitor.
XRANDR_DUAL = """Monitors: 2
 0: +*HDMI-1 1920/531x1080/299+0+0  HDMI-1
 1: +DP-1 1920/527x1080/296+1920+0  DP-1
"""
XRANDR_TRIPLE = """Monitors: 3
 0: +*DP-1 3840/600x2160/340+0+0  DP-1
 1: +HDMI-1 1920/527x1080/296+3840+0  HDMI-1
 2: +HDMI-2 1920/527x1080/296+5760+0  HDMI-2
"""


def test_system_profiler_counts_online_screens_not_virtual_ones():
    assert displays.parse_system_profiler(SP_THREE_LISTED) == 2
    assert displays.parse_system_profiler(SP_HEADLESS) == 0


def test_system_profiler_mirror_set_counts_once_and_offline_not_at_all():
    data = json.loads(SP_THREE_LISTED)
    screens = data["SPDisplaysDataType"][0]["spdisplays_ndrvs"]
    screens[0]["spdisplays_mirror"] = screens[1]["spdisplays_mirror"] = "spdisplays_on"
    assert displays.parse_system_profiler(json.dumps(data)) == 1
    screens[0]["spdisplays_mirror"] = "spdisplays_off"
    screens[1]["spdisplays_online"] = "spdisplays_no"
    screens[1]["spdisplays_mirror"] = "spdisplays_off"
    assert displays.parse_system_profiler(json.dumps(data)) == 1


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"SPDisplaysDataType": 3}',
                                  "[" * 100000])
def test_system_profiler_odd_output_is_unknown_not_a_crash(text):
    assert displays.parse_system_profiler(text) is None


def test_xrandr_listmonitors():
    assert displays.parse_xrandr_monitors(XRANDR_DUAL) == 2
    assert displays.parse_xrandr_monitors(XRANDR_TRIPLE) == 3
    assert displays.parse_xrandr_monitors("Monitors: 1\n 0: +*eDP-1 1920/344x1080/194+0+0  eDP-1\n") == 1
    assert displays.parse_xrandr_monitors("Monitors: 2\n") == 2  # cut short after the header
    assert displays.parse_xrandr_monitors("Can't open display :0\n") is None
    assert displays.parse_xrandr_monitors("") is None


def fake_drm(root: Path, connectors: dict[str, str]) -> Path:
    """A /sys/class/drm lookalike: card0, its connectors with a status file, and noise."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "card0").mkdir()
    (root / "renderD128").mkdir()
    (root / "version").write_text("drm 1.1.0 20060810\n")
    for name, status in connectors.items():
        (root / name).mkdir()
        (root / name / "status").write_text(status + "\n")
        (root / name / "enabled").write_text("enabled\n" if status == "connected" else "disabled\n")
    return root


def test_drm_reader_counts_connected_connectors(tmp_path):
    root = fake_drm(tmp_path / "drm", {"card0-HDMI-A-1": "connected", "card0-HDMI-A-2": "connected",
                                       "card0-DP-1": "disconnected", "card0-Writeback-1": "unknown",
                                       "card1-DP-2": "connected"})
    assert displays.read_drm(root) == 3
    (root / "card1-DP-2" / "status").unlink()  # unreadable status: not counted
    assert displays.read_drm(root) == 2


def test_drm_reader_without_drm_is_unknown(tmp_path):
    assert displays.read_drm(tmp_path / "absent") is None
    assert displays.read_drm(fake_drm(tmp_path / "empty", {})) is None


def test_detect_on_linux_falls_back_to_drm_and_never_raises(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    root = fake_drm(tmp_path / "drm", {"card0-HDMI-A-1": "connected", "card0-DP-1": "connected"})
    got = displays.detect(platform="linux", drm_root=root)
    assert (got.count, got.method, got.error) == (2, "drm", None)
    got = displays.detect(platform="linux", drm_root=tmp_path / "none")
    assert got.count is None and "DISPLAY unset" in got.error and "no DRM" in got.error
    # xrandr missing while DISPLAY is set: the DRM reader still answers
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setenv("PATH", str(tmp_path))
    got = displays.detect(platform="linux", drm_root=root)
    assert got.count == 2 and got.method == "drm"
    assert displays.detect(platform="sunos5").count is None


def test_detect_turns_any_surprise_into_unknown(monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("odd")

    monkeypatch.setattr(displays, "_linux", boom)
    got = displays.detect(platform="linux")
    assert got.count is None and got.method == "error" and "RuntimeError" in got.error


class _Win32:
    """kernel32 and user32 as ctypes.windll shows them: a session id and N monitors."""

    def __init__(self, session: int, monitors: int) -> None:
        outer = self

        class Kernel32:
            def GetCurrentProcessId(self) -> int:  # noqa: N802 - the Win32 name
                return 4242

            def ProcessIdToSessionId(self, pid, out) -> int:  # noqa: N802
                out._obj.value = outer.session  # the DWORD passed by reference
                return 1

        class User32:
            def EnumDisplayMonitors(self, dc, clip, callback, data) -> int:  # noqa: N802
                for i in range(outer.monitors):
                    callback(i + 1, None, None, data)
                return 1

        self.session, self.monitors = session, monitors
        self.kernel32, self.user32 = Kernel32(), User32()


def test_windows_session_0_display_count_is_not_trusted(monkeypatch):
    """A SYSTEM task runs in session 0, whose desktop is not the room's screens: unknown, why."""
    import ctypes

    monkeypatch.setattr(displays.sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE, raising=False)
    monkeypatch.setattr(ctypes, "windll", _Win32(session=0, monitors=1), raising=False)
    got = displays.detect()
    assert got.count is None and "session 0" in got.error and "--displays" in got.error
    # the room's own session: the monitors are counted
    monkeypatch.setattr(ctypes, "windll", _Win32(session=1, monitors=2), raising=False)
    got = displays.detect()
    assert (got.count, got.method, got.error) == (2, "EnumDisplayMonitors", None)
