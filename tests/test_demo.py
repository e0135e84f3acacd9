"""The demo's choices that stand in for a marketer's: which approved clip is the hero, and its box."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from generation.toyworld.world import Scene, render_clip
from tests import factories

pytestmark = pytest.mark.django_db

ORANGE = "#F28C28"


def _clip_showing(campaign, scene: Scene, **render) -> "factories.models.Clip":
    from generation.media import write_mp4

    frames = render_clip(scene, seed=3, num_frames=9, width=32, height=32, **render)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        write_mp4(frames, path, fps=8)
        clip = factories.ClipFactory(campaign=campaign, width=32, height=32, video=None)
        clip.video.save("clip.mp4", ContentFile(path.read_bytes()))
    return clip


@pytest.mark.slow
def test_the_hero_is_the_clip_that_shows_the_product_in_the_brand_colour_and_its_box_holds_it():
    from campaigns.management.commands.demo import HERO_BOX, _pick_hero

    campaign = factories.CampaignFactory()
    green = _clip_showing(campaign, Scene("square", "green", "still", "black"))
    orange = _clip_showing(campaign, Scene("circle", "red", "still", "blue"), colour_rgb=(242, 140, 40))
    moving = _clip_showing(campaign, Scene("circle", "purple", "right", "white"))

    hero, box = _pick_hero([green, orange, moving], brand_colour=ORANGE)
    assert hero == orange
    # The circle sits near the middle (the seed shifts it by up to 10%); the box holds it and
    # not much more: a circle 0.4 of the frame across, and a pixel each way.
    x0, y0, x1, y1 = box
    assert 0.1 < x0 < x1 < 0.9 and 0.1 < y0 < y1 < 0.9
    assert 0.4 <= x1 - x0 <= 0.55 and 0.4 <= y1 - y0 <= 0.55
    assert box != HERO_BOX

    # A moving product's box covers its path; with no product on some frame, the first clip and
    # the middle band.
    _, path_box = _pick_hero([moving], brand_colour="#800080")
    assert path_box[2] - path_box[0] > 0.55
    empty = _clip_showing(campaign, Scene("circle", "white", "still", "white"))
    assert _pick_hero([empty], brand_colour=ORANGE) == (empty, HERO_BOX)
