"""Two third-party decisions, loaded only by tests: one ordinary (never asked while the built-in one
decides), one that declares tryfirst and so replaces the built-in decision."""

from provision.hookspecs import hookimpl
from provision.results import Decision


class Ordinary:
    @hookimpl
    def provision_virt_decision(self, facts, settings):
        return Decision("kvm", "host-model", ("an ordinary plugin says so",))


class Replacing:
    @hookimpl(tryfirst=True)
    def provision_virt_decision(self, facts, settings):
        return Decision("qemu", "custom", ("the replacing plugin says so",))
