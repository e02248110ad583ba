"""csctl's shared vocabulary: the data both the planners and the engine speak, and the
two adapter protocols (``Cloud``, ``Pool``) the engine acts through.

Everything here is plain data or a Protocol: no SDK, no I/O. ``csctl/plan/`` decides
from these types, ``csctl/engine/`` gathers and acts on them, and the drivers under
``csctl/clouds/`` and ``csctl/pool/`` produce them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

# -- clouds ------------------------------------------------------------------------------

# Tag / metadata keys csctl writes on every instance it boots.
TAG_POOL = "csctl-pool"
TAG_TYPE = "csctl-type"
TAG_CLOUD = "csctl-cloud"
TAG_BATCH = "csctl-batch"
TAG_BOOTED = "csctl-booted"
TAG_JOINED = "csctl-joined"  # set once, when a cycle first sees the VM's startd
# "1" on a VM booted with one static slot for one job (VMJobPerCore = false jobs)
TAG_SLOTS = "csctl-slots"
# An image property (OpenStack) or tag (EC2) naming the URL a job's VMLoc gives for it.
TAG_SOURCE_URL = "csctl-source-url"


def vm_id(batch_id: str, launch_index: int) -> str:
    """The csctl id of the ``launch_index``-th VM (0-based) of a boot batch.

    One boot call starts a batch of identical VMs sharing one user-data payload
    (EC2 MinCount/MaxCount, Nova min/max count); each VM learns its launch index from
    its cloud's metadata service (EC2 ``ami-launch-index``, OpenStack
    ``launch_index``), and the cloud lists it, so both sides derive the same id.
    """
    return f"{batch_id}-{launch_index}"


def batch_of(csctl_id: str) -> str:
    """The boot batch a VM belongs to (its id without the launch index)."""
    return csctl_id.rsplit("-", 1)[0]


class VMState(StrEnum):
    """Provider states, normalised."""

    BOOTING = "booting"
    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"
    ERROR = "error"


@dataclass(frozen=True)
class Instance:
    """One csctl-owned instance as a cloud lists it. ``csctl_id`` is ``vm_id(batch, index)``."""

    csctl_id: str
    cloud: str
    vm_type: str
    state: VMState
    provider_id: str
    booted_at: datetime | None = None
    address: str | None = None
    fault: str | None = None
    image: str | None = None
    joined_at: datetime | None = None  # from TAG_JOINED: the VM joined the pool once
    single_slot: bool = False  # from TAG_SLOTS: one static slot, one job at a time


@dataclass(frozen=True)
class BootRequest:
    """Boot up to ``count`` identical VMs of one type on one cloud in ONE API call.

    ``batch_id`` (``<cloud>-<short uuid>``) names the batch: instance names start with
    it and ``tags`` (pool, type, cloud, batch, boot time) go on every instance.
    ``user_data`` is the one payload all VMs of the batch receive (already gzipped
    where the cloud needs it). ``max_price`` asks for spot capacity at that bid.
    ``zone`` is one of the cloud's ``zones`` to boot in (None: where the cloud chooses);
    ``disk_gb`` the root disk the VM type promises, sized at boot where the cloud can.
    """

    batch_id: str
    vm_type: str
    count: int
    image: str
    flavor: str | None
    user_data: bytes
    tags: Mapping[str, str] = field(default_factory=dict)
    max_price: float | None = None
    zone: str | None = None
    disk_gb: int | None = None


@dataclass(frozen=True)
class VcpuLimit:
    """vCPUs left under one of a cloud's limits that count only some instance types: on EC2
    one per group of instance families and market (on-demand or spot), as Service Quotas
    sets them. ``families`` are the leading letters of an instance type's family
    ("m" for m5.large, "inf" for inf2.xlarge)."""

    name: str
    families: frozenset[str]
    spot: bool
    left: int

    def covers(self, flavor: str | None, spot: bool) -> bool:
        """Whether a VM of instance type ``flavor`` (spot or not) counts against this limit."""
        return flavor is not None and spot == self.spot and family_letters(flavor) in self.families


def family_letters(instance_type: str) -> str:
    """The leading letters of an instance type's family: "m" for m5.large, "im" for im4gn.large."""
    family = instance_type.split(".", 1)[0].lower()
    end = 0
    while end < len(family) and family[end].isalpha():
        end += 1
    return family[:end]


@dataclass(frozen=True)
class Quota:
    """Remaining room on a cloud as its API reports it; None where it does not say.
    ``vcpus`` are limits that count some instance types only (EC2's vCPU limits).
    ``error`` is set by the snapshot when the quota call failed: the room is unknown."""

    instances: int | None = None
    cores: int | None = None
    memory_mb: int | None = None
    error: str | None = None
    vcpus: tuple[VcpuLimit, ...] = ()

    def vcpu_limit(self, flavor: str | None, spot: bool) -> VcpuLimit | None:
        """The vCPU limit a VM of this instance type and market counts against, if any."""
        return next((v for v in self.vcpus if v.covers(flavor, spot)), None)


class Cloud(Protocol):
    """A cloud csctl can boot on. One instance of a driver serves one configured cloud.

    ``metadata_service`` tells the VM where to find its launch index ("ec2",
    "openstack" or "none"); ``user_data_limit`` is the API's cap in bytes, if any;
    ``private_network`` says the VMs get no public address, so they join through CCB.
    ``zones`` are the zones or subnets a boot may name, in the order to try them (empty:
    the cloud chooses). Drivers of the ``csctl.clouds.v1`` entry-point group written
    before ``zones`` and ``find_image`` existed lack them: the engine reads them with
    defaults (no zones, no registered images). A driver may add ``survey``
    (csctl/model/survey.py: its instances and quota from fewer calls); none need it.
    """

    name: str
    metadata_service: str
    user_data_limit: int | None
    private_network: bool
    zones: tuple[str, ...]

    def list_instances(self, pool: str) -> list[Instance]:
        """Every instance tagged for ``pool`` by csctl, in one (paginated) list call."""
        ...

    def boot(self, request: BootRequest) -> list[Instance]:
        """Boot the request's VMs in one call. Returns the instances started, fewer than
        asked when the cloud granted fewer. Raises a CloudError subclass when none
        started (CloudQuotaError for quota or capacity, so the caller may ask for less)."""
        ...

    def terminate(self, instances: Sequence[Instance]) -> list[str]:
        """Terminate the given instances; return the csctl ids the cloud accepted."""
        ...

    def mark_joined(self, instances: Sequence[Instance], when: datetime) -> list[str]:
        """Record on each instance (tag or metadata TAG_JOINED = when, ISO 8601 UTC) that its
        VM joined the pool; return the csctl ids recorded. One call per cloud where the API
        allows; raises a CloudError subclass on failure."""
        ...

    def console_output(self, instance: Instance) -> str:
        """The instance's console log, or an empty string where the cloud keeps none."""
        ...

    def quota(self) -> Quota:
        """Remaining room, where the API offers it; ``Quota()`` otherwise. Raises a
        CloudError subclass when the API cannot be asked: the snapshot reports it and
        plans that cloud within its configured limits alone."""
        ...

    def find_image(self, url: str) -> str | None:
        """The image registered on this cloud for the image URL ``url`` (a job's VMLoc):
        one named ``url``, or one whose property or tag ``csctl-source-url`` is ``url``.
        None when there is none; a CloudError when the cloud cannot be asked."""
        ...


# -- the pool ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobProblem:
    """A job (group) csctl cannot serve because of its own attributes."""

    attribute: str
    message: str


@dataclass
class JobGroup:
    """Idle jobs with identical significant attributes (an autocluster), evaluated once."""

    ad: Any  # a classad2.ClassAd of one member
    count: int
    sample_ids: list[str]
    schedd: str = ""
    problem: JobProblem | None = None  # set when the ad itself could not be read


@dataclass(frozen=True)
class SupplyVM:
    """Room csctl already has: a VM still booting (full capacity) or free resources on a
    joined VM's partitionable slot."""

    csctl_id: str
    vm_type: str
    cloud: str
    cpus: int
    memory: int
    disk_kb: int
    booting: bool
    single_slot: bool = False  # one static slot: whatever its room, it takes one job


@dataclass(frozen=True)
class StartdSlot:
    """One slot ad of a csctl VM, reduced to what the planners use."""

    name: str
    machine: str
    csctl_id: str
    vm_type: str
    cloud: str
    slot_type: str
    state: str
    activity: str
    cpus: int
    memory: int
    disk_kb: int
    draining: bool = False
    address: str | None = None
    job_id: str | None = None
    entered_state: int | None = None
    # when a partitionable slot last gained or lost a dynamic slot: its EnteredCurrentState
    # stays at the VM's join while jobs come and go
    dynamic_slots_changed: int | None = None
    drain_started: int | None = None  # LastDrainStartTime, epoch seconds
    # a partitionable slot's own count of its dynamic slots (NumDynamicSlots): published in
    # the same ad as its Draining flag, while a new dynamic slot's ad may reach the collector later
    dynamic_slots: int = 0
    image_test: str | None = None  # CsctlImageTest: the VM belongs to `csctl image-test`
    keep_alive_minutes: int | None = None  # CsctlKeepAlive: the VMKeepAlive it was booted for
    max_job_retirement_seconds: int | None = None  # MaxJobRetirementTime, when a number

    @property
    def in_use(self) -> bool:
        """Whether this slot, or a dynamic slot carved from it, holds a claim."""
        return self.state == "Claimed" or self.dynamic_slots > 0

    @property
    def free(self) -> bool:
        """Whether the slot's resources can still take a job."""
        if self.draining or self.image_test:
            return False  # an image under test admits only its probe job
        return self.slot_type == "Partitionable" or self.state == "Unclaimed"


@dataclass(frozen=True)
class DrainTarget:
    """A VM to drain: the address of its startd and a token it accepts (named by key)."""

    csctl_id: str
    address: str
    token: str
    key_name: str


@dataclass
class QueueSnapshot:
    """Idle jobs of every schedd that answered; ``errors`` names those that did not."""

    groups: list[JobGroup]
    schedds: list[str]
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FinishedJob:
    """A job that left a schedd's queue after running on a csctl VM, from the job history.
    ``job`` is its GlobalJobId; ``owner`` and ``group`` are the submitter's own words
    (untrusted); times are epoch seconds, ``cpu`` is RemoteUserCpu + RemoteSysCpu."""

    job: str
    schedd: str
    csctl_id: str
    owner: str
    group: str | None
    cores: int
    wall: int
    cpu: float
    ended: int


@dataclass
class JobHistory:
    """What one read of the schedds' histories found: the jobs, where each schedd's read
    stopped (``marks``: schedd -> job id, to resume from), one error per schedd that failed."""

    jobs: list[FinishedJob] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Pool(Protocol):
    """The pool: its idle jobs, csctl's slots, and draining csctl's VMs."""

    def idle_jobs(self) -> QueueSnapshot:
        """Idle jobs of the configured schedds (all known ones if none configured),
        grouped into autoclusters. Raises PoolUnreachable if no schedd can be read."""
        ...

    def csctl_slots(self) -> list[StartdSlot]:
        """Slot ads of every startd carrying this pool's csctl id, in one collector query."""
        ...

    def running_jobs(self) -> tuple[dict[str, list[str]], list[str]]:
        """csctl id -> the jobs the schedds run on that VM, as the job ads name it (they
        outlive a collector restart); and one error per schedd that did not answer."""
        ...

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        """Drain each target gracefully; csctl id -> None if accepted, else the error."""
        ...

    def job_history(self, marks: Mapping[str, str]) -> JobHistory:
        """Jobs that ran on csctl VMs and left the queue since each schedd's mark (all of
        them for a schedd without one): one projected history query per schedd. A schedd
        that fails is named in ``errors`` and keeps its mark."""
        ...

    def advertise(self, ads: Sequence[Mapping[str, Any]]) -> None:
        """Put ``ads`` (each with MyType and Name) in the collector, replacing the ads of the
        same type and name. Raises PoolUnreachable when the collector refuses them."""
        ...

    def invalidate(self, ad_type: str, names: Sequence[str]) -> None:
        """Withdraw the collector's ads of ``ad_type`` with these names (gone already is
        fine). Raises PoolUnreachable when the collector refuses."""
        ...


@runtime_checkable
class Accountant(Protocol):
    """A pool whose negotiator can tell its users' priorities (``fair_share = "htcondor"``)."""

    def user_priorities(self) -> dict[str, float]:
        """Accountant record ``Name`` -> effective priority, as ``condor_userprio`` shows
        (lower is better). Raises PoolUnreachable when the negotiator cannot be asked."""
        ...


# -- one look at the world ---------------------------------------------------------------


@dataclass
class Snapshot:
    """What csctl saw in one cycle. ``errors`` names the schedds and clouds that failed;
    ``pool_errors`` those of them on the pool's side (a schedd, the collector), which
    make the view of the pool incomplete. ``running`` maps a csctl id to the jobs the
    schedds say run on that VM (from the job ads, which outlive a collector restart)."""

    groups: list[JobGroup] = field(default_factory=list)
    slots: list[StartdSlot] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_clouds: set[str] = field(default_factory=set)
    pool_errors: list[str] = field(default_factory=list)
    running: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # instances and ads set aside, and why
    cloud_errors: dict[str, str] = field(default_factory=dict)  # cloud -> why it could not be listed
    quotas: dict[str, Quota] = field(default_factory=dict)  # cloud -> its quota call's answer
    priorities: dict[str, float] = field(default_factory=dict)  # accountant Name -> effective priority
