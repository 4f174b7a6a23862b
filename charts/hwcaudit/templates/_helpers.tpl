{{- define "hwcaudit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hwcaudit.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "hwcaudit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hwcaudit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hwcaudit.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hwcaudit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hwcaudit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hwcaudit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- /*
Name of shard i's CronJob: the full name when there is one shard. CronJob
names are limited to 52 characters (the controller appends 11 to its Jobs).
*/}}
{{- define "hwcaudit.cronJobName" -}}
{{- if le (int .root.Values.shards) 1 }}
{{- include "hwcaudit.fullname" .root }}
{{- else }}
{{- printf "%s-shard-%d" (include "hwcaudit.fullname" .root | trunc 42 | trimSuffix "-") .shard }}
{{- end }}
{{- end }}

{{- define "hwcaudit.secretName" -}}
{{- default (include "hwcaudit.fullname" .) .Values.credentials.existingSecret }}
{{- end }}

{{- define "hwcaudit.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
Pod spec shared by the CronJob and the backfill Job.
Call with (dict "root" $ "args" (list …) "env" (list …) "resources" …).
*/}}
{{- define "hwcaudit.podSpec" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
serviceAccountName: {{ include "hwcaudit.serviceAccountName" $root }}
automountServiceAccountToken: {{ $v.serviceAccount.automountServiceAccountToken }}
restartPolicy: Never
terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
{{- with $v.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: exporter
    image: {{ include "hwcaudit.image" $root | quote }}
    imagePullPolicy: {{ $v.image.pullPolicy }}
    args:
      {{- toYaml .args | nindent 6 }}
    workingDir: /var/lib/hwcaudit
    envFrom:
      - configMapRef:
          name: {{ .configMap }}
      - secretRef:
          name: {{ include "hwcaudit.secretName" $root }}
    {{- $env := concat .env $v.extraEnv }}
    {{- with $env }}
    env:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $v.securityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
      - name: data
        mountPath: /var/lib/hwcaudit
      {{- with $v.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: tmp
    emptyDir: {}
  - name: data
    {{- if $v.persistence.enabled }}
    persistentVolumeClaim:
      claimName: {{ default (include "hwcaudit.fullname" $root) $v.persistence.existingClaim }}
    {{- else }}
    emptyDir: {}
    {{- end }}
  {{- with $v.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
