{{/* Names and labels shared by every object of the chart. */}}
{{- define "gpuaas.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gpuaas.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "gpuaas.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "gpuaas.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "gpuaas.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ .Values.serviceAccount.name | default (include "gpuaas.fullname" .) }}
{{- else -}}
{{ .Values.serviceAccount.name | default "default" }}
{{- end -}}
{{- end -}}

{{/* Environment every process shares: key files and data dir on volumes. */}}
{{- define "gpuaas.env" -}}
- name: GPUAAS_DATA_DIR
  value: /var/lib/gpuaas
- name: GPUAAS_TASK_SIGNING_KEY_FILE
  value: /var/run/gpuaas-keys/task-signing-key.pem
{{- if .Values.keys.kmsKeyFile }}
- name: GPUAAS_KMS_KEY_FILE
  value: /var/run/gpuaas-keys/kms.key
{{- end }}
- name: GPUAAS_METRICS_ADDR
  value: {{ printf ":%d" (int .Values.adminPort) | quote }}
{{- end -}}

{{/* The init container copying the key files to a 0600 memory volume. */}}
{{- define "gpuaas.keysInit" -}}
- name: copy-keys
  image: {{ .Values.keys.copyImage }}
  imagePullPolicy: IfNotPresent
  command: ["sh", "-c", "install -m 0600 /secret/* /keys/"]
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    requests: {cpu: 10m, memory: 16Mi}
    limits: {memory: 32Mi}
  volumeMounts:
    - {name: keys-secret, mountPath: /secret, readOnly: true}
    - {name: keys, mountPath: /keys}
{{- end -}}

{{- define "gpuaas.volumes" -}}
- name: keys-secret
  secret:
    secretName: {{ .Values.keys.secret }}
    defaultMode: 0440
- name: keys
  emptyDir: {medium: Memory, sizeLimit: 1Mi}
- name: data
  emptyDir: {sizeLimit: 64Mi}
- name: tmp
  emptyDir: {sizeLimit: 256Mi}
{{- end -}}

{{- define "gpuaas.volumeMounts" -}}
- {name: keys, mountPath: /var/run/gpuaas-keys, readOnly: true}
- {name: data, mountPath: /var/lib/gpuaas}
- {name: tmp, mountPath: /tmp}
{{- end -}}
