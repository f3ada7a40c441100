"""The host network step, as it runs on the node: sent by the apply agent, stdlib and pyroute2 only
(Debian's python3-pyroute2 0.7), Python 3.6+, no import of provision.

Everything is read and changed through netlink (no ``ip`` command). The functions the agent calls:

- ``plan(spec, owned, context)``: what differs from the spec, and what must be refused first;
- ``snapshot(spec)``: the node's live network state (links, static addresses, routes);
- ``apply(spec, owned, context)``: make the live state match; returns what provision now owns;
- ``restore(snapshot, spec)``: put a snapshot back; returns what still differs from it;
- ``probes(snapshot)`` and ``confirm(probes)``: the checks a guarded commit makes after the change.

``spec`` is ``{"bridges": [...], "vlans": [...], "pythonpath": [...]}`` as the host network plugin
gives it; ``owned`` is ``{"bridges": {name: {"created": bool}}}`` from the state record; ``context``
holds ``controller``, the address the controller's SSH connection comes from (none when local).
"""
import os
import socket
import struct
import sys
import time

PERMANENT = 0x80  # IFA_F_PERMANENT: a static address (not from DHCP, SLAAC or the kernel)
KERNEL_PROTO = 2  # RTPROT_KERNEL: routes the kernel adds for an address's own subnet
MAIN_TABLE = 254
STATIC = "static"


class Refused(Exception):
    pass


def _iproute(spec):
    try:
        from pyroute2 import IPRoute
    except ImportError:
        import site

        for path in list(spec.get("pythonpath") or []) + list(site.getsitepackages()) + ["/usr/lib/python3/dist-packages"]:
            if path not in sys.path:
                sys.path.append(path)
        try:
            from pyroute2 import IPRoute
        except ImportError:
            raise Refused("pyroute2 is not installed on the node (apt-get install python3-pyroute2, "
                          "or dnf install python3-pyroute2)") from None
    return IPRoute()


# -- reading ---------------------------------------------------------------------------------------

def _links(ipr):
    by_index, links = {}, {}
    for msg in ipr.get_links():
        by_index[msg["index"]] = msg.get_attr("IFLA_IFNAME")
    for msg in ipr.get_links():
        info = msg.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        stp = None
        vlan_id = None
        if info is not None and kind == "bridge":
            data = info.get_attr("IFLA_INFO_DATA")
            stp = bool(data.get_attr("IFLA_BR_STP_STATE")) if data is not None else None
        if info is not None and kind == "vlan":
            data = info.get_attr("IFLA_INFO_DATA")
            vlan_id = data.get_attr("IFLA_VLAN_ID") if data is not None else None
        master = msg.get_attr("IFLA_MASTER")
        links[msg.get_attr("IFLA_IFNAME")] = {
            "index": msg["index"], "kind": kind or "", "master": by_index.get(master) if master else None,
            "mtu": msg.get_attr("IFLA_MTU"), "max_mtu": msg.get_attr("IFLA_MAX_MTU"),
            "mac": msg.get_attr("IFLA_ADDRESS"), "up": bool(msg["flags"] & 1), "stp": stp, "vlan_id": vlan_id,
            "parent": by_index.get(msg.get_attr("IFLA_LINK")) if msg.get_attr("IFLA_LINK") else None,
        }
    return links


def _addresses(ipr, links):
    """Each link's static addresses as 'address/prefix' (DHCP, SLAAC and link-local ones are not managed)."""
    names = dict((link["index"], name) for name, link in links.items())
    out = dict((name, []) for name in links)
    for msg in ipr.get_addr():
        flags = msg.get_attr("IFA_FLAGS")
        flags = msg["flags"] if flags is None else flags
        if msg["scope"] != 0 or not flags & PERMANENT:
            continue
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        name = names.get(msg["index"])
        if name is not None:
            out[name].append("%s/%d" % (address, msg["prefixlen"]))
    return dict((k, sorted(v)) for k, v in out.items())


def _routes(ipr, links):
    """The main table's routes that an address does not bring by itself: default and static routes."""
    names = dict((link["index"], name) for name, link in links.items())
    routes = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.get_routes(family=family, table=MAIN_TABLE):
            if msg["proto"] == KERNEL_PROTO or msg["type"] != 1:  # 1: unicast
                continue
            dst = msg.get_attr("RTA_DST")
            if family == socket.AF_INET6 and dst and (dst.startswith("fe80") or dst.startswith("ff")):
                continue
            routes.append({"family": family, "dst": "%s/%d" % (dst, msg["dst_len"]) if dst else "default",
                           "gateway": msg.get_attr("RTA_GATEWAY"), "dev": names.get(msg.get_attr("RTA_OIF")),
                           "metric": msg.get_attr("RTA_PRIORITY")})
    return sorted(routes, key=lambda r: (r["family"], r["dst"], r["dev"] or "", r["gateway"] or ""))


def _read(ipr):
    """The live state a plan, apply or restore works from: links, static addresses, routes."""
    links = _links(ipr)
    return {"links": links, "addresses": _addresses(ipr, links), "routes": _routes(ipr, links)}


def snapshot(spec):
    ipr = _iproute(spec)
    try:
        return _read(ipr)
    finally:
        ipr.close()


def _management(ipr, controller, links):
    """(interface, source address) that carry packets to the controller, as the node routes them."""
    if not controller:
        return None, None
    try:
        answer = ipr.route("get", dst=controller)[0]
    except Exception:
        return None, None
    names = dict((link["index"], name) for name, link in links.items())
    return names.get(answer.get_attr("RTA_OIF")), answer.get_attr("RTA_PREFSRC")


def _has_8021q():
    if os.path.exists("/proc/net/vlan"):
        return True
    release = os.uname().release
    try:
        with open("/lib/modules/%s/modules.dep" % release) as fh:
            return any(line.split(":", 1)[0].endswith(("/8021q.ko", "/8021q.ko.xz", "/8021q.ko.zst", "/8021q.ko.gz"))
                       for line in fh)
    except OSError:
        return False


# -- planning ----------------------------------------------------------------------------------------

def _want(spec, state, owned, management):  # noqa: C901 (one decision table: each interface kind and field, read in one place)
    """Per bridge: the changes it needs (why), refusals, and what apply should make of it."""
    links, addresses = state["links"], state["addresses"]
    changes, refused, wants = [], [], []
    members_of = {}
    for bridge in spec.get("bridges", []):
        for member in bridge["interfaces"]:
            members_of[member] = bridge["name"]
    for bridge in spec.get("bridges", []):
        name, why = bridge["name"], []
        link = links.get(name)
        if link is not None and link["kind"] != "bridge":
            refused.append({"target": name, "why": "%s exists and is not a bridge (%s); not touched"
                            % (name, link["kind"] or "a device")})
            continue
        if link is None:
            why.append("create the bridge")
        else:
            if bridge.get("mtu") and link["mtu"] != bridge["mtu"]:
                why.append("MTU %s, wants %s" % (link["mtu"], bridge["mtu"]))
            if link["stp"] is not None and link["stp"] != bool(bridge.get("stp")):
                why.append("STP %s, wants %s" % ("on" if link["stp"] else "off", "on" if bridge.get("stp") else "off"))
            if not link["up"]:
                why.append("link down")
        moved_addresses, moved_routes, mac = [], [], None
        for member in bridge["interfaces"]:
            port = links.get(member)
            if port is None:
                refused.append({"target": name, "why": "bridge port %s does not exist on the node" % member})
                continue
            if port["master"] and port["master"] != name:
                other = port["master"]
                if other not in owned.get("bridges", {}) or other in [b["name"] for b in spec.get("bridges", [])]:
                    refused.append({"target": name, "why": "%s is already a port of %s, which provision did not make"
                                    % (member, other)})
                    continue
            if bridge.get("mtu") and port["max_mtu"] and bridge["mtu"] > port["max_mtu"]:
                refused.append({"target": name, "why": "%s's driver takes an MTU of at most %d; the bridge wants %d"
                                % (member, port["max_mtu"], bridge["mtu"])})
                continue
            if port["master"] != name:
                why.append("add port %s" % member)
            if bridge.get("mtu") and port["mtu"] != bridge["mtu"]:
                why.append("port %s MTU %s, wants %s" % (member, port["mtu"], bridge["mtu"]))
            if not port["up"]:
                why.append("port %s down" % member)
            if addresses.get(member):
                moved_addresses += addresses[member]
                moved_routes += [r for r in state["routes"] if r["dev"] == member]
                why.append("move %s from %s" % (", ".join(addresses[member]), member))
            if member == management:
                mac = port["mac"]
                why.append("%s carries the controller's connection: its addresses, routes and MAC move to %s"
                           % (member, name))
        current = addresses.get(name, []) if link is not None else []
        wanted = sorted(bridge["addresses"]) if bridge.get("addresses") else sorted(set(current) | set(moved_addresses))
        for address in wanted:
            if address not in current and address not in moved_addresses:
                why.append("add address %s" % address)
        for address in current:
            if address not in wanted:
                why.append("remove address %s" % address)
        ours = set([name] + list(bridge["interfaces"]))
        for address in bridge.get("addresses") or []:
            ip = address.split("/")[0]
            for other, held in addresses.items():
                if other not in ours and any(a.split("/")[0] == ip for a in held):
                    refused.append({"target": name, "why": "address %s is already used on %s" % (address, other)})
        if moved_routes:
            why.append("move routes %s" % ", ".join("%s via %s" % (r["dst"], r["gateway"]) if r["gateway"]
                                                    else r["dst"] for r in moved_routes))
        changes.append({"target": name, "action": ("create" if link is None else "update") if why else "unchanged",
                        "why": "; ".join(why)})
        wants.append({"bridge": bridge, "addresses": wanted, "routes": moved_routes, "mac": mac})
    if spec.get("vlans"):
        if not _has_8021q():
            for vlan in spec["vlans"]:
                refused.append({"target": vlan["name"], "why": "VLAN %s needs 802.1Q, which this node's kernel "
                                "lacks (no 8021q module)" % vlan["name"]})
        else:
            for vlan in spec["vlans"]:
                refused += _vlan_refusals(vlan, links)
                why = _vlan_changes(vlan, links.get(vlan["name"]), addresses.get(vlan["name"], []))
                changes.append({"target": vlan["name"], "action": ("create" if vlan["name"] not in links else
                                "update") if why else "unchanged", "why": "; ".join(why)})
    for name in sorted(owned.get("bridges", {})):
        if name not in [b["name"] for b in spec.get("bridges", [])] and name in links and owned["bridges"][name].get("created"):
            changes.append({"target": name, "action": "remove", "why": "no longer in the inventory; its ports are released"})
    return changes, refused, wants


def _vlan_refusals(vlan, links):
    parent = links.get(vlan["link"])
    if parent is None:
        return [{"target": vlan["name"], "why": "the VLAN's parent %s does not exist on the node" % vlan["link"]}]
    if vlan.get("mtu") and vlan["mtu"] > parent["mtu"]:
        return [{"target": vlan["name"], "why": "MTU %d is larger than its parent %s's (%d)"
                 % (vlan["mtu"], vlan["link"], parent["mtu"])}]
    link = links.get(vlan["name"])
    if link is not None and (link["kind"] != "vlan" or link["vlan_id"] != vlan["id"] or link["parent"] != vlan["link"]):
        return [{"target": vlan["name"], "why": "%s exists and is not VLAN %d on %s; not touched"
                 % (vlan["name"], vlan["id"], vlan["link"])}]
    return []


def _vlan_changes(vlan, link, current):
    if link is None:
        return ["create VLAN %d on %s" % (vlan["id"], vlan["link"])]
    why = []
    if vlan.get("mtu") and link["mtu"] != vlan["mtu"]:
        why.append("MTU %s, wants %s" % (link["mtu"], vlan["mtu"]))
    if vlan.get("bridge") and link["master"] != vlan["bridge"]:
        why.append("add to %s" % vlan["bridge"])
    for address in vlan.get("addresses") or []:
        if address not in current:
            why.append("add address %s" % address)
    if not link["up"]:
        why.append("link down")
    return why


def plan(spec, owned, context):
    """``{"changes": [...], "refused": [...], "management": ...}``: each change with target, action, why."""
    ipr = _iproute(spec)
    try:
        state = _read(ipr)
        interface, source = _management(ipr, context.get("controller"), state["links"])
    finally:
        ipr.close()
    changes, refused, _ = _want(spec, state, owned, interface)
    return {"changes": changes, "refused": refused,
            "management": {"interface": interface, "source": source} if interface else None}


# -- changing ----------------------------------------------------------------------------------------

def _split(address):
    ip, prefix = address.split("/")
    return ip, int(prefix)


def _quietly(call, *args, **kwargs):
    """A netlink change whose target state may already hold (EEXIST, ESRCH, EADDRNOTAVAIL)."""
    from pyroute2 import NetlinkError

    try:
        call(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in (17, 3, 99, 19):  # EEXIST, ESRCH, EADDRNOTAVAIL, ENODEV
            raise


def _index(ipr, name):
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def apply(spec, owned, context):
    """Make the live network match; each bridge with its ports in one go. Returns the new ``owned``."""
    ipr = _iproute(spec)
    owned = {"bridges": dict(owned.get("bridges", {}))}
    try:
        state = _read(ipr)
        management, _ = _management(ipr, context.get("controller"), state["links"])
        changes, refused, wants = _want(spec, state, owned, management)
        if refused:
            raise Refused("; ".join("%s: %s" % (r["target"], r["why"]) for r in refused))
        for want in wants:
            _apply_bridge(ipr, want, state, owned)
        for vlan in spec.get("vlans", []):
            _apply_vlan(ipr, vlan, state)
        for change in changes:
            if change["action"] == "remove":
                _quietly(ipr.link, "del", index=_index(ipr, change["target"]))
                owned["bridges"].pop(change["target"], None)
    finally:
        ipr.close()
    return owned


def _apply_bridge(ipr, want, state, owned):
    bridge = want["bridge"]
    name = bridge["name"]
    if name not in state["links"]:
        ipr.link("add", ifname=name, kind="bridge", br_stp_state=1 if bridge.get("stp") else 0)
        owned["bridges"][name] = {"created": True}
    else:
        owned["bridges"].setdefault(name, {"created": False})
        if state["links"][name]["stp"] is not None and state["links"][name]["stp"] != bool(bridge.get("stp")):
            ipr.link("set", index=_index(ipr, name), kind="bridge", br_stp_state=1 if bridge.get("stp") else 0)
    index = _index(ipr, name)
    if bridge.get("mtu"):
        ipr.link("set", index=index, mtu=bridge["mtu"])
    if want["mac"]:
        ipr.link("set", index=index, address=want["mac"])
    for member in bridge["interfaces"]:
        port = _index(ipr, member)
        if bridge.get("mtu") and state["links"][member]["mtu"] != bridge["mtu"]:
            ipr.link("set", index=port, mtu=bridge["mtu"])
        if state["links"][member]["master"] != name:
            ipr.link("set", index=port, master=index)
        ipr.link("set", index=port, state="up")
    ipr.link("set", index=index, state="up")
    current = state["addresses"].get(name, [])
    for address in want["addresses"]:
        if address not in current:
            ip, prefix = _split(address)
            _quietly(ipr.addr, "add", index=index, address=ip, prefixlen=prefix)
    for member in bridge["interfaces"]:  # a port carries no address of its own
        for address in state["addresses"].get(member, []):
            ip, prefix = _split(address)
            _quietly(ipr.addr, "del", index=_index(ipr, member), address=ip, prefixlen=prefix)
    for address in current:
        if address not in want["addresses"]:
            ip, prefix = _split(address)
            _quietly(ipr.addr, "del", index=index, address=ip, prefixlen=prefix)
    for route in want["routes"]:
        _add_route(ipr, route, index)


def _route_args(route, index):
    args = {"family": route["family"], "oif": index}
    if route["dst"] != "default":
        dst, prefix = _split(route["dst"])
        args.update(dst=dst, dst_len=prefix)
    else:
        args["dst_len"] = 0
    if route["gateway"]:
        args["gateway"] = route["gateway"]
    if route["metric"] is not None:
        args["priority"] = route["metric"]
    return args


def _add_route(ipr, route, index):
    _quietly(ipr.route, "add", **_route_args(route, index))


def _apply_vlan(ipr, vlan, state):
    if vlan["name"] not in state["links"]:
        ipr.link("add", ifname=vlan["name"], kind="vlan", link=_index(ipr, vlan["link"]), vlan_id=vlan["id"])
    index = _index(ipr, vlan["name"])
    if vlan.get("mtu"):
        ipr.link("set", index=index, mtu=vlan["mtu"])
    if vlan.get("bridge"):
        ipr.link("set", index=index, master=_index(ipr, vlan["bridge"]))
    for address in vlan.get("addresses") or []:
        ip, prefix = _split(address)
        _quietly(ipr.addr, "add", index=index, address=ip, prefixlen=prefix)
    ipr.link("set", index=index, state="up")


# -- restoring -------------------------------------------------------------------------------------

def restore(saved, spec):  # noqa: C901 (the snapshot's parts, restored in the kernel's order, each checked)
    """Put the snapshot back: links the step made are deleted, ports go back to their masters, MTUs,
    MACs, static addresses and routes as they were. Returns what still differs (empty: restored)."""
    ipr = _iproute(spec)
    try:
        before = saved["links"]
        named = set(b["name"] for b in spec.get("bridges", [])) | set(v["name"] for v in spec.get("vlans", []))
        for name in named:
            if name not in before and _index(ipr, name) is not None:
                _quietly(ipr.link, "del", index=_index(ipr, name))
        now = _links(ipr)
        for name, link in before.items():
            if name not in now:
                continue
            index = now[name]["index"]
            if now[name]["master"] != link["master"]:
                master = _index(ipr, link["master"]) if link["master"] else 0
                ipr.link("set", index=index, master=master or 0)
            if now[name]["mtu"] != link["mtu"]:
                _quietly(ipr.link, "set", index=index, mtu=link["mtu"])
            if link["kind"] == "bridge" and now[name]["mac"] != link["mac"]:
                _quietly(ipr.link, "set", index=index, address=link["mac"])
            if now[name]["up"] != link["up"]:
                ipr.link("set", index=index, state="up" if link["up"] else "down")
        now = _links(ipr)
        addresses = _addresses(ipr, now)
        for name, held in saved["addresses"].items():
            if name not in now:
                continue
            index = now[name]["index"]
            for address in addresses.get(name, []):
                if address not in held:
                    ip, prefix = _split(address)
                    _quietly(ipr.addr, "del", index=index, address=ip, prefixlen=prefix)
            for address in held:
                if address not in addresses.get(name, []):
                    ip, prefix = _split(address)
                    _quietly(ipr.addr, "add", index=index, address=ip, prefixlen=prefix)
        current = _routes(ipr, now)
        for route in current:
            if route not in saved["routes"] and route["dev"] in named | set(
                    m for b in spec.get("bridges", []) for m in b["interfaces"]):
                _quietly(ipr.route, "del", **_route_args(route, now[route["dev"]]["index"]))
        for route in saved["routes"]:
            if route not in current and route["dev"] in now:
                _add_route(ipr, route, now[route["dev"]]["index"])
        after = _read(ipr)
    finally:
        ipr.close()
    return _differences(saved, after)


def _differences(saved, after):
    out = []
    for name, link in saved["links"].items():
        now = after["links"].get(name)
        if now is None:
            out.append("%s is gone" % name)
            continue
        for key in ("master", "mtu", "up"):
            if now[key] != link[key]:
                out.append("%s %s is %s, was %s" % (name, key, now[key], link[key]))
        if saved["addresses"].get(name, []) != after["addresses"].get(name, []):
            out.append("%s addresses are %s, were %s" % (name, after["addresses"].get(name), saved["addresses"].get(name)))
    for name in after["links"]:
        if name not in saved["links"]:
            out.append("%s was not there" % name)
    missing = [r for r in saved["routes"] if r not in after["routes"]]
    if missing:
        out.append("routes missing: %s" % ", ".join("%s dev %s" % (r["dst"], r["dev"]) for r in missing))
    return out


# -- the guarded commit's probes ---------------------------------------------------------------------

def probes(saved):
    """What the node must still reach after the change, chosen before it: the gateway of its default
    route, for each address family it has one."""
    out, seen = [], set()
    for route in saved["routes"]:
        if route["dst"] == "default" and route["gateway"] and route["family"] not in seen:
            seen.add(route["family"])
            out.append({"what": "default gateway", "address": route["gateway"]})
    return out


def confirm(chosen, timeout=1.0, tries=3):
    """Each probe's problem (empty: all answered): an ICMP echo to each gateway, a few tries."""
    problems = []
    for probe in chosen:
        if not any(_echo(probe["address"], timeout) for _ in range(tries)):
            problems.append("the node does not reach its %s %s" % (probe["what"], probe["address"]))
    return problems


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo(address, timeout):
    v6 = ":" in address
    family, proto = (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
    ident, request, reply = os.getpid() & 0xFFFF, (128 if v6 else 8), (129 if v6 else 0)
    payload = b"provision-confirm"
    header = struct.pack("!BBHHH", request, 0, 0, ident, 1)
    if not v6:  # the kernel computes ICMPv6 checksums itself
        header = struct.pack("!BBHHH", request, 0, _checksum(header + payload), ident, 1)
    sock = socket.socket(family, socket.SOCK_RAW, proto)
    try:
        sock.settimeout(timeout)
        sock.sendto(header + payload, (address, 0))
        deadline = time.time() + timeout
        while time.time() < deadline:
            sock.settimeout(max(0.01, deadline - time.time()))
            try:
                data, _ = sock.recvfrom(2048)
            except socket.timeout:
                return False
            if not v6:
                data = data[(data[0] & 0x0F) * 4:]
            if len(data) >= 8 and data[0] == reply and struct.unpack("!H", data[4:6])[0] == ident:
                return True
        return False
    except OSError:
        return False
    finally:
        sock.close()
