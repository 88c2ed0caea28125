"""The pages over real storage with a bundled bat recording: the recording's spectrogram, audio
at two speeds, its GUANO and WAV download; detections filtered, paged and exported as CSV."""

from __future__ import annotations

import csv
import io
import re
import struct

from acoustack.testing import factories
from acoustack_dashboard.testing import Client


def wav_rate_and_seconds(body: bytes) -> tuple[int, float]:
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    channels, rate = struct.unpack("<HI", body[22:28])
    bits = struct.unpack("<H", body[34:36])[0]
    data_bytes = struct.unpack("<I", body[40:44])[0]
    return rate, data_bytes / (rate * channels * bits // 8)


def test_a_recording_page_shows_its_spectrogram_detections_and_metadata(
    web: Client, filed_recording
):
    web.login()
    rid = filed_recording.recording.id
    page = web.get(f"/recordings/{rid}")
    assert page.status == 200
    assert f'src="/recordings/{rid}/spectrogram.png"' in page.text
    assert page.text.count('<g class="box"') == 2
    assert "Myotis mystacinus 0.80" in page.text and "Pipistrellus pipistrellus 0.40" in page.text
    assert ">kHz<" in page.text and ">s<" in page.text
    image = web.get(f"/recordings/{rid}/spectrogram.png")
    assert image.status == 200 and image.body[:8] == b"\x89PNG\r\n\x1a\n"
    assert web.get(f"/recordings/{rid}/spectrogram.png").body == image.body  # from the cache


def test_the_audio_plays_as_recorded_and_ten_times_slower(web: Client, filed_recording):
    web.login()
    rid = filed_recording.recording.id
    real_rate, real_s = wav_rate_and_seconds(
        web.get(f"/recordings/{rid}/audio.wav?expansion=1").body
    )
    slow = web.get(f"/recordings/{rid}/audio.wav?expansion=10")
    slow_rate, slow_s = wav_rate_and_seconds(slow.body)
    assert real_rate == 500_000 and slow_rate == 50_000
    assert real_s == filed_recording.recording.duration_s
    assert slow_s == 10 * real_s
    download = web.get(f"/recordings/{rid}/download")
    assert download.body == filed_recording.path.read_bytes()
    assert "attachment" in download.headers["Content-Disposition"]


def test_detections_are_filtered_paged_and_exported(web: Client, filed_recording, store_client):
    # 120 more detections in a second recording: three pages of 50.
    deployment = store_client.current_deployment()
    other = factories.recording(deployment.id)
    store_client.store_recording(other)
    store_client.store_model_output(factories.model_output(other.id, 120, seed=3))
    web.login()
    page = web.get("/detections")
    assert page.status == 200
    rows = page.text.count('<tr>\n      <td><a href="/recordings/')
    assert rows == 50
    seen = rows
    while (more := re.search(r'class="next" href="([^"]+)"', page.text)) is not None:
        page = web.get(more.group(1).replace("&amp;", "&"))
        seen += page.text.count('<tr>\n      <td><a href="/recordings/')
    assert seen == 122
    myotis = web.get("/detections?species=Myotis+mystacinus&min_score=0.85")
    assert f"/recordings/{filed_recording.recording.id}" in myotis.text
    exported = web.get("/detections.csv?species=Myotis+mystacinus&min_score=0.85")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert all(float(r["score"]) >= 0.85 for r in table)
    assert str(filed_recording.recording.id) in {r["recording_id"] for r in table}
    everything = list(csv.DictReader(io.StringIO(web.get("/detections.csv").text)))
    assert len(everything) == 122


def test_audio_is_served_in_ranges_for_seeking(web: Client, filed_recording):
    web.login()
    rid = filed_recording.recording.id
    whole = web.get(f"/recordings/{rid}/audio.wav?expansion=10")
    assert whole.headers["Accept-Ranges"] == "bytes"
    part = web.get(f"/recordings/{rid}/audio.wav?expansion=10", {"Range": "bytes=40-1039"})
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 40-1039/{len(whole.body)}"
    assert part.body == whole.body[40:1040]
    tail = web.get(f"/recordings/{rid}/download", {"Range": "bytes=-100"})
    assert tail.status == 206 and tail.body == filed_recording.path.read_bytes()[-100:]
    past = web.get(f"/recordings/{rid}/download", {"Range": f"bytes={10**9}-"})
    assert past.status == 416
