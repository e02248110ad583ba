"""pytest plugin: the VM player (``testbed/vm_player.py``) as a fixture, ``vm_player``.

It plays cloud instances (moto, Nova) as startds in the test pool with the local
cloud's settings of ``testbed_config`` (tests/conftest.py), so it needs the pool.
Every VM it played is stopped at teardown, also when the test failed; VMs a crashed
earlier session left behind are stopped before the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from testbed.vm_player import VMPlayer


@pytest.fixture
def vm_player(testbed_config: Any) -> Iterator[VMPlayer]:
    """A fresh :class:`VMPlayer` on the test pool; its VMs are stopped afterwards."""
    from csctl.clouds.local import Settings

    settings = Settings.model_validate(testbed_config.clouds["local"].driver_options)
    player = VMPlayer(settings, testbed_config.pool.collector)
    player.stop_strays()
    try:
        yield player
    finally:
        player.stop_all()
