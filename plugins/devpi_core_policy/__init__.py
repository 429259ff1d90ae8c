"""Supply-chain policy: release-age cooldowns, exclude_newer, allow/deny lists, exemptions,
waivers and a dry run, per index, over everything the index serves (its own and inherited)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import hookimpl
from devpi_core.specs import ServePolicySpec
from devpi_core_policy.rules import KEYS
from devpi_core_policy.service import Policy

if TYPE_CHECKING:
    from devpi_core.services import ServiceRegistry


def _policy(services: ServiceRegistry) -> Policy:
    return services.get(Policy)


@hookimpl
def devpi_startup(services: ServiceRegistry) -> None:
    """One policy per process: its clock, its decisions' memory, its counters."""
    services.register(Policy, Policy())


@hookimpl
def devpi_serve_policies() -> list[ServePolicySpec]:
    """The index keys and the policy core consults."""
    return [ServePolicySpec("policy", KEYS, _policy)]


@hookimpl
def devpi_metrics(services: ServiceRegistry) -> list[tuple[str, str, float]]:
    """Holds and would-holds since start."""
    policy = services.find(Policy)
    return [] if policy is None else policy.counters.metrics()
