"""`image-test` on EC2 (moto) and Nova, with the VM player playing the booted instance."""

from __future__ import annotations

import time
from typing import Any

import pytest

from csctl.clouds.registry import make_cloud
from csctl.context.tokens import read_signing_key
from csctl.engine.imagetest import run_image_test
from csctl.plan.imagetest import Phase, Timeouts, image_test_specs
from csctl.pool.htcondor import HTCondorPool
from csctl.pool.probes import ScheddProbeQueue
from testbed.vm_player import VMPlayer, ec2_vms, nova_vms
from tests.clouds.test_vm_player import (  # noqa: F401  (nova_cloud is a fixture)
    EC2_CLOUD,
    NOVA_CLOUD,
    cloud_config,
    ec2_driver,
    nova_cloud,
)

pytestmark = pytest.mark.pool
TIMEOUTS = Timeouts(boot=60, join=60, job=120, drain=60)


def follow(player: VMPlayer, running) -> Any:
    """A sleep that lets the player follow the cloud while image-test waits."""

    def sleep(seconds: float) -> None:
        player.sync(running())
        time.sleep(seconds)

    return sleep


def played_image_test(config, cloud, cloud_name: str, image: str, flavor: str, player: VMPlayer, running):
    """Run image-test of ``image`` on ``cloud_name`` while the player plays its VM."""
    (spec,) = image_test_specs(config, cloud_name, [], image, flavor)
    pool = HTCondorPool(config.pool)
    return run_image_test(
        spec,
        config,
        cloud,
        pool,
        ScheddProbeQueue(pool),
        read_signing_key(config.pool.signing_key),
        timeouts=TIMEOUTS,
        poll=1,
        sleep=follow(player, running),
    )


def test_image_test_on_ec2(ec2, vm_player, clean_queue):
    config = cloud_config(clean_queue, ec2=ec2)
    cloud = ec2_driver(config)
    report = played_image_test(
        config, cloud, EC2_CLOUD, ec2.image_id(), "t3.micro", vm_player, lambda: ec2_vms(ec2.client())
    )
    assert report.failed_phase is None, [(p.phase.name, p.state, p.detail) for p in report.phases]
    assert report.probe is not None and report.csctl_id.startswith("hermes-")
    vm_player.sync(ec2_vms(ec2.client()))
    assert vm_player.played == {} and cloud.list_instances(config.pool.name) == []


@pytest.mark.nova
def test_image_test_on_nova(nova_api, nova_cloud, vm_player, clean_queue):  # noqa: F811
    config = cloud_config(clean_queue, nova_image=nova_api.image_id, nova_network=nova_api.network_id)
    cloud = make_cloud(NOVA_CLOUD, config.clouds[NOVA_CLOUD])
    admin = nova_cloud["admin"]
    report = played_image_test(
        config, cloud, NOVA_CLOUD, nova_api.image_id, nova_cloud["flavor"], vm_player, lambda: nova_vms(admin)
    )
    assert report.failed_phase is None, [(p.phase.name, p.state, p.detail) for p in report.phases]
    assert [p.phase for p in report.phases] == list(Phase)
    vm_player.sync(nova_vms(admin))
    assert vm_player.played == {} and cloud.list_instances(config.pool.name) == []
