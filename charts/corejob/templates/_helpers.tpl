{{/*
Named helpers shared by the PyTorchJob and the test hook. Each helper takes the root
context (.) unless its comment says otherwise.
*/}}

{{/* Chart label value: <name>-<version>, "+" is not allowed in label values. */}}
{{- define "corejob.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Short name of a model or dataset reference (takes the reference string): a config name
stays as it is, a path becomes its file name without the .yaml/.yml extension.
*/}}
{{- define "corejob.configStem" -}}
{{- base . | trimSuffix ".yaml" | trimSuffix ".yml" -}}
{{- end -}}

{{/* A string made safe as a label value (takes the string): at most 63 characters. */}}
{{- define "corejob.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" . "-" | trunc 63 | trimAll "-_." -}}
{{- end -}}

{{/*
Job name: the one job-name rule of corejob. Pods are named <job>-master-0 /
<job>-worker-<i> and each gets a Service of the same name, so the job name must be a
DNS-1035 label of at most 50 characters. Given explicitly (jobName) it is used verbatim;
otherwise the release name, or, when the release is named like the chart, <model>-<dataset>
with every run of other characters turned into "-" ("j-" in front when it would not start
with a letter). corejob sets configHash: the derived name then ends in -<configHash>, its
<model>-<dataset> part cut so that the whole fits in 50 characters. A name that still breaks
the rules fails the render instead of producing pods the API rejects.
*/}}
{{- define "corejob.jobName" -}}
{{- $name := .Values.jobName -}}
{{- $source := "jobName" -}}
{{- if not $name -}}
{{- if ne .Release.Name .Chart.Name -}}
{{- $name = .Release.Name -}}
{{- $source = "the release name" -}}
{{- else -}}
{{- $model := include "corejob.configStem" .Values.model -}}
{{- $dataset := include "corejob.configStem" .Values.dataset -}}
{{- $name = regexReplaceAll "[^a-z0-9-]+" (printf "%s-%s" $model $dataset | lower) "-" -}}
{{- $name = regexReplaceAll "-{2,}" $name "-" | trimAll "-" -}}
{{- if not (regexMatch "^[a-z]" $name) -}}
{{- $name = printf "j-%s" $name | trimSuffix "-" -}}
{{- end -}}
{{- $source = "<model>-<dataset>" -}}
{{- with .Values.configHash -}}
{{- $name = printf "%s-%s" ($name | trunc (int (sub 49 (len .))) | trimSuffix "-") . -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if gt (len $name) 50 -}}
{{- fail (printf "job name %q (from %s) is %d characters, at most 50 are allowed (pods append -worker-<i>): set a shorter jobName" $name $source (len $name)) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name) -}}
{{- fail (printf "job name %q (from %s) is not a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, ending with a letter or digit): set jobName" $name $source) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* Helm's recommended labels plus corejob's own; on the job and on every pod. */}}
{{- define "corejob.labels" -}}
helm.sh/chart: {{ include "corejob.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: training
app.kubernetes.io/part-of: corejob
app.kubernetes.io/managed-by: {{ .Release.Service }}
corejob.dev/model: {{ include "corejob.labelValue" (include "corejob.configStem" .Values.model) | quote }}
corejob.dev/dataset: {{ include "corejob.labelValue" (include "corejob.configStem" .Values.dataset) | quote }}
{{- with .Values.sweep }}
corejob.dev/sweep: {{ . | quote }}
{{- end }}
{{- with .Values.configHash }}
corejob.dev/config-hash: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Image reference: repository@digest when a digest is given, else repository:tag. */}}
{{/*
The Kueue queue label for a job's metadata, from .Values.queueName (nothing when empty).
Any job kind the chart renders includes it, with "corejob.suspendForQueue" for its suspend
field: Kueue admits a job by resuming it, so it must be created suspended.
*/}}
{{- define "corejob.queueLabel" -}}
{{- with .Values.queueName }}
kueue.x-k8s.io/queue-name: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* "true" when the job must be created suspended: asked for, or queued by Kueue. */}}
{{- define "corejob.suspendForQueue" -}}
{{- or .Values.runPolicy.suspend (ne (toString .Values.queueName) "") -}}
{{- end -}}

{{- define "corejob.image" -}}
{{- $repository := required "image.repository is required (e.g. --set image.repository=localhost/corejob-trainer)" .Values.image.repository -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
Whether the container starts torchrun (several processes per pod, or elastic training:
both read the PET_* variables the operator injects) instead of the image's entrypoint.
Renders "true" or nothing.
*/}}
{{- define "corejob.useTorchrun" -}}
{{- if or (gt (int .Values.nprocPerNode) 1) .Values.elasticPolicy.enabled -}}true{{- end -}}
{{- end -}}

{{/*
OMP_NUM_THREADS: whole CPUs requested per training process (at least 1). Empty when no
CPU request is set, so the trainer's own default applies.
*/}}
{{- define "corejob.ompThreads" -}}
{{- $cpu := toString (.Values.resources.requests.cpu | default "") -}}
{{- if $cpu -}}
{{- $cores := 0 -}}
{{- if hasSuffix "m" $cpu -}}
{{- $cores = div (atoi (trimSuffix "m" $cpu)) 1000 -}}
{{- else -}}
{{- $cores = int (floor (float64 $cpu)) -}}
{{- end -}}
{{- max 1 (div $cores (int .Values.nprocPerNode)) -}}
{{- end -}}
{{- end -}}

{{/*
Typed trainer values and the trainer flags they become, in the order they are passed.
Each entry: value key, flag, kind (int, float or string).
*/}}
{{- define "corejob.trainerFlags" -}}
maxEpochs --max_epochs int
timeBudgetMinutes --time_budget_minutes float
timeBudgetClock --time_budget_clock string
stepsPerEpoch --steps_per_epoch int
batchSize --batch_size int
learningRate --learning_rate float
weightDecay --weight_decay float
precision --precision string
numWorkers --num_workers int
seed --seed int
maxDatasets --max_datasets int
dsetDtype --dset_dtype string
dataOnDevice --data_on_device string
accelerator --accelerator string
ddpTimeoutS --ddp_timeout_s int
checkpointEveryMinutes --checkpoint_every_minutes float
progressEverySeconds --progress_every_seconds float
{{- end -}}

{{/*
Trainer arguments as a JSON list (docs/CONTRACT.md): the subcommand, the model and
dataset, the fixed pod layout (/data, /runs/<job name>), the typed trainer values that
are set, then trainer.extraArgs verbatim. Takes the root context.
*/}}
{{- define "corejob.trainerArgs" -}}
{{- $trainer := .Values.trainer -}}
{{- $args := list "train"
    "--model_config" (include "corejob.configArg" (list . .Values.model))
    "--dataset_configs_path" (include "corejob.configArg" (list . .Values.dataset))
    "--data_root" "/data"
    "--run_dir" (printf "/runs/%s" (include "corejob.jobName" .))
    "--resume" (toString $trainer.resume) -}}
{{- /* A read-only data volume cannot hold derived arrays it lacks: the shared /runs can. */ -}}
{{- if .Values.data.readOnly -}}
{{- $args = concat $args (list "--derived_dir" "/runs/.derived") -}}
{{- end -}}
{{- range $line := splitList "\n" (include "corejob.trainerFlags" .) -}}
{{- $entry := splitList " " $line -}}
{{- $key := index $entry 0 -}}
{{- if and (hasKey $trainer $key) (ne (toString (index $trainer $key)) "<nil>") -}}
{{- $value := index $trainer $key -}}
{{- if eq (index $entry 2) "int" -}}
{{- $value = int64 $value | toString -}}
{{- else -}}
{{- $value = toString $value -}}
{{- end -}}
{{- $args = concat $args (list (index $entry 1) $value) -}}
{{- end -}}
{{- end -}}
{{- range $trainer.extraArgs -}}
{{- $args = append $args (toString .) -}}
{{- end -}}
{{- toJson $args -}}
{{- end -}}

{{/*
Container environment. The operator adds MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and
PET_*; they are deliberately not repeated here. HOME=/tmp because the root filesystem is
read-only. The W&B key only ever comes from a Secret.
*/}}
{{- define "corejob.env" -}}
- name: COREJOB_JOB_NAME
  value: {{ include "corejob.jobName" . | quote }}
- name: COREJOB_MODEL
  value: {{ .Values.model | quote }}
- name: COREJOB_DATASET
  value: {{ .Values.dataset | quote }}
{{- with .Values.sweep }}
- name: COREJOB_SWEEP
  value: {{ . | quote }}
{{- end }}
- name: HOME
  value: /tmp
{{- with include "corejob.ompThreads" . }}
- name: OMP_NUM_THREADS
  value: {{ . | quote }}
{{- end }}
{{- include "corejob.wandbEnv" . }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* W&B environment; online mode without a key Secret fails the render. WANDB_DIR is the
run directory on the checkpoints volume: offline runs outlive the pod and can be synced. */}}
{{- define "corejob.wandbEnv" -}}
{{- $wandb := .Values.wandb }}
- name: WANDB_MODE
  value: {{ $wandb.mode | quote }}
{{- if ne $wandb.mode "disabled" }}
{{- if and (eq $wandb.mode "online") (not $wandb.apiKeySecret.name) }}
{{- fail "wandb.mode=online needs wandb.apiKeySecret.name: the name of a Secret holding the W&B API key (see manifests/overlays/wandb-secret)" }}
{{- end }}
- name: WANDB_DIR
  value: {{ printf "/runs/%s" (include "corejob.jobName" .) | quote }}
- name: WANDB_PROJECT
  value: {{ $wandb.project | quote }}
{{- with $wandb.entity }}
- name: WANDB_ENTITY
  value: {{ . | quote }}
{{- end }}
{{- with $wandb.baseUrl }}
- name: WANDB_BASE_URL
  value: {{ . | quote }}
{{- end }}
- name: WANDB_NAME
  value: {{ include "corejob.jobName" . | quote }}
{{- with .Values.sweep }}
- name: WANDB_RUN_GROUP
  value: {{ . | quote }}
{{- end }}
{{- with $wandb.apiKeySecret.name }}
- name: WANDB_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $wandb.apiKeySecret.key | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Container resources; GPUs become nvidia.com/gpu limits (requests follow limits). */}}
{{- define "corejob.resources" -}}
{{- $requests := dict -}}
{{- $limits := dict -}}
{{- with .Values.resources.requests.cpu }}{{ $_ := set $requests "cpu" (toString .) }}{{ end -}}
{{- with .Values.resources.requests.memory }}{{ $_ := set $requests "memory" (toString .) }}{{ end -}}
{{- with .Values.resources.limits.cpu }}{{ $_ := set $limits "cpu" (toString .) }}{{ end -}}
{{- with (.Values.resources.limits.memory | default .Values.resources.requests.memory) }}{{ $_ := set $limits "memory" (toString .) }}{{ end -}}
{{- if gt (int .Values.gpusPerReplica) 0 }}{{ $_ := set $limits "nvidia.com/gpu" (int .Values.gpusPerReplica) }}{{ end -}}
{{- $resources := dict -}}
{{- if $requests }}{{ $_ := set $resources "requests" $requests }}{{ end -}}
{{- if $limits }}{{ $_ := set $resources "limits" $limits }}{{ end -}}
{{- toYaml $resources -}}
{{- end -}}

{{/* Volumes: scratch /tmp, shared memory, data and checkpoints (claim or emptyDir). */}}
{{- define "corejob.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmp.sizeLimit | quote }}
{{- if .Values.shm.enabled }}
- name: shm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.shm.sizeLimit | quote }}
{{- end }}
{{- include "corejob.claimOrEmptyDir" (dict "name" "data" "volume" .Values.data) }}
{{- include "corejob.claimOrEmptyDir" (dict "name" "runs" "volume" .Values.checkpoints) }}
{{- include "corejob.configFilesVolume" . }}
{{- end -}}

{{/* One volume from {name, volume: {existingClaim, readOnly, sizeLimit}}. */}}
{{- define "corejob.claimOrEmptyDir" -}}
{{- $volume := .volume }}
- name: {{ .name }}
{{- if $volume.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ $volume.existingClaim | quote }}
    {{- if $volume.readOnly }}
    readOnly: true
    {{- end }}
{{- else if $volume.sizeLimit }}
  emptyDir:
    sizeLimit: {{ $volume.sizeLimit | quote }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{/* Mounts matching corejob.volumes; the paths are the job contract (docs/CONTRACT.md). */}}
{{- define "corejob.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.shm.enabled }}
- name: shm
  mountPath: /dev/shm
{{- end }}
- name: data
  mountPath: /data
  {{- with .Values.data.subPath }}
  subPath: {{ . | quote }}
  {{- end }}
  {{- if .Values.data.readOnly }}
  readOnly: true
  {{- end }}
- name: runs
  mountPath: /runs
  {{- with .Values.checkpoints.subPath }}
  subPath: {{ . | quote }}
  {{- end }}
{{- include "corejob.configFilesMount" . }}
{{- end -}}

{{/* Restricted Pod Security Standard, container level (always applied). */}}
{{- define "corejob.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .Values.securityContext.runAsUser }}
runAsGroup: {{ int .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Restricted Pod Security Standard, pod level. */}}
{{- define "corejob.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .Values.securityContext.runAsUser }}
runAsGroup: {{ int .Values.securityContext.runAsGroup }}
fsGroup: {{ int .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Config files shipped with the job (.Values.configFiles: path -> YAML text), e.g. a model
config from the user's machine, or a dataset config and its session files ("my_data.yaml",
"my_data/a.yaml"). They become the ConfigMap "corejob.configFilesName"
(templates/configmap.yaml), mounted read-only at "corejob.configFilesDir" in every pod of
any job flavour: a pod template includes "corejob.configFilesVolume" in its volumes and
"corejob.configFilesMount" in the trainer container's mounts (corejob.volumes and
corejob.volumeMounts do). Each renders nothing without configFiles.
*/}}
{{- define "corejob.configFilesDir" -}}
/etc/corejob/configs
{{- end -}}

{{/* The ConfigMap's name: <job name>-configs (the job name is at most 50 characters). */}}
{{- define "corejob.configFilesName" -}}
{{- printf "%s-configs" (include "corejob.jobName" .) -}}
{{- end -}}

{{/*
ConfigMap key of a configFiles path (takes the path): "/" is not allowed in a key, so a
dataset's session file "my_data/a.yaml" is stored as "my_data--a.yaml"; the volume's items
put it back at its path.
*/}}
{{- define "corejob.configFileKey" -}}
{{- replace "/" "--" . -}}
{{- end -}}

{{- define "corejob.configFilesVolume" -}}
{{- if .Values.configFiles }}
- name: configs
  configMap:
    name: {{ include "corejob.configFilesName" . | quote }}
    items:
      {{- range $path, $_ := .Values.configFiles }}
      - key: {{ include "corejob.configFileKey" $path | quote }}
        path: {{ $path | quote }}
      {{- end }}
{{- end }}
{{- end -}}

{{- define "corejob.configFilesMount" -}}
{{- if .Values.configFiles }}
- name: configs
  mountPath: {{ include "corejob.configFilesDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/*
The trainer argument for a model or dataset value (takes a list: root context, value): a
file name that is a key of configFiles is read from the mounted ConfigMap; a bundled
config name or a path inside the image stays as it is.
*/}}
{{- define "corejob.configArg" -}}
{{- $root := index . 0 -}}
{{- $value := index . 1 -}}
{{- if hasKey ($root.Values.configFiles | default dict) $value -}}
{{- printf "%s/%s" (include "corejob.configFilesDir" $root) $value -}}
{{- else -}}
{{- $value -}}
{{- end -}}
{{- end -}}

{{/*
Pod annotation with the checksum of the shipped config files (Helm's checksum idiom): the
content is part of the job, so a changed file is another job (another config hash), and
the same file shipped twice is the same job. Nothing without configFiles.
*/}}
{{- define "corejob.configFilesAnnotations" -}}
{{- with .Values.configFiles }}
corejob.dev/config-files-sha256: {{ toJson . | sha256sum | quote }}
{{- end }}
{{- end -}}
