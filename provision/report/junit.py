"""JUnit XML for CI dashboards: one testsuite per node, one testcase per check."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from provision.results import Report


def to_junit(report: Report) -> str:
    suites = ET.Element("testsuites", name="provision preflight")
    for host in report.hosts:
        suite = ET.SubElement(suites, "testsuite", name=host.host, time=f"{host.seconds:.3f}")
        failures = skips = 0
        if not host.reachable:
            case = ET.SubElement(suite, "testcase", classname=host.host, name="reachable")
            ET.SubElement(case, "failure", message=host.error or "unreachable")
            failures += 1
        for check in host.checks:
            case = ET.SubElement(suite, "testcase", classname=host.host, name=check.id)
            detail = json.dumps(check.evidence, indent=1) + (f"\nremedy: {check.remedy}" if check.remedy else "")
            if check.status == "fail":
                ET.SubElement(case, "failure", message=check.message).text = detail
                failures += 1
            elif check.status == "skip":
                ET.SubElement(case, "skipped", message=check.message)
                skips += 1
            else:
                ET.SubElement(case, "system-out").text = f"{check.status}: {check.message}"
        suite.set("tests", str(len(suite)))
        suite.set("failures", str(failures))
        suite.set("skipped", str(skips))
        suite.set("errors", "0")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
