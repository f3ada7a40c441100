"""A plugin whose hook name is misspelt: check_pending() must refuse it."""

from provision.hookspecs import hookimpl


@hookimpl
def provision_chekcs(facts, settings):
    return []
