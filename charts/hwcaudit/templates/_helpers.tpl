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

{{- /*
The image reference: repository@digest when image.digest is set (pinned by
content; the tag is then ignored), repository:tag otherwise.
*/}}
{{- define "hwcaudit.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- /*
Names of the keys of the credentials Secret, for credentials.mountAsFiles:
the non-empty values the chart renders, or existingSecretKeys.
*/}}
{{- define "hwcaudit.secretKeys" -}}
{{- $c := .Values.credentials }}
{{- if $c.existingSecret }}
{{- toJson (default (list) $c.existingSecretKeys) }}
{{- else }}
{{- $data := dict
  "HUAWEICLOUD_SDK_AK" $c.accessKey
  "HUAWEICLOUD_SDK_SK" $c.secretKey
  "HUAWEICLOUD_SDK_PROJECT_ID" $c.projectId
  "HWCAUDIT_KAFKA_SASL_PASSWORD" $c.kafkaSaslPassword
  "HWCAUDIT_ELASTICSEARCH_PASSWORD" $c.elasticsearchPassword
  "HWCAUDIT_ELASTICSEARCH_API_KEY" $c.elasticsearchApiKey
  "AWS_ACCESS_KEY_ID" $c.s3AccessKeyId
  "AWS_SECRET_ACCESS_KEY" $c.s3SecretAccessKey
}}
{{- $data = merge $data $c.extra }}
{{- $keys := list }}
{{- range $k, $v := $data }}
{{- if $v }}
{{- $keys = append $keys $k }}
{{- end }}
{{- end }}
{{- toJson $keys }}
{{- end }}
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
      {{- if not $v.credentials.mountAsFiles }}
      - secretRef:
          name: {{ include "hwcaudit.secretName" $root }}
      {{- end }}
    {{- $fileEnv := list }}
    {{- if $v.credentials.mountAsFiles }}
    {{- range $k := include "hwcaudit.secretKeys" $root | fromJsonArray }}
    {{- $fileEnv = append $fileEnv (dict "name" (printf "%s_FILE" $k) "value" (printf "%s/%s" (trimSuffix "/" $v.credentials.filesPath) $k)) }}
    {{- end }}
    {{- end }}
    {{- /* The Go runtime's soft limit at 80% of the container's memory
         limit (Mi or Gi), so that garbage is collected before the kernel
         kills the pod; extraEnv may set GOMEMLIMIT itself. */}}
    {{- $memEnv := list }}
    {{- $mem := "" }}
    {{- with .resources }}{{ $mem = dig "limits" "memory" "" . | toString }}{{ end }}
    {{- $mib := 0 }}
    {{- if hasSuffix "Mi" $mem }}{{ $mib = trimSuffix "Mi" $mem | atoi }}{{ else if hasSuffix "Gi" $mem }}{{ $mib = mul (trimSuffix "Gi" $mem | atoi) 1024 }}{{ end }}
    {{- if gt $mib 0 }}{{ $memEnv = list (dict "name" "GOMEMLIMIT" "value" (printf "%dMiB" (div (mul $mib 4) 5))) }}{{ end }}
    {{- range $v.extraEnv }}{{ if eq .name "GOMEMLIMIT" }}{{ $memEnv = list }}{{ end }}{{ end }}
    {{- $env := concat $fileEnv $memEnv .env $v.extraEnv }}
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
      {{- if $v.credentials.mountAsFiles }}
      - name: credentials
        mountPath: {{ $v.credentials.filesPath | quote }}
        readOnly: true
      {{- end }}
      {{- with $v.extraVolumeMounts }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ $v.emptyDir.tmpSizeLimit | quote }}
  - name: data
    {{- if $v.persistence.enabled }}
    persistentVolumeClaim:
      claimName: {{ default (include "hwcaudit.fullname" $root) $v.persistence.existingClaim }}
    {{- else }}
    emptyDir:
      sizeLimit: {{ $v.emptyDir.dataSizeLimit | quote }}
    {{- end }}
  {{- if $v.credentials.mountAsFiles }}
  - name: credentials
    secret:
      secretName: {{ include "hwcaudit.secretName" $root }}
      defaultMode: 0400
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
