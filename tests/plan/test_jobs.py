import pytest

from csctl.model import JobProblem
from csctl.plan.jobs import JobNeeds, read_needs


def test_cloud_scheduler_attributes_as_strings_or_numbers():
    as_strings = read_needs({"VMCPUCores": "8", "VMMem": "18000", "VMStorage": "160"})
    as_numbers = read_needs({"VMCPUCores": 8, "VMMem": 18000.0, "VMStorage": 160})
    assert isinstance(as_strings, JobNeeds)
    assert as_strings == as_numbers
    assert (as_strings.vm_cpus, as_strings.vm_memory, as_strings.vm_storage_gb) == (8, 18000, 160)


def test_defaults_for_a_bare_job():
    needs = read_needs({})
    assert isinstance(needs, JobNeeds)
    assert (needs.cpus, needs.memory, needs.disk_kb) == (1, 0, 0)
    assert needs.target_clouds is None and not needs.whole_vm and not needs.high_priority


def test_modern_requests_round_up():
    needs = read_needs({"RequestCpus": 2, "RequestMemory": 1999.5, "RequestDisk": 10})
    assert isinstance(needs, JobNeeds)
    assert (needs.cpus, needs.memory, needs.disk_kb) == (2, 2000, 10)


@pytest.mark.parametrize(
    ("attrs", "problem"),
    [
        ({"VMMem": "lots"}, JobProblem("VMMem", 'expected a number of MB, got "lots"')),
        ({"VMCPUCores": -2}, JobProblem("VMCPUCores", "expected a number of cores >= 1, got -2")),
        ({"RequestCpus": 0}, JobProblem("RequestCpus", "expected a number of cores >= 1, got 0")),
        ({"VMStorage": True}, JobProblem("VMStorage", "expected a number of GB, got True")),
        ({"VMMem": "nan"}, JobProblem("VMMem", 'expected a number of MB, got "nan"')),
        ({"VMJobPerCore": "maybe"}, JobProblem("VMJobPerCore", 'expected true or false, got "maybe"')),
        ({"TargetClouds": 3}, JobProblem("TargetClouds", "expected a string, got 3")),
        ({"VMAMI": "FGHotel:"}, JobProblem("VMAMI", 'expected "image" or "cloud:image,...", got "FGHotel:"')),
    ],
)
def test_garbage_is_a_problem_not_a_crash(attrs, problem):
    assert read_needs(attrs) == problem


def test_target_clouds_split_and_deduplicated():
    needs = read_needs({"TargetClouds": " FGHotel, Hermes,,FGHotel "})
    assert isinstance(needs, JobNeeds)
    assert needs.target_clouds == ("FGHotel", "Hermes")


def test_vmami_per_cloud_and_vmloc_fallback():
    per_cloud = read_needs({"VMAMI": "FGHotel:img-1,Hermes:ami-2", "VMLoc": "http://x/y.img"})
    assert isinstance(per_cloud, JobNeeds)
    assert per_cloud.image_for("FGHotel") == "img-1"
    assert per_cloud.image_for("Other") is None
    url_only = read_needs({"VMLoc": "http://images.example.org/a.img.gz"})
    assert isinstance(url_only, JobNeeds)
    assert url_only.image_for("Hermes") == "http://images.example.org/a.img.gz"
    plain = read_needs({"VMAMI": "ami-1", "VMInstanceType": "Hermes:c1.xlarge"})
    assert isinstance(plain, JobNeeds)
    assert plain.image_for("FGHotel") == "ami-1"
    assert plain.instance_type_for("Hermes") == "c1.xlarge"
    assert plain.instance_type_for("FGHotel") is None


def test_job_per_core_false_means_one_job_per_vm():
    explicit = read_needs({"VMJobPerCore": "False"})
    absent = read_needs({})
    assert isinstance(explicit, JobNeeds) and isinstance(absent, JobNeeds)
    assert explicit.whole_vm and not absent.whole_vm


def test_keepalive_price_priority():
    needs = read_needs({"VMKeepAlive": "30", "VMMaximumPrice": "0.25", "VMHighPriority": 1})
    assert isinstance(needs, JobNeeds)
    assert (needs.keep_alive_minutes, needs.max_price, needs.high_priority) == (30, 0.25, True)


@pytest.mark.parametrize(
    ("value", "arch"),
    [("x86", "INTEL"), ("i686", "INTEL"), ("x86_64", "X86_64"), (" AMD64 ", "X86_64"), ("arm64", "aarch64")],
)
def test_vmcpuarch_is_read_as_htcondor_names_the_arch(value, arch):
    needs = read_needs({"VMCPUArch": value})
    assert isinstance(needs, JobNeeds) and needs.arch == arch


def test_an_unknown_vmcpuarch_is_a_problem_not_a_crash():
    problem = read_needs({"VMCPUArch": "sparc"})
    assert isinstance(problem, JobProblem) and problem.attribute == "VMCPUArch"
    assert problem.message.startswith("expected a CPU architecture (x86, i386, ")
    assert problem.message.endswith(', got "sparc"')
    assert read_needs({"RequestCpus": 1}).arch is None  # type: ignore[union-attr]
