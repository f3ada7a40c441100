"""JUnit XML for CI dashboards: one testsuite per node, one testcase per check."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

from provision.results import Report

# what XML 1.0 cannot hold at all, not even escaped: control characters other than tab and new lines
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value: str) -> str:
    """``value`` as XML can hold it: each such character written as ``\\xNN``, as Python shows it."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def to_junit(report: Report) -> str:
    suites = ET.Element("testsuites", name="provision preflight")
    for host in report.hosts:
        suite = ET.SubElement(suites, "testsuite", name=_text(host.host), time=f"{host.seconds:.3f}")
        failures = skips = 0
        if not host.reachable:
            case = ET.SubElement(suite, "testcase", classname=_text(host.host), name="reachable")
            ET.SubElement(case, "failure", message=_text(host.error or "unreachable"))
            failures += 1
        for check in host.checks:
            case = ET.SubElement(suite, "testcase", classname=_text(host.host), name=_text(check.id))
            detail = json.dumps(check.evidence, indent=1) + (f"\nremedy: {check.remedy}" if check.remedy else "")
            if check.status == "fail":
                ET.SubElement(case, "failure", message=_text(check.message)).text = _text(detail)
                failures += 1
            elif check.status == "skip":
                ET.SubElement(case, "skipped", message=_text(check.message))
                skips += 1
            else:
                ET.SubElement(case, "system-out").text = _text(f"{check.status}: {check.message}")
        suite.set("tests", str(len(suite)))
        suite.set("failures", str(failures))
        suite.set("skipped", str(skips))
        suite.set("errors", "0")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
