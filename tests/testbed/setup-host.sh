#!/usr/bin/env bash
# Prepares this machine as a libvirt/QEMU hypervisor for the tests and the
# demo: Debian packages, the libvirt daemons, KVM access and the "default"
# storage pool.  Idempotent; run by `make setup`.  Needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
URI="qemu:///system"

PACKAGES=(
  # the hypervisor
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils
  # libvirt-python builds from source against these
  libvirt-dev pkg-config gcc python3-dev python3-venv
  # wipe algorithms other than zero run scrub; virt-install is a real client
  # whose XML the idempotency tests feed back
  scrub virtinst
  # the test guest is built from Debian's busybox; the rig uses iproute2
  busybox-static iproute2 util-linux
  # libvirt networks: dnsmasq serves their DHCP and DNS, iptables their NAT
  dnsmasq-base iptables
  # `cloud-init schema` validates the user-data of cloud-init seed volumes
  cloud-init
  # makes `make test` usable on minimal images
  make rsync git
  # setfacl: the QEMU user's own right to /dev/kvm (see below)
  acl
)

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# KVM: QEMU runs as libvirt-qemu, which must be able to open /dev/kvm.  Even
# when the guests use TCG this matters: libvirt re-probes QEMU on every API
# call while /dev/kvm is readable by root but not by the QEMU user ("KVM was
# enabled when probing ... but it is not available now"), which costs
# seconds per call (minutes while QEMU is probed for every call).  The right
# is given to the QEMU user itself, as an ACL: in a container /dev/kvm is the
# host's node, and a group number means another group in another container
# that may chgrp it back (observed here while tests ran).
if [ -e /dev/kvm ]; then
  if getent group kvm >/dev/null; then
    $SUDO chgrp kvm /dev/kvm
    $SUDO chmod 0660 /dev/kvm
  fi
  if getent passwd libvirt-qemu >/dev/null; then
    $SUDO setfacl -m u:libvirt-qemu:rw /dev/kvm
  fi
fi

# Daemons: systemd units where PID 1 is systemd, else the daemons directly.
if [ "$(cat /proc/1/comm 2>/dev/null)" = "systemd" ]; then
  $SUDO systemctl start virtlogd.socket libvirtd.service
else
  pgrep -x virtlogd >/dev/null || $SUDO virtlogd -d
  pgrep -x libvirtd >/dev/null || $SUDO libvirtd -d
fi
for _ in $(seq 1 150); do
  if $SUDO virsh -c "$URI" version >/dev/null 2>&1; then break; fi
  sleep 0.2
done
$SUDO virsh -c "$URI" version >/dev/null || { echo "setup: libvirtd does not answer on $URI" >&2; exit 1; }

# The dir pool "default" (created by virt-manager on desktops, not by libvirtd).
if ! $SUDO virsh -c "$URI" pool-info default >/dev/null 2>&1; then
  $SUDO virsh -c "$URI" pool-define-as default dir --target /var/lib/libvirt/images >/dev/null
  $SUDO virsh -c "$URI" pool-build default >/dev/null
fi
pool_info=$($SUDO virsh -c "$URI" pool-info default)
if ! grep -q "State:.*running" <<<"$pool_info"; then
  $SUDO virsh -c "$URI" pool-start default >/dev/null
fi
$SUDO virsh -c "$URI" pool-autostart default >/dev/null
echo "setup: libvirt $($SUDO virsh -c "$URI" version | awk '/Using library/ {print $4}') ready at $URI, pool default active"
