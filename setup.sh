#!/usr/bin/env bash
# Set up a Debian 12 node (as root) for provision: system packages, the virtual
# environment in .venv, /dev/kvm permissions as udev gives them, and the libvirt
# daemons (started directly: no systemd needed). Safe to run again, also on a
# machine whose libvirtd is running: it is restarted when libvirt packages were
# installed, since it loads its drivers only when it starts.
#
#   bash setup.sh            everything: a controller and test machine
#   bash setup.sh --system   only what a managed node needs: packages, /dev/kvm, daemons
set -euo pipefail
cd "$(dirname "$0")"
system_only=false
case "${1:-}" in
  "") ;;
  --system) system_only=true ;;
  *) echo "usage: bash setup.sh [--system]" >&2; exit 2 ;;
esac

PACKAGES=(
  python3 python3-venv python3-dev gcc pkg-config            # the venv; libvirt-python builds from source
  qemu-system-x86 qemu-utils                                # QEMU (KVM or TCG)
  qemu-block-extra                                          # QEMU's rbd and iscsi drivers (storage.rbd, storage.iscsi)
  libvirt-daemon-system libvirt-clients libvirt-dev          # libvirtd, virtlogd, virsh, virt-xml-validate
  libvirt-daemon-driver-storage-rbd libvirt-daemon-driver-storage-iscsi-direct
  dnsmasq-base                                               # libvirt's NAT networks (DHCP and DNS)
  tgt                                                        # the iSCSI target the apply tests log in to
  python3-pyroute2                                           # netlink for the host network step on a node
  libxml2-utils netplan.io nftables iproute2 lvm2 kmod       # validators and the network/storage tools
  e2fsprogs util-linux systemd                              # mkfs, losetup, unshare, script, systemd-analyze in the tests
  openssh-server openssh-client                             # test hosts in network namespaces
  mmdebstrap socat apt-cacher-ng                            # bare Debian nodes for the bootstrap tests, their apt proxy
  ceph-mon ceph-osd ceph-mgr ceph-common                    # a real single-node Ceph cluster for the RBD tests
  busybox-static cpio dpkg-dev                              # the canary guest's initramfs
  chromium chromium-driver                                  # the HTML report's tests, in a real browser
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # a running libvirtd loads its storage backends and drivers only when it starts
  if printf '%s\n' "${missing[@]}" | grep -q '^libvirt' && pgrep -x libvirtd >/dev/null; then
    echo "setup.sh: restarting libvirtd to load the drivers just installed" >&2
    pkill -x libvirtd
    for _ in $(seq 100); do pgrep -x libvirtd >/dev/null || break; sleep 0.2; done
    if pgrep -x libvirtd >/dev/null; then
      echo "setup.sh: libvirtd did not stop within 20 s; stop it and run setup.sh again" >&2
      exit 1
    fi
  fi
fi

# udev's rule on a normal host: /dev/kvm is root:kvm 0660. Without it libvirtd
# re-probes QEMU on every define (about 30 s each).
getent group kvm >/dev/null || groupadd --system kvm
if [ -c /dev/kvm ] && [ "$(stat -c %G /dev/kvm)" != kvm ]; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

# The daemons, without systemd: virtlogd first, libvirtd needs it.
pgrep -x virtlogd >/dev/null || virtlogd -d
if ! pgrep -x libvirtd >/dev/null; then
  libvirtd -d
  for _ in $(seq 50); do virsh -q -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.2; done
fi

$system_only && exit 0

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
log=$(mktemp)
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]" >"$log" 2>&1 || { cat "$log"; exit 1; }
rm -f "$log"
.venv/bin/python -c "import provision_plugins, libvirt, lxml"  # fail early if the install did not take
.venv/bin/python -m compileall -q provision plugins >/dev/null  # bytecode once: start-up stays fast where PYTHONDONTWRITEBYTECODE is set

# The canary guest for `provision smoke` and the guest tests (Debian's cloud kernel + busybox).
.venv/bin/provision canary build >/dev/null
