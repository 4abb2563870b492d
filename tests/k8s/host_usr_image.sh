#!/usr/bin/env bash
# Builds a container image whose /usr is the node's own, mounted read-only
# (the "torch mounted from the host" image of docs/kubernetes.md): a root
# filesystem of Debian's merged-/usr symlinks, /etc/alternatives and the
# linker cache, and nothing else, so it is a few kilobytes and builds in a
# second, while python3, torch and the Fashion-MNIST data come from the host.
# Pods that use it need a hostPath volume of /usr (read-only) at /usr.
# For an image that carries its own Python and torch, see deploy/image/.
#   tests/k8s/host_usr_image.sh OUT.tar [IMAGE]     # docker-archive, for node-import.sh
set -euo pipefail
out=$1 image=${2:-localhost/trainyard-host-usr:1}
command -v podman >/dev/null || { echo "host_usr_image: podman not found (apt-get install podman)" >&2; exit 1; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
r=$t/rootfs
mkdir -p "$r"/{usr,etc,proc,sys,dev,run,root,tmp,var/tmp}
chmod 1777 "$r/tmp" "$r/var/tmp"
for d in bin sbin lib lib64; do [ -L "/$d" ] && ln -s "usr/$d" "$r/$d"; done
cp -a /etc/alternatives "$r/etc/"
cp /etc/ld.so.cache "$r/etc/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
echo "$image" > "$r/etc/trainyard-image"  # a file only the image has (tests look for it)
tar -C "$r" -cf "$t/rootfs.tar" .
old=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
podman import --change 'CMD ["/usr/bin/python3"]' --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  "$t/rootfs.tar" "$image" >/dev/null
# The image this replaced, left untagged, goes (each run would otherwise keep one).
new=$(podman image inspect --format '{{.Id}}' "$image")
[ -n "$old" ] && [ "$old" != "$new" ] && podman rmi "$old" >/dev/null 2>&1 || true
rm -f "$out"
podman save --format docker-archive -o "$out" "$image" >/dev/null 2>&1
echo "$image -> $out"
