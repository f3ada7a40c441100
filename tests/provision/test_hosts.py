import pytest

from provision.errors import InputError
from provision.remote.hosts import parse_host_spec


@pytest.mark.parametrize(
    ("text", "name", "scheme"),
    [
        ("local://", "localhost", "local"),
        ("", "localhost", "local"),
        ("ssh://ops@192.0.2.11:2202", "192.0.2.11:2202", "ssh"),
        ("paramiko://root@node1", "node1", "paramiko"),
        ("docker://compute1", "compute1", "docker"),
        ("ansible://node2", "node2", "ansible"),
    ],
)
def test_host_specs(text, name, scheme):
    spec = parse_host_spec(text)
    assert (spec.name, spec.scheme) == (name, scheme)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node1", "expected SCHEME://"),
        ("winrm://node1", "unknown scheme 'winrm'"),
        ("ssh://", "names no host"),
    ],
)
def test_bad_host_specs(text, message):
    with pytest.raises(InputError, match=message):
        parse_host_spec(text)
