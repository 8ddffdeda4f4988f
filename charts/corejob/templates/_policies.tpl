{{/* spec.runPolicy; null and empty values are left out so the operator's defaults apply. */}}
{{- define "corejob.runPolicy" -}}
{{- $policy := .Values.runPolicy -}}
cleanPodPolicy: {{ $policy.cleanPodPolicy }}
backoffLimit: {{ int $policy.backoffLimit }}
{{- if ne (toString $policy.ttlSecondsAfterFinished) "<nil>" }}
ttlSecondsAfterFinished: {{ int $policy.ttlSecondsAfterFinished }}
{{- end }}
{{- if ne (toString $policy.activeDeadlineSeconds) "<nil>" }}
activeDeadlineSeconds: {{ int64 $policy.activeDeadlineSeconds }}
{{- end }}
suspend: {{ include "corejob.suspendForQueue" . }}
{{- $scheduling := $policy.schedulingPolicy }}
{{- if or $scheduling.queue $scheduling.priorityClass (ne (toString $scheduling.minAvailable) "<nil>") (ne (toString $scheduling.scheduleTimeoutSeconds) "<nil>") }}
schedulingPolicy:
  {{- with $scheduling.queue }}
  queue: {{ . | quote }}
  {{- end }}
  {{- with $scheduling.priorityClass }}
  priorityClass: {{ . | quote }}
  {{- end }}
  {{- if ne (toString $scheduling.minAvailable) "<nil>" }}
  minAvailable: {{ int $scheduling.minAvailable }}
  {{- end }}
  {{- if ne (toString $scheduling.scheduleTimeoutSeconds) "<nil>" }}
  scheduleTimeoutSeconds: {{ int $scheduling.scheduleTimeoutSeconds }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
spec.elasticPolicy. Replica counts include the master (it joins the rendezvous too), so
both default to workers + 1 and must bracket it.
*/}}
{{- define "corejob.elasticPolicy" -}}
{{- $elastic := .Values.elasticPolicy -}}
{{- $pods := add1 (int .Values.workers) -}}
{{- $min := $pods -}}
{{- if ne (toString $elastic.minReplicas) "<nil>" }}{{ $min = int $elastic.minReplicas }}{{ end -}}
{{- $max := $pods -}}
{{- if ne (toString $elastic.maxReplicas) "<nil>" }}{{ $max = int $elastic.maxReplicas }}{{ end -}}
{{- if not (and (le $min $pods) (le $pods $max)) -}}
{{- fail (printf "elasticPolicy: minReplicas (%d) <= workers + 1 (%d) <= maxReplicas (%d) must hold; replica counts include the master" $min $pods $max) -}}
{{- end -}}
minReplicas: {{ $min }}
maxReplicas: {{ $max }}
maxRestarts: {{ int $elastic.maxRestarts }}
rdzvBackend: {{ $elastic.rdzvBackend }}
{{- with $elastic.rdzvHost }}
rdzvHost: {{ . | quote }}
{{- end }}
{{- if ne (toString $elastic.rdzvPort) "<nil>" }}
rdzvPort: {{ int $elastic.rdzvPort }}
{{- end }}
{{- end -}}
