"""Settings from the environment (pydantic-settings); every service reads the same names."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str = Field(description="PostgreSQL URL, e.g. postgresql://u@host:5432/desk")
    kafka_bootstrap_servers: str = Field(description="Kafka bootstrap servers, host:port[,..]")
    log_format: str = Field(default="json", description="json (production) or console")
    log_level: str = "info"
    http_host: str = "127.0.0.1"
    http_port: int = 0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    mail_from: str = "support@desk.example"
    policies_dir: str | None = Field(default=None, description="extra desk policy files")
    workflow_url: str = "http://127.0.0.1:8002"
    topic_prefix: str = Field(
        default="", description="prefix of every topic name (several environments, one cluster)"
    )

    def topic(self, name: str) -> str:
        return self.topic_prefix + name
