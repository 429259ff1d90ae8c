"""The ``plugins.passwd`` section."""

from __future__ import annotations

from dataclasses import dataclass

from devpi_core.specs import ConfigSection, setting

SECTION = "passwd"


def _at_least(minimum: int) -> dict[str, object]:
    return {"type": "integer", "minimum": minimum}


@dataclass(frozen=True)
class PasswdSettings:
    """The ``plugins.passwd`` section."""

    argon2_time_cost: int = setting(3, "argon2 iterations for new password hashes", _at_least(1))
    argon2_memory_cost: int = setting(
        65536, "argon2 memory in KiB for new password hashes", _at_least(8)
    )
    argon2_parallelism: int = setting(4, "argon2 lanes for new password hashes", _at_least(1))
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


CONFIG_SECTION = ConfigSection.declare(SECTION, PasswdSettings)
