"""A value that would break out of its line never reaches a VM's HTCondor configuration,
even in a Config that was built without validation."""

from __future__ import annotations

from typing import Any

import pytest

from csctl.config import Config, parse_config
from csctl.context.render import Batch, condor_config
from csctl.errors import ConfigError, CsctlError

CONFIG = """
[pool]
name = "pool.test"
collector = "cm.test:9618"
filesystem_domain = "fs.test"
vm_config = "UPDATE_INTERVAL = 60"
[clouds.FG]
driver = "openstack"
cloud = "fg"
[vm_types.t]
cpus = 8
memory = 16000
disk = 100
images = { FG = "img" }
attributes = { HasCVMFS = true }
"""
BATCH = Batch("fg-0123abcd", "t", "FG", "openstack")
INJECTED = "x\nALLOW_ADMINISTRATOR = *"


def with_pool(**update: Any) -> Config:
    """The configuration with pool keys replaced, as no loader would let them through."""
    config = parse_config(CONFIG)
    return config.model_copy(update={"pool": config.pool.model_copy(update=update)})


def with_attributes(attributes: dict[str, Any]) -> Config:
    config = parse_config(CONFIG)
    vm_type = config.vm_types["t"].model_copy(update={"attributes": attributes})
    return config.model_copy(update={"vm_types": {"t": vm_type}})


def refusal(config: Config) -> str:
    with pytest.raises(CsctlError) as info:
        condor_config(config, BATCH)
    assert "\n" not in info.value.message
    return info.value.message


@pytest.mark.parametrize(
    ("key", "line"),
    [
        ("collector", 'CONDOR_HOST = x\\nALLOW_ADMINISTRATOR = *"'),
        ("name", 'TRUST_DOMAIN = x\\nALLOW_ADMINISTRATOR = *"'),
        ("filesystem_domain", 'FILESYSTEM_DOMAIN = x\\nALLOW_ADMINISTRATOR = *"'),
    ],
)
def test_a_pool_value_with_a_line_break_is_refused(key, line):
    message = refusal(with_pool(**{key: INJECTED}))
    assert message == (
        "refusing to write a line break or control character into a VM's HTCondor configuration: "
        + f'"{line}'
    )


def test_a_carriage_return_or_nul_is_refused_too():
    assert "CONDOR_HOST = cm\\r" in refusal(with_pool(collector="cm\r"))
    assert "FILESYSTEM_DOMAIN = fs\\x00" in refusal(with_pool(filesystem_domain="fs\0"))


def test_an_attribute_name_that_is_not_an_identifier_is_refused():
    message = refusal(with_attributes({"X = 1\nALLOW_ADMINISTRATOR": "*"}))
    assert message == (
        'refusing to write attribute "X = 1\\nALLOW_ADMINISTRATOR" into a VM\'s HTCondor configuration'
    )
    assert "refusing to write attribute" in refusal(with_attributes({"Has CVMFS": True}))


def test_an_attribute_value_stays_on_its_line():
    text = condor_config(with_attributes({"Site": INJECTED}), BATCH)
    assert 'Site = "x\\nALLOW_ADMINISTRATOR = *"' in text.splitlines()
    assert [line for line in text.splitlines() if line.startswith("ALLOW_ADMINISTRATOR")] == [
        "ALLOW_ADMINISTRATOR = csctl@pool.test"
    ]


def test_vm_config_keeps_its_lines_but_no_other_control_character():
    text = condor_config(with_pool(vm_config="A = 1\n\tB = 2\n"), BATCH)
    assert text.endswith("# site additions (pool.vm_config)\nA = 1\n\tB = 2\n")
    message = refusal(with_pool(vm_config="A = 1\r\nB = 2\0"))
    assert message == (
        "refusing to write a control character into a VM's HTCondor configuration: "
        'pool.vm_config "A = 1\\r\\nB = 2\\x00"'
    )


def test_the_refusal_points_at_config_check():
    with pytest.raises(CsctlError) as info:
        condor_config(with_pool(collector=INJECTED), BATCH)
    assert info.value.hint == "check the configuration with: csctl config check"


@pytest.mark.parametrize(
    "line", ['collector = "cm.test:9618"', 'filesystem_domain = "fs.test"', 'name = "pool.test"']
)
def test_the_loader_refuses_the_same_values_first(line):
    key = line.split(" = ")[0]
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG.replace(line, f'{key} = "x\\nALLOW_ADMINISTRATOR = *"'))
    why = 'expected one line without control characters, got "x\\nALLOW_ADMINISTRATOR = *"'
    assert info.value.problems == [f"csctl.toml: pool.{key}: {why}"]


def test_an_ipv6_collector_keeps_its_brackets_in_condor_host():
    text = condor_config(parse_config(CONFIG.replace("cm.test:9618", "[2001:db8::1]:9618")), BATCH)
    assert "CONDOR_HOST = [2001:db8::1]" in text.splitlines()
    assert "COLLECTOR_HOST = [2001:db8::1]:9618" in text.splitlines()
