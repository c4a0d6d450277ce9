"""One frozen settings object: detection thresholds, rule settings and adapter settings.

Values come from, in rising priority: the defaults below (documented in
``detector/defaults/keywatch.yaml``), a YAML file (``--config`` or ``KEYWATCH_CONFIG``), and
``KEYWATCH_*`` environment variables (nested with ``__``, e.g. ``KEYWATCH_WINDOW__SECONDS=30``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from detector.domain.errors import ConfigError

DEFAULTS_FILE = Path(__file__).parent / "defaults" / "keywatch.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WindowSettings(_Frozen):
    seconds: float = Field(60.0, gt=0, le=3600)
    allowed_lateness_seconds: float = Field(30.0, ge=0)
    idle_evict_seconds: float = Field(7 * 86400.0, gt=0)
    forest_batch_rows: int = Field(2048, ge=1)
    max_evidence: int = Field(50, ge=1, le=1000)

    @field_validator("seconds")
    @classmethod
    def _divides_an_hour(cls, value: float) -> float:
        if (3600 / value) % 1:
            raise ValueError("must divide an hour evenly (e.g. 10, 30, 60, 300, 900)")
        return value


class AlertSettings(_Frozen):
    merge_gap_windows: int = Field(5, ge=0)
    novelty_merge_hours: float = Field(24.0, ge=0)
    rise_merge_hours: float = Field(3.0, ge=0)


class ProfileSettings(_Frozen):
    min_history_hours: float = Field(12.0, ge=0)
    min_events: int = Field(50, ge=0)
    ipv4_prefix: int = Field(24, ge=8, le=32)
    ipv6_prefix: int = Field(48, ge=16, le=128)
    max_values: int = Field(512, ge=16)
    quarantine_severity: str = "high"
    recent_hours: float = Field(24.0, gt=0)
    max_seasonal_callers: int = Field(16, ge=0)


class NewGeographySettings(_Frozen):
    enabled: bool = True
    min_events: int = Field(1, ge=1)
    alert_known_org_country_by_known_principal: bool = False
    routine_min_events: int = Field(20, ge=1)


class ImpossibleTravelSettings(_Frozen):
    enabled: bool = True
    max_kmh: float = Field(1000.0, gt=0)
    min_km: float = Field(500.0, ge=0)


class VolumeSpikeSettings(_Frozen):
    enabled: bool = True
    min_events: int = Field(30, ge=1)
    ratio: float = Field(10.0, gt=1)
    unfamiliar_ratio: float = Field(3.0, gt=1)
    z: float = Field(6.0, gt=0)
    high_ratio: float = Field(20.0, gt=1)
    busiest_factor: float = Field(1.5, ge=1)


class DriftSettings(_Frozen):
    enabled: bool = True
    slack_sigma: float = Field(0.25, ge=0)
    threshold: float = Field(20.0, gt=0)
    max_step_sigma: float = Field(4.0, gt=0)
    min_unfamiliar_share: float = Field(0.05, ge=0, le=1)


class SeasonalVolumeSettings(_Frozen):
    enabled: bool = True
    rise: float = Field(2.0, gt=1)
    min_evidence: float = Field(3.0, ge=0)
    max_p_value: float = Field(1e-6, gt=0, lt=1)
    min_ratio: float = Field(1.5, ge=1)
    level_spread_floor: float = Field(0.05, ge=0)
    min_windows: int = Field(3, ge=1)
    familiar_minutes: float = Field(120.0, ge=0)
    idle_share: float = Field(0.1, ge=0, le=1)
    max_evidence: float = Field(10.0, gt=0)
    peer_min_keys: int = Field(3, ge=2)
    peer_minutes: float = Field(30.0, gt=0)
    prior_hours: float = Field(0.25, gt=0)
    min_excess: float = Field(20.0, ge=1)
    min_excess_per_hour: float = Field(20.0, ge=0)
    high_ratio: float = Field(10.0, gt=1)
    level_half_life_windows: float = Field(720.0, gt=0)
    level_min_expected: float = Field(50.0, ge=0)
    org_wide_keys: int = Field(8, ge=2)


class CallerVolumeSettings(_Frozen):
    enabled: bool = True


class ObjectHarvestSettings(_Frozen):
    enabled: bool = True
    min_objects: int = Field(20, ge=2)
    factor: float = Field(3.0, ge=1)
    horizon_minutes: float = Field(15.0, gt=0)
    max_tracked: int = Field(4096, ge=16)


class NewNetworkSettings(_Frozen):
    enabled: bool = True
    min_windows: int = Field(60, ge=1)
    min_history_hours: float = Field(24.0, ge=0)
    max_change_rate: float = Field(0.01, ge=0, le=1)


class UnusualAdminSettings(_Frozen):
    enabled: bool = True
    alert_admin_by_org_admin: bool = False
    routine_destructive_events: int = Field(3, ge=1)


class DeniedBurstSettings(_Frozen):
    enabled: bool = True
    min_denied: int = Field(10, ge=1)
    min_share: float = Field(0.3, ge=0, le=1)
    history_factor: float = Field(2.0, ge=1)
    principal_min_keys: int = Field(3, ge=2)
    principal_min_denied: int = Field(10, ge=1)
    probing_minutes: float = Field(15.0, gt=0)
    probing_min_keys: int = Field(5, ge=2)


class OffHoursSettings(_Frozen):
    enabled: bool = True
    min_events: int = Field(10, ge=1)
    max_usual_share: float = Field(0.02, ge=0, le=1)
    min_history_days: float = Field(2.0, ge=0)
    max_p_value: float = Field(1e-6, gt=0, lt=1)
    principal_min_events: int = Field(3, ge=1)
    max_caller_share: float = Field(0.25, ge=0, le=1)
    caller_max_p_value: float = Field(1e-5, gt=0, lt=1)
    person_min_key_events: int = Field(20, ge=1)
    principal_min_history_events: int = Field(50, ge=1)


class NewPrincipalSettings(_Frozen):
    enabled: bool = True
    min_events: int = Field(1, ge=1)


class NewOperationSettings(_Frozen):
    enabled: bool = True
    min_events: int = Field(5, ge=1)


class OperationMixSettings(_Frozen):
    enabled: bool = True
    busy_calls: int = Field(30, ge=1)
    min_busy_hours: int = Field(24, ge=1)
    min_shift: float = Field(0.2, gt=0, le=1)
    max_p_value: float = Field(1e-6, gt=0, lt=1)


class ForestSettings(_Frozen):
    enabled: bool = True
    n_estimators: int = Field(200, ge=10)
    max_samples: int = Field(512, ge=16)
    contamination: float = Field(0.0, ge=0, le=0.5)
    threshold_margin: float = Field(0.05, ge=0)
    random_state: int = 0


class RulesSettings(_Frozen):
    new_geography: NewGeographySettings = NewGeographySettings()
    impossible_travel: ImpossibleTravelSettings = ImpossibleTravelSettings()
    volume_spike: VolumeSpikeSettings = VolumeSpikeSettings()
    rate_drift: DriftSettings = DriftSettings()
    seasonal_volume: SeasonalVolumeSettings = SeasonalVolumeSettings()
    caller_volume: CallerVolumeSettings = CallerVolumeSettings()
    operation_mix: OperationMixSettings = OperationMixSettings()
    object_harvest: ObjectHarvestSettings = ObjectHarvestSettings()
    new_network: NewNetworkSettings = NewNetworkSettings()
    unusual_admin: UnusualAdminSettings = UnusualAdminSettings()
    denied_burst: DeniedBurstSettings = DeniedBurstSettings()
    off_hours: OffHoursSettings = OffHoursSettings()
    new_principal: NewPrincipalSettings = NewPrincipalSettings()
    new_operation: NewOperationSettings = NewOperationSettings()


class CatalogDefaults(_Frozen):
    environment: str = "unknown"
    classification: str = "internal"
    owner: str = ""
    service: str = ""


class SeveritySettings(_Frozen):
    environment_shift: dict[str, int] = {"production": 1, "staging": 0, "development": -1, "unknown": 0}
    classification_shift: dict[str, int] = {"restricted": 1, "confidential": 0, "internal": 0, "public": -1}
    catalog_defaults: CatalogDefaults = CatalogDefaults()


class GeoIPSettings(_Frozen):
    mmdb_path: Path | None = None
    cache_size: int = Field(65536, ge=0)


class KafkaSettings(_Frozen):
    """Where the streaming consumer reads events and writes alerts and dead letters."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "keywatch.events"
    group: str = "keywatch-detector"
    alerts_topic: str = "keywatch.alerts"
    deadletter_topic: str = "keywatch.deadletter"
    max_poll_records: int = Field(20000, ge=1)
    poll_timeout_ms: int = Field(200, ge=1)
    session_timeout_ms: int = Field(10000, ge=1000)
    max_poll_interval_ms: int = Field(60000, ge=1000)  # also how long a rebalance waits for members
    max_message_bytes: int = Field(1_048_576, ge=1024)
    checkpoint_interval_seconds: float = Field(30.0, gt=0)
    idle_flush_seconds: float = Field(5.0, gt=0)
    # Detector processes per member: 1 overlaps decoding (the member) with detecting (the worker);
    # 0 detects in the member's process, for a host with one core.
    workers: int = Field(1, ge=0, le=64)


class StoreSettings(_Frozen):
    """The alert store: SQLite file by default, PostgreSQL by URL."""

    url: str = "sqlite:///keywatch.db"
    password_file: Path | None = None  # read the password from here instead of the URL (secrets)


class IncidentSettings(_Frozen):
    """How alerts are grouped into incidents."""

    span_seconds: float = Field(3600.0, gt=0)


class MetricsSettings(_Frozen):
    """Prometheus exposition of the consumer; port 0 turns it off."""

    port: int = Field(9464, ge=0, le=65535)
    host: str = "127.0.0.1"


class HsmSettings(_Frozen):
    """The PKCS#11 key backend; unset values come from PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_TOKEN_PIN."""

    module: Path | None = None
    token_label: str | None = None
    pin: SecretStr | None = None
    key_map: dict[str, str] = {}  # event key_id -> HSM object label, where they differ
    backup_key_label: str | None = "keywatch-backup"  # wraps keys before revoke; stays in the HSM


class AwsSettings(_Frozen):
    """The AWS KMS key backend (boto3); credentials come from the usual AWS chain."""

    region: str | None = None
    endpoint_url: str | None = None  # e.g. a local moto server in tests
    pending_window_days: int = Field(30, ge=7, le=30)  # ScheduleKeyDeletion waiting period


class SlackSettings(_Frozen):
    """Slack Web API access; ``base_url`` points slack-sdk at another server (tests)."""

    token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    default_channel: str = "#keywatch"
    base_url: str = "https://slack.com/api/"
    max_attempts: int = Field(8, ge=1)


class AuditSettings(_Frozen):
    """The tamper-evident ledger; the signing key lives outside the database."""

    signing_key: Path | None = None  # Ed25519 private key, PEM
    checkpoint_every: int = Field(1, ge=1)  # sign a checkpoint after this many records


class ResponseSettings(_Frozen):
    """Playbooks and the runner."""

    playbooks_dir: Path | None = None  # default: the playbooks/ shipped with KeyWatch
    auto_run: bool = True  # start matching playbooks on new or escalated incidents
    default_mode: str = "staged"  # dry-run | staged | active for automatic runs
    default_backend: str = "auto"  # auto: aws-kms for KMS ARNs, pkcs11 otherwise; or a backend name
    poll_seconds: float = Field(0.1, gt=0)  # how often `keywatch respond` looks for new incidents
    retry_base_seconds: float = Field(0.5, gt=0)
    retry_max_seconds: float = Field(30.0, gt=0)


class ApiSettings(_Frozen):
    trusted_proxies: list[str] = []  # reverse proxies whose X-Forwarded-For is believed; none by default
    max_body_bytes: int = Field(1_048_576, ge=1024)  # larger request bodies are refused with 413


class DetectionSettings(_Frozen):
    """The part of the settings the pure pipeline reads."""

    window: WindowSettings = WindowSettings()
    alerts: AlertSettings = AlertSettings()
    profile: ProfileSettings = ProfileSettings()
    rules: RulesSettings = RulesSettings()
    forest: ForestSettings = ForestSettings()
    severity: SeveritySettings = SeveritySettings()


class Settings(BaseSettings):
    """Everything KeyWatch reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="KEYWATCH_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    window: WindowSettings = WindowSettings()
    alerts: AlertSettings = AlertSettings()
    profile: ProfileSettings = ProfileSettings()
    rules: RulesSettings = RulesSettings()
    forest: ForestSettings = ForestSettings()
    severity: SeveritySettings = SeveritySettings()
    geoip: GeoIPSettings = GeoIPSettings()
    catalog: Path | None = None
    model: Path | None = None
    kafka: KafkaSettings = KafkaSettings()
    store: StoreSettings = StoreSettings()
    incidents: IncidentSettings = IncidentSettings()
    metrics: MetricsSettings = MetricsSettings()
    hsm: HsmSettings = HsmSettings()
    aws: AwsSettings = AwsSettings()
    slack: SlackSettings = SlackSettings()
    audit: AuditSettings = AuditSettings()
    response: ResponseSettings = ResponseSettings()
    api: ApiSettings = ApiSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment beats the file, which is passed as init values."""
        return (env_settings, init_settings)

    @property
    def detection(self) -> DetectionSettings:
        """The detection part, handed to the pure core."""
        return DetectionSettings(
            window=self.window,
            alerts=self.alerts,
            profile=self.profile,
            rules=self.rules,
            forest=self.forest,
            severity=self.severity,
        )


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line saying what is wrong in a YAML document and where."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else str(problem)


def load_settings(path: Path | str | None = None) -> Settings:
    """Read the YAML file (if any) and the environment; raise ConfigError with one clear line."""
    path = path or os.environ.get("KEYWATCH_CONFIG")
    data: dict[str, Any] = {}
    if path:
        file = Path(path)
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {file}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {file} is not valid YAML: {yaml_problem(exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {file} must hold a mapping at the top level")
        data = loaded or {}
    try:
        return Settings(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
