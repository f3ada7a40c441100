"""The JSON contract: schema ``provision.preflight/1`` (see README)."""

from __future__ import annotations

import json

from provision.results import Report


def to_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, sort_keys=False)
