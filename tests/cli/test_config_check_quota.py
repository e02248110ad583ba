"""``csctl config check --clouds`` reads each cloud's quota once, as every cycle will: on
AWS the vCPU limits need their own permission, and a refusal is a warning that says so."""

from __future__ import annotations

from pathlib import Path

from csctl.errors import ExitCode
from testbed.fixtures_moto import EC2Server
from testbed.fixtures_quotas import ServiceQuotasServer


def write(tmp_path: Path, ec2: EC2Server, service_quotas: ServiceQuotasServer) -> Path:
    path = tmp_path / "csctl.toml"
    path.write_text(
        f'state_dir = "{tmp_path}/state"\n[pool]\nname = "p"\ncollector = "127.0.0.1:1"\n'
        f'[clouds.aws]\ndriver = "ec2"\nregion = "{ec2.region}"\nprofile = "{ec2.profile}"\n'
        f'endpoint_url = "{ec2.endpoint}"\nmax_attempts = 1\n'
        f'service_quotas_endpoint_url = "{service_quotas.endpoint}"\n'
        f'[vm_types.t]\ncpus = 2\nmemory = 500\ndisk = 8\nimages = {{ aws = "{ec2.image_id()}" }}\n'
        'flavors = { aws = "m5.large" }\n'
    )
    return path


def test_a_refused_vcpu_quota_read_is_a_warning_naming_the_permission(
    csctl, tmp_path: Path, ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    config = write(tmp_path, ec2, service_quotas)
    service_quotas.error = "AccessDeniedException"

    result = csctl("config", "check", "--clouds", config=config)

    assert result.exit_code == ExitCode.OK
    assert (
        "clouds.aws: quota not read (boots keep to the configured limits): cloud aws: Service Quotas "
        "ListServiceQuotas failed: AccessDeniedException: User is not authorized to perform: "
        "servicequotas:ListServiceQuotas (grant servicequotas:ListServiceQuotas, or set "
        "vcpu_quotas = false for this cloud)"
    ) in " ".join(result.stderr.split())
    assert service_quotas.calls == ["ListServiceQuotas"]


def test_a_readable_quota_says_nothing(
    csctl, tmp_path: Path, ec2: EC2Server, service_quotas: ServiceQuotasServer
) -> None:
    config = write(tmp_path, ec2, service_quotas)
    result = csctl("config", "check", "--clouds", config=config)
    assert (result.exit_code, result.stderr) == (ExitCode.OK, "")
    assert service_quotas.calls == ["ListServiceQuotas"]
