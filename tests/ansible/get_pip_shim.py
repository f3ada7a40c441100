"""Stand-in for pip's get-pip.py, whose download ansible-test cannot reach here: pip from the
interpreter's own ensurepip, then pip installs what ansible-test asks for (its arguments; get-pip's
own --no-setuptools and --no-wheel mean: not those)."""
import ensurepip
import os
import sys

ensurepip.bootstrap(upgrade=True)
from pip._internal.cli.main import main  # noqa: E402  (pip exists only now)

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):  # this machine reaches PyPI through its own CA
    args += ["--cert", "/etc/ssl/certs/ca-certificates.crt"]
sys.exit(main(["install", *args]))
