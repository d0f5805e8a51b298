"""The knowledge base: complete, unambiguous, and faithful to the Video SDK catalog (seed 003)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roomprobe.diagnose import catalog as kb

SEED_003 = Path("/work/shared/seeds/003_153150c4848cef8e.txt")


def test_catalog_is_valid() -> None:
    assert kb.validate() == []


def test_every_entry_complete_and_products_known() -> None:
    for e in kb.entries():
        assert e.product in kb.PRODUCTS
        assert e.title and e.meaning and e.causes and e.fix and e.sources, e.key
        assert isinstance(e.checks, tuple)


def test_no_duplicate_product_code() -> None:
    keys = [(e.product, e.code) for e in kb.entries()]
    assert len(keys) == len(set(keys))


def test_validate_reports_broken_entries() -> None:
    good = {"product": "zoom-rooms", "code": 1, "title": "t", "meaning": "m", "causes": ["c"],
            "fix": ["f"], "checks": [], "sources": ["s"]}
    assert kb.validate({"code": [good]}) == []
    problems = kb.validate({"code": [good, dict(good), {**good, "code": 2, "fix": []},
                                     {**good, "code": 3, "product": "zoom-phone"},
                                     {**good, "code": 4, "titel": "typo"},
                                     {**good, "product": "video-sdk", "code": 5}]})
    text = " | ".join(problems)
    assert "duplicate (product, code)" in text
    assert "'fix' is empty" in text
    assert "unknown product 'zoom-phone'" in text
    assert "unknown key 'titel'" in text
    assert "symbolic 'name'" in text
    assert kb.validate({"code": [{k: v for k, v in good.items() if k != "meaning"}]})


def test_required_codes_present() -> None:
    for key in ["zoom-rooms:2001", "zoom-rooms:2002", "zoom-rooms:3002", "zoom-client:5000",
                "zoom-client:5002", "zoom-client:5003", "zoom-client:5004", "zoom-client:10002",
                *(f"zoom-client:{c}" for c in range(104101, 104119))]:
        assert len(kb.lookup(key)) == 1, key


def test_10002_cites_both_readings() -> None:
    (e,) = kb.lookup("zoom-client:10002")
    assert len(e.readings) == 2
    text = " ".join(e.readings + e.sources).lower()
    assert "seed 002" in text and "install" in text and "[3p]" in text


def test_facts_present() -> None:
    (e,) = kb.lookup("zoom-rooms:2002")
    text = " ".join([e.meaning, *e.fix, *e.notes, *e.non_network])
    assert "10 days" in text
    assert "cannot be downgraded" in text and "rolled back" in text
    evidence = " ".join(kb.ticket_evidence())
    for word in ("room name", "Wi-Fi SSID", "127.0.0.1", "time window"):
        assert word in evidence


def _seed_catalog() -> dict[int, str]:
    text = SEED_003.read_text(encoding="utf-8")
    return {int(c): n for c, n in re.findall(r"•\s*(\d+)\s*-\s*([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)", text)}


@pytest.mark.skipif(not SEED_003.exists(), reason="seed 003 (Video SDK catalog) not available here")
def test_whole_video_sdk_catalog_present() -> None:
    seed = _seed_catalog()
    assert len(seed) > 140  # the parser found the catalog, not a handful of lines
    ours = {e.code: e.name for e in kb.entries() if e.product == "video-sdk"}
    assert set(ours) == set(seed)
    assert ours == seed  # every symbolic name matches too


def test_audio_capture_sub_reasons() -> None:
    (e,) = kb.lookup("video-sdk:6010")
    assert [d.split(":")[0] for d in e.details] == [str(i) for i in range(1, 8)]
    assert "stream.startAudio" in e.where


@pytest.mark.parametrize(("query", "keys"), [
    ("2002", ["zoom-rooms:2002"]),
    ("zoom-rooms:2002", ["zoom-rooms:2002"]),
    ("Zoom-Rooms : 2002", ["zoom-rooms:2002"]),
    ("rooms:2002", ["zoom-rooms:2002"]),
    ("VIDEO_CAMERA_TAKEN", ["video-sdk:6103"]),
    ("video-camera-taken", ["video-sdk:6103"]),
    ("6103", ["video-sdk:6103"]),
    ("5003", ["zoom-client:5003", "video-sdk:5003"]),
    ("5000", ["zoom-client:5000", "video-sdk:5000"]),
    ("sdk:5003", ["video-sdk:5003"]),
    ("zoom-client:104110", ["zoom-client:104110"]),
    ("99999", []),
    ("zoom-phone:2002", []),
    ("NOT_A_CODE", []),
])
def test_lookup(query: str, keys: list[str]) -> None:
    assert [e.key for e in kb.lookup(query)] == keys


def test_lookup_group() -> None:
    assert [e.code for e in kb.lookup("zoom-client:104101-104118")] == list(range(104101, 104119))


def test_search() -> None:
    assert [e.key for e in kb.search("camera taken")] == ["video-sdk:6103"]
    assert all(e.product == "zoom-rooms" for e in kb.search("9090", product="zoom-rooms"))
    assert {e.key for e in kb.search(["9090"], product="zoom-rooms")} >= {"zoom-rooms:2002"}
    assert kb.search("no-such-word-anywhere") == []
    assert len(kb.search("")) == len(kb.entries())


def test_unknown_code_message_says_what_to_do() -> None:
    assert "roomprobe codes --search" in kb.unknown_code_message("99999")
    assert "zoom-rooms, zoom-client, video-sdk" in kb.unknown_code_message("zoom-phone:1")


def test_entry_to_dict_omits_empty_fields() -> None:
    (e,) = kb.lookup("zoom-rooms:3002")
    d = e.to_dict()
    assert d["product"] == "zoom-rooms" and d["code"] == 3002 and "name" not in d and "where" not in d
