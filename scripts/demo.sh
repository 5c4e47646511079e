#!/bin/sh
# The workshop's main job: build everything, make two images offline (busybox from the
# host's busybox-static, hello-world from a static binary built here), and run containers
# with mini-docker, showing what isolates them. Installs what is missing.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib.sh
as_root "$@"
give_back_target
# shellcheck disable=SC2086
need_packages $PACKAGES
need_cargo
say "Building the chapters and mini-docker"
cargo build --workspace --quiet
PATH="$PWD/target/debug:$PATH"

say "Making the images offline: busybox (import of a rootfs tarball) and hello-world (mini-docker build of this Dockerfile)"
offline_images
mini-docker images

say "mini-docker run hello-world"
mini-docker run --rm hello-world

say "Isolation: what a busybox container sees of the machine"
mini-docker run --rm --hostname demo busybox sh -c \
    'echo "--- ps aux:"; ps aux; echo "--- hostname:"; hostname; echo "--- ip addr:"; ip addr; echo "--- mounts:"; mount'

say "Two containers that cannot see each other, while the host sees both"
mini-docker rm -f c1 c2 >/dev/null 2>&1 || true
mini-docker run --name c1 -d busybox sh -c "sleep 1d"
mini-docker exec c1 ps aux
mini-docker run --name c2 -d busybox sh -c "sleep 999d"
mini-docker exec c2 ps aux
echo "--- on the host:"
ps -eo pid,args | grep -E "sleep (1d|999d)" | grep -v grep
echo "--- a third container in c1's PID namespace (--pid=container:c1) sees both trees:"
mini-docker run --name c3 -d --pid=container:c1 busybox sh -c "sleep 999d"
mini-docker exec c3 ps aux
mini-docker ps
mini-docker rm -f c1 c2 c3

say "Limits: 32 MiB of memory, and a command that wants 100 MB"
mini-docker rm -f hungry >/dev/null 2>&1 || true
mini-docker run --name hungry -m 32m busybox sh -c 'head -c 100m /dev/zero | tail' || echo "(exit code $?)"
mini-docker inspect hungry | grep -E '"(OOMKilled|ExitCode)"'
mini-docker rm hungry

say "A network of their own: two containers that find each other by name, and a published port (chapter 7)"
mini-docker rm -f busybox1 busybox2 web >/dev/null 2>&1 || true
mini-docker network rm demo-net >/dev/null 2>&1 || true
mini-docker network create demo-net >/dev/null
mini-docker run -dit --rm --name busybox1 --network demo-net busybox sh >/dev/null
mini-docker run -dit --rm --name busybox2 --network demo-net busybox sh >/dev/null
mini-docker exec busybox1 ping -c 2 busybox2
# A free host port (127.0.0.1::80), so a port already in use here cannot stop the demo.
mini-docker run -d --name web -p 127.0.0.1::80 busybox httpd -f -p 80 -h /etc >/dev/null
mini-docker port web
addr=$(mini-docker port web 80)
echo "--- the host fetches the container's /etc/hostname through $addr:"
curl -s --retry 3 --retry-connrefused "http://$addr/hostname"
mini-docker network diagram
mini-docker rm -f busybox1 busybox2 web >/dev/null
mini-docker network rm demo-net

say "Done. notes/ explains each chapter; try: mini-docker run -it busybox sh"
