"""csctl's configuration: one TOML file, loaded once, validated eagerly.

Every problem becomes one line naming the file, the key path and what was
expected, e.g. ``csctl.toml: clouds.Hermes.max_vms: expected an integer >= 0, got "ten"``.
Each cloud driver validates its own keys (its ``Settings`` model) at the same time.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from csctl.errors import ConfigError


def _int_at_least(minimum: int) -> BeforeValidator:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PydanticCustomError("int_at_least", f"expected an integer >= {minimum}")
        return value

    return BeforeValidator(check)


Count = Annotated[int, _int_at_least(0)]
Positive = Annotated[int, _int_at_least(1)]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolConfig(_Strict):
    """The HTCondor pool csctl serves."""

    name: Name = Field(description="pool name; the trust domain of VM identities and the csctl-pool tag")
    collector: str = Field(min_length=1, description="host[:port] of the central manager")
    schedds: list[str] = Field(default_factory=list, description="schedd names; empty = all")
    condor_params: dict[str, str] = Field(
        default_factory=dict, description="HTCondor client settings applied before querying"
    )
    signing_key: Path | None = None
    filesystem_domain: str | None = None
    user_data_template: Path | None = Field(None, description="site cloud-init template")
    vm_config: str = Field("", description="HTCondor configuration lines added on every VM")


class VMTypeConfig(_Strict):
    """A kind of VM csctl can boot; jobs ask for it by name (VMType) or by resources."""

    cpus: Positive
    memory: Positive = Field(description="MB")
    disk: Positive = Field(description="GB")
    arch: str = "X86_64"
    opsys: str = "LINUX"
    condor_version: str = Field("23.0.0", pattern=r"^\d+\.\d+\.\d+$", description="HTCondor on the image")
    images: dict[str, str] = Field(description="cloud name -> image id or name")
    flavors: dict[str, str] = Field(default_factory=dict, description="cloud -> flavor/instance type")
    keep_alive_minutes: Count = 0
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict)


class CloudConfig(BaseModel):
    """Common keys of every cloud; the driver's own keys are validated by its Settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    driver: str
    enabled: bool = True
    priority: int = Field(0, strict=True, description="higher is used first")
    max_vms: Count | None = None
    max_cores: Count | None = None
    max_memory: Count | None = Field(None, description="MB")
    max_storage: Count | None = Field(None, description="GB")
    max_price: float | None = Field(None, ge=0)
    keep_alive_minutes: Count | None = None

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

    max_new_vms_per_cycle: Count = 10
    join_timeout_minutes: Positive = 30
    max_lifetime_hours: Count = 0
    drain_deadline_minutes: Count = 0
    vm_token_hours: Positive = 48


class Config(_Strict):
    """The whole csctl configuration."""

    pool: PoolConfig
    vm_types: dict[Name, VMTypeConfig] = Field(default_factory=dict)
    clouds: dict[Name, CloudConfig] = Field(default_factory=dict)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    state_dir: Path = Path("/var/lib/csctl")

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


def _expected(error: ErrorDetails) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    bound = ""
    if "ge" in ctx:
        bound = f" >= {ctx['ge']}"
    elif "gt" in ctx:
        bound = f" > {ctx['gt']}"
    phrases = {
        "missing": "required key is missing",
        "extra_forbidden": "unknown key",
        "int_type": f"expected an integer{bound}",
        "int_parsing": f"expected an integer{bound}",
        "greater_than_equal": f"expected a number{bound}",
        "greater_than": f"expected a number{bound}",
        "float_type": "expected a number",
        "float_parsing": "expected a number",
        "string_type": "expected a string",
        "string_too_short": "expected a non-empty string",
        "string_pattern_mismatch": "expected letters, digits, '.', '_' or '-'",
        "bool_type": "expected true or false",
        "bool_parsing": "expected true or false",
        "dict_type": "expected a table",
        "list_type": "expected an array",
        "model_type": "expected a table",
        "model_attributes_type": "expected a table",
    }
    if kind in ("greater_than_equal", "greater_than") and isinstance(error.get("input"), int):
        return f"expected an integer{bound}"
    return phrases.get(kind, str(error["msg"]))


def _format_input(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (dict, list)):
        return type(value).__name__
    return repr(value)


def format_validation_error(source: str, exc: ValidationError) -> list[str]:
    """One line per pydantic error: ``file: key.path: expectation, got value``."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        if error["type"] == "value_error":
            # our own model validators already say the key path in the message
            lines.append(f"{source}: {str(error['msg']).removeprefix('Value error, ')}")
            continue
        line = f"{source}: {loc}: {_expected(error)}" if loc else f"{source}: {_expected(error)}"
        if error["type"] not in ("missing", "extra_forbidden"):
            line += f", got {_format_input(error['input'])}"
        lines.append(line)
    return lines


def _validate_drivers(source: str, data: dict[str, Any]) -> tuple[dict[str, BaseModel], list[str]]:
    """Validate each cloud's driver-specific keys with that driver's own Settings model:
    the typed settings of every valid cloud, and one line per problem."""
    from csctl.clouds.registry import driver_settings_model

    clouds = data.get("clouds")
    if not isinstance(clouds, dict):
        return {}, []
    settings: dict[str, BaseModel] = {}
    problems = []
    for name, cloud in clouds.items():
        if not isinstance(cloud, dict) or not isinstance(cloud.get("driver"), str):
            continue
        try:
            model = driver_settings_model(cloud["driver"])
        except ConfigError as exc:
            problems.append(f"{source}: clouds.{name}.driver: {exc.message}")
            continue
        options = {k: v for k, v in cloud.items() if k not in CloudConfig.model_fields}
        try:
            settings[name] = model.model_validate(options)
        except ValidationError as exc:
            for line in format_validation_error(source, exc):
                prefix = f"{source}: "
                problems.append(prefix + f"clouds.{name}." + line.removeprefix(prefix))
    return settings, problems


def parse_config(text: str, source: str = "csctl.toml") -> Config:
    """Parse and validate configuration text; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    problems = []
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(source, exc)
    settings, driver_problems = _validate_drivers(source, data)
    problems += driver_problems
    if problems:
        raise ConfigError(problems)
    for name, cloud in config.clouds.items():
        cloud._settings = settings[name]
    return config


def load_config(path: Path) -> Config:
    """Read and validate the configuration file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"], hint="give --config PATH or set CSCTL_CONFIG") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    return parse_config(text, source=str(path))
