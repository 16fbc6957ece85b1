"""The demo and the deployment record in an officer's words: no pack ids, odds instead of scientific
notation, file kinds instead of file names, and each outcome counted where an officer expects it."""

from __future__ import annotations

from openlfr.models.packs import FUSED_PACK, SFACE_PACK, fused_pack, pack_title, sface_pack
from openlfr.services.demo import frames_in_words, stored_files_in_words
from openlfr.services.records import COLUMNS, record_in_words

RECORD = {
    "deployment_id": 7, "location": "Demo Square", "date": "2026-11-30", "start": "2026-11-30T14:05:09.123456+00:00",
    "end": "2026-11-30T15:35:09.654321+00:00", "duration_minutes": 90.0, "use_case": "Crime hotspot",
    "watchlist_size": 1, "minimum_threshold": 0.727, "threshold_calibration": "yunet-sface-dlib-lfw@29bf730e3d5e",
    "estimated_fpir": 2.575e-05, "estimated_fpir_95_interval": "8.1e-06 to 8.3e-05", "estimate_method": "FPIR = …",
    "faces_seen_estimate": 4000, "total_alerts": 3, "true_alerts_confirmed": 1, "true_alerts_unconfirmed": 0,
    "false_alerts_confirmed": 1, "false_alerts_unconfirmed": 1, "alerts_not_adjudicated": 0,
    "false_alert_rate_percent": 0.05, "arrests": 0, "other_outcomes": 1, "no_action": 2,
}  # fmt: skip


def test_shipped_packs_have_titles_an_officer_can_read() -> None:
    assert pack_title(fused_pack().pack_id) == "YuNet + SFace with a second opinion from dlib" == fused_pack().label
    assert pack_title(sface_pack().pack_id) == "YuNet + SFace"
    assert pack_title("my-pack:0123abcd") == "my-pack"  # a user's pack: its name
    for name in (FUSED_PACK, SFACE_PACK):
        assert name not in pack_title(name)


def test_record_in_words() -> None:
    assert set(RECORD) == set(COLUMNS)
    rows = dict(record_in_words(RECORD, "Europe/London"))
    assert rows["When"] == "30 Nov 2026 14:05:09 to 15:35:09 (1 h 30 min)"
    assert rows["Expected false alerts"] == "about 1 in 39,000 faces seen; 95% interval about 1 in 12,000 to about 1 in 120,000"
    assert rows["Alert threshold"] == "0.727 (calibrated)"
    assert rows["True alerts"].startswith("1 confirmed")
    assert rows["False alert rate"] == "about 1 in 2,000 faces seen"
    text = " ".join(rows.values())
    assert "e-0" not in text and "yunet" not in text and "T14" not in text and ".123456" not in text


def test_record_in_words_without_calibration_or_alerts() -> None:
    bare = RECORD | {"threshold_calibration": "uncalibrated (threshold set by an audited override)", "estimated_fpir": None,
                     "estimated_fpir_95_interval": None, "false_alerts_confirmed": 0, "false_alerts_unconfirmed": 0}  # fmt: skip
    rows = dict(record_in_words(bare))
    assert rows["Alert threshold"] == "0.727 (not calibrated, set by an audited override)"
    assert rows["Expected false alerts"] == "not estimated (no calibration)"
    assert rows["False alert rate"] == "none"


def test_stored_files_by_kind_with_anything_unexpected_named() -> None:
    files = ["alerts/a1.bin", "alerts/b2.bin", "alerts/c3.bin", "audit.anchor", "audit.lock", "images/d4.bin",
             "keys/data.key", "live/deployment-1.lock", "openlfr.db", "openlfr.db-shm", "openlfr.db-wal"]  # fmt: skip
    words = stored_files_in_words(files)
    assert ".bin" not in words and words.startswith("the database, the data key")
    assert "1 encrypted watchlist reference image and 3 encrypted alert images" in words
    assert stored_files_in_words(["openlfr.db", "crops/face-17.jpg"]) == "the database and an unexpected file crops/face-17.jpg"


def test_frames_in_words() -> None:
    assert frames_in_words(100, 0) == "All 100 camera frames checked"
    assert frames_in_words(60, 40) == "60 of 100 camera frames checked (40 skipped to keep up in real time)"
