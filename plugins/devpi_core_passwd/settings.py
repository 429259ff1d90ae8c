"""The ``plugins.passwd`` section."""

from __future__ import annotations

import os
from dataclasses import dataclass

from devpi_core.specs import ConfigSection, setting

SECTION = "passwd"
# argon2's own limits (RFC 9106): 32-bit counts, and 24 bits of lanes
ARGON2_MAX = 2**32 - 1
ARGON2_MAX_LANES = 2**24 - 1
# argon2 needs 8 KiB of memory per lane
KIB_PER_LANE = 8


def _at_least(minimum: int, maximum: int | None = None) -> dict[str, object]:
    schema: dict[str, object] = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def physical_memory_kib() -> int | None:
    """This machine's memory in KiB, or None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 1024
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class PasswdSettings:
    """The ``plugins.passwd`` section."""

    argon2_time_cost: int = setting(
        3, "argon2 iterations for new password hashes", _at_least(1, ARGON2_MAX)
    )
    argon2_memory_cost: int = setting(
        65536,
        "argon2 memory in KiB for new password hashes: at least 8 per lane "
        "(argon2_parallelism), at most this machine's memory",
        _at_least(KIB_PER_LANE, ARGON2_MAX),
    )
    argon2_parallelism: int = setting(
        4, "argon2 lanes for new password hashes", _at_least(1, ARGON2_MAX_LANES)
    )
    login_token_expiry: int = setting(
        36000, "seconds a login token (devpi login) stays valid", _at_least(60)
    )
    credential_cache_seconds: int = setting(
        300,
        "how long a verified password is remembered (by a keyed digest, never in plain) so "
        "repeated Basic auth skips the slow hash; 0 turns this off",
        _at_least(0),
    )
    login_failures_per_client: int = setting(
        20,
        "wrong passwords one client address may send at once; then one more per "
        "login_failure_window / this many seconds (429 with Retry-After meanwhile); 0 turns this "
        "limit off",
        _at_least(0),
    )
    login_failures_per_user: int = setting(
        10,
        "the same for one user name, from all addresses together; login tokens keep working; 0 "
        "turns this limit off",
        _at_least(0),
    )
    login_failure_window: int = setting(
        300, "seconds in which the failure limits refill completely", _at_least(1)
    )
    max_concurrent_hashes: int = setting(
        0,
        "argon2 checks run at once (each takes argon2_memory_cost of memory); 0: the CPUs "
        "divided by argon2_parallelism, at least 1",
        _at_least(0),
    )
    hash_queue: int = setting(
        4,
        "argon2 checks that may wait for a free slot; more are answered 503 with Retry-After at "
        "once",
        _at_least(0),
    )

    def problems(self) -> list[tuple[str, str]]:
        """What argon2 would refuse only when the first password is hashed (``devpi-core init``
        would end in a traceback): checked with the configuration instead."""
        found = []
        lanes_need = KIB_PER_LANE * self.argon2_parallelism
        if self.argon2_memory_cost < lanes_need:
            found.append((
                "argon2_memory_cost",
                f"argon2 needs at least {KIB_PER_LANE} KiB per lane: {lanes_need} for "
                f"argon2_parallelism {self.argon2_parallelism}, got {self.argon2_memory_cost}",
            ))
        memory = physical_memory_kib()
        if memory is not None and self.argon2_memory_cost > memory:
            found.append((
                "argon2_memory_cost",
                f"{self.argon2_memory_cost} KiB cannot be allocated: this machine has "
                f"{memory} KiB of memory",
            ))
        return found


CONFIG_SECTION = ConfigSection.declare(SECTION, PasswdSettings)
