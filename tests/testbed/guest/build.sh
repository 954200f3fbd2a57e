#!/bin/bash
# Build the tiny test guest: OUTDIR/vmlinuz + OUTDIR/initrd.img.
#
#   tests/testbed/guest/build.sh OUTDIR
#
# The kernel is Debian's cloud flavour (its LZ4 image boots fastest under TCG),
# downloaded with `apt-get download` and unpacked with `dpkg-deb -x`; nothing
# is installed on the host. The initramfs is busybox-static plus the few
# kernel modules the guest needs, with the init scripts of this directory.
#
# Idempotent: OUTDIR/stamp records the inputs (kernel package + version,
# busybox binary, files of this directory); when they are unchanged and both
# outputs exist, nothing is done. The downloaded .deb is kept in OUTDIR/debs.
set -euo pipefail

# Modules the guest loads at boot (their depends= chain is added). Modules the
# kernel has built in (ext4 and crc32c_generic in the cloud flavour) are skipped.
# The cloud-init seed may be an ISO 9660 CD-ROM or a VFAT disk: the cloud
# kernel has no AHCI (SATA) driver, so its CD-ROM drive is on the i440fx IDE
# bus (ata_piix, sr_mod) or the seed is a virtio disk. VFAT mounts with the
# kernel's default code page and I/O charset (cp437, ascii).
GUEST_MODULES=(button evdev virtio_pci virtio_blk virtio_net virtio_console
               virtio_balloon ext4 crc32c_generic
               ata_piix sr_mod isofs vfat nls_cp437 nls_ascii)
KERNEL_METAPACKAGE=linux-image-cloud-amd64
BUSYBOX=/bin/busybox

die() { echo "build.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
[[ -x $BUSYBOX ]] || die "$BUSYBOX missing (apt-get install busybox-static)"
outdir=$(mkdir -p "$1" && cd "$1" && pwd)
src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start_seconds=$SECONDS

# Several test processes may build at once: serialise on a lock in OUTDIR.
exec {lock_fd}>"$outdir/.lock"
flock "$lock_fd"

# --- Which inputs? ----------------------------------------------------------
# The metapackage depends on exactly one versioned image package, e.g.
# "Depends: linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)". One apt-cache
# call: without a pkgcache (Debian images disable it) each call takes ~1 s.
depends=$(apt-cache show --no-all-versions "$KERNEL_METAPACKAGE" 2>/dev/null \
          | sed -n 's/^Depends: \(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -n1)
read -r kernel_pkg kernel_version <<< "$depends" || true
[[ -n ${kernel_version:-} ]] \
    || die "cannot resolve the kernel package of $KERNEL_METAPACKAGE (run apt-get update?)"

# Relative paths, so the stamp does not depend on where the repo is checked out.
sources_hash=$(cd "$src_dir" && find . -type f -print0 | LC_ALL=C sort -z \
               | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
busybox_hash=$(sha256sum "$BUSYBOX" | cut -d' ' -f1)
stamp="kernel=$kernel_pkg=$kernel_version busybox=$busybox_hash sources=$sources_hash"

if [[ -f $outdir/vmlinuz && -f $outdir/initrd.img && -f $outdir/stamp ]] \
   && [[ $(<"$outdir/stamp") == "$stamp" ]]; then
    echo "guest up to date in $outdir ($kernel_pkg $kernel_version)"
    exit 0
fi

work=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- Kernel package ---------------------------------------------------------
deb_dir=$outdir/debs
mkdir -p "$deb_dir"
deb=
for candidate in "$deb_dir/${kernel_pkg}"_*.deb; do
    if [[ -f $candidate && $(dpkg-deb -f "$candidate" Version) == "$kernel_version" ]]; then
        deb=$candidate
    fi
done
if [[ -z $deb ]]; then
    rm -f "$deb_dir"/*.deb  # older kernels are of no further use
    # apt's _apt sandbox user cannot write into OUTDIR; as root, skip the
    # sandbox instead of getting a warning on every download.
    apt_opts=()
    [[ $EUID -eq 0 ]] && apt_opts=(-o APT::Sandbox::User=root)
    (cd "$deb_dir" && apt-get download -q "${apt_opts[@]}" "$kernel_pkg=$kernel_version" >/dev/null)
    deb=$(ls "$deb_dir/${kernel_pkg}"_*.deb)
fi

pkg_root=$work/pkg
dpkg-deb -x "$deb" "$pkg_root"
kver=${kernel_pkg#linux-image-}
[[ -f $pkg_root/boot/vmlinuz-$kver ]] || die "$deb has no boot/vmlinuz-$kver"
pkg_modules=$pkg_root/lib/modules/$kver

# --- Initramfs tree -----------------------------------------------------------
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/acpi/PWRF,proc,sys,dev,data,seed,tmp,root} \
         "$root"/{run,var/log,var/run} "$root/lib/modules/$kver"
install -m 0755 "$BUSYBOX" "$root/bin/busybox"
while read -r applet; do
    [[ $applet == */* ]] || continue  # skip "linuxrc"
    [[ -e $root/$applet ]] || ln -s /bin/busybox "$root/$applet"
done < <("$BUSYBOX" --list-full)

install -m 0755 "$src_dir/init" "$root/init"
install -m 0644 "$src_dir/inittab" "$root/etc/inittab"
install -m 0755 "$src_dir/rc" "$root/etc/rc"
install -m 0755 "$src_dir/udhcpc.script" "$root/etc/udhcpc.script"
# busybox acpid runs /etc/acpi/<action> for an event; the power button is "PWRF/00000080".
install -m 0755 "$src_dir/acpi-power-button" "$root/etc/acpi/PWRF/00000080"

# --- Kernel modules -----------------------------------------------------------
# Module names use "_" where file names may use "-"; normalise to "_".
declare -A module_path builtin copied
while IFS= read -r -d '' path; do
    name=${path##*/}; name=${name%%.ko*}
    module_path[${name//-/_}]=${path#"$pkg_modules/"}
done < <(find "$pkg_modules/kernel" -name '*.ko*' -print0)
while read -r path; do
    name=${path##*/}; name=${name%%.ko*}
    builtin[${name//-/_}]=1
done < "$pkg_modules/modules.builtin"

# Copy a module (plain .ko: busybox's modprobe cannot read .ko.zst) and,
# recursively, the modules its depends= field names.
add_module() {
    local name=${1//-/_} rel dest deps dep
    [[ -z ${copied[$name]:-} && -z ${builtin[$name]:-} ]] || return 0
    rel=${module_path[$name]:-}
    [[ -n $rel ]] || die "module $name is neither built in nor in $kernel_pkg"
    dest=$root/lib/modules/$kver/${rel%.ko*}.ko
    mkdir -p "${dest%/*}"
    case $rel in
        *.ko)     cp "$pkg_modules/$rel" "$dest" ;;
        *.ko.xz)  xz -dc "$pkg_modules/$rel" > "$dest" ;;
        *.ko.zst) zstd -qdc "$pkg_modules/$rel" > "$dest" ;;
        *.ko.gz)  gzip -dc "$pkg_modules/$rel" > "$dest" ;;
        *)        die "unknown module format: $rel" ;;
    esac
    copied[$name]=1
    # .modinfo holds NUL-separated key=value strings, e.g. "depends=virtio,virtio_ring".
    deps=$(tr '\0' '\n' < "$dest" | sed -n 's/^depends=//p')
    for dep in ${deps//,/ }; do add_module "$dep"; done
}

: > "$root/etc/modules"  # what the guest's rc modprobes, in this order
for name in "${GUEST_MODULES[@]}"; do
    add_module "$name"
    [[ -n ${builtin[${name//-/_}]:-} ]] || echo "$name" >> "$root/etc/modules"
done
"$BUSYBOX" depmod -b "$root" "$kver"

# --- Pack ---------------------------------------------------------------------
(cd "$root" && find . | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null) \
    | gzip -9 -n > "$work/initrd.img"
install -m 0644 "$pkg_root/boot/vmlinuz-$kver" "$outdir/vmlinuz"
mv "$work/initrd.img" "$outdir/initrd.img"
chmod 0644 "$outdir/initrd.img"
echo "$stamp" > "$outdir/stamp"  # last: only a complete build is recorded

echo "built guest in $outdir: $kernel_pkg $kernel_version, ${#copied[@]} modules," \
     "initrd $(( $(stat -c %s "$outdir/initrd.img") / 1024 )) KiB, $(( SECONDS - start_seconds )) s"
