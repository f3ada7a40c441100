"""The shared Jinja environment: strict, and Jinja's own lookup rules on dicts."""

import jinja2
import pytest

from provision.templating import environment


def test_a_dotted_name_on_a_dict_is_its_item_unless_dict_has_that_method():
    env = environment()
    template = env.from_string("{{ d.name }} {{ d.keys() | sort | join(',') }} {{ d['keys'] }}")
    assert template.render(d={"name": "br0", "keys": 3}) == "br0 keys,name 3"


def test_a_missing_key_is_an_error_not_an_empty_string():
    with pytest.raises(jinja2.UndefinedError, match="has no attribute 'mtu'"):
        environment().from_string("{{ d.mtu }}").render(d={"name": "br0"})

