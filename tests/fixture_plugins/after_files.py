"""A plugin with a node step that runs after the files and is given them: it stamps the digest of the
nova drop-in that provision renders (and checks it was handed that file)."""

from pathlib import Path

from provision.api import NodeStep
from provision.hookspecs import hookimpl

NOVA = "/etc/nova/nova.conf.d/50-provision-libvirt.conf"
STAMP = "/var/lib/provision-test-stamp"


@hookimpl
def provision_apply_node_steps(ctx, files):
    if NOVA not in files:
        raise AssertionError(f"the rendered files were not handed to the step: {sorted(files)}")
    return [NodeStep("stamp", str(Path(__file__).parent / "steps" / "stamp_agent.py"), {"watch": NOVA, "stamp": STAMP},
                     phase="after_files")]
