{{/*
Names, labels and the pieces every dsync pod shares. A "service" below is one of lock,
queue, cache; its values are `index .Values <service>`.
*/}}

{{/* The three services, in a fixed order. */}}
{{- define "dsync.services" -}}
lock queue cache
{{- end }}

{{/* Enabled services as a list. */}}
{{- define "dsync.enabledServices" -}}
{{- $out := list -}}
{{- range $svc := splitList " " (include "dsync.services" .) -}}
{{- if (index $.Values $svc).enabled -}}{{- $out = append $out $svc -}}{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end }}

{{/* The name of an object: namePrefix + name. Call with (list $ "lock"). */}}
{{- define "dsync.name" -}}
{{- $root := index . 0 -}}
{{- printf "%s%s" $root.Values.namePrefix (index . 1) | trunc 52 | trimSuffix "-" -}}
{{- end }}

{{- define "dsync.headlessName" -}}
{{- printf "%s-headless" (include "dsync.name" .) -}}
{{- end }}

{{- define "dsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* Labels of every object. Call with (list $ "lock"). */}}
{{- define "dsync.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "dsync.chart" $root }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: dsync
{{ include "dsync.selectorLabels" . }}
{{- end }}

{{/* Labels that select one component's pods. Call with (list $ "lock"). */}}
{{- define "dsync.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: dsync
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "dsync.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end }}

{{- define "dsync.secretName" -}}
{{- default (include "dsync.name" (list . "dsync-auth")) .Values.auth.existingSecret -}}
{{- end }}

{{- define "dsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dsync.name" (list . "dsync")) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end }}

{{/* Stable DNS name of pod i of a service. Call with (list $ "lock" 0). */}}
{{- define "dsync.podHost" -}}
{{- $root := index . 0 -}}
{{- $svc := index . 1 -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "dsync.name" (list $root $svc)) (int (index . 2))
  (include "dsync.headlessName" (list $root $svc)) $root.Release.Namespace
  $root.Values.clusterDomain -}}
{{- end }}

{{/* The headless Service's DNS name, which the pods discover each other by (DSYNC_DNS_NAME).
Call with (list $ "lock"). */}}
{{- define "dsync.headlessHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s.%s.svc.%s" (include "dsync.headlessName" (list $root (index . 1)))
  $root.Release.Namespace $root.Values.clusterDomain -}}
{{- end }}

{{/* DSYNC_SYSTEM_URLS: the HTTP URL of every pod 0..replicas-1 of every enabled service, as
lock=http://lock-0.<headless>:8080,...;queue=...;cache=... (the cluster page reads them). */}}
{{- define "dsync.systemUrls" -}}
{{- $root := . -}}
{{- $parts := list -}}
{{- range $svc := include "dsync.enabledServices" $root | fromJsonArray -}}
{{- $urls := list -}}
{{- range $i := until (int (index $root.Values $svc).replicas) -}}
{{- $urls = append $urls (printf "http://%s:8080" (include "dsync.podHost" (list $root $svc $i))) -}}
{{- end -}}
{{- $parts = append $parts (printf "%s=%s" $svc (join "," $urls)) -}}
{{- end -}}
{{- join ";" $parts -}}
{{- end }}

{{/* A memory quantity (Mi, Gi, M, G) in MiB, as an integer. */}}
{{- define "dsync.mebibytes" -}}
{{- $q := toString . -}}
{{- if hasSuffix "Gi" $q -}}{{- mul (trimSuffix "Gi" $q | int) 1024 -}}
{{- else if hasSuffix "Mi" $q -}}{{- trimSuffix "Mi" $q | int -}}
{{- else if hasSuffix "G" $q -}}{{- div (mul (trimSuffix "G" $q | int) 1000000000) 1048576 -}}
{{- else if hasSuffix "M" $q -}}{{- div (mul (trimSuffix "M" $q | int) 1000000) 1048576 -}}
{{- else -}}{{- fail (printf "memory limit %q: write it in Mi or Gi (e.g. 512Mi)" $q) -}}
{{- end -}}
{{- end }}

{{/* Node's --max-old-space-size for a service: heapPercent of its memory limit. */}}
{{- define "dsync.heapMiB" -}}
{{- $v := index (index . 0).Values (index . 1) -}}
{{- div (mul (include "dsync.mebibytes" $v.resources.limits.memory | int) (int $v.heapPercent)) 100 -}}
{{- end }}

{{/* "true" when a service uses the Kubernetes API (its pods then mount the token). */}}
{{- define "dsync.usesKubernetesApi" -}}
{{- $v := index (index . 0).Values (index . 1) -}}
{{- $api := default dict $v.kubernetesApi -}}
{{- if or $api.labelLeader $api.reconcileMembership -}}true{{- end -}}
{{- end }}

{{/* "true" when any enabled service uses the Kubernetes API. */}}
{{- define "dsync.anyKubernetesApi" -}}
{{- range $svc := include "dsync.enabledServices" $ | fromJsonArray -}}
{{- if include "dsync.usesKubernetesApi" (list $ $svc) -}}true{{- end -}}
{{- end -}}
{{- end }}

{{/* The Redis host the cache talks to (bundled mode). */}}
{{- define "dsync.redisHost" -}}
{{- printf "%s.%s.svc.%s" (include "dsync.name" (list . "dsync-redis")) .Release.Namespace
  .Values.clusterDomain -}}
{{- end }}

{{/* Secret and key of the Redis password, or nothing when Redis has no password. */}}
{{- define "dsync.redisPasswordRef" -}}
{{- if eq .Values.redis.mode "bundled" -}}
{{- toJson (dict "name" (include "dsync.secretName" .) "key" .Values.auth.redisPasswordKey) -}}
{{- else if and (eq .Values.redis.mode "external") .Values.redis.external.passwordKey -}}
{{- toJson (dict "name" (default (include "dsync.secretName" .) .Values.redis.external.existingSecret) "key" .Values.redis.external.passwordKey) -}}
{{- end -}}
{{- end }}

{{/* Container security settings of every workload of the chart. Call with
(dict "readOnly" true); only `skaffold dev` turns the read-only root off. */}}
{{- define "dsync.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnly }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Pod securityContext. Call with a dict of runAsUser/runAsGroup/fsGroup. */}}
{{- define "dsync.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsGroup }}
fsGroup: {{ .fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Scheduling spread: hostname anti-affinity and zone spread, soft or hard. */}}
{{- define "dsync.spread" -}}
{{- $root := index . 0 -}}
{{- $svc := index . 1 -}}
{{- $hard := eq $root.Values.pods.spread "hard" -}}
affinity:
  podAntiAffinity:
    {{- if $hard }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "dsync.selectorLabels" (list $root $svc) | nindent 12 }}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "dsync.selectorLabels" (list $root $svc) | nindent 14 }}
    {{- end }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: {{ ternary "DoNotSchedule" "ScheduleAnyway" $hard }}
    labelSelector:
      matchLabels:
        {{- include "dsync.selectorLabels" (list $root $svc) | nindent 8 }}
{{- end }}
