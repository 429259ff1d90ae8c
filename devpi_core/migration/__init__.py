"""Moving data in and out of devpi-core in devpi-server's export format.

``devpi-core import DUMPDIR`` reads what devpi-server's ``devpi-export`` (or ``devpi-core
export``) wrote into an empty server; ``devpi-core export DUMPDIR`` writes the same format, so
devpi-server's ``devpi-import`` reads it back. Both go through the configured stores only, so
moving between storage backends is an export from one configuration and an import into another.
"""

from __future__ import annotations
