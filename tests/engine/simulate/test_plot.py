"""``csctl simulate --plot``: the replay's timelines drawn as a PNG."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from csctl.engine.simulate import simulate
from csctl.engine.simulate.plot import MAX_PLOTTED_VARIANTS
from csctl.engine.simulate.runner import Settings
from csctl.engine.simulate.traces import Trace, parse_swf
from csctl.errors import InputError
from testbed.tracegen import bursty_jobs, swf
from tests.engine.simulate.helpers import config

SETTINGS = Settings(seed=2, cycle=300, boot_time=(240.0, 60.0))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trace() -> Trace:
    return parse_swf(swf(bursty_jobs(300, 1.5, seed=11)).splitlines(), "bursty.swf")


def _chunks(png: bytes) -> dict[bytes, bytes]:
    """The PNG's chunks by type (read independently of matplotlib), each CRC checked."""
    assert png.startswith(PNG_MAGIC)
    chunks, at = {}, len(PNG_MAGIC)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + data) == crc
        chunks[kind] = chunks.get(kind, b"") + data
        at += 12 + length
    return chunks


def test_every_cycle_is_sampled_and_the_world_ends_empty(trace: Trace):
    result = simulate(config(), trace, SETTINGS)
    [timeline] = result.timelines
    [variant] = result.variants
    assert len(timeline) == variant.cycles + 1  # one per cycle, and the end
    assert [s.t for s in timeline] == sorted(s.t for s in timeline)
    assert max(s.idle for s in timeline) > 0 and max(s.running for s in timeline) > 0
    assert all(s.running <= s.cores for s in timeline)  # one core per job at least
    peak_cores = 8 * sum(variant.peak_vms.values())
    assert max(s.cores for s in timeline) <= peak_cores
    last = timeline[-1]
    assert (last.idle, last.running, last.cores) == (0, 0, 0)
    assert "timelines" not in result.as_json()  # the JSON schema is unchanged


def test_plot_is_a_png_with_one_panel_per_variant_and_the_same_bytes_twice(trace: Trace, tmp_path: Path):
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    sets = ["vm_types.std.keep_alive_minutes=0,30"]
    simulate(config(), trace, SETTINGS, sets, plot_path=one)
    simulate(config(), trace, SETTINGS, sets, plot_path=two)
    png = one.read_bytes()
    assert png == two.read_bytes()
    width, height = struct.unpack(">II", _chunks(png)[b"IHDR"][:8])
    single = tmp_path / "single.png"
    simulate(config(), trace, SETTINGS, plot_path=single)
    _, single_height = struct.unpack(">II", _chunks(single.read_bytes())[b"IHDR"][:8])
    assert width == 1000 and height > single_height  # a second panel makes it taller
    assert one.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_dollar_in_a_label_is_text_not_mathematics(trace: Trace, tmp_path: Path):
    out = tmp_path / "dollar.png"
    simulate(config(), trace, SETTINGS, ['pool.vm_config="A = $(B)"'], plot_path=out)
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_too_many_variants_are_refused_before_any_replay(trace: Trace, tmp_path: Path):
    values = ",".join(str(v) for v in range(MAX_PLOTTED_VARIANTS + 1))
    out = tmp_path / "many.png"
    with pytest.raises(InputError, match=f"at most {MAX_PLOTTED_VARIANTS} variants; --set makes 17"):
        simulate(config(), trace, SETTINGS, [f"policy.max_new_vms_per_cycle={values}"], plot_path=out)
    assert not out.exists()
