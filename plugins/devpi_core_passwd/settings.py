"""The ``plugins.passwd`` section."""

from __future__ import annotations

SCHEMA = {
    "argon2_time_cost": {"type": "integer", "minimum": 1},
    "argon2_memory_cost": {"type": "integer", "minimum": 8},
    "argon2_parallelism": {"type": "integer", "minimum": 1},
    "login_token_expiry": {"type": "integer", "minimum": 60},
    "credential_cache_seconds": {"type": "integer", "minimum": 0},
}
DEFAULTS = {
    "argon2_time_cost": 3,
    "argon2_memory_cost": 65536,
    "argon2_parallelism": 4,
    "login_token_expiry": 36000,
    "credential_cache_seconds": 300,
}
HELP = {
    "argon2_time_cost": "argon2 iterations for new password hashes",
    "argon2_memory_cost": "argon2 memory in KiB for new password hashes",
    "argon2_parallelism": "argon2 lanes for new password hashes",
    "login_token_expiry": "seconds a login token (devpi login) stays valid",
    "credential_cache_seconds": "how long a verified password is remembered (by a keyed digest, "
    "never in plain) so repeated Basic auth skips the slow hash; 0 turns this off",
}
