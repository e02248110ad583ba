"""Matching rules: a job's Requirements evaluated against synthetic VM ads."""

import classad2
import pytest

from csctl.config import parse_config
from csctl.plan.jobs import JobNeeds, read_needs
from csctl.plan.matching import Candidate, Matcher, Unservable

TWO_TYPES = """
[pool]
name = "pool.test"
collector = "127.0.0.1"
filesystem_domain = "test.domain"

[clouds.FGHotel]
driver = "openstack"
cloud = "fg"
[clouds.Hermes]
driver = "ec2"
region = "r"
[clouds.Off]
driver = "local"
enabled = false

[vm_types.pandacernvm]
cpus = 8
memory = 18000
disk = 160
images = { FGHotel = "cernvm", Hermes = "ami-1", Off = "x" }

[vm_types.small]
cpus = 1
memory = 2000
disk = 10
arch = "aarch64"
images = { Hermes = "ami-small" }
attributes = { HasCVMFS = true }
"""


@pytest.fixture
def config():
    return parse_config(TWO_TYPES)


def job(requirements: str | None = None, **attrs):
    ad = classad2.ClassAd(attrs)
    if requirements is not None:
        ad["Requirements"] = classad2.ExprTree(requirements)
    return ad


def choose(config, ad):
    needs = read_needs({k: ad.eval(k) for k in ad if k != "Requirements"})
    assert isinstance(needs, JobNeeds)
    return Matcher(config).choose(ad, needs)


def test_seed_requirements_name_the_machines_vmtype(config):
    ad = job('VMType =?= "pandacernvm" && Target.Arch == "X86_64"', VMMem="18000")
    assert choose(config, ad) == Candidate("pandacernvm", ("FGHotel", "Hermes"))


def test_requirements_choose_the_second_type(config):
    ad = job('TARGET.Arch == "aarch64" && HasCVMFS')
    assert choose(config, ad) == Candidate("small", ("Hermes",))


def test_job_setting_vmtype_itself_is_restricted_to_that_type(config):
    # with +VMType set, `VMType =?= "small"` resolves in the job and is true everywhere;
    # csctl must still only offer the job's own type
    ad = job('VMType =?= "small"', VMType="small")
    assert choose(config, ad) == Candidate("small", ("Hermes",))


def test_unknown_vmtype(config):
    ad = job("true", VMType="gpu")
    assert choose(config, ad) == Unservable(
        ('VMType "gpu" is not a configured VM type (known: pandacernvm, small)',)
    )


def test_target_clouds_filter_and_disabled_cloud(config):
    ad = job('VMType =?= "pandacernvm"', TargetClouds="Hermes,Off")
    assert choose(config, ad) == Candidate("pandacernvm", ("Hermes",))


def test_target_clouds_all_unknown(config):
    ad = job("true", TargetClouds="Mars")
    assert choose(config, ad) == Unservable(
        ("TargetClouds names unknown cloud(s) Mars (known: FGHotel, Hermes, Off)",)
    )


def test_more_memory_than_any_type(config):
    ad = job("true", VMMem=30000)
    assert choose(config, ad) == Unservable(
        (
            "asks 30000 MB of memory; VM type pandacernvm has 18000 MB",
            "asks 30000 MB of memory; VM type small has 2000 MB",
        )
    )


def test_requirements_false_everywhere_explains_missing_attribute(config):
    ad = job("TARGET.HasGPU == true")
    result = choose(config, ad)
    assert isinstance(result, Unservable)
    assert result.reasons[0] == (
        "Requirements is false on VM type pandacernvm "
        "(refers to TARGET.HasGPU, which the VM type does not define)"
    )


def test_request_memory_expression_evaluated_in_job_context(config):
    # condor_submit's default RequestMemory refers to MemoryUsage/ImageSize of the job
    ad = job(
        "TARGET.Memory >= RequestMemory",
        RequestMemory=classad2.ExprTree(
            "ifthenelse(MemoryUsage =!= undefined, MemoryUsage, (ImageSize + 1023) / 1024)"
        ),
        ImageSize=10 * 1024 * 1024,
    )
    assert choose(config, ad) == Candidate("pandacernvm", ("FGHotel", "Hermes"))


def test_file_system_domain_from_pool(config):
    ad = job("TARGET.FileSystemDomain == MY.FileSystemDomain", FileSystemDomain="test.domain")
    assert choose(config, ad) == Candidate("pandacernvm", ("FGHotel", "Hermes"))
    other = job("TARGET.FileSystemDomain == MY.FileSystemDomain", FileSystemDomain="elsewhere")
    assert isinstance(choose(config, other), Unservable)


def test_job_image_override_opens_a_cloud_without_configured_image(config):
    ad = job('TARGET.Arch == "aarch64"', VMAMI="FGHotel:my-arm-image")
    assert choose(config, ad) == Candidate("small", ("FGHotel", "Hermes"))


def test_explain_names_a_target_attribute_the_job_has_but_the_vm_lacks():
    cfg = parse_config(TWO_TYPES.replace('filesystem_domain = "test.domain"\n', ""))
    ad = job("TARGET.FileSystemDomain == MY.FileSystemDomain", FileSystemDomain="x")
    result = choose(cfg, ad)
    assert isinstance(result, Unservable)
    assert result.reasons[0] == (
        "Requirements is false on VM type pandacernvm "
        "(refers to TARGET.FileSystemDomain, which the VM type does not define); "
        "set pool.filesystem_domain in the configuration to the pool's FILESYSTEM_DOMAIN"
    )


def test_explain_ignores_guarded_job_attributes(config):
    # condor_submit 23's RequestMemory refers to MemoryUsage, undefined until the job ran
    ad = job(
        "TARGET.HasGPU && TARGET.Memory >= RequestMemory",
        RequestMemory=classad2.ExprTree("ifthenelse(MemoryUsage =!= undefined, MemoryUsage, 1)"),
    )
    result = choose(config, ad)
    assert isinstance(result, Unservable)
    assert result.reasons[0].endswith("(refers to TARGET.HasGPU, which the VM type does not define)")


@pytest.mark.parametrize(
    ("arch", "chosen"), [("x86_64", "pandacernvm"), ("X86_64", "pandacernvm"), ("arm64", "small")]
)
def test_vmcpuarch_chooses_a_type_of_that_architecture(config, arch, chosen):
    # the seed era's VMCPUArch is honoured as a job's Requirements on Arch would be
    assert choose(config, job("true", VMCPUArch=arch)).vm_type == chosen


def test_vmcpuarch_no_type_has(config):
    assert choose(config, job("true", VMCPUArch="x86")) == Unservable(
        (
            "asks VMCPUArch INTEL; VM type pandacernvm is X86_64",
            "asks VMCPUArch INTEL; VM type small is aarch64",
        )
    )
