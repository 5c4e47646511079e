#!/bin/sh
# The local registries of notes/05-image-pull.md and 05-image-pull-advanced.md, so that
# every command of the two notes can be typed as it is shown:
#
#   eval "$(scripts/registry.sh)"          start them and fill them; sets the variables below
#   eval "$(scripts/registry.sh stop)"     stop them, delete everything they stored, unset
#
# Three registries, each Debian's `docker-registry` (distribution 2.8) on a free port of
# 127.0.0.1, with its config, log and storage in one directory ($REGISTRY_DIR, by default
# ${TMPDIR:-/tmp}/mini-docker-registry-UID):
#
#   REGISTRY        no authentication: busybox:latest (an OCI manifest), busybox:v2s2 (the
#                   same image as a Docker schema 2 manifest) and busybox:zstd (its layer
#                   compressed with zstd instead of gzip)
#   AUTH_REGISTRY   Basic authentication (htpasswd), user `tester`, password $PASSWORD:
#                   busybox:latest
#   TOKEN_REGISTRY  Bearer tokens, as Docker Hub: its 401 sends clients to a token server
#                   of ours (TOKEN_SERVER, a small python3 program below) that signs JWTs
#                   with a key the registry trusts; anonymous clients get pull tokens, the
#                   account `tester` (password $PASSWORD) what it asks for: busybox:latest
#
# The busybox image is the host's static busybox and its applet links, one layer, made
# with umoci and pushed with skopeo (the independent tools, not this workshop's code). The
# script also points MINI_DOCKER_ROOT and MINI_DOCKER_CONFIG at a store and a login file of
# their own in the same directory, so the note's pulls, logins and rmi's start from an
# empty store and touch nothing of yours; `stop` deletes them with the rest.
#
# Needs: docker-registry skopeo umoci apache2-utils (htpasswd) openssl busybox-static
# iproute2 (ss) curl python3. Root is not needed. Running it again while the registries
# run prints the same variables again. The note's test (chapters/ch05-image-pull/tests/
# note.rs) runs this script, so what it starts is what the note was checked against.
set -eu

dir=${REGISTRY_DIR:-${TMPDIR:-/tmp}/mini-docker-registry-$(id -u)}
password=${REGISTRY_PASSWORD:-note-s3cret}
# The service name and issuer that the token server and the registry agree on.
service=mini-docker-registry
issuer=mini-docker-token-server
busybox=/bin/busybox

die() { echo "registry.sh: $*" >&2; exit 1; }
log() { echo "registry.sh: $*" >&2; }

# Is the process in pid file $1 alive and running program $2?
alive() {
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$2"
}

# Starts `$@` in a session of its own (a Ctrl-C or a closed terminal does not reach it),
# its output in NAME.log, its pid in NAME.pid.
daemon() {
    name=$1; shift
    # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
    setsid sh -c 'echo $$ > "$0"; exec "$@"' "$dir/$name.pid" "$@" \
        < /dev/null > "$dir/$name.log" 2>&1 &
    i=0
    until [ -s "$dir/$name.pid" ]; do
        i=$((i + 1)); [ $i -lt 500 ] || die "$name did not start"; sleep 0.01
    done
}

# The address ($2 is the process's pid) that it listens on: it was told port 0, so the
# kernel chose a free one, and ss(8) says which.
listening() {
    i=0
    while :; do
        addr=$(ss -Hltnp 2>/dev/null | grep "pid=$2," | awk '{print $4}' | head -n 1)
        [ -n "$addr" ] && { echo "$addr"; return; }
        if ! kill -0 "$2" 2>/dev/null; then
            die "$1 exited: $(tail -n 5 "$dir/$1.log")"
        fi
        i=$((i + 1)); [ $i -lt 1500 ] || die "$1 did not listen within 15 s: $(tail -n 5 "$dir/$1.log")"
        sleep 0.01
    done
}

# Writes NAME.yml (the registry's config, with the `auth:` section $2) and starts
# `docker-registry serve` with it; prints its address once `GET /v2/` answers.
registry() {
    name=$1
    mkdir -p "$dir/$name"
    cat > "$dir/$name.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/$name
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
  secret: workshop-only-secret
$2
EOF
    daemon "$name" docker-registry serve "$dir/$name.yml"
    addr=$(listening "$name" "$(cat "$dir/$name.pid")")
    i=0
    until curl -s -o /dev/null "http://$addr/v2/"; do
        i=$((i + 1)); [ $i -lt 1500 ] || die "$name did not answer on $addr"; sleep 0.01
    done
    echo "$addr"
}

# Docker Hub's token endpoint in miniature: GET /token?service=S&scope=repository:NAME:ACTIONS,
# anonymous (pull only) or with the account's Basic credentials (what it asks for). The
# token is a JWT (RS256) whose header carries the signing certificate (x5c); the registry
# trusts that certificate (`rootcertbundle`), so it checks every token for real.
token_server_py() {
    cat <<'EOF'
import base64, http.server, json, subprocess, sys, time, urllib.parse

key, cert, service, issuer, user, password = sys.argv[1:7]
der = subprocess.run(["openssl", "x509", "-outform", "DER", "-in", cert],
                     check=True, capture_output=True).stdout

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

class Token(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self.answer(404, {"details": "not found"})
        who = ""
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            u, _, p = base64.b64decode(authorization[6:]).decode().partition(":")
            if (u, p) != (user, password):
                return self.answer(401, {"details": "incorrect username or password"})
            who = u
        access = []
        for scope in urllib.parse.parse_qs(url.query).get("scope", []):
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind == "repository":
                allowed = [a for a in actions.split(",") if who or a == "pull"]
                access.append({"type": "repository", "name": name, "actions": allowed})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {"iss": issuer, "sub": who, "aud": service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": f"{now}-{time.monotonic_ns()}",
                  "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                                   input=signing_input.encode(), check=True,
                                   capture_output=True).stdout
        token = signing_input + "." + b64url(signature)
        self.answer(200, {"token": token, "access_token": token, "expires_in": 300,
                          "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

http.server.HTTPServer(("127.0.0.1", 0), Token).serve_forever()
EOF
}

# A busybox root filesystem in $1: the static busybox and a link per applet.
busybox_rootfs() {
    mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin" "$1/etc" "$1/dev" "$1/proc" \
        "$1/sys" "$1/root" "$1/var" "$1/run" "$1/home" "$1/mnt" "$1/tmp"
    chmod 1777 "$1/tmp"
    cp "$busybox" "$1/bin/busybox"
    chmod 755 "$1/bin/busybox"
    "$busybox" --list-full | while read -r applet; do
        case $applet in */*) ;; *) continue ;; esac
        [ -e "$1/$applet" ] || [ -L "$1/$applet" ] || ln -s /bin/busybox "$1/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$1/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$1/etc/group"
}

# An OCI image layout in $1 holding busybox:latest, one layer, made with umoci.
busybox_image() {
    rootless=""
    [ "$(id -u)" -eq 0 ] || rootless=--rootless
    case $(uname -m) in
        x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; armv7l) arch=arm ;; *) arch=$(uname -m) ;;
    esac
    busybox_rootfs "$1.rootfs"
    umoci init --layout "$1"
    umoci new --image "$1:latest"
    umoci unpack $rootless --image "$1:latest" "$1.bundle"
    cp -a "$1.rootfs/." "$1.bundle/rootfs"
    umoci repack --image "$1:latest" "$1.bundle"
    umoci config --image "$1:latest" --config.cmd /bin/sh --architecture "$arch" --os linux \
        --created 2024-01-02T03:04:05Z
    rm -rf "$1.rootfs" "$1.bundle"
}

push() { skopeo copy -q --dest-tls-verify=false "$@"; }

start() {
    if alive "$dir/registry.pid" docker-registry && [ -s "$dir/env" ]; then
        log "already running (stop with: eval \"\$(scripts/registry.sh stop)\")"
        cat "$dir/env"
        return
    fi
    missing=""
    for p in docker-registry skopeo umoci htpasswd openssl ss curl python3; do
        command -v "$p" >/dev/null || missing="$missing $p"
    done
    [ -x "$busybox" ] || missing="$missing $busybox"
    [ -z "$missing" ] || die "missing:$missing (Debian/Ubuntu: apt-get install docker-registry skopeo umoci apache2-utils openssl iproute2 curl python3 busybox-static)"
    # A dynamically linked busybox would need the host's libraries inside the image.
    if LC_ALL=C readelf -d "$busybox" 2>/dev/null | grep -q NEEDED; then
        die "$busybox is not statically linked (install busybox-static)"
    fi
    ours_or_new
    stop_daemons
    rm -rf "$dir"
    mkdir -p "$dir"
    chmod 755 "$dir"
    : > "$dir/.made-by-registry.sh"

    plain=$(registry registry "")

    htpasswd -Bbn tester "$password" > "$dir/htpasswd"
    basic=$(registry auth-registry "auth:
  htpasswd:
    realm: workshop-registry
    path: $dir/htpasswd")

    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=mini-docker-token-server \
        -keyout "$dir/token.key" -out "$dir/token.crt" 2>/dev/null
    token_server_py > "$dir/token-server.py"
    daemon token-server python3 "$dir/token-server.py" "$dir/token.key" "$dir/token.crt" \
        "$service" "$issuer" tester "$password"
    token_server=$(listening token-server "$(cat "$dir/token-server.pid")")
    bearer=$(registry token-registry "auth:
  token:
    realm: http://$token_server/token
    service: $service
    issuer: $issuer
    rootcertbundle: $dir/token.crt")

    log "filling them: busybox from $busybox, made with umoci, pushed with skopeo"
    busybox_image "$dir/seed" > "$dir/seed.log" 2>&1 || die "umoci failed: $(tail -n 5 "$dir/seed.log")"
    # zstd first: once the registry has the gzip blob, skopeo reuses it whatever it is asked.
    push --dest-compress --dest-compress-format zstd "oci:$dir/seed:latest" "docker://$plain/busybox:zstd"
    push "oci:$dir/seed:latest" "docker://$plain/busybox:latest"
    push --format v2s2 "oci:$dir/seed:latest" "docker://$plain/busybox:v2s2"
    push --dest-creds "tester:$password" "oci:$dir/seed:latest" "docker://$basic/busybox:latest"
    push --dest-creds "tester:$password" "oci:$dir/seed:latest" "docker://$bearer/busybox:latest"
    rm -rf "$dir/seed"

    mkdir -p "$dir/store" "$dir/config"
    cat > "$dir/env" <<EOF
export REGISTRY=$plain
export AUTH_REGISTRY=$basic
export TOKEN_REGISTRY=$bearer
export TOKEN_SERVER=$token_server
export PASSWORD=$password
export MINI_DOCKER_ROOT=$dir/store
export MINI_DOCKER_CONFIG=$dir/config
EOF
    log "registries at $plain (open), $basic (Basic), $bearer (Bearer, tokens from $token_server)"
    log "stop them with: eval \"\$(scripts/registry.sh stop)\""
    cat "$dir/env"
}

# Refuses a $REGISTRY_DIR that exists and is not ours: it is deleted on start and stop.
ours_or_new() {
    if [ -d "$dir" ] && [ ! -e "$dir/.made-by-registry.sh" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir exists and was not made by registry.sh: not touching it"
    fi
}

# Stops what a start left running (by the pids it wrote, each checked to be still ours).
stop_daemons() {
    for name in registry auth-registry token-registry token-server; do
        case $name in token-server) prog=token-server.py ;; *) prog=docker-registry ;; esac
        if alive "$dir/$name.pid" "$prog"; then
            pid=$(cat "$dir/$name.pid")
            kill "$pid" 2>/dev/null || true
            i=0
            while kill -0 "$pid" 2>/dev/null && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/$name.pid"
    done
}

stop() {
    if [ -d "$dir" ]; then
        ours_or_new
        stop_daemons
        rm -rf "$dir"
        log "stopped; $dir deleted"
    fi
    echo "unset REGISTRY AUTH_REGISTRY TOKEN_REGISTRY TOKEN_SERVER PASSWORD MINI_DOCKER_ROOT MINI_DOCKER_CONFIG"
}

case ${1:-start} in
    start) start ;;
    stop) stop ;;
    *) die "usage: eval \"\$(scripts/registry.sh [start|stop])\"" ;;
esac
