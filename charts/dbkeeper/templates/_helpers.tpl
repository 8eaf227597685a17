{{/* Names, labels and the RBAC rules shared by the templates. */}}

{{- define "dbkeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dbkeeper.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "dbkeeper.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "dbkeeper.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dbkeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dbkeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "dbkeeper.labels" -}}
{{ include "dbkeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dbkeeper
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "dbkeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dbkeeper.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "dbkeeper.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "dbkeeper.peering" -}}
{{- if gt (int .Values.replicas) 1 -}}{{ .Values.peering.name }}{{- end -}}
{{- end -}}

{{- define "dbkeeper.checkValues" -}}
{{- if and .Values.watch.secretNames (not .Values.watch.namespaces) -}}
{{- fail "watch.secretNames needs watch.namespaces: Secrets can be restricted by name only in namespace-scoped mode" -}}
{{- end -}}
{{- end -}}

{{/*
The rules the operator needs in every namespace it serves. Each one is a call the code
makes (dbkeeper.kube.API_CALLS) or one kopf makes itself; tests/integration/chart checks
this list against the code, so a new call without a rule fails a test.
*/}}
{{- define "dbkeeper.namespacedRules" -}}
# kopf watches and patches the resources (finalizers, annotations); the operator reads
# them and writes their status.
- apiGroups: [dbkeeper.dev]
  resources: [databaseschemas]
  verbs: [get, list, watch, patch]
- apiGroups: [dbkeeper.dev]
  resources: [databaseschemas/status]
  verbs: [patch]
{{- if .Values.watch.secretNames }}
# Only the Secrets named in the values; a name cannot restrict create.
- apiGroups: [""]
  resources: [secrets]
  resourceNames:
    {{- toYaml .Values.watch.secretNames | nindent 4 }}
  verbs: [get, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
{{- else }}
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create, patch, delete]
{{- end }}
# The pooler's ConfigMap and Service; the ConfigMaps holding migration sets are read,
# and those labelled dbkeeper.dev/migration-set watched, so edits are picked up at once.
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, delete]
# The pooler's pods, whose admin consoles are paused around risky revisions and read
# for the pool metrics; and the pods of a failed restore-drill Job, whose exit code and
# termination message tell a drill that could not run from one that failed.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# Events are posted; a migration Job's are read when its pod cannot be created (a
# missing ServiceAccount, a quota), to say why in the resource's status.
- apiGroups: [""]
  resources: [events]
  verbs: [create, list]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, create, patch, delete]
- apiGroups: [batch]
  resources: [cronjobs]
  verbs: [get, create, patch, delete]
# On-demand backups run as Jobs, and so do migration sets from ConfigMaps and images
# (created, waited for, pruned).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, create, delete]
{{- end -}}
