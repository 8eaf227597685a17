#!/usr/bin/env bash
# Build PgBouncer 1.24.1 for the tests into <repo>/.tools/pgbouncer-1.24/ (bin/pgbouncer),
# beside the system's pgbouncer (Debian 12 ships 1.18). The source is Debian 13's source
# package, whose .orig.tar.gz is the upstream release; it is fetched from the Debian
# mirror this machine's apt already uses, checked against a pinned sha256 and compiled
# against the system's libevent, OpenSSL and c-ares (their -dev packages are installed
# with apt when missing).
# Idempotent: nothing is done when the binary and its stamp match the pinned inputs.
#
# Usage: tools/build_pgbouncer.sh [--force]
# Env:   DBKEEPER_DEBIAN_MIRROR  a Debian archive URI to use instead of apt's own
set -euo pipefail

version="1.24.1"
sha256="da72a3aba13072876d055a3e58dd4aba4a5de4ed6148e73033185245598fd3e0"
tarball="pgbouncer_${version}.orig.tar.gz"
build_packages=(gcc make libevent-dev libssl-dev libc-ares-dev pkg-config)
configure_flags=(--with-cares --with-openssl --without-pam --without-systemd)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/.." && pwd)"
prefix="${root}/.tools/pgbouncer-1.24"
binary="${prefix}/bin/pgbouncer"
stamp_file="${prefix}/.stamp"
stamp="pgbouncer ${version} sha256:${sha256} flags:${configure_flags[*]}"
force=0
[[ "${1:-}" == "--force" ]] && force=1

if ((!force)) && [[ -x "${binary}" && -f "${stamp_file}" && "$(cat "${stamp_file}")" == "${stamp}" ]]; then
  echo "tools/pgbouncer: up to date ($("${binary}" --version | sed -n 1p)) in ${prefix}"
  exit 0
fi

mkdir -p "${root}/.tools"
# Serialise concurrent callers: the loser waits, then finds the build up to date.
if command -v flock >/dev/null && [[ -z "${_PGBOUNCER_BUILD_LOCKED:-}" ]]; then
  exec 9>"${root}/.tools/.pgbouncer-build.lock"
  flock 9
  _PGBOUNCER_BUILD_LOCKED=1 exec bash "${BASH_SOURCE[0]}" "$@"
fi

# The Debian archive apt is configured with: the first URI whose path ends in /debian,
# from deb822 .sources files or one-line sources.list entries.
debian_mirror() {
  if [[ -n "${DBKEEPER_DEBIAN_MIRROR:-}" ]]; then
    echo "${DBKEEPER_DEBIAN_MIRROR%/}"
    return
  fi
  local uri
  uri="$(
    {
      cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" {for (i = 2; i <= NF; i++) print $i}'
      cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        awk '$1 == "deb" || $1 == "deb-src" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) {print $i; break}}'
    } | sed 's:/*$::' | grep -E '/debian$' | head -n 1
  )" || true
  if [[ -z "${uri}" ]]; then
    echo "tools/pgbouncer: no Debian archive found in /etc/apt/sources.list*; set DBKEEPER_DEBIAN_MIRROR to one" >&2
    exit 1
  fi
  echo "${uri}"
}

missing=()
for package in "${build_packages[@]}"; do
  dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed" || missing+=("${package}")
done
if ((${#missing[@]})); then
  echo "tools/pgbouncer: installing build packages: ${missing[*]}"
  sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  ${sudo} apt-get update -qq
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

start=${SECONDS}
tmp="$(mktemp -d "${root}/.tools/pgbouncer-build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
url="$(debian_mirror)/pool/main/p/pgbouncer/${tarball}"
echo "tools/pgbouncer: fetching ${url}"
curl -fsSL --retry 3 --max-time 300 -o "${tmp}/${tarball}" "${url}"
if ! echo "${sha256}  ${tmp}/${tarball}" | sha256sum --check --status; then
  echo "tools/pgbouncer: ${tarball} does not match the pinned sha256 ${sha256}; not building it" >&2
  exit 1
fi
tar -xzf "${tmp}/${tarball}" -C "${tmp}"
rm -rf "${prefix}"
(
  cd "${tmp}/pgbouncer-${version}"
  # The release tarball carries prebuilt man pages, so no pandoc is needed.
  ./configure --prefix="${prefix}" "${configure_flags[@]}" >"${tmp}/configure.log" 2>&1 ||
    { tail -n 20 "${tmp}/configure.log" >&2; exit 1; }
  make -j "$(nproc 2>/dev/null || echo 2)" >"${tmp}/make.log" 2>&1 || { tail -n 20 "${tmp}/make.log" >&2; exit 1; }
  make install >>"${tmp}/make.log" 2>&1 || { tail -n 20 "${tmp}/make.log" >&2; exit 1; }
)
# pgbouncer runs as the unprivileged service user, which must be able to execute it.
chmod -R a+rX "${prefix}"
echo "${stamp}" >"${stamp_file}"
echo "tools/pgbouncer: built in $((SECONDS - start))s: $("${binary}" --version | sed -n 1p)"
