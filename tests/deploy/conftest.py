"""Offline tests of the deployment: the Kubernetes manifests, docker-compose.yml, the dashboard
and the alerts. No server, no cluster, no kustomize binary: `kustomize_lite` renders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
for folder in (K8S, Path(__file__).resolve().parent):  # kustomize_lite, kafka_topics, checks
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from deploy_checks import Obj, render  # noqa: E402

OVERLAYS = ("staging", "production")


@pytest.fixture(scope="session", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    """Each environment's overlay name in turn."""
    return str(request.param)


@pytest.fixture(scope="session")
def rendered(overlay: str) -> list[Obj]:
    """The objects of one overlay, as `kubectl apply -k` would send them."""
    return render(K8S / "overlays" / overlay)


@pytest.fixture(scope="session")
def migration(overlay: str) -> list[Obj]:
    """The objects of one overlay's migration kustomization (the Job)."""
    return render(K8S / "overlays" / overlay / "migrate")


@pytest.fixture(scope="session")
def secrets() -> list[Obj]:
    """The placeholder Secrets the Deployments refer to."""
    return render(K8S / "secrets")
