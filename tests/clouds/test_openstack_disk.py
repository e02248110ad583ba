"""The OpenStack driver and the VM type's disk, and images registered for a job's image
URL, against the real Nova of the test bed (whose harness fakes Cinder and Glance).

Boot-from-volume is checked twice: the request Nova receives (recorded on the
connection's HTTP session, the process edge) and what Nova made of it (the server's
volume attachment, made through the harness' Cinder)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("openstack")

from csctl.clouds.openstack import Driver  # noqa: E402
from csctl.errors import CloudBadRequest  # noqa: E402
from csctl.model import TAG_SOURCE_URL, VMState  # noqa: E402
from tests.clouds.test_openstack import (  # noqa: E402
    Calls,
    make_driver,
    make_request,
    wait_for,
)
from tests.clouds.test_openstack import (  # noqa: E402 - its fixtures
    clouds_yaml as clouds_yaml,
)
from tests.clouds.test_openstack import (
    driver as driver,
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

URL = "https://images.example.org/cernvm4-micro.hdd"


def test_a_flavor_smaller_than_the_types_disk_is_refused_before_booting(
    nova_api: Any, flavors: Any, driver: Driver
) -> None:
    calls = Calls(driver)
    with pytest.raises(CloudBadRequest) as err:
        driver.boot(make_request(nova_api, flavors, count=1, disk_gb=10))
    tiny = flavors["tiny"].id
    assert err.value.message == (
        f"cloud hermes: VM type pandacernvm: flavor {tiny} has a 1 GB root disk, less than the VM type's "
        "10 GB: choose a larger flavor, or set boot_from_volume = true on the cloud"
    )
    assert "POST /servers" not in calls.requests


def test_a_flavor_large_enough_boots_without_an_extra_call(
    nova_api: Any, flavors: Any, driver: Driver
) -> None:
    calls = Calls(driver)
    (vm,) = driver.boot(make_request(nova_api, flavors, count=1, disk_gb=1))
    assert calls.requests == ["GET /flavors/{id}", "POST /servers", "GET /servers/detail"]
    assert vm.state in (VMState.BOOTING, VMState.RUNNING)


def test_check_flavor_says_why_a_flavor_is_too_small(nova_api: Any, flavors: Any, driver: Driver) -> None:
    tiny, huge = flavors["tiny"], flavors["huge"]
    assert driver.check_flavor(tiny.name, 10) == (
        f"flavor {tiny.name} has a 1 GB root disk, less than the VM type's 10 GB: choose a larger flavor, "
        "or set boot_from_volume = true on the cloud"
    )
    assert driver.check_flavor(tiny.id, 1) is None
    assert driver.check_flavor(huge.name, 10) is None
    assert make_driver(nova_api, boot_from_volume=True).check_flavor(tiny.name, 10) is None


def test_boot_from_volume_sizes_the_root_disk_to_the_type(
    nova_api: Any, flavors: Any, testbed_cloud: str
) -> None:
    driver = make_driver(nova_api, boot_from_volume=True)
    calls = Calls(driver)

    (vm,) = driver.boot(make_request(nova_api, flavors, count=1, disk_gb=10))

    server = calls.body("POST /servers")["server"]
    assert "imageRef" not in server
    assert server["block_device_mapping_v2"] == [
        {
            "boot_index": 0,
            "uuid": nova_api.image_id,
            "source_type": "image",
            "destination_type": "volume",
            "volume_size": 10,
            "delete_on_termination": True,
        }
    ]
    (active,) = wait_for(driver, lambda vms: bool(vms) and vms[0].state is VMState.RUNNING)
    attached = list(driver.conn.compute.volume_attachments(active.provider_id))
    assert len(attached) == 1  # Nova made the volume through Cinder and boots from it


def test_an_image_carrying_the_url_as_property_is_found(nova_api: Any, driver: Driver) -> None:
    admin = nova_api.connect(admin=True)
    admin.compute.set_image_metadata(nova_api.image_id, **{TAG_SOURCE_URL: URL})
    try:
        assert driver.find_image(URL) == nova_api.image_id
    finally:
        admin.compute.delete_image_metadata(nova_api.image_id, [TAG_SOURCE_URL])
    assert driver.find_image(URL) is None


def test_an_image_named_as_asked_is_found_in_one_call(nova_api: Any, driver: Driver) -> None:
    image = driver.conn.compute.get_image(nova_api.image_id)
    calls = Calls(driver)
    found = driver.find_image(image.name)
    assert calls.requests == ["GET /images/detail"]
    assert found is not None and driver.conn.compute.get_image(found).name == image.name
