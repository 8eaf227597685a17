#!/usr/bin/env bash
# Smoke test of the control plane built by build.sh: starts etcd,
# kube-apiserver and kube-controller-manager on free loopback ports with a
# throw-away directory, checks that the controllers work (Deployment ->
# ReplicaSet -> Pods, garbage collection, namespace deletion), then stops
# everything and removes the directory. Pods stay Pending: there is no kubelet
# and no scheduler. Reference for the flags a pytest fixture should use.
#
# Usage: tools/kube/smoke.sh        (run tools/kube/build.sh first)
# Env:   KEEP=1 keeps the temp dir (logs) after the run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$(cd "${here}/../.." && pwd)/.tools/bin"
for b in etcd kube-apiserver kube-controller-manager kubectl; do
  [[ -x "${bin}/${b}" ]] || { echo "smoke: ${bin}/${b} missing; run tools/kube/build.sh" >&2; exit 1; }
done
kubectl() { "${bin}/kubectl" "$@"; }

dir="$(mktemp -d /tmp/kube-smoke.XXXXXX)"
pids=()
stop() { # <pid>: SIGTERM, then SIGKILL after 20 s
  local p="$1" i
  kill -TERM "${p}" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "${p}" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "${p}" 2>/dev/null || true
  wait "${p}" 2>/dev/null || true
}
cleanup() {
  local rc=$? i t
  t="$(date +%s.%N)"
  # Reverse start order: controller-manager, apiserver, then etcd. Killing etcd
  # first makes kube-apiserver hang ~4 minutes in shutdown (lease deletion).
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[i]}"; done
  ((${#pids[@]})) && echo "smoke: stopped all components in $(since "${t}")"
  if ((rc != 0)); then
    for f in etcd apiserver kcm; do
      [[ -f "${dir}/${f}.log" ]] && { echo "--- ${f}.log (tail)"; tail -n 25 "${dir}/${f}.log"; }
    done
  fi
  if [[ -n "${KEEP:-}" ]]; then echo "smoke: kept ${dir}"; else rm -rf "${dir}"; fi
  exit "${rc}"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}s')" "$1" "$(now)"; }
wait_for() { # <what> <timeout s> <command...>
  local what="$1" deadline=$((SECONDS + $2)) p; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "smoke: timed out waiting for ${what}" >&2; return 1; }
    for p in "${pids[@]}"; do
      kill -0 "${p}" 2>/dev/null || { echo "smoke: a component (pid ${p}) exited while waiting for ${what}" >&2; return 1; }
    done
    sleep 0.2
  done
}

etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"; kcm_port="$(free_port)"

# Service-account signing key pair and a static admin token.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "${dir}/sa.key" 2>/dev/null
openssl pkey -in "${dir}/sa.key" -pubout -out "${dir}/sa.pub"
token="$(openssl rand -hex 24)"
echo "${token},admin,admin,system:masters" > "${dir}/tokens.csv"
mkdir -p "${dir}/certs"

t0="$(now)"
"${bin}/etcd" \
  --name=smoke \
  --data-dir="${dir}/etcd" \
  --listen-client-urls="http://127.0.0.1:${etcd_port}" \
  --advertise-client-urls="http://127.0.0.1:${etcd_port}" \
  --listen-peer-urls="http://127.0.0.1:${peer_port}" \
  --initial-advertise-peer-urls="http://127.0.0.1:${peer_port}" \
  --initial-cluster="smoke=http://127.0.0.1:${peer_port}" \
  --unsafe-no-fsync \
  --log-level=warn \
  >"${dir}/etcd.log" 2>&1 &
pids+=($!)
wait_for "etcd /health" 30 curl -fsS "http://127.0.0.1:${etcd_port}/health"
echo "smoke: etcd healthy after $(since "${t0}")"

t1="$(now)"
"${bin}/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:${etcd_port}" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --secure-port="${api_port}" \
  --cert-dir="${dir}/certs" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="${dir}/sa.pub" \
  --service-account-signing-key-file="${dir}/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --token-auth-file="${dir}/tokens.csv" \
  --authorization-mode=RBAC \
  --enable-admission-plugins=PodSecurity \
  --allow-privileged=false \
  >"${dir}/apiserver.log" 2>&1 &
pids+=($!)
wait_for "kube-apiserver /readyz" 120 \
  curl -fsS --cacert "${dir}/certs/apiserver.crt" -H "Authorization: Bearer ${token}" \
  "https://127.0.0.1:${api_port}/readyz"
echo "smoke: kube-apiserver /readyz ok after $(since "${t1}") (control plane: $(since "${t0}"))"

# The self-signed apiserver.crt is "leaf + CA"; kube-controller-manager wants
# the CA alone (its ClusterTrustBundle publisher rejects a non-CA first entry).
awk '/BEGIN CERTIFICATE/ {n++} n == 2' "${dir}/certs/apiserver.crt" > "${dir}/ca.crt"

cat > "${dir}/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smoke
  cluster:
    server: https://127.0.0.1:${api_port}
    certificate-authority: ${dir}/ca.crt
users:
- name: admin
  user:
    token: ${token}
contexts:
- name: smoke
  context: {cluster: smoke, user: admin}
current-context: smoke
EOF
export KUBECONFIG="${dir}/kubeconfig"

"${bin}/kube-controller-manager" \
  --kubeconfig="${dir}/kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="${kcm_port}" \
  --cert-dir="${dir}/kcm-certs" \
  --leader-elect=false \
  --service-account-private-key-file="${dir}/sa.key" \
  --root-ca-file="${dir}/ca.crt" \
  --use-service-account-credentials \
  --controllers='*' \
  >"${dir}/kcm.log" 2>&1 &
pids+=($!)
t2="$(now)"
wait_for "kube-controller-manager /healthz" 60 curl -fsSk "https://127.0.0.1:${kcm_port}/healthz"
echo "smoke: kube-controller-manager /healthz ok after $(since "${t2}")"

kubectl version 2>&1 | grep -v "^WARNING" || true
kubectl get --raw /readyz; echo
kubectl get ns
kubectl create namespace smoke
kubectl label namespace smoke pod-security.kubernetes.io/enforce=baseline
wait_for "default ServiceAccount in ns smoke" 30 kubectl -n smoke get serviceaccount default
kubectl -n smoke create deployment web --image=registry.invalid/web:1 --replicas=2
wait_for "ReplicaSet" 60 bash -c 'kubectl -n smoke get rs -l app=web -o name | grep -q .'
wait_for "2 Pods" 60 bash -c '[[ $(kubectl -n smoke get pods -l app=web -o name | wc -l) -eq 2 ]]'
kubectl -n smoke get deploy,rs,pods -o wide
# --allow-privileged=false: a privileged container is rejected by validation.
if kubectl -n smoke run priv --image=registry.invalid/x:1 --privileged >"${dir}/priv.out" 2>&1; then
  echo "smoke: privileged pod was NOT rejected" >&2; exit 1
fi
echo "smoke: privileged pod rejected: $(head -c 200 "${dir}/priv.out")"
# PodSecurity admission: a plain pod is rejected in a "restricted" namespace.
kubectl create namespace smoke-restricted
kubectl label namespace smoke-restricted pod-security.kubernetes.io/enforce=restricted
if kubectl -n smoke-restricted run plain --image=registry.invalid/x:1 >"${dir}/psa.out" 2>&1; then
  echo "smoke: PodSecurity did NOT reject a non-restricted pod" >&2; exit 1
fi
grep -q 'violates PodSecurity' "${dir}/psa.out" || { cat "${dir}/psa.out" >&2; exit 1; }
echo "smoke: PodSecurity rejected: $(head -c 120 "${dir}/psa.out")"
kubectl delete namespace smoke-restricted --wait=false
# Garbage collector: deleting the Deployment removes its ReplicaSet and Pods.
kubectl -n smoke delete deployment web --wait=false
wait_for "GC of ReplicaSet and Pods" 60 bash -c '[[ -z $(kubectl -n smoke get rs,pods -o name) ]]'
echo "smoke: garbage collector removed ReplicaSet and Pods"
# Namespace controller: the namespace goes away.
kubectl delete namespace smoke --wait=false
wait_for "namespace deletion" 60 bash -c '! kubectl get namespace smoke'
echo "smoke: namespace deleted by the namespace controller"
echo "smoke: OK"
