{{/*
Pod template shared by the Master and Worker replica specs (they differ only in the
operator-added labels and env). Takes the root context.
*/}}
{{- define "corejob.podTemplate" -}}
metadata:
  labels:
    {{- include "corejob.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with merge (include "corejob.configFilesAnnotations" . | fromYaml) (.Values.podAnnotations | default dict) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .Values.serviceAccountName }}
  serviceAccountName: {{ . | quote }}
  {{- end }}
  automountServiceAccountToken: {{ .Values.automountServiceAccountToken }}
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ int .Values.terminationGracePeriodSeconds }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  {{- with .Values.image.pullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . | quote }}
    {{- end }}
  {{- end }}
  securityContext:
    {{- include "corejob.podSecurityContext" . | nindent 4 }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: pytorch
      image: {{ include "corejob.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- if include "corejob.useTorchrun" . }}
      command:
        - torchrun
      args:
        - -m
        - trainer
        {{- include "corejob.trainerArgs" . | fromJsonArray | toYaml | nindent 8 }}
      {{- else }}
      args:
        {{- include "corejob.trainerArgs" . | fromJsonArray | toYaml | nindent 8 }}
      {{- end }}
      env:
        {{- include "corejob.env" . | nindent 8 }}
      ports:
        - name: pytorchjob-port
          containerPort: {{ int .Values.port }}
          protocol: TCP
      resources:
        {{- include "corejob.resources" . | nindent 8 }}
      securityContext:
        {{- include "corejob.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        {{- include "corejob.volumeMounts" . | nindent 8 }}
  volumes:
    {{- include "corejob.volumes" . | nindent 4 }}
{{- end -}}
