"""``csctl config check --clouds`` against the real Nova of the test bed: a flavor whose
root disk is smaller than its VM type's disk is refused, once looked up; a cloud that
boots from volume, or a large enough flavor, passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openstack")

from csctl.errors import ExitCode  # noqa: E402
from tests.clouds.test_openstack import (  # noqa: E402 - its fixtures
    clouds_yaml as clouds_yaml,
)
from tests.clouds.test_openstack import (
    flavors as flavors,
)
from tests.clouds.test_openstack import (
    project as project,
)
from tests.clouds.test_openstack import (
    testbed_cloud as testbed_cloud,
)

pytestmark = [pytest.mark.nova, pytest.mark.filterwarnings("ignore::DeprecationWarning:openstack")]


def write(tmp_path: Path, nova_api: Any, flavor: str, disk: int, extra: str = "") -> Path:
    path = tmp_path / "csctl.toml"
    path.write_text(
        f'state_dir = "{tmp_path}/state"\n[pool]\nname = "p"\ncollector = "127.0.0.1:1"\n'
        f'[clouds.fg]\ndriver = "openstack"\ncloud = "testbed"\nnetwork = "{nova_api.network_id}"\n{extra}\n'
        f'[vm_types.t]\ncpus = 1\nmemory = 64\ndisk = {disk}\nimages = {{ fg = "{nova_api.image_id}" }}\n'
        f'flavors = {{ fg = "{flavor}" }}\n'
    )
    return path


def test_a_flavor_too_small_for_its_types_disk_is_refused(csctl, tmp_path, nova_api, flavors, testbed_cloud):
    tiny = flavors["tiny"].name
    config = write(tmp_path, nova_api, tiny, 10)

    assert csctl("config", "check", config=config).exit_code == ExitCode.OK  # nothing looked up
    result = csctl("config", "check", "--clouds", config=config)

    assert result.exit_code == ExitCode.CONFIG
    assert (
        f"{config}: vm_types.t.flavors.fg: flavor {tiny} has a 1 GB root disk, less than the VM type's "
        "10 GB: choose a larger flavor, or set boot_from_volume = true on the cloud"
    ) in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("flavor", "disk", "extra"), [("tiny", 1, ""), ("tiny", 10, "boot_from_volume = true")]
)
def test_a_flavor_that_holds_the_disk_passes(
    csctl, tmp_path, nova_api, flavors, testbed_cloud, flavor, disk, extra
):
    config = write(tmp_path, nova_api, flavors["tiny"].name, disk, extra)
    result = csctl("config", "check", "--clouds", config=config)
    assert (result.exit_code, result.stderr) == (ExitCode.OK, "")


def test_a_flavor_the_cloud_does_not_know_is_a_warning(csctl, tmp_path, nova_api, testbed_cloud):
    config = write(tmp_path, nova_api, "no.such.flavor", 10)
    result = csctl("config", "check", "--clouds", config=config)
    assert result.exit_code == ExitCode.OK
    assert "vm_types.t.flavors.fg: not checked: cloud fg: no flavor named 'no.such.flavor'" in result.stderr
