"""An example devpi-core plugin: an index type serving only the versions its constraints allow.

It offers one index type, ``constrained``, with two keys: ``bases`` (the indexes it serves) and
``constraints`` (requirement strings; a bare name means "never"). Its index type names no
:meth:`~devpi_core.indextypes.IndexType.bases` to core: core leaves the bases to it, and it reads
them through the public ``Indexes`` service and filters everything they serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import hookimpl
from devpi_core.specs import IndexKey, IndexTypeSpec
from devpi_core_constrained.constraints import Constraints
from devpi_core_constrained.index import ConstrainedIndex

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

KEYS = (
    IndexKey("bases", "bases", default=[], help="indexes whose releases this one serves, filtered"),
    IndexKey(
        "constraints",
        "list",
        default=[],
        help="requirements the served versions must satisfy ('requests<3'; a bare name: never)",
    ),
)


def validate(config: Mapping[str, Any]) -> list[str]:
    """Problems with an index configuration: every constraint must be a requirement."""
    problems = Constraints.problems(config.get("constraints"))
    return [f"constraints: {problem}" for problem in problems]


@hookimpl
def devpi_index_types() -> list[IndexTypeSpec]:
    """The ``constrained`` index type."""
    return [
        IndexTypeSpec("constrained", ConstrainedIndex, KEYS, validate=validate)
    ]
