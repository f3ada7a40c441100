"""KVM: /dev/kvm access for QEMU's user, the KVM API, the modules, and the virt_type decision."""

from __future__ import annotations

import re

from provision import kernel
from provision.api import Remedy, RenderedFile
from provision.checks import CheckSet, failed, passed, skipped, wanted_virt_type, warned
from provision.facts import Facts
from provision.hookspecs import hookimpl
from provision.results import Decision
from provision_plugins.cpu import EXTENSIONS, virt_extension

checks = CheckSet()

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_API_VERSION = 12
KVM = kernel.Needs(config=("CONFIG_KVM", "CONFIG_KVM_INTEL", "CONFIG_KVM_AMD"), modules=("kvm",))
DEFAULT_QEMU_USERS = ("libvirt-qemu", "qemu")  # Debian/Ubuntu, then RHEL
VENDOR_MODULES = {"kvm_intel": "Intel VT-x", "kvm_amd": "AMD-V", "kvm_pvm": "PVM (paravirtual, no VT-x/AMD-V)",
                  "kvm_hv": "POWER"}
DEV_KVM_REMEDY = ("make /dev/kvm group kvm, mode 0660, and put QEMU's user in group kvm, as udev does on a normal host: "
                  "chgrp kvm /dev/kvm && chmod 0660 /dev/kvm. Otherwise libvirtd re-probes QEMU on every define (~30 s)")


@hookimpl
def provision_probe():
    return {
        **kernel.probe(KVM),
        "kvm.device": {"op": "stat", "path": "/dev/kvm"},
        "kvm.api": {"op": "ioctl", "path": "/dev/kvm",
                    "calls": [[KVM_GET_API_VERSION, 0, False], [KVM_CREATE_VM, 0, True]]},
        "kvm.run": {"op": "kvm_run", "path": "/dev/kvm", "timeout": 0.5},
        "kvm.qemu_conf": {"op": "read", "path": "/etc/libvirt/qemu.conf"},
        "kvm.passwd": {"op": "read", "path": "/etc/passwd"},
        "kvm.group": {"op": "read", "path": "/etc/group"},
        "kvm.nested_intel": {"op": "read", "path": "/sys/module/kvm_intel/parameters/nested"},
        "kvm.nested_amd": {"op": "read", "path": "/sys/module/kvm_amd/parameters/nested"},
    }


def qemu_user(facts: Facts) -> tuple[str | None, str]:
    """QEMU's user: ``user`` in qemu.conf, else the distribution's default that exists."""
    conf = facts.text("kvm.qemu_conf") or ""
    if match := re.search(r'^\s*user\s*=\s*"([^"]+)"', conf, re.M):
        return match.group(1).lstrip("+"), "/etc/libvirt/qemu.conf user"
    users = {line.split(":")[0] for line in (facts.text("kvm.passwd") or "").splitlines() if line}
    for name in DEFAULT_QEMU_USERS:
        if name in users:
            return name, "default QEMU user present in /etc/passwd"
    return None, "no user in qemu.conf and neither libvirt-qemu nor qemu in /etc/passwd"


def user_ids(facts: Facts, name: str) -> tuple[int, set[int]] | None:
    """(uid, every gid) of ``name`` from /etc/passwd and /etc/group, or ``None``."""
    if name == "root":
        return 0, {0}
    for line in (facts.text("kvm.passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] == name:
            uid, gids = int(fields[2]), {int(fields[3])}
            for gline in (facts.text("kvm.group") or "").splitlines():
                g = gline.split(":")
                if len(g) >= 4 and name in g[3].split(","):
                    gids.add(int(g[2]))
            return uid, gids
    return None


def device_usable_by(facts: Facts, uid: int, gids: set[int]) -> bool:
    st = facts.answer("kvm.device")
    mode = st["mode"]
    if uid == 0:
        return True
    if st["uid"] == uid:
        return mode & 0o600 == 0o600
    if st["gid"] in gids:
        return mode & 0o060 == 0o060
    return mode & 0o006 == 0o006


def _shortfall(settings, message, evidence, remedy):
    if wanted_virt_type(settings) == "kvm":
        return failed(message + "; the inventory pins virt_type kvm", evidence, remedy)
    return warned(message, evidence, remedy)


@checks.register("kvm.device", "/dev/kvm exists and is read-write for the user QEMU runs as, not just root")
def kvm_device(facts: Facts, settings):
    st = facts.answer("kvm.device")
    if "error" in st:
        return _shortfall(settings, "/dev/kvm is missing: no KVM on this node", {"/dev/kvm": st["error"]},
                          "load kvm_intel or kvm_amd; on a VM, enable nested virtualisation")
    evidence = {"/dev/kvm": f"{st['kind']} mode {st['mode']:04o} uid {st['uid']} gid {st['gid']}"}
    if st["kind"] != "char":
        return _shortfall(settings, f"/dev/kvm is a {st['kind']}, not a character device", evidence,
                          "recreate it: mknod /dev/kvm c 10 232")
    user, source = qemu_user(facts)
    evidence["qemu user"] = f"{user} ({source})"
    if user is None:
        return warned("cannot tell which user QEMU runs as (libvirt not installed?)", evidence,
                      "install libvirt-daemon-system, or set user in /etc/libvirt/qemu.conf")
    ids = user_ids(facts, user)
    if ids is None:
        return failed(f"QEMU's user {user} does not exist on the node", evidence, f"create the user {user}")
    if device_usable_by(facts, *ids):
        return passed(f"/dev/kvm is read-write for QEMU's user {user}", evidence)
    return failed(f"/dev/kvm is not read-write for QEMU's user {user} (mode {st['mode']:04o})", evidence, DEV_KVM_REMEDY)


def kvm_api_answers(facts: Facts) -> tuple[bool, str]:
    """Whether /dev/kvm answered KVM_GET_API_VERSION with 12 and KVM_CREATE_VM with a VM."""
    ans = facts.answer("kvm.api")
    if "error" in ans:
        return False, f"cannot open /dev/kvm: {ans['error']}"
    results = ans.get("results", [])
    if not results or "error" in results[0]:
        return False, f"KVM_GET_API_VERSION failed: {results[0]['error'] if results else 'no answer'}"
    if results[0]["ret"] != KVM_API_VERSION:
        return False, f"KVM_GET_API_VERSION returned {results[0]['ret']}, expected {KVM_API_VERSION}"
    if len(results) < 2 or "error" in results[1]:
        return False, f"KVM_CREATE_VM failed: {results[1]['error'] if len(results) > 1 else 'no answer'}"
    return True, f"KVM_GET_API_VERSION = {KVM_API_VERSION}, KVM_CREATE_VM gave a VM"


@checks.register("kvm.api", "/dev/kvm answers the KVM API: KVM_GET_API_VERSION is 12 and KVM_CREATE_VM succeeds")
def kvm_api(facts: Facts, settings):
    ok, detail = kvm_api_answers(facts)
    evidence = {"/dev/kvm ioctl": detail}
    if ok:
        return passed(f"/dev/kvm answers the KVM API ({detail})", evidence)
    return _shortfall(settings, detail, evidence, "load the KVM modules and check dmesg for 'kvm: disabled by bios'")


KVM_RUN_PORT, KVM_RUN_BYTE = 0x3F8, 0x42  # what the probe's real-mode guest writes before it halts


def kvm_run_result(facts: Facts) -> tuple[str, str]:
    """``("pass"|"fail"|"skip", detail)`` of the probe's vCPU run (``kvm_run``): a VM with one page of
    real-mode code that writes 0x42 to port 0x3f8, then halts; each KVM_RUN bounded by 0.5 s."""
    ans = facts.answer("kvm.run")
    if not ans:
        return "skip", "no vCPU run was recorded for this node"
    if "skipped" in ans:
        return "skip", ans["skipped"]
    exits = ans.get("exits", [])
    if "error" in ans and not exits:
        return "skip", f"no vCPU could be made: {ans['error']}"
    shown = ", ".join(f"out 0x{e['port']:x} = 0x{e['byte']:02x}" if e["kind"] == "io" else e["kind"] for e in exits)
    expected = [{"kind": "io", "port": KVM_RUN_PORT, "out": True, "byte": KVM_RUN_BYTE}, {"kind": "hlt"}]
    if exits == expected:
        return "pass", f"a vCPU ran real-mode code: {shown}, in {ans.get('ms', '?')} ms"
    why = ans.get("error") or "the exits were not the expected out 0x3f8 = 0x42, hlt"
    return "fail", f"a vCPU did not run as expected ({shown or 'no exit'}): {why}"


@checks.register("kvm.run", "a vCPU runs a few real-mode instructions under KVM (out to a port, then hlt), within 0.5 s")
def kvm_run(facts: Facts, settings):
    status, detail = kvm_run_result(facts)
    evidence = {"KVM_RUN": detail}
    if status == "pass":
        return passed(detail, evidence)
    if status == "skip":
        return skipped(f"not run: {detail}", evidence)
    return _shortfall(settings, detail, evidence, "check dmesg for KVM errors; a nested set-up may need nested=1 on its host")


@hookimpl
def provision_probe_functional(canary):
    return {"kvm.boot": {"op": "canary_boot", "kernel": canary.kernel, "initrd": canary.initrd, "cmdline": canary.cmdline,
                         "marker": canary.marker, "accels": [["kvm", canary.timeout], ["tcg", canary.timeout]],
                         "unavailable": canary.unavailable}}


def _boot_text(run: dict) -> str:
    accel = "KVM" if run["accel"] == "kvm" else "TCG"
    if "skipped" in run:
        return f"{accel}: not tried ({run['skipped']})"
    if run["ok"]:
        return f"{accel}: booted in {run['seconds']:.2f} s"
    return f"{accel}: no boot ({run['why']}, {run['seconds']:.2f} s)"


def kvm_boot_result(facts: Facts) -> tuple[str, str, dict[str, str]]:
    """``("pass"|"fail"|"skip", detail, evidence)`` of the canary boots (``canary_boot``): ``pass`` when it
    booted under KVM; ``fail`` when KVM was tried and did not boot it. Not run without ``--functional``."""
    ans = facts.answer("kvm.boot")
    if not facts.gathered("kvm.boot"):
        return "skip", "not run: give provision preflight --functional (provision smoke always runs it)", {}
    if "skipped" in ans:
        return "skip", f"not run: {ans['skipped']}", {}
    if "error" in ans:
        return "skip", f"no canary boot: {ans['error']}", {}
    runs = {run["accel"]: run for run in ans["runs"]}
    evidence = {f"boot under {accel}": _boot_text(run) for accel, run in runs.items()}
    for run in runs.values():
        if not run.get("ok") and run.get("console"):
            evidence[f"console under {run['accel']}"] = " | ".join(run["console"])
    kvm, tcg = runs.get("kvm", {}), runs.get("tcg")
    if kvm.get("ok"):
        return "pass", f"the canary booted under KVM in {kvm['seconds']:.2f} s", evidence
    tcg_text = "" if tcg is None else (f"; under TCG it booted in {tcg['seconds']:.2f} s" if tcg.get("ok")
                                       else f"; under TCG it did not boot either ({tcg['why']})")
    if "skipped" in kvm:
        return "skip", f"not run under KVM: {kvm['skipped']}{tcg_text}", evidence
    return "fail", f"the canary did not boot under KVM ({kvm['why']}){tcg_text}", evidence


@checks.register("kvm.boot", "the canary guest boots under KVM with QEMU itself (preflight --functional, smoke); "
                             "on failure, under TCG")
def kvm_boot(facts: Facts, settings):
    status, detail, evidence = kvm_boot_result(facts)
    if status == "pass":
        return passed(detail, evidence)
    if status == "skip":
        return skipped(detail, evidence)
    tcg = (facts.answer("kvm.boot") or {}).get("runs", [])[-1:]
    if not (tcg and tcg[0]["accel"] == "tcg" and tcg[0].get("ok")):
        return failed(detail + ": this node cannot run guests at all", evidence,
                      "check QEMU on the node (qemu-system-* and its firmware) and the console lines in the evidence")
    return _shortfall(settings, detail + ": guests run only under software emulation (virt_type qemu)", evidence,
                      "use a node with working VT-x/AMD-V, or virt_type qemu")


def vendor_modules(facts: Facts) -> list[str]:
    present = set(facts.answer("kernel.sys_module").get("names", []))
    present |= {line.split()[0] for line in (facts.text("kernel.modules") or "").splitlines() if line.strip()}
    return sorted(present & set(VENDOR_MODULES))


@checks.register("kvm.module", "kvm_intel or kvm_amd is loaded or built in, and whether nested virtualisation is on")
def kvm_module(facts: Facts, settings):
    core = kernel.kernel_feature(facts, KVM)
    vendors = vendor_modules(facts)
    evidence = dict(core.evidence)
    evidence["/sys/module"] = ", ".join(vendors) or "no kvm_intel, kvm_amd"
    nested = {}
    for mod in ("intel", "amd"):
        value = facts.text(f"kvm.nested_{mod}")
        if value is not None:
            nested[f"kvm_{mod}"] = value.strip() in ("Y", "y", "1")
            evidence[f"/sys/module/kvm_{mod}/parameters/nested"] = value.strip()
    nested_text = "; nested " + ("on" if any(nested.values()) else "off") if nested else ""
    if facts.machine in ("aarch64", "s390x"):
        if core.usable:
            return passed(f"kvm {core.detail} (no vendor module on {facts.machine})", evidence)
        return _shortfall(settings, f"kvm {core.detail}", evidence, "load the kvm module")
    standard = [m for m in vendors if m in ("kvm_intel", "kvm_amd")]
    if standard:
        return passed(f"{', '.join(standard)} present ({VENDOR_MODULES[standard[0]]}){nested_text}", evidence)
    if vendors:
        names = ", ".join(f"{m} ({VENDOR_MODULES[m]})" for m in vendors)
        return _shortfall(settings, f"kvm is backed by {names}, not kvm_intel/kvm_amd: stock guests do not run",
                          evidence, "use a node with VT-x/AMD-V, or virt_type qemu")
    return _shortfall(settings, f"neither kvm_intel nor kvm_amd is loaded (kvm {core.detail})", evidence,
                      "modprobe kvm_intel (Intel) or kvm_amd (AMD), after enabling VT-x/AMD-V in the firmware")


@hookimpl(tryfirst=True)  # the default: a plugin replaces it only by being tryfirst itself (registered later)
def provision_virt_decision(facts: Facts, settings) -> Decision:
    """``kvm`` only with CPU extensions, a usable /dev/kvm, an answering KVM API, a vCPU that ran (where
    kvm.run ran) and a canary that booted under KVM (where kvm.boot ran); else ``qemu``."""
    ext = virt_extension(facts)
    api_ok, api_detail = kvm_api_answers(facts)
    device = kvm_device(facts, settings)
    reasons: list[str] = []
    if ext:
        reasons.append(f"CPU shows {ext} ({EXTENSIONS.get(ext, 'arm64 EL2')})")
    else:
        reasons.append("CPU shows neither vmx nor svm")
    reasons.append(api_detail if api_ok else f"KVM API: {api_detail}")
    if device.status != "pass":
        reasons.append(device.message)
    run_status, run_detail = kvm_run_result(facts)
    if run_status != "skip":
        reasons.append(f"kvm.run: {run_detail}")
    boot_status, boot_detail, _ = kvm_boot_result(facts)
    if boot_status != "skip":
        reasons.append(f"kvm.boot: {boot_detail}")
    if ext and api_ok and device.status == "pass" and run_status != "fail" and boot_status != "fail":
        mode = "host-passthrough" if facts.machine == "aarch64" else "host-model"
        return Decision("kvm", mode, tuple(reasons))
    if api_ok and not ext:
        reasons.append("/dev/kvm answers without vmx/svm (a paravirtual KVM such as PVM, or a broken nested "
                       "set-up): stock guests hang there, so guests run under software emulation")
    wanted = wanted_virt_type(settings)
    if wanted == "kvm":
        reasons.append("the inventory pins virt_type kvm, which this node cannot run")
    reasons.append("TCG emulates QEMU's default CPU model, so nova's cpu_mode is none")
    return Decision("qemu", "none", tuple(reasons))


# what udev's own rules give /dev/kvm on a normal host, kept at every boot where no rule does
UDEV_RULE = "/etc/udev/rules.d/65-provision-kvm.rules"
DEVICE = ("/dev/kvm", "kvm", "0660")
VENDOR_MODULE = {"vmx": "kvm_intel", "svm": "kvm_amd"}
FIRMWARE = ("enable VT-x/AMD-V in the firmware (or, on a VM, nested virtualisation on its host), then reboot: "
            "nothing on the node can turn it on")


NESTED_FILE = "/etc/modprobe.d/provision-kvm.conf"


def nested_wanted(settings) -> bool:
    return bool((settings.get("hypervisor") or {}).get("nested"))


@hookimpl
def provision_render(ctx):
    files = [RenderedFile(UDEV_RULE, ctx.render("udev/kvm.rules.j2", device=DEVICE))]
    if nested_wanted(ctx.settings):
        files.append(RenderedFile(NESTED_FILE, ctx.render("modprobe/provision-kvm.conf.j2", modules=("kvm_intel", "kvm_amd"))))
    return files


@checks.register("kvm.nested", "nested virtualisation is on where the inventory asks for it (hypervisor.nested)")
def kvm_nested(facts: Facts, settings):
    if not nested_wanted(settings):
        return skipped("the inventory does not ask for nested virtualisation")
    states = {m: (facts.text(f"kvm.nested_{m[4:]}") or "").strip() for m in ("kvm_intel", "kvm_amd")}
    evidence = {f"/sys/module/{m}/parameters/nested": v or "absent" for m, v in states.items()}
    loaded = [m for m, v in states.items() if v]
    if any(v in ("Y", "y", "1") for v in states.values()):
        return passed("nested virtualisation is on", evidence)
    if not loaded:
        return warned("neither kvm_intel nor kvm_amd is loaded: nested virtualisation cannot be on", evidence,
                      f"{NESTED_FILE} (written by apply) turns it on when the module loads")
    return warned(f"{loaded[0]} is loaded with nested virtualisation off", evidence,
                  f"{NESTED_FILE} (written by apply) takes effect when {loaded[0]} is reloaded with no guest "
                  f"running (modprobe -r {loaded[0]} && modprobe {loaded[0]}), or at the next reboot")


@checks.remedy("kvm.device", warnings=True)  # with virt_type auto a usable /dev/kvm is what makes the node kvm
def permit_kvm(facts: Facts, settings, result) -> Remedy | None:
    st = facts.answer("kvm.device")
    module = VENDOR_MODULE.get(virt_extension(facts) or "")
    if "error" in st and result.status != "fail":
        return None  # a module that may not load (VT-x off in the firmware) is tried only where kvm is pinned
    if "error" in st:
        return Remedy(packages=kernel.KMOD, modules=(module,), devices=(DEVICE,)) if module else Remedy(manual=FIRMWARE)
    if st["kind"] != "char":
        return Remedy(manual=f"/dev/kvm is a {st['kind']}: remove it and reboot (or mknod /dev/kvm c 10 232)")
    if qemu_user(facts)[0] is None or result.message.startswith("QEMU's user"):
        from provision_plugins.libvirt import PACKAGES

        return Remedy(packages=PACKAGES, devices=(DEVICE,))  # libvirt makes QEMU's user, in group kvm
    return Remedy(devices=(DEVICE,))


@checks.remedy("kvm.module")
def load_kvm(facts: Facts, settings, result) -> Remedy:
    module = VENDOR_MODULE.get(virt_extension(facts) or "")
    return Remedy(packages=kernel.KMOD, modules=(module,)) if module else Remedy(manual=FIRMWARE)


provision_check_catalog, provision_checks = checks.hooks()
provision_remedies = checks.remedies_hook()
