"""Service settings: environment variables prefixed ``CALLQA_`` (or a ``.env`` file).

Built by :func:`get_service_settings`, never at import time, so tests and commands can override
any field. The analyzer's own settings (model, device, ...) live in :mod:`analyzer.settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork
from pydantic_settings import BaseSettings, SettingsConfigDict


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "callqa"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLQA_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default_factory=_data_home, description="recordings store and the SQLite database")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file data_dir/callqa.db. postgresql+psycopg://... for production"
    )
    executor: Literal["local", "celery"] = Field("local", description="how calls are processed")
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker (redis:// or amqp://)")
    workers: int = Field(1, ge=0, le=64, description="local worker processes started by `callqa serve`")
    lease_seconds: float = Field(120, gt=0, description="a claimed call is another worker's after this much silence")
    heartbeat_seconds: float | None = Field(None, gt=0, description="lease renewal period; default lease/4")
    poll_seconds: float = Field(1.0, gt=0, description="how often an idle worker looks for work")
    max_attempts: int = Field(3, ge=1, le=20, description="attempts before a call ends as failed")
    retry_backoff_seconds: float = Field(10, ge=0, description="first retry delay; doubles each attempt")
    max_upload_mb: float = Field(200, gt=0, description="largest recording accepted, MB")
    max_request_mb: float = Field(1000, gt=0, description="largest upload request (several files), MB")
    download_timeout_seconds: float = Field(60, gt=0)
    download_retries: int = Field(3, ge=0, le=10)
    token_hours: float = Field(24 * 7, gt=0, description="lifetime of an API token")
    admin_username: str = Field("admin", description="the first administrator, created on first start")
    admin_password: str | None = Field(None, description="its password; generated and printed when unset")
    cors_origins: list[str] = Field(default_factory=list)
    import_dirs: list[Path] = Field(default_factory=list, description="folders the API may import from (the CLI may import any)")
    webhook_secret: str | None = Field(None, description="shared secret a PBX sends in X-Callqa-Secret instead of a token")
    # sign-in and passwords (api/auth/throttle.py, api/auth/passwords.py)
    signin_user_failures: int = Field(5, ge=1, le=1000, description="failed sign-ins of one username before it is locked")
    signin_address_failures: int = Field(30, ge=1, le=100_000, description="failed sign-ins from one address before it is locked")
    signin_lock_seconds: float = Field(60, gt=0, description="the first lock; doubled with every further failure")
    signin_lock_max_seconds: float = Field(900, gt=0, description="the longest lock")
    signin_window_seconds: float = Field(900, gt=0, description="failures older than this (and not locked) are forgotten")
    password_min_length: int = Field(10, ge=8, le=200, description="shortest password accepted")
    password_min_strength: int = Field(3, ge=0, le=4, description="zxcvbn score a new password needs (0-4)")

    # CRM import limits: a file past one is refused with 413 crm_file_too_large naming the setting.
    # XLSX sizes are checked from the zip's directory before anything is unpacked, the rest as rows stream in.
    crm_max_rows: int = Field(300_000, ge=1, description="rows of a CRM export (CSV or XLSX), the header included")
    crm_max_columns: int = Field(1_000, ge=1, le=18_278, description="cells in one row of a CRM export, up to its "
                                 "last non-empty one")
    crm_max_cell_chars: int = Field(32_767, ge=1, le=131_072, description="characters in one cell of a CRM export "
                                    "(Excel's own limit is 32,767; a CSV cell cannot go past 131,072)")
    crm_max_unpacked_mb: float = Field(512, gt=0, description="an XLSX export's contents once unpacked, MB")
    crm_max_compression_ratio: float = Field(100, gt=1, description="an XLSX export's unpacked size over its file "
                                             "size, when it unpacks to more than 10 MB (exports are about 10; a "
                                             "decompression bomb is hundreds)")

    # addresses the worker may fetch a webhook's recording from (api/core/netguard.py)
    webhook_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list, description="networks a PBX webhook's recording URL may point into although they are not "
        "public (loopback, private, link-local, carrier-grade NAT, ...), as a JSON list of CIDRs, e.g. "
        "[\"10.20.0.0/16\"] for a PBX on the office network; empty: public addresses only")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'callqa.db'}"

    @property
    def heartbeat(self) -> float:
        return self.heartbeat_seconds or max(0.2, self.lease_seconds / 4)


def get_service_settings(**overrides: object) -> ServiceSettings:
    return ServiceSettings(**overrides)  # type: ignore[arg-type]
