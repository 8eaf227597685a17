#!/usr/bin/env bash
# Build the test control plane from pinned Go modules into <repo>/.tools/bin:
#   etcd, kube-apiserver, kube-controller-manager, kubectl
# Idempotent: a component is rebuilt only when its binary is missing or its
# stamp file (.tools/bin/.kube-version / .etcd-version) does not match the
# pinned inputs (versions, go.mod/go.sum, build flags, the Go toolchain).
# Never changes go.mod/go.sum (-mod=readonly): bump versions as README.md says.
#
# Usage: tools/kube/build.sh [--force]
# Env:   KUBE_BUILD_PARALLEL  go build -p value (default: number of CPUs)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
bin="${root}/.tools/bin"
force=0
[[ "${1:-}" == "--force" ]] && force=1

# Pinned versions come straight from the go.mod files (no `go` call needed).
k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "${here}/go.mod")"
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2; exit}' "${here}/etcd/go.mod")"
if [[ ! "${k8s_version}" =~ ^v1\.([0-9]+)\.[0-9]+$ ]]; then
  echo "build.sh: cannot read a k8s.io/kubernetes v1.Y.Z release from ${here}/go.mod" >&2
  exit 1
fi
k8s_minor="${BASH_REMATCH[1]}"
[[ -n "${etcd_version}" ]] || { echo "build.sh: no etcd version in ${here}/etcd/go.mod" >&2; exit 1; }

# The official Go tarball installs to /usr/local/go; a login shell puts it on PATH, a
# plain `make` from elsewhere may not.
command -v go >/dev/null || [[ ! -x /usr/local/go/bin/go ]] || export PATH="/usr/local/go/bin:${PATH}"
command -v go >/dev/null || {
  echo "build.sh: 'go' (1.26 or newer) not found on PATH: install Go to build the test control plane" >&2
  exit 1
}
export CGO_ENABLED=0
export GOTOOLCHAIN=local           # never download another Go toolchain
export GOWORK=off
export GOFLAGS="-mod=readonly -buildvcs=false"   # go.sum must already be complete
go_version="$(go env GOVERSION)"

# How the binaries are built; part of the stamps, so changing it rebuilds.
# Same as the upstream release build (hack/lib/golang.sh): static, stripped,
# trimmed, with the selinux,notest,grpcnotrace tags.
tags="selinux,notest,grpcnotrace"
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X ${pkg}.gitVersion=${k8s_version}"
  kube_ldflags+=" -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${k8s_minor}"
  kube_ldflags+=" -X ${pkg}.gitTreeState=clean"
done
etcd_ldflags="-s -w"
kube_recipe="CGO_ENABLED=0 -trimpath -tags ${tags} -ldflags ${kube_ldflags}"
etcd_recipe="CGO_ENABLED=0 -trimpath -ldflags ${etcd_ldflags}"

stamp_of() { # <module dir> <version> <recipe>
  local sums
  sums="$(cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-16)"
  echo "$2 ${go_version} mod:${sums} recipe:$(echo "$3" | sha256sum | cut -c1-16)"
}
kube_stamp="$(stamp_of "${here}" "${k8s_version}" "${kube_recipe}")"
etcd_stamp="$(stamp_of "${here}/etcd" "${etcd_version}" "${etcd_recipe}")"

up_to_date() { # <stamp file> <expected stamp> <binaries...>
  local file="$1" want="$2"; shift 2
  ((force)) && return 1
  [[ -f "${file}" && "$(cat "${file}")" == "${want}" ]] || return 1
  local b; for b; do [[ -x "${bin}/${b}" ]] || return 1; done
}

need_kube=1; need_etcd=1
up_to_date "${bin}/.kube-version" "${kube_stamp}" kube-apiserver kube-controller-manager kubectl && need_kube=0
up_to_date "${bin}/.etcd-version" "${etcd_stamp}" etcd && need_etcd=0
if ((!need_kube && !need_etcd)); then
  echo "tools/kube: up to date (kubernetes ${k8s_version}, etcd ${etcd_version}) in ${bin}"
  exit 0
fi

mkdir -p "${bin}"
# Serialise concurrent callers (e.g. parallel test workers): the loser waits,
# then finds everything up to date.
if command -v flock >/dev/null && [[ -z "${_KUBE_BUILD_LOCKED:-}" ]]; then
  exec 9>"${root}/.tools/.build.lock"
  flock 9
  _KUBE_BUILD_LOCKED=1 exec bash "${BASH_SOURCE[0]}" "$@"
fi

jobs="${KUBE_BUILD_PARALLEL:-$(nproc 2>/dev/null || echo 2)}"
tmp="$(mktemp -d "${root}/.tools/build.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

if ((need_kube)); then
  echo "tools/kube: building kube-apiserver, kube-controller-manager, kubectl ${k8s_version} (go ${go_version}, -p ${jobs}) ..."
  start=${SECONDS}
  # Release date of the pinned tag, as a reproducible buildDate.
  build_date="$(cd "${here}" && go list -m -f '{{with .Time}}{{.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' k8s.io/kubernetes)"
  ldflags="${kube_ldflags}"
  if [[ -n "${build_date}" ]]; then
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X ${pkg}.buildDate=${build_date}"
    done
  fi
  (cd "${here}" && go build -p "${jobs}" -trimpath -tags "${tags}" -ldflags "${ldflags}" \
      -o "${tmp}/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl)
  mv -f "${tmp}/kube-apiserver" "${tmp}/kube-controller-manager" "${tmp}/kubectl" "${bin}/"
  echo "${kube_stamp}" > "${bin}/.kube-version"
  echo "tools/kube: kubernetes ${k8s_version} built in $((SECONDS - start))s"
fi

if ((need_etcd)); then
  echo "tools/kube: building etcd ${etcd_version} ..."
  start=${SECONDS}
  (cd "${here}/etcd" && go build -p "${jobs}" -trimpath -ldflags "${etcd_ldflags}" \
      -o "${tmp}/etcd" go.etcd.io/etcd/server/v3)
  mv -f "${tmp}/etcd" "${bin}/etcd"
  echo "${etcd_stamp}" > "${bin}/.etcd-version"
  echo "tools/kube: etcd ${etcd_version} built in $((SECONDS - start))s"
fi

"${bin}/kube-apiserver" --version
"${bin}/kubectl" version --client | sed -n 1p
"${bin}/etcd" --version | sed -n 1p
