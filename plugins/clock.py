"""Time: the kernel clock is synchronised (nova, RabbitMQ and Keystone tokens need agreeing clocks)."""

from __future__ import annotations

from provision.checks import CheckSet, failed, passed, warned
from provision.facts import Facts
from provision.hookspecs import hookimpl

checks = CheckSet()

STA_UNSYNC = 0x0040
TIME_ERROR = 5
NTP_DAEMONS = ("chronyd", "ntpd", "systemd-timesyn", "ntpsec", "openntpd")  # comm is cut at 15 chars


@hookimpl
def provision_probe():
    return {"clock.adjtimex": {"op": "adjtimex"}, "node.processes": {"op": "processes"}}


@checks.register("time.sync", "the kernel clock is synchronised by an NTP daemon (adjtimex)")
def time_sync(facts: Facts, settings):
    ans = facts.answer("clock.adjtimex")
    daemons = sorted(set(NTP_DAEMONS) & set(facts.answer("node.processes").get("names", [])))
    if "error" in ans:
        return failed("cannot read the clock state", facts.evidence("clock.adjtimex"), "check adjtimex(2)")
    synced = ans["state"] != TIME_ERROR and not ans["status"] & STA_UNSYNC
    evidence = {"adjtimex": f"state {ans['state']}, status 0x{ans['status']:04x}",
                "NTP daemons running": ", ".join(daemons) or "none"}
    if synced:
        return passed(f"clock synchronised ({', '.join(daemons) or 'kernel reports in sync'})", evidence)
    remedy = "install and start chrony (apt-get install chrony) pointing at the site's NTP servers"
    if daemons:
        return warned(f"{daemons[0]} runs but the kernel clock is not yet synchronised", evidence, remedy)
    return warned("the kernel clock is not synchronised and no NTP daemon runs", evidence, remedy)


provision_check_catalog, provision_checks = checks.hooks()
