"""Which configured VM types (on which clouds) can run a job — decided HTCondor's way.

The job's own ``Requirements`` is evaluated against a synthetic machine ad of each
(VM type, cloud), exactly as the negotiator will later evaluate it against the
VM's startd. This works from zero VMs and understands any expression users write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from csctl.config import Config, VMTypeConfig
from csctl.model import JobProblem
from csctl.plan import attributes as A
from csctl.plan import guard
from csctl.plan.jobs import JobNeeds
from csctl.plan.text import shown

KB_PER_GB = 1024 * 1024
_UNREAD = object()
_CIRCLE = object()
_MAX_SPLIT_KEPT = 64  # parsed clauses of long blacklists kept for the next job
# the only attributes in which machine ads of one VM type differ between clouds
CLOUD_VARYING = frozenset({"name", A.CLOUD_NAME.lower(), A.CSCTL_CLOUD.lower()})


@dataclass(frozen=True)
class Candidate:
    """The VM type chosen for a job, and the clouds where that type may boot for it."""

    vm_type: str
    clouds: tuple[str, ...]


@dataclass(frozen=True)
class Unservable:
    """No VM type can serve the job; ``reasons`` says why, one line each."""

    reasons: tuple[str, ...]


def machine_ad_attributes(config: Config, type_name: str, cloud: str) -> dict[str, Any]:
    """The ad a freshly booted VM of ``type_name`` on ``cloud`` will advertise (one
    partitionable slot holding the whole VM)."""
    vm_type = config.vm_types[type_name]
    attrs: dict[str, Any] = {
        "MyType": "Machine",
        "Name": f"slot1@csctl-{type_name}-{cloud}",
        # a host name no blacklist (Machine != "wn1" && ...) can name yet
        "Machine": f"csctl-{type_name}",
        "Arch": vm_type.arch,
        "OpSys": vm_type.opsys,
        "Cpus": vm_type.cpus,
        "TotalCpus": vm_type.cpus,
        "Memory": vm_type.memory,
        "TotalMemory": vm_type.memory,
        "Disk": vm_type.disk * KB_PER_GB,
        "TotalDisk": vm_type.disk * KB_PER_GB,
        "SlotType": "Partitionable",
        "PartitionableSlot": True,
        "HasFileTransfer": True,
        "Start": True,
        # condor_submit >= 25 writes versionGE(split(TARGET.CondorVersion)[1], ...) into
        # Requirements: without a version the whole expression is ERROR
        "CondorVersion": f"$CondorVersion: {vm_type.condor_version} $",
        A.VM_TYPE: type_name,
        A.CLOUD_NAME: cloud,
        A.CSCTL_TYPE: type_name,
        A.CSCTL_CLOUD: cloud,
        A.CSCTL_POOL: config.pool.name,
    }
    if config.pool.filesystem_domain:
        attrs["FileSystemDomain"] = config.pool.filesystem_domain
        attrs["UidDomain"] = config.pool.filesystem_domain
    attrs.update(vm_type.attributes)
    return attrs


class Matcher:
    """Evaluates jobs against every (VM type, cloud); machine ads are built once."""

    def __init__(self, config: Config) -> None:
        import classad2

        self._config = config
        self._clauses: dict[str, list[Any]] = {}  # Requirements text -> its parsed clauses
        self._ref_kinds: dict[tuple[str, ...], tuple[bool, bool]] = {}
        self._candidates: dict[tuple[str, tuple[str, ...]], Candidate] = {}
        self._enabled = [c for c, cc in config.clouds.items() if cc.enabled]
        # per VM type, the enabled clouds with an image of it: most jobs name neither
        # clouds nor images, and need no list of their own
        self._imaged = {
            t: [c for c in self._enabled if c in vm_type.images] for t, vm_type in config.vm_types.items()
        }
        self._ads = {
            (t, c): classad2.ClassAd(machine_ad_attributes(config, t, c))
            for t in config.vm_types
            for c in config.clouds
        }

    def choose(self, job_ad: Any, needs: JobNeeds) -> Candidate | Unservable:
        """The first VM type (configuration order) that can run the job, with its clouds."""
        config = self._config
        reasons = _job_level_reasons(config, needs)
        if reasons:
            return Unservable(tuple(reasons))
        allowed = self._enabled
        requirements: Any = _UNREAD  # read once, and only when a VM type gets that far
        if needs.target_clouds is not None:
            allowed = [c for c in allowed if c in needs.target_clouds]
        for type_name, vm_type in config.vm_types.items():
            if needs.vm_type is not None and type_name != needs.vm_type:
                continue
            misfit = _resource_misfit(type_name, vm_type, needs)
            if misfit:
                reasons.append(misfit)
                continue
            if needs.images:
                clouds = [c for c in allowed if needs.image_for(c) or c in vm_type.images]
            elif allowed is self._enabled:
                clouds = self._imaged[type_name]
            else:
                clouds = [c for c in allowed if c in vm_type.images]
            if not clouds:
                where = ", ".join(allowed) or "no enabled cloud"
                reasons.append(f"VM type {type_name} has no image on {where}")
                continue
            if requirements is _UNREAD:
                requirements = self._read_requirements(job_ad)
            matched = self._matching_clouds(job_ad, requirements, type_name, clouds)
            if matched:
                candidate = self._candidates.get((type_name, matched))
                if candidate is None:  # one object per distinct choice, not per job
                    candidate = self._candidates[(type_name, matched)] = Candidate(type_name, matched)
                return candidate
            reasons.append(self._requirements_reason(job_ad, type_name, clouds[0]))
        return Unservable(tuple(reasons) or ("no VM type is configured",))

    def _read_requirements(self, job_ad: Any) -> tuple[Any, bool, bool] | None:
        """The job's Requirements (None when it has none), whether it refers to a name
        in which clouds differ (``CLOUD_VARYING``), and whether to names neither scoped
        to the machine nor defined by the job. Read once per job, whatever the VM types;
        the last two are remembered per distinct list of references."""
        requirements = _requirements(job_ad)
        if requirements is None:
            return None
        try:
            refs = tuple(job_ad.externalRefs(requirements))
        except ValueError:  # a circle of references: UNDEFINED, as for the negotiator
            return _CIRCLE, False, False
        kind = self._ref_kinds.get(refs)
        if kind is None:
            if len(self._ref_kinds) >= _MAX_SPLIT_KEPT:
                self._ref_kinds.clear()
            names = {r.rpartition(".")[2].lower() for r in refs}
            unscoped = any(not r.lower().startswith("target.") for r in refs)
            kind = self._ref_kinds[refs] = (bool(names & CLOUD_VARYING), unscoped)
        return requirements, *kind

    def _matching_clouds(
        self, job_ad: Any, read: tuple[Any, bool, bool] | None, type_name: str, clouds: list[str]
    ) -> tuple[str, ...]:
        """The clouds on which the job's Requirements is true against the VM's ad.

        Machine ads of one type differ between clouds only in a few names
        (``CLOUD_VARYING``): a Requirements that refers to none of them is evaluated
        once for the type, not once per cloud.
        """
        if read is None:
            return tuple(clouds)
        requirements, varying, unscoped = read
        if requirements is _CIRCLE:
            return ()
        if varying:
            return tuple(c for c in clouds if self._matches(job_ad, requirements, type_name, c, unscoped))
        return tuple(clouds) if self._matches(job_ad, requirements, type_name, clouds[0], unscoped) else ()

    def _matches(self, job_ad: Any, requirements: Any, type_name: str, cloud: str, unscoped: bool) -> bool:
        """Evaluate the job's Requirements against the VM's ad as the negotiator does.

        The negotiator resolves an unscoped name in the job first, then in the
        machine (``VMType =?= "x"`` names the machine's VMType unless the job sets
        one). The bindings' ``ExprTree.eval`` resolves unscoped names in the scope ad
        only, so when the Requirements has unscoped names the job does not define, the
        scope is the machine's attributes overlaid with the job's.
        """
        import classad2

        machine = self._ads[(type_name, cloud)]
        scope = job_ad
        if unscoped:
            scope = classad2.ClassAd()
            scope.update(machine)
            scope.update(job_ad)
        clauses = self._flat_clauses(job_ad, requirements)
        if clauses is None:
            return _true(requirements.eval(scope=scope, target=machine))
        # too deep for the evaluator in one piece: a && b && ... is true when every clause is
        return all(_true(clause.eval(scope=scope, target=machine)) for clause in clauses)

    def _flat_clauses(self, job_ad: Any, requirements: Any) -> list[Any] | None:
        """The parsed clauses of a Requirements too deep to evaluate whole (a long
        blacklist), parsed once per distinct text; None for an ordinary one."""
        import classad2

        if not isinstance(requirements, classad2.ExprTree):
            return None
        long = guard.long_expressions(job_ad)
        if long is not None and "Requirements" not in long:
            return None  # its text was measured as it was read: no need to print it again
        text = str(requirements)
        clauses = self._clauses.get(text)
        if clauses is None:
            split = guard.conjuncts(text)
            if split is None:
                return None  # the usual case, and not remembered: 100,000 jobs may differ here
            if len(self._clauses) >= _MAX_SPLIT_KEPT:
                self._clauses.clear()
            clauses = self._clauses[text] = [classad2.ExprTree(c) for c in split]
        return clauses

    def _requirements_reason(self, job_ad: Any, type_name: str, cloud: str) -> str:
        reason = f"Requirements is false on VM type {type_name}"
        requirements = _requirements(job_ad)
        if requirements is None:
            return reason
        machine = self._ads[(type_name, cloud)]
        try:
            refs = sorted(set(machine.externalRefs(requirements)) | set(job_ad.externalRefs(requirements)))
        except ValueError:  # the library cannot follow attributes that refer to each other
            return reason + " (it refers to attributes that refer to each other in a circle)"
        # only TARGET. references are the VM's to define; unscoped ones are often the
        # job's own, guarded (condor_submit's `MemoryUsage =!= undefined`)
        missing = [r for r in refs if r.lower().startswith("target.") and not _defined(r, machine, job_ad)]
        if missing:
            reason += f" (refers to {', '.join(missing)}, which the VM type does not define)"
        domains = {r.rpartition(".")[2].lower() for r in refs} & {"filesystemdomain", "uiddomain"}
        if domains and not self._config.pool.filesystem_domain:
            # condor_submit's should_transfer_files = NO jobs: the VMs must share the domain
            reason += "; set pool.filesystem_domain in the configuration to the pool's FILESYSTEM_DOMAIN"
        return reason


def _requirements(job_ad: Any) -> Any:
    """The job's Requirements expression, or None. One look-up, no ``in`` test: each
    expression the bindings hand over stays allocated (measured: ~140 bytes), so a job is
    asked for it once, not once per VM type."""
    try:
        return job_ad.lookup("Requirements")
    except KeyError:
        return None


def _true(result: Any) -> bool:
    return result is True or (type(result) in (int, float) and result != 0)


def _defined(reference: str, machine: Any, job: Any) -> bool:
    """Whether ``TARGET.x`` / ``MY.x`` / ``x`` names an attribute of the ad it looks in."""
    scope, _, name = reference.rpartition(".")
    if scope.lower() == "target":
        return name in machine
    if scope.lower() == "my":
        return name in job
    return name in machine or name in job


def _job_level_reasons(config: Config, needs: JobNeeds) -> list[str]:
    reasons = []
    if needs.vm_type is not None and needs.vm_type not in config.vm_types:
        known = ", ".join(config.vm_types) or "none"
        reasons.append(f'VMType "{shown(needs.vm_type, 80)}" is not a configured VM type (known: {known})')
    if needs.target_clouds is not None:
        unknown = unknown_target_clouds(config, needs)
        if unknown and len(unknown) == len(needs.target_clouds):
            known = ", ".join(config.clouds) or "none"
            names = ", ".join(unknown)
            reasons.append(f"TargetClouds names unknown cloud(s) {names} (known: {known})")
    return reasons


def _resource_misfit(type_name: str, vm_type: VMTypeConfig, needs: JobNeeds) -> str | None:
    if needs.arch is not None and needs.arch.lower() != vm_type.arch.lower():
        return f"asks VMCPUArch {needs.arch}; VM type {type_name} is {vm_type.arch}"
    if (
        needs.cpus <= vm_type.cpus
        and needs.vm_cpus <= vm_type.cpus
        and needs.memory <= vm_type.memory
        and needs.vm_memory <= vm_type.memory
        and needs.disk_kb <= vm_type.disk * KB_PER_GB
        and needs.vm_storage_gb <= vm_type.disk
    ):
        return None  # the usual case, without building the reasons' table
    checks: Iterable[tuple[str, int, int, str]] = (
        ("cores", max(needs.cpus, needs.vm_cpus), vm_type.cpus, ""),
        ("memory", max(needs.memory, needs.vm_memory), vm_type.memory, " MB"),
        ("disk", -(-needs.disk_kb // KB_PER_GB), vm_type.disk, " GB"),
        ("storage", needs.vm_storage_gb, vm_type.disk, " GB"),
    )
    for what, asked, offered, unit in checks:
        if asked > offered:
            return f"asks {asked}{unit} of {what}; VM type {type_name} has {offered}{unit}"
    return None


def unknown_target_clouds(config: Config, needs: JobNeeds) -> list[str]:
    """Clouds named in TargetClouds that the configuration does not know."""
    return [c for c in needs.target_clouds or () if c not in config.clouds]


def evaluated_attributes(job_ad: Any, names: Iterable[str]) -> Mapping[str, Any] | JobProblem:
    """Evaluate ``names`` in the job's context to Python values (None when undefined).

    Returns the problem with the first attribute that evaluates to ERROR, refers to
    itself through other attributes, or that the library cannot evaluate, instead.
    """
    import classad2

    expression, error, undefined = classad2.ExprTree, classad2.Value.Error, classad2.Value.Undefined
    values: dict[str, Any] = {}
    # an ad built from checked JSON knows its names and integer literals: no library call
    known = guard.known_values(job_ad)
    present = set(job_ad) if known is None else known  # not job_ad.keys(): a Python layer per name
    ask = guard.ASK
    for name in names:
        if name not in present:
            continue
        value = ask if known is None else known[name]
        if value is not ask:
            values[name] = value
            continue
        try:
            value = job_ad[name]  # a literal costs a look-up, not an evaluation
            if isinstance(value, expression):
                value = value.eval(scope=job_ad)  # not job_ad.eval(name): a second look-up
        except Exception as exc:  # noqa: BLE001 - the library raises bare exception types
            return JobProblem(name, f"cannot be evaluated ({guard.one_line(exc)})")
        if value is error:
            return JobProblem(name, "evaluates to ERROR")
        if value is undefined:
            if _circular(job_ad, name):
                return JobProblem(name, "refers to itself through other attributes (a circle)")
            value = None
        values[name] = value
    return values


def _circular(job_ad: Any, name: str) -> bool:
    """Whether an attribute that evaluates to UNDEFINED does so because it is part of a
    circle of references. Read from the ad's printed text, never by asking the library
    to walk the expression (its walk recurses in C and has crashed on hostile ads)."""
    refs: dict[str, set[str]] = {}
    for line in job_ad.printOld().splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            refs[key.strip().lower()] = own_references(value)
    seen: set[str] = set()
    stack = [(name.lower(), iter(refs.get(name.lower(), ())))]
    path = {name.lower()}
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            path.discard(node)
            continue
        if child in path:
            return True
        if child in refs and child not in seen:
            seen.add(child)
            path.add(child)
            stack.append((child, iter(refs[child])))
    return False


_STRING = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'""")
_NAME = re.compile(
    r"(?<![\w.])(?:my\.)?([a-z_][a-z0-9_]*)(?![\w(.])|(?<![\w.])target\.[a-z_][a-z0-9_]*", re.I
)


def own_references(expression: str) -> set[str]:
    """Attribute names an expression refers to in its own ad (TARGET. ones excluded)."""
    bare = _STRING.sub('""', expression)
    return {m.group(1).lower() for m in _NAME.finditer(bare) if m.group(1)}
