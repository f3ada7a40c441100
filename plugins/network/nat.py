"""NAT networks: netfilter NAT with nftables (or iptables) masquerading."""

from __future__ import annotations

from provision import kernel
from provision.checks import CheckSet
from provision.hookspecs import hookimpl

checks = CheckSet()
NF_NAT = kernel.Needs(config=("CONFIG_NF_NAT",), modules=("nf_nat",))
MASQUERADE = kernel.Needs(config=("CONFIG_NFT_MASQ", "CONFIG_NFT_NAT", "CONFIG_IP_NF_TARGET_MASQUERADE"),
                          modules=("nft_masq", "nft_nat", "nft_chain_nat", "ipt_MASQUERADE"))


@hookimpl
def provision_probe():
    return kernel.probe(NF_NAT, MASQUERADE)


@checks.register("kernel.nat", "the kernel has netfilter NAT (nf_nat) with nftables or iptables masquerading")
def kernel_nat(facts, settings):
    core = kernel.kernel_feature(facts, NF_NAT)
    masq = kernel.kernel_feature(facts, MASQUERADE)
    feature = core if not core.usable else masq
    if core.usable and masq.usable:
        feature = kernel.KernelFeature(core.state, f"nf_nat {core.detail}; masquerade {masq.detail}",
                                       {**core.evidence, **masq.evidence})
    needed = bool((settings.get("network") or {}).get("nat"))
    return kernel.kernel_check(feature, what="netfilter NAT", needed=needed, remedy="modprobe nf_nat nft_masq")


provision_check_catalog, provision_checks = checks.hooks()
