#!/usr/bin/env bash
# Keycloak for the single sign-on tests, without Docker: the official server distribution (a zip
# on Maven Central, resolved once with mvn and unzipped into deploy/local/keycloak-dist, git-ignored)
# run on a JDK 21 or newer (Keycloak 26 refuses Java 17).
#
#   deploy/local/keycloak.sh resolve     # idempotent; prints the Keycloak home (its bin/kc.sh)
#   deploy/local/keycloak.sh path        # prints the Keycloak home; exit 3 when not resolved yet
#   deploy/local/keycloak.sh java-home   # prints a JDK >= 21 (JAVA_HOME for kc.sh) or fails
#
# stdout carries only the path asked for; everything else goes to stderr. The tests start and stop
# Keycloak themselves (tests/support/keycloak_support.py), on a free port of 127.0.0.1.
#
# Tunables (env): KEYCLOAK_DIST_DIR (default deploy/local/keycloak-dist), KEYCLOAK_JAVA_HOME (a JDK
# to use first), DESK_STATE_DIR (default <repo>/.state: the mvn log goes to its keycloak/ folder).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${DESK_STATE_DIR:-$ROOT/.state}"
POM="$HERE/keycloak/pom.xml"
DIST="${KEYCLOAK_DIST_DIR:-$HERE/keycloak-dist}"
MIN_JAVA=21

log() { echo "[keycloak] $*" >&2; }
die() { echo "[keycloak] ERROR: $*" >&2; exit 1; }

version() { sed -n 's:.*<keycloak.version>\(.*\)</keycloak.version>.*:\1:p' "$POM"; }

home() { echo "$DIST/keycloak-$(version)"; }

stamp() { echo "$DIST/.complete-$(sha256sum "$POM" | cut -c1-16)"; }

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "cannot install $* (no apt-get): install it by hand"
    log "installing $* with apt-get (one-time)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

cmd_resolve() {
    local kc_home zip tmp mvn_log
    kc_home="$(home)"
    if [ -f "$(stamp)" ] && [ -f "$kc_home/bin/kc.sh" ]; then echo "$kc_home"; return 0; fi
    command -v mvn >/dev/null 2>&1 || apt_install maven
    mkdir -p "$STATE/keycloak" "$DIST"
    mvn_log="$STATE/keycloak/mvn.log"
    tmp="$DIST/.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    log "resolving org.keycloak:keycloak-quarkus-dist:$(version):zip with Maven (one-time, ~164 MB)"
    # dependency:copy fetches the one artifact named in the pom, never its transitive jars
    mvn -B -Dstyle.color=never -f "$POM" dependency:copy -DoutputDirectory="$tmp" \
        >"$mvn_log" 2>&1 \
        || { tail -n 40 "$mvn_log" >&2; rm -rf "$tmp"
             die "mvn could not resolve the Keycloak distribution (pom: $POM, log: $mvn_log)"; }
    zip="$tmp/keycloak-quarkus-dist-$(version).zip"
    [ -f "$zip" ] || { rm -rf "$tmp"; die "mvn reported success but $zip is missing (log: $mvn_log)"; }
    log "unzipping into $DIST"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$zip" -d "$tmp/unpacked" || { rm -rf "$tmp"; die "unzip $zip failed"; }
    else
        python3 -m zipfile -e "$zip" "$tmp/unpacked" || { rm -rf "$tmp"; die "unzipping $zip failed"; }
        chmod +x "$tmp/unpacked/keycloak-$(version)"/bin/*.sh  # zipfile drops the modes
    fi
    [ -f "$tmp/unpacked/keycloak-$(version)/bin/kc.sh" ] \
        || { rm -rf "$tmp"; die "$zip holds no keycloak-$(version)/bin/kc.sh"; }
    rm -rf "$kc_home" "$DIST"/.complete-*
    mv "$tmp/unpacked/keycloak-$(version)" "$kc_home"
    rm -rf "$tmp"
    touch "$(stamp)"
    echo "$kc_home"
}

cmd_path() {
    local kc_home
    kc_home="$(home)"
    if [ -f "$(stamp)" ] && [ -f "$kc_home/bin/kc.sh" ]; then echo "$kc_home"; return 0; fi
    log "Keycloak $(version) is not resolved yet: run $0 resolve"
    exit 3
}

java_major() {  # $1: a Java home -> its major version (0 when unknown)
    local v=""
    if [ -f "$1/release" ]; then
        v="$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release")"
    fi
    if [ -z "$v" ] && [ -x "$1/bin/java" ]; then
        v="$("$1/bin/java" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')"
    fi
    echo "${v:-0}"
}

cmd_java_home() {
    local found=() seen=" " best="" best_major=0 dir real major
    if [ -n "${KEYCLOAK_JAVA_HOME:-}" ]; then  # an explicit choice is used or refused, never passed over
        major="$(java_major "$KEYCLOAK_JAVA_HOME")"
        [ -x "$KEYCLOAK_JAVA_HOME/bin/java" ] && [ "$major" -ge "$MIN_JAVA" ] \
            || die "KEYCLOAK_JAVA_HOME=$KEYCLOAK_JAVA_HOME is not a Java $MIN_JAVA+ home (Java $major)"
        echo "$KEYCLOAK_JAVA_HOME"; return 0
    fi
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] \
        && [ "$(java_major "$JAVA_HOME")" -ge "$MIN_JAVA" ]; then
        echo "$JAVA_HOME"; return 0
    fi
    local candidates=(/usr/lib/jvm/* ${JAVA_HOME:+"$JAVA_HOME"})
    if command -v java >/dev/null 2>&1; then
        candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
    fi
    for dir in "${candidates[@]}"; do  # the newest JDK >= MIN_JAVA wins
        [ -x "$dir/bin/java" ] || continue
        real="$(readlink -f "$dir")"
        case "$seen" in *" $real "*) continue ;; esac
        seen="$seen$real "
        major="$(java_major "$real")"
        found+=("$real (Java $major)")
        if [ "$major" -ge "$MIN_JAVA" ] && [ "$major" -gt "$best_major" ]; then
            best="$real" best_major="$major"
        fi
    done
    if [ -z "$best" ]; then
        die "Keycloak $(version) needs a JDK $MIN_JAVA or newer, and none was found" \
            "(looked at JAVA_HOME, /usr/lib/jvm/*, java on PATH; found: ${found[*]:-no Java at all})." \
            "Install one (e.g. Temurin 21 or 25 under /usr/lib/jvm) or point KEYCLOAK_JAVA_HOME at it."
    fi
    echo "$best"
}

case "${1:-}" in
    resolve) cmd_resolve ;;
    path) cmd_path ;;
    java-home) cmd_java_home ;;
    *) echo "usage: $0 resolve|path|java-home" >&2; exit 2 ;;
esac
