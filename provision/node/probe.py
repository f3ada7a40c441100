"""The probe: run on a node (stdlib only, Python 3.6+) to gather every fact in one round trip, sent with its
parts in one bundle (provision.node.bundle). It prints ``{key: answer}`` as one JSON object: the node
pays about 3 ms to import json, the controller reads 100 KB of answers in under 1 ms. Every answer is a
dict; one that could not be had carries ``error``. It changes nothing on the node."""
import os
import sys

from . import probe_devices, probe_files, probe_runs
from .common import as_json, error_of
from .probe_runs import finish_run, start_run

OPS = {name[3:]: fn for module in (probe_files, probe_runs, probe_devices) for name, fn in vars(module).items()
       if name.startswith("op_")}


def main(spec):
    # what a probe run reads once: read again by the next run in the same session (a remedy may have
    # installed QEMU since, a key file may have been rotated)
    probe_runs._CAPS_HEADERS.clear()
    probe_files._SECRET_WORDS.clear()
    u = os.uname()
    facts = {"_probe": {"uid": os.geteuid(), "pid": os.getpid(), "python": sys.version.split()[0],
                        "machine": u.machine, "release": u.release, "nodename": u.nodename}}
    # commands first, so they run while the files are read
    running = {}
    for key, op in spec.items():
        if op.get("op") == "run":
            try:
                running[key] = start_run(op)
            except Exception as exc:  # a bad operation loses its own fact, never the node's others
                facts[key] = error_of(exc)
    for key, op in spec.items():
        if op.get("op") == "run":
            continue
        fn = OPS.get(op.get("op"))
        try:
            facts[key] = fn(op) if fn else {"error": "unknown probe op %r" % op.get("op")}
        except (OSError, ValueError, KeyError, StopIteration, IndexError) as exc:
            facts[key] = error_of(exc)
        except Exception as exc:  # a plugin's operation with a bad argument: its fact says so
            facts[key] = {"error": "the probe operation failed: %s: %s" % (type(exc).__name__, exc)}
    for key, proc in running.items():
        try:
            facts[key] = finish_run(proc, spec[key])
        except Exception as exc:
            facts[key] = {"error": "the probe operation failed: %s: %s" % (type(exc).__name__, exc)}
    sys.stdout.write(as_json(facts, "the probe operation's answer"))

