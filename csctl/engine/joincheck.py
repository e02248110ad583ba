"""``join-check --fix``: terminate VMs that never joined or that their cloud reports broken,
saving each console first and counting the failure against its image."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from csctl import logredact
from csctl.config import Config
from csctl.context.tokens import SigningKey, batch_secrets
from csctl.engine.retire import terminate
from csctl.engine.services import Services
from csctl.engine.state import acting, keep_backoff, read_backoff, write_atomically
from csctl.engine.view import look, settle
from csctl.errors import CloudError, CsctlError
from csctl.model import Cloud, batch_of
from csctl.plan.backoff import Backoff
from csctl.plan.imagetest import redact
from csctl.plan.reconcile import JoinReport, VMView


@dataclass
class FixReport:
    """What ``join-check --fix`` terminated, and where it saved each console."""

    terminated: list[str] = field(default_factory=list)
    consoles: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def fix_failed_joins(
    report: JoinReport,
    clouds: Mapping[str, Cloud],
    config: Config,
    backoff: Backoff,
    now: datetime,
    pool_key: SigningKey | None = None,
) -> FixReport:
    """Terminate never-joined and errored VMs after saving their console output (secrets
    redacted: tokens, keys, and with ``pool_key`` the batch's own key), and count each
    failure against its image on its cloud (the boot backoff)."""
    fix = FixReport()
    failed = []
    console_dir = config.state_dir / "console"
    for vm in report.failed():
        assert vm.instance is not None
        cloud = clouds.get(vm.cloud)
        text = ""
        if cloud is not None:
            try:
                text = _redacted(cloud.console_output(vm.instance), vm, pool_key)
            except CloudError as exc:
                text = f"(console unavailable: {exc.message})"
        path = console_dir / f"{vm.csctl_id}-{now:%Y%m%dT%H%M%SZ}.log"
        header = f"csctl: {vm.csctl_id} on {vm.cloud}: {vm.status.value}"
        if vm.instance.fault:
            header += f" ({vm.instance.fault})"
        try:
            write_atomically(path, f"{header}\n{text}\n".encode(), mode=0o600)
        except OSError as exc:  # the console is the only evidence: keep the VM until it is saved
            fix.errors.append(f"{vm.csctl_id}: console not saved ({exc.strerror or exc}); not terminated")
            continue
        fix.consoles[vm.csctl_id] = str(path)
        backoff.fail(_image_key(vm, config), now)
        failed.append(vm)
    fix.terminated = terminate(clouds, [vm.instance for vm in failed if vm.instance], fix.errors)
    return fix


def _redacted(text: str, vm: VMView, pool_key: SigningKey | None) -> str:
    """A console without the secrets cloud-init may echo from the VM's payload."""
    secrets = batch_secrets(pool_key, batch_of(vm.csctl_id)) if pool_key is not None else []
    return logredact.redact(redact(text, secrets))


def _image_key(vm: VMView, config: Config) -> str:
    """``cloud/image`` of a VM: what the cloud reports, else what its type boots there."""
    image = vm.instance.image if vm.instance else None
    if image is None:
        vm_type = config.vm_types.get(vm.vm_type)
        image = vm_type.images.get(vm.cloud) if vm_type else None
    return f"{vm.cloud}/{image or '?'}"


@dataclass
class JoinCheckResult:
    """Every VM's join status; with --fix, what was cleaned up. ``errors``: what could not
    be read."""

    report: JoinReport
    fixed: FixReport | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    would_terminate: list[str] = field(default_factory=list)  # --fix --dry-run
    held: list[str] = field(default_factory=list)  # why --fix terminated nothing

    @property
    def partial(self) -> bool:
        return bool(self.errors) or bool(self.fixed and self.fixed.errors)


def join_check(services: Services, fix: bool = False, dry_run: bool = False) -> JoinCheckResult:
    """Join every cloud's csctl VMs with the pool's startds and classify them; with ``fix``,
    terminate the never-joined and errored ones (consoles saved, images backed off), or with
    ``dry_run`` only name them."""
    config, now = services.config, services.now()
    if fix and dry_run:
        result = join_check(services)
        result.would_terminate = [] if result.held else [vm.csctl_id for vm in result.report.failed()]
        return result
    with acting(services.state_dir, "join-check --fix", not fix):
        view = look(config, services.pool, services.clouds, now, jobs=False)
        warnings = services.cloud_warnings + view.warnings
        result = JoinCheckResult(view.joins, errors=list(view.snapshot.errors), warnings=warnings)
        result.held = list(view.hold)
        if fix and not view.hold:
            backoff, warnings = read_backoff(services.state_dir, now)
            key = _key_if_any(services)
            result.fixed = fix_failed_joins(view.joins, services.clouds, config, backoff, now, key)
            result.warnings += warnings + keep_backoff(services.state_dir, backoff)
        if fix:
            result.warnings += settle(view, services.clouds, config, now)
    return result


def _key_if_any(services: Services) -> SigningKey | None:
    """The pool key, to redact each batch's own key from consoles; without one, consoles
    are still redacted of tokens and private keys."""
    if services.config.pool.signing_key is None:
        return None
    try:
        return services.signing_key("redact consoles")
    except CsctlError:
        return None
