"""csctl's configuration: one TOML file, loaded once, validated eagerly.

Every problem becomes one line naming the file, the key path and what was
expected, e.g. ``csctl.toml: clouds.Hermes.max_vms: expected an integer >= 0, got "ten"``.
Each cloud driver validates its own keys (its ``Settings`` model) at the same time.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from csctl import config_guard as guard
from csctl.config_early import TIMEOUT_DEFAULT, TIMEOUT_RANGE
from csctl.config_errors import (
    Problem,
    show_loc,
    strict_scalars,
    validation_problems,
    without_repeats,
)
from csctl.errors import ConfigError
from csctl.safefile import FileRefused, describe_size, read_regular_file

MAX_CONFIG_BYTES = guard.MAX_CONFIG_BYTES
YEAR_MINUTES = 365 * 24 * 60
YEAR_HOURS = 365 * 24


def _int_between(minimum: int, maximum: int) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PydanticCustomError("int_at_least", f"expected an integer >= {minimum}")
        if value > maximum:
            raise PydanticCustomError("int_at_most", f"expected an integer <= {maximum}")
        return value

    return BeforeValidator(check)


def _number_between(above: float, maximum: float) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > above:
            raise PydanticCustomError("number_above", f"expected a number > {above:g}")
        if not value <= maximum:  # also catches nan and inf
            raise PydanticCustomError("number_at_most", f"expected a number <= {maximum:g}")
        return value

    return BeforeValidator(check)


# the bounds keep every value far inside what a timedelta, a 64-bit ClassAd integer (disk
# in KB, memory in KB) and the clouds accept, and far above any real site
Minutes = Annotated[int, _int_between(0, YEAR_MINUTES)]
Hours = Annotated[int, _int_between(0, YEAR_HOURS)]
Name = Annotated[str, Field(min_length=1, pattern=guard.NAME_PATTERN)]
FilePath = Annotated[Path, BeforeValidator(guard.check_path)]
Collector = Annotated[str, BeforeValidator(guard.check_collector)]
Domain = Annotated[str, BeforeValidator(guard.check_domain)]
KnobName = Annotated[str, BeforeValidator(guard.check_knob_name)]
AttributeName = Annotated[str, BeforeValidator(guard.check_attribute_name)]
AttributeValue = Annotated[str | int | float | bool, BeforeValidator(guard.check_attribute_value)]
Word = Annotated[str, BeforeValidator(guard.check_word)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolConfig(_Strict):
    """The HTCondor pool csctl serves."""

    name: Name = Field(description="pool name; the trust domain of VM identities and the csctl-pool tag")
    collector: Collector = Field(description="host[:port] of the central manager")
    schedds: list[NonEmpty] = Field(default_factory=list, description="schedd names; empty = all")
    condor_params: dict[KnobName, str] = Field(
        default_factory=dict, description="HTCondor client settings applied before querying"
    )
    timeout: Annotated[int, _int_between(*TIMEOUT_RANGE)] = Field(
        TIMEOUT_DEFAULT,
        description="seconds csctl waits on an HTCondor daemon to connect or answer "
        "(HTCondor's TOOL_TIMEOUT_MULTIPLIER: timeout / 20, rounded up)",
    )
    signing_key: FilePath | None = None
    filesystem_domain: Domain | None = None
    user_data_template: FilePath | None = Field(None, description="site cloud-init template")
    vm_config: str = Field("", description="HTCondor configuration lines added on every VM")

    @field_validator("vm_config")
    @classmethod
    def _keeps_csctl_security(cls, text: str) -> str:
        problems = guard.vm_config_problems(text)
        if problems:
            raise PydanticCustomError(
                "vm_config_reserved",
                "{lines}: csctl sets the security knobs (ALLOW_*, DENY_*, SEC_*, ...), STARTD_ATTRS and "
                "its own attributes itself; put extra machine attributes in vm_types.*.attributes",
                {"lines": "; ".join(problems)},
            )
        return text


class VMTypeConfig(_Strict):
    """A kind of VM csctl can boot; jobs ask for it by name (VMType) or by resources."""

    cpus: Annotated[int, _int_between(1, 4096)]
    memory: Annotated[int, _int_between(1, 16 * 1024 * 1024)] = Field(description="MB")
    disk: Annotated[int, _int_between(1, 1024 * 1024)] = Field(description="GB")
    arch: Word = "X86_64"
    opsys: Word = "LINUX"
    condor_version: str = Field("23.0.0", pattern=r"^\d+\.\d+\.\d+$", description="HTCondor on the image")
    images: dict[str, NonEmpty] = Field(description="cloud name -> image id or name")
    flavors: dict[str, NonEmpty] = Field(default_factory=dict, description="cloud -> flavor/instance type")
    keep_alive_minutes: Minutes = 0
    attributes: dict[AttributeName, AttributeValue] = Field(default_factory=dict)
    benchmark: Annotated[float, _number_between(0, 1_000_000)] | None = Field(
        default=None, description="per-core benchmark score (accounting.benchmark_type) for APEL records"
    )


class CloudConfig(BaseModel):
    """Common keys of every cloud; the driver's own keys are validated by its Settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    driver: str
    enabled: bool = Field(True, strict=True)
    priority: Annotated[int, _int_between(-1_000_000, 1_000_000)] = Field(0, description="higher first")
    max_vms: Annotated[int, _int_between(0, 1_000_000)] | None = None
    max_cores: Annotated[int, _int_between(0, 100_000_000)] | None = None
    max_memory: Annotated[int, _int_between(0, 10**12)] | None = Field(None, description="MB")
    max_storage: Annotated[int, _int_between(0, 10**12)] | None = Field(None, description="GB")
    max_price: Annotated[float, _number_between(0, 1_000_000)] | None = None
    keep_alive_minutes: Minutes | None = None
    hostnames: list[NonEmpty] = Field(
        default_factory=list, description="the cloud's service hostnames, as GOCDB lists them"
    )

    _settings: BaseModel | None = PrivateAttr(default=None)

    @property
    def driver_options(self) -> dict[str, Any]:
        """The driver's own keys, as written in the file."""
        return dict(self.model_extra or {})

    @property
    def settings(self) -> BaseModel:
        """The driver's own keys, validated by its ``Settings`` model (once: ``load_config``
        keeps the typed result; a CloudConfig built another way validates on first use)."""
        if self._settings is None:
            from csctl.clouds.registry import driver_settings_model

            self._settings = driver_settings_model(self.driver).model_validate(self.driver_options)
        return self._settings


class PolicyConfig(_Strict):
    """Knobs of the scheduling loop."""

    max_new_vms_per_cycle: Annotated[int, _int_between(0, 1_000_000)] = 10
    join_timeout_minutes: Annotated[int, _int_between(1, YEAR_MINUTES)] = 30
    max_lifetime_hours: Hours = 0
    drain_deadline_minutes: Minutes = 0
    vm_token_hours: Annotated[int, _int_between(1, YEAR_HOURS)] = 48
    fair_share: Literal["equal", "htcondor", "off"] = Field(
        default="equal", description="how new VMs are split among owners when the clouds cannot serve all"
    )
    # a declared outage's scope boots nothing, and its VMs drain, this long before it starts
    downtime_drain_ahead_minutes: Minutes = 60


class AccountingConfig(_Strict):
    """The usage ledger and the APEL records made from it (docs/accounting.md)."""

    ledger: bool = Field(default=True, strict=True, description="keep STATE_DIR/ledger.sqlite each cycle")
    site_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$",
        description="GOCDB site name; enables APEL",
    )
    benchmark_type: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    fqan: str | None = Field(
        default=None, pattern=r"^/[A-Za-z0-9_./=-]{1,254}$", description="VOMS FQAN all usage is charged to"
    )
    # 400 days: more than a year, so that last year's months can still be reported and resent
    keep_days: Annotated[int, _int_between(0, 36_500)] = Field(
        default=400, description="VMs gone this many days leave the ledger with their jobs (0: never)"
    )


class Config(_Strict):
    """The whole csctl configuration."""

    pool: PoolConfig
    vm_types: dict[Name, VMTypeConfig] = Field(default_factory=dict)
    clouds: dict[Name, CloudConfig] = Field(default_factory=dict)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    accounting: AccountingConfig = Field(default_factory=AccountingConfig)
    state_dir: FilePath = Path("/var/lib/csctl")

    @model_validator(mode="after")
    def _cloud_names_exist(self) -> Config:
        for type_name, vm_type in self.vm_types.items():
            for field in ("images", "flavors"):
                for cloud in getattr(vm_type, field):
                    if cloud not in self.clouds:
                        known = ", ".join(sorted(self.clouds)) or "none configured"
                        raise ValueError(
                            f"vm_types.{type_name}.{field}: unknown cloud {cloud!r} (known: {known})"
                        )
        return self


# -- loading ----------------------------------------------------------------------------


def _validate_drivers(source: str, data: dict[str, Any]) -> tuple[dict[str, BaseModel], list[Problem]]:
    """Validate each cloud's driver-specific keys with that driver's own Settings model:
    the typed settings of every valid cloud, and one line per problem."""
    from csctl.clouds.registry import driver_settings_model

    clouds = data.get("clouds")
    if not isinstance(clouds, dict):
        return {}, []
    settings: dict[str, BaseModel] = {}
    problems: list[Problem] = []
    for name, cloud in clouds.items():
        driver = cloud.get("driver") if isinstance(cloud, dict) else None
        if not isinstance(driver, str) or not guard.PLAIN_KEY.fullmatch(driver):
            continue  # reported by the common keys' validation or by scan
        try:
            model = driver_settings_model(driver)
        except ConfigError as exc:
            problems.append((("clouds", name, "driver"), f"{source}: clouds.{name}.driver: {exc.message}"))
            continue
        options = {k: v for k, v in cloud.items() if k not in CloudConfig.model_fields}
        strict = [
            (loc, f"{source}: {show_loc(loc)}: {why}")
            for loc, why in strict_scalars(model, options, ("clouds", name))
        ]
        try:
            settings[name] = model.model_validate(options)
        except ValidationError as exc:
            refused = {loc for loc, _ in strict}
            problems += [p for p in validation_problems(source, exc, ("clouds", name)) if p[0] not in refused]
        problems += strict
    return settings, problems


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{source}: is larger than {describe_size(MAX_CONFIG_BYTES)}"])
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: not valid TOML: arrays or tables nested too deeply"]) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        why = "an integer has too many digits" if "digits" in str(exc) else str(exc).splitlines()[0]
        raise ConfigError([f"{source}: not valid TOML: {why}"]) from None


def parse_config(text: str, source: str = "csctl.toml") -> Config:
    """Parse and validate configuration text; raise ConfigError listing every problem."""
    data = _parse_toml(text, source)
    found = [(loc, f"{source}: {show_loc(loc)}: {why}") for loc, why in guard.scan(data)]
    pydantic: list[Problem] = []
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        pydantic = validation_problems(source, exc)
    settings, driver_problems = _validate_drivers(source, data)
    problems = without_repeats(found, pydantic + driver_problems)
    if problems:
        raise ConfigError(problems)
    for name, cloud in config.clouds.items():
        cloud._settings = settings[name]
    return config


def load_config(path: Path) -> Config:
    """Read and validate the configuration file at ``path``: a regular file of at most
    MAX_CONFIG_BYTES, read without blocking (a FIFO or a device is refused, not waited on)."""
    try:
        raw = read_regular_file(path, MAX_CONFIG_BYTES)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"], hint="give --config PATH or set CSCTL_CONFIG") from None
    except FileRefused as exc:
        raise ConfigError([f"{path}: {exc.reason}"], hint="give --config the csctl.toml file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: cannot read: not UTF-8 text (byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    except ValueError:  # a NUL byte in the path
        raise ConfigError([f"{guard.show(str(path))}: not a usable path"]) from None
    return parse_config(text, source=str(path))
