"""nova's CPU settings against what libvirt and the node accept: recorded capabilities for the check,
this machine's libvirt cpu_map for validation, and the real libvirtd as the judge of the mode rule."""

import platform
import subprocess

import pytest

from provision_plugins.hypervisor import PASSTHROUGH_REFUSED, cpu_models_check, libvirt_cpu_models
from tests.nodes import healthy_node

# libvirt's QEMU capabilities as the probe returns them (recorded from this PVM machine, cut down)
CAPS = {"path": "/var/cache/libvirt/qemu/capabilities/x.xml", "models": {
    "tcg": {"qemu64": [], "Cascadelake-Server-noTSX": ["pcid", "x2apic", "avx512f"]},
    "kvm": {"qemu64": [], "Cascadelake-Server-noTSX": []}},
    "host_model": {"kvm": ["cmov", "mmx", "avx2", "avx512f", "pcid", "kvm-pv-eoi"], "tcg": ["cmov", "mmx", "pcid"]}}


def settings(virt_type="qemu", mode="custom", models=("qemu64",)):
    return {"virt_type": virt_type, "hypervisor": {"cpu_mode": mode, "cpu_models": list(models)}}


@pytest.mark.parametrize(
    ("hv", "facts", "status", "message"),
    [
        (settings(), {}, "pass", "qemu64 usable under tcg"),
        (settings(models=("Cascadelake-Server-noTSX",)), {}, "fail",
         "Cascadelake-Server-noTSX is not usable under tcg: the node lacks pcid, x2apic, avx512f"),
        (settings(virt_type="kvm", models=("Cascadelake-Server-noTSX",)), {}, "pass",
         "Cascadelake-Server-noTSX usable under kvm"),
        (settings(models=("EPYC-Genoa",)), {}, "fail", "EPYC-Genoa is not known to the node's QEMU"),
        # auto: the node's own decision says which accelerator (this healthy VT-x node decides kvm)
        (settings(virt_type="auto", models=("Cascadelake-Server-noTSX",)), {}, "pass",
         "Cascadelake-Server-noTSX usable under kvm"),
        (settings(virt_type="auto", mode="host-passthrough", models=()), {"cpu": "vm_noflags"}, "fail",
         "cpu_mode host-passthrough on a node that runs guests under qemu (TCG): " + PASSTHROUGH_REFUSED),
        (settings(mode="none", models=()), {}, "skip", "cpu_mode none: no custom CPU model to check"),
        (settings(virt_type="kvm", mode="host-model", models=()), {}, "pass",
         "cpu_mode host-model: libvirt has a host-model CPU for kvm (6 features on)"),
        (settings(mode="host-model", models=()), {}, "warn",
         "cpu_mode host-model under qemu (TCG): guests get libvirt's emulated host CPU, without 2 features of this "
         "node's CPU (avx2, avx512f)"),
        (settings(mode="host-model", models=()),
         {"nova.cpu_models": {**CAPS, "host_model": {"kvm": ["cmov"]}}}, "fail",
         "cpu_mode host-model: libvirt reports no host-model CPU for tcg on this node"),
        (settings(), {"nova.cpu_models": {"error": "no QEMU capabilities for x86_64"}}, "fail",
         "cannot check the CPU models: no QEMU capabilities for x86_64"),
    ],
)
def test_cpu_models_against_the_nodes_capabilities(hv, facts, status, message):
    cpu = facts.pop("cpu", "intel_vtx")
    node = healthy_node(cpu=cpu, **{"nova.cpu_models": CAPS, **facts})
    result = cpu_models_check(node, hv)
    assert (result.status, result.message) == (status, message)


needs_cpu_map = pytest.mark.skipif(not libvirt_cpu_models(), reason="libvirt's cpu_map is not installed here")


@needs_cpu_map
def test_a_misspelt_model_and_passthrough_under_qemu_are_input_errors(tmp_path, cli):
    inv = tmp_path / "site.yml"
    inv.write_text("all:\n  hosts:\n    n1: {ansible_connection: local}\n  vars:\n    provision:\n      virt_type: qemu\n"
                   "      hypervisor:\n        cpu_mode: custom\n        cpu_models: [Cascadlake-Server-noTSX]\n")
    result = cli("render", "-i", str(inv), "--diff")
    assert result.exit_code == 2
    assert (f"{inv}: host n1: provision.hypervisor.cpu_models[0]: 'Cascadlake-Server-noTSX' is not a CPU model "
            "libvirt knows (did you mean Cascadelake-Server-noTSX") in result.output
    inv.write_text("all:\n  hosts:\n    n1: {ansible_connection: local}\n  vars:\n    provision:\n      virt_type: qemu\n"
                   "      hypervisor:\n        cpu_mode: host-passthrough\n")
    result = cli("render", "-i", str(inv), "--diff")
    assert result.exit_code == 2
    assert "provision.hypervisor.cpu_mode: host-passthrough needs virt_type kvm; libvirt refuses it" in result.output


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the rule is checked for x86_64 qemu domains")
def test_the_real_libvirtd_refuses_passthrough_for_qemu_and_takes_host_model(libvirtd, tmp_path):
    """The rule table checked against the real thing: a throw-away guest with each CPU mode."""
    outcome = {}
    for mode in ("host-passthrough", "host-model"):
        xml = tmp_path / f"{mode}.xml"
        xml.write_text(f"<domain type='qemu'><name>pvtest-cpu-{mode}</name><memory unit='MiB'>32</memory>"
                       f"<os><type arch='x86_64'>hvm</type></os><cpu mode='{mode}'/></domain>")
        created = subprocess.run(["virsh", "-c", "qemu:///system", "create", str(xml)], capture_output=True, text=True)
        subprocess.run(["virsh", "-c", "qemu:///system", "destroy", f"pvtest-cpu-{mode}"], capture_output=True)
        outcome[mode] = created
    assert outcome["host-model"].returncode == 0, outcome["host-model"].stderr
    refused = outcome["host-passthrough"]
    assert refused.returncode != 0
    assert PASSTHROUGH_REFUSED.split('"')[1] in refused.stderr


@pytest.mark.root  # libvirt's capabilities cache is root's (0600)
def test_the_real_probe_reads_this_nodes_qemu_capabilities():
    from provision.node import probe_runs as probe_script

    answer = probe_script.op_qemu_cpu_models({})
    if "error" in answer:
        assert "no QEMU capabilities" in answer["error"] or "No such file" in answer["error"]
        pytest.skip(answer["error"])
    assert answer["models"]["tcg"]["qemu64"] == []  # QEMU's own default model runs under TCG anywhere
    assert "cmov" in answer["host_model"]["tcg"]  # libvirt's host-model CPU for TCG, as this libvirtd probed it
