"""The network plugins' pydantic field types (imported only with the schemas, when settings are read)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from provision_plugins.network.names import ifname

IfName = Annotated[str, AfterValidator(ifname)]
