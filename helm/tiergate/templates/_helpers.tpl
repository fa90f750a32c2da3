{{- define "tiergate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tiergate.fullname" -}}
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

{{- define "tiergate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "tiergate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: gateway, sim, valkey, qdrant, batch. */}}
{{- define "tiergate.selector" -}}
app.kubernetes.io/name: {{ include "tiergate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tiergate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "tiergate.secretName" -}}
{{- if .Values.secrets.create -}}{{ include "tiergate.fullname" . }}{{- else -}}{{ .Values.secrets.existingSecret }}{{- end -}}
{{- end -}}

{{/* The provider key names the gateway gets as environment variables (a JSON list). */}}
{{- define "tiergate.providerKeyNames" -}}
{{- if .Values.secrets.create -}}
{{- keys .Values.secrets.providerKeys | sortAlpha | toJson -}}
{{- else -}}
{{- .Values.secrets.existingSecretKeys | toJson -}}
{{- end -}}
{{- end -}}

{{- define "tiergate.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "tiergate.fullname" .)) .Values.rules.existingConfigMap -}}
{{- end -}}

{{/* Where state lives: "url" (redis.url), "secret" (redis.existingSecret), "valkey" or "embedded". */}}
{{- define "tiergate.stateMode" -}}
{{- if .Values.redis.url -}}url
{{- else if .Values.redis.existingSecret -}}secret
{{- else if .Values.valkey.enabled -}}valkey
{{- else -}}embedded
{{- end -}}
{{- end -}}

{{- define "tiergate.qdrantUrl" -}}
{{- if .Values.qdrant.url -}}{{ .Values.qdrant.url }}
{{- else if .Values.qdrant.enabled -}}http://{{ include "tiergate.fullname" . }}-qdrant:6333
{{- end -}}
{{- end -}}

{{/* Checks the schema cannot express; each failure says what to change. */}}
{{- define "tiergate.validate" -}}
{{- $mode := include "tiergate.stateMode" . -}}
{{- if and (eq $mode "embedded") (or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled) -}}
{{- fail "tiergate: several replicas need one shared Redis (budgets and rate limits are enforced in it). Set redis.url (or redis.existingSecret), or valkey.enabled=true, or run replicaCount=1 with autoscaling.enabled=false." -}}
{{- end -}}
{{- if and .Values.redis.url .Values.valkey.enabled -}}
{{- fail "tiergate: redis.url and valkey.enabled are both set; choose one (set valkey.enabled=false to use the external Redis)." -}}
{{- end -}}
{{- if and .Values.qdrant.url .Values.qdrant.enabled -}}
{{- fail "tiergate: qdrant.url and qdrant.enabled are both set; choose one." -}}
{{- end -}}
{{- if and (not .Values.secrets.create) (not .Values.secrets.existingSecret) -}}
{{- fail "tiergate: secrets.create=false needs secrets.existingSecret (the Secret holding provider keys)." -}}
{{- end -}}
{{- if and .Values.redis.url (not .Values.secrets.create) -}}
{{- fail "tiergate: redis.url is stored in the chart's Secret, but secrets.create=false; put the URL in a Secret of your own and set redis.existingSecret." -}}
{{- end -}}
{{- if and .Values.batch.enabled .Values.secrets.create (not .Values.secrets.batchApiKey) -}}
{{- fail "tiergate: batch.enabled needs secrets.batchApiKey, the key the workers send (list it in apiKeys too)." -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "tiergate: autoscaling.minReplicas is above autoscaling.maxReplicas." -}}
{{- end -}}
{{- if and .Values.batch.enabled (not .Values.batch.args) -}}
{{- fail "tiergate: batch.enabled needs batch.args, the arguments of `tiergate batch run` (e.g. [classify, --input, ...])." -}}
{{- end -}}
{{- range $where, $image := dict "image.tag" (include "tiergate.image" .) "valkey.image" .Values.valkey.image "qdrant.image" .Values.qdrant.image -}}
{{- if hasSuffix ":latest" $image -}}
{{- fail (printf "tiergate: %s: 'latest' is not a version; pin a tag so every replica runs the same image." $where) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.rules.existingConfigMap .Values.rules.rolloutOnChange -}}
{{- fail "tiergate: rules.rolloutOnChange needs the chart's own rules (rules.content), not rules.existingConfigMap." -}}
{{- end -}}
{{- end -}}
