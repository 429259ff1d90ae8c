"""The ``plugins.passwd`` section."""

from __future__ import annotations

SCHEMA = {
    "argon2_time_cost": {"type": "integer", "minimum": 1},
    "argon2_memory_cost": {"type": "integer", "minimum": 8},
    "argon2_parallelism": {"type": "integer", "minimum": 1},
    "login_token_expiry": {"type": "integer", "minimum": 60},
    "credential_cache_seconds": {"type": "integer", "minimum": 0},
    "login_failures_per_client": {"type": "integer", "minimum": 0},
    "login_failures_per_user": {"type": "integer", "minimum": 0},
    "login_failure_window": {"type": "integer", "minimum": 1},
    "max_concurrent_hashes": {"type": "integer", "minimum": 0},
    "hash_queue": {"type": "integer", "minimum": 0},
}
DEFAULTS = {
    "argon2_time_cost": 3,
    "argon2_memory_cost": 65536,
    "argon2_parallelism": 4,
    "login_token_expiry": 36000,
    "credential_cache_seconds": 300,
    "login_failures_per_client": 20,
    "login_failures_per_user": 10,
    "login_failure_window": 300,
    "max_concurrent_hashes": 0,
    "hash_queue": 4,
}
HELP = {
    "argon2_time_cost": "argon2 iterations for new password hashes",
    "argon2_memory_cost": "argon2 memory in KiB for new password hashes",
    "argon2_parallelism": "argon2 lanes for new password hashes",
    "login_token_expiry": "seconds a login token (devpi login) stays valid",
    "credential_cache_seconds": "how long a verified password is remembered (by a keyed digest, "
    "never in plain) so repeated Basic auth skips the slow hash; 0 turns this off",
    "login_failures_per_client": "wrong passwords one client address may send at once; then "
    "one more per login_failure_window / this many seconds (429 with Retry-After meanwhile); "
    "0 turns this limit off",
    "login_failures_per_user": "the same for one user name, from all addresses together; login "
    "tokens keep working; 0 turns this limit off",
    "login_failure_window": "seconds in which the failure limits refill completely",
    "max_concurrent_hashes": "argon2 checks run at once (each takes argon2_memory_cost of "
    "memory); 0: the CPUs divided by argon2_parallelism, at least 1",
    "hash_queue": "argon2 checks that may wait for a free slot; more are answered 503 with "
    "Retry-After at once",
}
