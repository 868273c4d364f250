{{/* Name of the chart, overridable. */}}
{{- define "gpa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object's name. */}}
{{- define "gpa.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object: pass (dict "ctx" $ "component" "manager"). */}}
{{- define "gpa.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "gpa.selectorLabels" . }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels a component's pods are selected by. */}}
{{- define "gpa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpa.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "gpa.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* Container security context of every program (restricted Pod Security Standard). */}}
{{- define "gpa.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "gpa.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The TLS mode in force: certManager, helm or selfSigned. */}}
{{- define "gpa.tlsMode" -}}
{{- $mode := .Values.webhook.tls.mode -}}
{{- if eq $mode "auto" -}}
{{- if .Capabilities.APIVersions.Has "cert-manager.io/v1" -}}certManager{{- else -}}helm{{- end -}}
{{- else -}}
{{- $mode -}}
{{- end -}}
{{- end -}}

{{/* "true" when the monitoring.coreos.com objects are rendered; pass the switch. */}}
{{- define "gpa.monitoringOn" -}}
{{- $switch := index .ctx.Values.monitoring .key -}}
{{- if eq (toString $switch) "auto" -}}
{{- if .ctx.Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- else if eq (toString $switch) "true" -}}true{{- end -}}
{{- end -}}

{{/* Namespaces the webhooks never see, comma-separated (the release's included). */}}
{{- define "gpa.excludedNamespaces" -}}
{{- $list := .Values.webhook.excludedNamespaces -}}
{{- if not (has .Release.Namespace $list) -}}
{{- $list = append $list .Release.Namespace -}}
{{- end -}}
{{- join "," $list -}}
{{- end -}}

{{- define "gpa.serviceAccountName" -}}
{{ include "gpa.fullname" .ctx }}-{{ .component }}
{{- end -}}
