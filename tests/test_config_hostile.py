"""The configuration as untrusted input: values that would crash csctl later or inject
HTCondor configuration into a VM are refused with one line naming the file and the key
path. (Files that would hang or exhaust the loader: tests/test_config.py.)"""

from __future__ import annotations

import pytest

from csctl.config import parse_config
from csctl.errors import ConfigError, ExitCode

MINIMAL = """
[pool]
name = "pool.test"
collector = "127.0.0.1:9618"
"""
MAX_CONFIG_BYTES = 1 << 20  # documented in docs/configuration.md
EC2 = MINIMAL + '[clouds.h]\ndriver = "ec2"\nregion = "r"\n'
VM_TYPE = MINIMAL + "[vm_types.t]\ncpus = 1\nmemory = 1\ndisk = 1\nimages = {}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="csctl.toml")
    assert info.value.exit_code == ExitCode.CONFIG
    return info.value.problems


def with_vm_type(line: str) -> str:
    return VM_TYPE + line + "\n"


def with_key(section: str, key: str, value: object) -> str:
    """A valid configuration with ``section.key = value`` (a TOML literal) added."""
    if section == "vm_types.t":
        return VM_TYPE.replace(f"{key} = 1\n", "") + f"{key} = {value}\n"
    if section == "policy":
        return MINIMAL + f"[policy]\n{key} = {value}\n"
    assert section == "clouds.h"
    return EC2 + f"{key} = {value}\n"


ONE_LINE = "expected one line without control characters"


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "key", "value", "maximum"),
    [
        # 2^43 GB is 2^63 KB: past a 64-bit ClassAd integer once converted
        ("vm_types.t", "disk", 2**43, 1_048_576),
        ("vm_types.t", "cpus", 100_000, 4096),
        ("vm_types.t", "memory", 10**10, 16_777_216),
        ("vm_types.t", "keep_alive_minutes", 10**11, 525_600),
        # timedelta(minutes=...) overflows long before this
        ("policy", "join_timeout_minutes", 10**16, 525_600),
        ("policy", "max_lifetime_hours", 10**10, 8760),
        ("policy", "drain_deadline_minutes", 10**10, 525_600),
        ("policy", "vm_token_hours", 10**7, 8760),
        ("policy", "max_new_vms_per_cycle", 10**7, 1_000_000),
        ("clouds.h", "max_vms", 10**7, 1_000_000),
        ("clouds.h", "max_cores", 10**9, 100_000_000),
        ("clouds.h", "max_memory", 2**63 - 1, 10**12),
        ("clouds.h", "max_storage", 2**63 - 1, 10**12),
        ("clouds.h", "priority", 2**63 - 1, 1_000_000),
        ("clouds.h", "keep_alive_minutes", 10**10, 525_600),
    ],
)
def test_every_number_has_an_upper_bound(section, key, value, maximum):
    assert problems(with_key(section, key, value)) == [
        f"csctl.toml: {section}.{key}: expected an integer <= {maximum}, got {value}"
    ]
    assert parse_config(with_key(section, key, maximum))


def test_max_price_has_an_upper_bound():
    assert problems(with_key("clouds.h", "max_price", "1e300")) == [
        "csctl.toml: clouds.h.max_price: expected a number <= 1e+06, got 1e+300"
    ]


def test_the_bounds_leave_room_for_real_sites():
    config = parse_config(
        MINIMAL.replace(
            "[pool]", "[policy]\nmax_new_vms_per_cycle = 100000\njoin_timeout_minutes = 525600\n[pool]"
        )
        + '[clouds.h]\ndriver = "ec2"\nregion = "r"\nmax_price = 0.01\npriority = -5\nmax_memory = 400000\n'
        + '[vm_types.t]\ncpus = 448\nmemory = 12000000\ndisk = 65536\nimages = { h = "ami-1" }\n'
    )
    assert config.clouds["h"].max_price == 0.01 and config.vm_types["t"].disk == 65536


@pytest.mark.parametrize(
    ("section", "key", "expected"),
    [
        ("vm_types.t", "keep_alive_minutes", "an integer >= 0"),
        ("vm_types.t", "cpus", "an integer >= 1"),
        ("clouds.h", "max_vms", "an integer >= 0"),
        ("clouds.h", "priority", "an integer >= -1000000"),
        ("clouds.h", "max_price", "a number > 0"),
        ("policy", "join_timeout_minutes", "an integer >= 1"),
        # a driver's own numbers too
        ("clouds.h", "read_timeout", "a number"),
        ("clouds.h", "max_attempts", "an integer"),
    ],
)
def test_a_boolean_is_not_a_number(section, key, expected):
    assert problems(with_key(section, key, "true")) == [
        f"csctl.toml: {section}.{key}: expected {expected}, got True"
    ]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (EC2 + "enabled = 0\n", "clouds.h.enabled: expected true or false, got 0"),
        (EC2 + 'enabled = "yes"\n', 'clouds.h.enabled: expected true or false, got "yes"'),
        (EC2 + "private_network = 1\n", "clouds.h.private_network: expected true or false, got 1"),
        (
            EC2 + 'private_network = "false"\n',
            'clouds.h.private_network: expected true or false, got "false"',
        ),
    ],
)
def test_a_number_or_string_is_not_a_boolean(text, line):
    assert problems(text) == [f"csctl.toml: {line}"]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "+inf"])
def test_non_finite_numbers_are_refused_wherever_they_appear(value):
    got = value.lstrip("+")
    assert problems(EC2 + f"max_price = {value}\nconnect_timeout = {value}\n") == [
        f"csctl.toml: clouds.h.max_price: expected a finite number, got {got}",
        f"csctl.toml: clouds.h.connect_timeout: expected a finite number, got {got}",
    ]
    assert problems(with_vm_type(f"attributes = {{ Speed = {value} }}")) == [
        f"csctl.toml: vm_types.t.attributes.Speed: expected a finite number, got {got}"
    ]


def test_max_price_must_be_positive_when_set():
    assert problems(EC2 + "max_price = 0\n") == [
        "csctl.toml: clouds.h.max_price: expected a number > 0, got 0"
    ]
    assert problems(EC2 + "max_price = -1.5\n") == [
        "csctl.toml: clouds.h.max_price: expected a number > 0, got -1.5"
    ]
    assert parse_config(EC2).clouds["h"].max_price is None


# -- paths and strings --------------------------------------------------------------------


PATH = "expected a non-empty path without control characters"


@pytest.mark.parametrize(
    ("key", "value", "line"),
    [
        ("state_dir", '""', f'state_dir: {PATH}, got ""'),
        ("state_dir", '"  "', f'state_dir: {PATH}, got "  "'),
        ("pool.signing_key", '""', f'pool.signing_key: {PATH}, got ""'),
        ("pool.user_data_template", '""', f'pool.user_data_template: {PATH}, got ""'),
        ("state_dir", '"/var/lib/csctl\\u0000x"', f'state_dir: {ONE_LINE}, got "/var/lib/csctl\\x00x"'),
        ("pool.signing_key", '"/etc/POOL\\u0000"', f'pool.signing_key: {ONE_LINE}, got "/etc/POOL\\x00"'),
    ],
)
def test_paths_must_be_non_empty_and_free_of_nul(key, value, line):
    if key.startswith("pool."):
        text = MINIMAL + f"{key.removeprefix('pool.')} = {value}\n"
    else:
        text = f"{key} = {value}\n" + MINIMAL
    assert problems(text) == [f"csctl.toml: {line}"]


def test_no_string_anywhere_may_hold_a_control_character():
    text = EC2.replace('region = "r"', 'region = "r\\u0007"') + 'key_name = "k\\r"\n'
    text = text.replace("[pool]\n", '[pool]\nschedds = ["s\\tx"]\n')
    assert problems(text) == [
        'csctl.toml: pool.schedds.0: expected one line without control characters, got "s\\tx"',
        'csctl.toml: clouds.h.region: expected one line without control characters, got "r\\x07"',
        'csctl.toml: clouds.h.key_name: expected one line without control characters, got "k\\r"',
    ]


def test_an_odd_key_is_shown_quoted_on_one_line():
    assert problems(MINIMAL + '"ALLOW_ADMINISTRATOR = *\\nX" = 1\n') == [
        'csctl.toml: pool."ALLOW_ADMINISTRATOR = *\\nX": unknown key'
    ]


# -- what reaches a VM's HTCondor configuration --------------------------------------------


@pytest.mark.parametrize(
    "collector", ["cm.example.org", "cm.example.org:9618", "10.0.0.1:9618", "[2001:db8::1]:9618", "cm_1.site"]
)
def test_collector_accepts_host_and_port(collector):
    assert parse_config(MINIMAL.replace("127.0.0.1:9618", collector)).pool.collector == collector


@pytest.mark.parametrize(
    ("collector", "got"),
    [
        ("cm.test\\nALLOW_ADMINISTRATOR = *", None),
        ("cm.test:0", '"cm.test:0"'),
        ("cm.test:65536", '"cm.test:65536"'),
        ("cm.test 9618", '"cm.test 9618"'),
        ("http://cm.test", '"http://cm.test"'),
        ("cm.test:9618, evil", '"cm.test:9618, evil"'),
        ("", '""'),
    ],
)
def test_collector_refuses_anything_but_host_and_port(collector, got):
    (line,) = problems(MINIMAL.replace("127.0.0.1:9618", collector))
    if got is None:  # a line break: refused before the pattern is even tried
        assert line == (
            "csctl.toml: pool.collector: expected one line without control characters, "
            'got "cm.test\\nALLOW_ADMINISTRATOR = *"'
        )
    else:
        assert line == f"csctl.toml: pool.collector: expected host or host:port (port 1-65535), got {got}"


DOMAIN = "expected a domain name (letters, digits, '-', '_' and '.')"


@pytest.mark.parametrize(
    ("domain", "line"),
    [
        ("fs.test\\nALLOW_DAEMON = *", f'{ONE_LINE}, got "fs.test\\nALLOW_DAEMON = *"'),
        ("fs test", f'{DOMAIN}, got "fs test"'),
        ("$(FULL_HOSTNAME)", f'{DOMAIN}, got "$(FULL_HOSTNAME)"'),
    ],
)
def test_filesystem_domain_must_be_a_domain(domain, line):
    text = MINIMAL + f'filesystem_domain = "{domain}"\n'
    assert problems(text) == [f"csctl.toml: pool.filesystem_domain: {line}"]
    assert parse_config(MINIMAL + 'filesystem_domain = "fs.example.org"\n').pool.filesystem_domain


def test_pool_name_with_a_line_break_is_refused():
    assert problems(MINIMAL.replace('"pool.test"', '"p\\nALLOW_ADMINISTRATOR = *"')) == [
        f'csctl.toml: pool.name: {ONE_LINE}, got "p\\nALLOW_ADMINISTRATOR = *"'
    ]


def test_condor_params_keys_are_knob_names():
    assert problems(MINIMAL + '[pool.condor_params]\n"A = B\\nC" = "x"\n') == [
        "csctl.toml: pool.condor_params.\"A = B\\nC\": expected an HTCondor knob name (letters, digits, '_' "
        "and '.'), got \"A = B\\nC\""
    ]


NAME = "expected a ClassAd attribute name (letters, digits, '_')"
OWN = "expected an attribute csctl does not set itself"
VALUE = "expected true, false, a finite number or one line of text without '$('"


@pytest.mark.parametrize(
    ("attributes", "line"),
    [
        ('{ "Has CVMFS" = true }', f'"Has CVMFS": {NAME}, got "Has CVMFS"'),
        (
            '{ "X\\nALLOW_ADMINISTRATOR" = "*" }',
            f'"X\\nALLOW_ADMINISTRATOR": {NAME}, got "X\\nALLOW_ADMINISTRATOR"',
        ),
        ('{ "1st" = 1 }', f'1st: {NAME}, got "1st"'),
        ('{ CsctlId = "x" }', f'CsctlId: {OWN}, got "CsctlId"'),
        ('{ vmtype = "x" }', f'vmtype: {OWN}, got "vmtype"'),
        ('{ START = "true" }', f'START: {OWN}, got "START"'),
        ('{ ALLOW_ADMINISTRATOR = "*" }', f'ALLOW_ADMINISTRATOR: {OWN}, got "ALLOW_ADMINISTRATOR"'),
        ('{ STARTD_ATTRS = "" }', f'STARTD_ATTRS: {OWN}, got "STARTD_ATTRS"'),
        ('{ Site = "a\\nALLOW_ADMINISTRATOR = *" }', f'Site: {ONE_LINE}, got "a\\nALLOW_ADMINISTRATOR = *"'),
        ('{ Site = "$(SEC_PASSWORD_FILE)" }', f'Site: {VALUE}, got "$(SEC_PASSWORD_FILE)"'),
        ("{ Site = [1] }", f"Site: {VALUE}, got array"),
        ("{ Big = 9223372036854775808 }", "Big: expected a 64-bit integer, got 9223372036854775808"),
    ],
)
def test_attributes_are_classad_identifiers_with_one_line_values(attributes, line):
    assert problems(with_vm_type(f"attributes = {attributes}")) == [
        f"csctl.toml: vm_types.t.attributes.{line}"
    ]


def test_ordinary_attributes_are_kept():
    config = parse_config(
        with_vm_type('attributes = { HasCVMFS = true, Site = "CERN", Speed = 1.5, N = -3 }')
    )
    assert config.vm_types["t"].attributes == {"HasCVMFS": True, "Site": "CERN", "Speed": 1.5, "N": -3}


@pytest.mark.parametrize("field", ["arch", "opsys"])
def test_arch_and_opsys_are_words(field):
    assert problems(with_vm_type(f'{field} = "X86_64 || true"')) == [
        f"csctl.toml: vm_types.t.{field}: expected letters, digits or '_', got \"X86_64 || true\""
    ]


# -- pool.vm_config -----------------------------------------------------------------------


def vm_config(text: str) -> str:
    return MINIMAL + f"vm_config = '''\n{text}'''\n"


def test_vm_config_stays_free_form_site_text():
    site = (
        "# the site's own tuning\n"
        "UPDATE_INTERVAL = 60\n"
        "START = $(START) && (TARGET.RequestGpus =?= undefined)\n"
        "use feature : GPUs\n"
        "include : /etc/condor/site.local\n"
        "STARTD_CRON_JOBLIST = $(STARTD_CRON_JOBLIST) \\\n"
        "  HEALTH\n"
        "SECONDS_TO_WAIT = 5\n"  # begins like SEC_ but is not one
        "\tNUM_CPUS = 4\n"
    )
    assert parse_config(vm_config(site)).pool.vm_config == site


REASON = (
    "csctl sets the security knobs (ALLOW_*, DENY_*, SEC_*, ...), STARTD_ATTRS and its own attributes "
    "itself; put extra machine attributes in vm_types.*.attributes"
)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("ALLOW_ADMINISTRATOR = *\n", "line 1 sets ALLOW_ADMINISTRATOR"),
        ("UPDATE_INTERVAL = 5\nallow_daemon = *\n", "line 2 sets allow_daemon"),
        ("DENY_WRITE =\n", "line 1 sets DENY_WRITE"),
        ("SEC_DEFAULT_AUTHENTICATION = OPTIONAL\n", "line 1 sets SEC_DEFAULT_AUTHENTICATION"),
        ("STARTD.SEC_DEFAULT_ENCRYPTION=NEVER\n", "line 1 sets STARTD.SEC_DEFAULT_ENCRYPTION"),
        ("  HOSTALLOW_WRITE = *\n", "line 1 sets HOSTALLOW_WRITE"),
        ("TRUST_DOMAIN = other\n", "line 1 sets TRUST_DOMAIN"),
        ("STARTD_ATTRS = HasCVMFS\n", "line 1 sets STARTD_ATTRS"),
        ('CsctlPool = "other"\n', "line 1 sets CsctlPool"),
        ('VMType = "other"\n', "line 1 sets VMType"),
        ("SEC_PASSWORD_DIRECTORY @=end\n/tmp\n@end\n", "line 1 sets SEC_PASSWORD_DIRECTORY"),
        ("use SECURITY : HOST_BASED\n", "line 1 uses a SECURITY metaknob"),
        ("$(P)ALLOW_ADMINISTRATOR = *\n", "line 1 sets a knob named by a macro ($(P)ALLOW_ADMINISTRATOR)"),
        # HTCondor joins a line ending in a backslash to the next: a split name is still caught
        ("ALLOW_ADMINIS\\\nTRATOR = *\n", "line 1 sets ALLOW_ADMINISTRATOR"),
        # a comment continued onto the next line is read both ways
        ("# note \\\nALLOW_ADMINISTRATOR = *\n", "line 2 sets ALLOW_ADMINISTRATOR"),
    ],
)  # fmt: skip
def test_vm_config_may_not_override_csctls_security_settings(text, found):
    assert problems(vm_config(text)) == [f"csctl.toml: pool.vm_config: {found}: {REASON}"]


def test_vm_config_names_every_offending_line():
    (line,) = problems(vm_config("UPDATE_INTERVAL = 5\nALLOW_READ = *\nSEC_READ_AUTHENTICATION = NEVER\n"))
    assert line.startswith(
        "csctl.toml: pool.vm_config: line 2 sets ALLOW_READ; line 3 sets SEC_READ_AUTHENTICATION: "
    )


def test_vm_config_holds_lines_and_tabs_but_no_other_control_character():
    assert problems(MINIMAL + 'vm_config = "A = 1\\u0000\\nB = 2"\n') == [
        'csctl.toml: pool.vm_config: expected text without control characters, got "A = 1\\x00\\nB = 2"'
    ]
