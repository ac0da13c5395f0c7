"""Settings from the environment (pydantic-settings); every service reads the same names."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SURVEY_SECRET = "dev-only-survey-secret"  # anyone can sign links with it: never in production


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str = Field(description="PostgreSQL URL, e.g. postgresql://u@host:5432/desk")
    kafka_bootstrap_servers: str = Field(description="Kafka bootstrap servers, host:port[,..]")
    log_format: str = Field(default="json", description="json (production) or console")
    log_level: str = "info"
    otel_sdk_disabled: bool = Field(
        default=False,
        description="true: no traces at all (no spans, no trace context in events or logs)",
    )
    otel_traces_sampler_arg: float = Field(
        default=1.0,
        ge=0.0,
        le=1.0,
        description="the share of requests whose traces are recorded (by trace id: a trace "
        "is recorded whole or not at all); the others still carry trace ids",
    )
    otel_exporter_otlp_endpoint: str = Field(
        default="",
        description="where spans are exported (OTLP over HTTP, e.g. http://collector:4318); "
        "unset: none is exported, trace ids still in events and logs",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_connections: int = Field(
        default=8,
        ge=1,
        le=32,
        description="notifier: SMTP connections a sender keeps to the relay, sending at once",
    )
    mail_from: str = "support@desk.example"
    policies_dir: str | None = Field(default=None, description="extra desk policy files")
    workflow_url: str = "http://127.0.0.1:8002"
    survey_secret: str = Field(
        default=DEV_SURVEY_SECRET,
        description="HMAC key of the satisfaction-survey links (set a long random one)",
    )
    survey_valid_days: int = Field(default=30, ge=1, description="how long a survey link works")
    directory_file: str | None = Field(
        default=None,
        description="portal: the directory it imports on a fresh installation (YAML); the "
        "shipped demo if unset (the services read the `directory` topic, never a file)",
    )
    topic_prefix: str = Field(
        default="", description="prefix of every topic name (several environments, one cluster)"
    )

    mail_host: str = Field(default="127.0.0.1", description="e-mail gateway: listen address")
    mail_port: int = Field(default=2526, description="e-mail gateway: SMTP port")
    mail_max_bytes: int = Field(
        default=26_214_400, ge=1024, description="e-mail gateway: largest message (552 above)"
    )
    mail_sender_hourly_limit: int = Field(
        default=60, ge=1, description="messages a sender may send per hour (more are dropped)"
    )
    mail_answers_daily_limit: int = Field(
        default=5, ge=0, description="automatic answers to one sender per day"
    )
    mail_max_concurrent: int = Field(
        default=8, ge=1, description="e-mail gateway: messages handled at once"
    )
    desk_env: Literal["development", "staging", "production"] = Field(
        default="development",
        description="production and staging refuse settings meant for a developer's machine; "
        "only production refuses test clocks",
    )
    test_clocks: bool = Field(
        default=False,
        description="test clocks (desk_contracts.testclocks): requests living on a controllable "
        "time, for staging and test environments; refused with DESK_ENV=production",
    )
    mail_authserv_ids: str = Field(
        default="",
        description="e-mail gateway: authserv-ids of our MX's Authentication-Results headers, "
        "comma-separated: the only such headers believed",
    )
    mail_verify: Literal["", "mx", "self", "off"] = Field(
        default="",
        description="e-mail gateway: who checks the From domain: mx (our MX's headers), self "
        "(DKIM, SPF, DMARC by the gateway), off (nobody: development only); "
        "empty: mx when MAIL_AUTHSERV_IDS is set, else self",
    )
    mail_dns_server: str = Field(
        default="",
        description="e-mail gateway: DNS server (host:port) of its own checks; empty: the system's",
    )
    mail_domain_hourly_limit: int = Field(
        default=300, ge=1, description="messages per hour from one mail domain (more are dropped)"
    )
    mail_desk_hourly_limit: int = Field(
        default=1000, ge=1, description="messages per hour to one desk (more are dropped)"
    )
    requests_submitter_hourly_limit: int = Field(
        default=30, ge=1, description="POST /requests: requests per hour by one submitter (429)"
    )
    requests_domain_hourly_limit: int = Field(
        default=100,
        ge=1,
        description="POST /requests: requests per hour for one requester's mail domain (429; "
        "staff of the desk are not counted for it)",
    )
    requests_desk_hourly_limit: int = Field(
        default=1000, ge=1, description="POST /requests: requests per hour to one desk (429)"
    )
    admission_max_backlog: int = Field(
        default=2000,
        ge=0,
        description="intake and the e-mail gateway: past this many events waiting in the outbox "
        "(appended, not yet on Kafka), new requests get 503 and mails 451 until it drains",
    )
    admission_max_in_flight: int = Field(
        default=96,
        ge=1,
        description="intake and the e-mail gateway: submissions (or mails) one process handles "
        "at once; past it, 503 (or 451)",
    )
    admission_max_lag_seconds: float = Field(
        default=2.0,
        ge=0,
        description="intake and the e-mail gateway: past this lag of the slowest watched "
        "consumer group (records waiting / the rate it takes them), 503 (or 451); 0: not watched",
    )
    admission_max_wait_seconds: float = Field(
        default=0.5,
        ge=0,
        description="intake and the e-mail gateway: past this wait of the oldest submission "
        "queued for the database in the process (group commit), 503 (or 451); 0: not watched",
    )
    admission_lag_groups: str = Field(
        default="workflow@ticket-commands,notifier@ticket-events,sla@ticket-events",
        description="the consumer groups whose lag closes the doors, as service@topic, ...",
    )
    admission_retry_after_seconds: int = Field(
        default=1, ge=1, description="the Retry-After of a request refused past capacity"
    )
    admission_refresh_seconds: float = Field(
        default=0.2,
        gt=0,
        le=5,
        description="how often the outbox backlog is read (one query, never one per request)",
    )
    ready_relay_seconds: float = Field(
        default=30.0, gt=0, description="/ready: how long events may wait while the relay stalls"
    )
    ready_consumer_seconds: float = Field(
        default=60.0,
        gt=0,
        description="/ready: how long records may wait while a consumer's offset does not move",
    )
    ready_pending_mail_seconds: float = Field(
        default=300.0, gt=0, description="/ready (notifier): how long a message may stay unsent"
    )
    ready_timeout_seconds: float = Field(
        default=3.0, gt=0, description="/ready: how long each check may take to observe"
    )
    identity_keys: str = Field(
        default="",
        description="the portal's public keys that sign identity tokens: its JWKS URL "
        "(`<portal>/.well-known/jwks.json`) or a JWKS file; a service refuses to start without",
    )
    identity_signing_keys: str = Field(
        default="", description="portal: folder of its Ed25519 signing keys (`<kid>.pem`)"
    )
    portal_url: str = Field(
        default="http://127.0.0.1:8000", description="the portal's address as people reach it"
    )
    intake_url: str = "http://127.0.0.1:8001"
    sla_url: str = "http://127.0.0.1:8003"
    demo_password: str = Field(
        default="",
        description="portal, development only: the password of every person of a fresh "
        "installation's imported directory (refused with DESK_ENV=production or staging)",
    )
    oidc_issuer: str = Field(default="", description="portal: single sign-on provider (issuer URL)")
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_roles_claim: str = Field(
        default="groups",
        description="portal: the ID token's claim listing the groups mapped to desk roles",
    )
    oidc_role_map: str = Field(
        default="",
        description="portal: group=desk:role pairs, comma-separated (e.g. "
        "`/desk/erp-vendor/team_lead=erp-vendor:team_lead`); a group listed nowhere grants nothing",
    )
    blob_dir: str = Field(default=".state/blobs", description="attachments (content-addressed)")
    attachment_max_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="portal: the largest file one may attach"
    )
    attachments_max_total_bytes: int = Field(
        default=25 * 1024 * 1024, gt=0, description="portal: all the files of one request"
    )

    @property
    def guarded(self) -> bool:
        """Are settings meant for a developer's machine refused here (production, staging)?"""
        return self.desk_env != "development"

    @model_validator(mode="after")
    def _no_test_clocks_in_production(self) -> Settings:
        if self.test_clocks and self.desk_env == "production":
            raise ValueError(
                "TEST_CLOCKS=true is refused with DESK_ENV=production: a test clock moves the "
                "time of real requests (reminders, automatic closing, SLA breaches)"
            )
        return self

    def topic(self, name: str) -> str:
        return self.topic_prefix + name
