"""`index.html` in the clip folder: one card per clip, a timeline, links; opened from file:// in
headless Chromium with every player and picture loading. Also --top / --min/--max-duration."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clip_kit import run_clip

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PROBE = """<script>
setTimeout(function(){
  var v=document.querySelectorAll('video'), i=document.querySelectorAll('img');
  function n(list,s){return Array.prototype.filter.call(list,function(e){
    return e.dataset.state===s;}).length;}
  var okv=Array.prototype.filter.call(v,function(e){return e.readyState>=2&&!e.error;}).length;
  var p=document.createElement('pre');
  p.textContent='MEDIA videos '+v.length+' playable '+okv+' broken '+n(v,'broken')+
    ' images '+i.length+' ok '+n(i,'ok')+' broken '+n(i,'broken');
  document.body.appendChild(p);
}, 3000);
</script>"""


@pytest.fixture(scope="module")
def previewed(clip_kit: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("preview") / "out"
    rc, stdout, stderr = run_clip(clip_kit, str(clip_kit["video"]), out, "--top", "3",
                                  "--min-duration", "5", "--max-duration", "18",
                                  "--window-seconds", "20", "--subtitles", "srt")
    assert rc == 0, stderr
    return {"out": out, "stdout": stdout,
            "manifest": json.loads((out / "clips.json").read_text())}


def test_top_and_duration_limits_apply_to_the_snapped_clips(previewed: dict) -> None:
    man = previewed["manifest"]
    assert 1 <= len(man["clips"]) <= 3
    assert all(5 <= c["duration"] <= 18 for c in man["clips"])
    assert man["options"]["min_duration"] == 5 and man["options"]["max_duration"] == 18
    assert "index.html" in previewed["stdout"]


def test_page_has_a_card_per_clip_a_timeline_and_links(previewed: dict) -> None:
    out, man = previewed["out"], previewed["manifest"]
    page = (out / "index.html").read_text()
    assert man["preview"] == "index.html"
    cards = re.findall(r'<div class="card" id="clip-(\d+)">', page)
    assert cards == [str(c["rank"]) for c in man["clips"]]
    duration = man["source"]["duration"]
    for c in man["clips"]:
        card = page[page.index(f'id="clip-{c["rank"]}"'):]
        card = card[: card.index("</div></div>")]
        assert f"score {c['score']:.3f}" in card and f"#{c['rank']}" in card
        assert html.escape(c["text"]) in card
        assert f'src="{c["file"]}"' in card and f'poster="{c["thumbnail"]}"' in card
        assert f'href="{c["subtitles"]}"' in card
        for name in (c["file"], c["thumbnail"], c["subtitles"]):
            assert (out / name).is_file()  # every link points at a file beside the page
        left = re.search(rf'href="#clip-{c["rank"]}" style="left:([\d.]+)%;width:([\d.]+)%"',
                         page)
        assert left, "clip missing from the timeline"
        assert float(left.group(1)) == pytest.approx(100 * c["start"] / duration, abs=0.01)
        assert float(left.group(2)) == pytest.approx(100 * c["duration"] / duration, abs=0.01)
    assert 'href="clips.json"' in page
    assert "http://" not in page and "https://" not in page  # nothing from the network


@pytest.mark.skipif(not Path(CHROMIUM).exists(),
                    reason="needs Debian chromium (apt-get install -y chromium)")
def test_page_plays_from_file_url_in_headless_chromium(previewed: dict, tmp_path: Path
                                                       ) -> None:
    out = previewed["out"]
    probe = out / "probe.html"  # the page plus a counter, beside it (same relative links)
    probe.write_text((out / "index.html").read_text().replace("</body>", PROBE + "</body>"))
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
            "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path / 'p'}",
            "--virtual-time-budget=8000"]
    try:
        run = subprocess.run([*args, "--dump-dom", probe.as_uri()], capture_output=True,
                             text=True, timeout=120)
        shot = tmp_path / "preview.png"
        subprocess.run([*args, "--window-size=1280,1400", f"--screenshot={shot}",
                        (out / "index.html").as_uri()], capture_output=True, timeout=120)
    finally:
        probe.unlink()
    n = len(previewed["manifest"]["clips"])
    found = re.search(r"MEDIA videos (\d+) playable (\d+) broken (\d+) images (\d+) ok (\d+) "
                      r"broken (\d+)", run.stdout)
    assert found, run.stderr[-2000:]
    assert [int(x) for x in found.groups()] == [n, n, 0, n, n, 0]
    assert shot.is_file() and shot.stat().st_size > 20_000  # a rendered page, kept for people
