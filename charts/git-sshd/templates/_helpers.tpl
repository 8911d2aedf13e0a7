{{- define "git-sshd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "git-sshd.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "git-sshd.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "git-sshd.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "git-sshd.selectorLabels" -}}
app.kubernetes.io/name: {{ include "git-sshd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "git-sshd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "git-sshd.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "git-sshd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "git-sshd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "git-sshd.hostKeysSecretName" -}}
{{- if eq .Values.hostKeys.mode "existingSecret" -}}
{{- required "hostKeys.existingSecret is required when hostKeys.mode is existingSecret" .Values.hostKeys.existingSecret -}}
{{- else -}}
{{- default (printf "%s-host-keys" (include "git-sshd.fullname" .)) .Values.hostKeys.secretName -}}
{{- end -}}
{{- end -}}

{{/*
The app's drain time: what the kubelet allows, minus the preStop sleep, minus a margin
so that the drain's own cut (and the summary log lines) happen before SIGKILL.
*/}}
{{- define "git-sshd.graceSeconds" -}}
{{- $d := .Values.deployment -}}
{{- $grace := sub (sub (int $d.terminationGracePeriodSeconds) (int $d.preStopSleepSeconds)) (int $d.graceMarginSeconds) -}}
{{- if le (int $grace) 0 -}}
{{- fail (printf "deployment.terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d) + graceMarginSeconds (%d): the app would get %ds to drain" (int $d.terminationGracePeriodSeconds) (int $d.preStopSleepSeconds) (int $d.graceMarginSeconds) (int $grace)) -}}
{{- end -}}
{{- $grace -}}
{{- end -}}

{{/* Fails the render when replicas would share a volume only one node can mount. */}}
{{- define "git-sshd.checkReplicas" -}}
{{- $p := .Values.backend.local.persistence -}}
{{- $many := or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) -}}
{{- if and (eq .Values.backend.type "local") $p.enabled $many (not (has "ReadWriteMany" $p.accessModes)) (not $p.existingClaim) -}}
{{- fail "backend local keeps its users and repositories on one volume: more than one replica (or autoscaling) needs backend.local.persistence.accessModes [ReadWriteMany], or backend.type gitlab" -}}
{{- end -}}
{{- end -}}

{{- define "git-sshd.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* config.yml: the user's `config` with what the chart owns laid over it. */}}
{{- define "git-sshd.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $sshd := dict
  "listen" (printf "0.0.0.0:%d" (int .Values.ports.ssh))
  "web_listen" (printf "0.0.0.0:%d" (int .Values.ports.monitoring))
  "grace_period" (printf "%ss" (include "git-sshd.graceSeconds" .))
  "proxy_protocol" .Values.proxyProtocol.enabled
  "proxy_policy" .Values.proxyProtocol.policy
  "proxy_allowed" .Values.proxyProtocol.allowed
  "proxy_header_timeout" .Values.proxyProtocol.headerTimeout
-}}
{{- if eq .Values.hostKeys.mode "kubernetesApi" -}}
{{- $_ := set $sshd "host_keys_secret" (include "git-sshd.hostKeysSecretName" .) -}}
{{- else -}}
{{- $_ := set $sshd "host_key_files" (list "/etc/git-sshd/host-keys/ssh_host_ed25519_key" "/etc/git-sshd/host-keys/ssh_host_ecdsa_key" "/etc/git-sshd/host-keys/ssh_host_rsa_key") -}}
{{- end -}}
{{- $_ := set $config "sshd" (merge $sshd (default dict $config.sshd)) -}}
{{- $_ := set $config "backend" .Values.backend.type -}}
{{- $_ := set $config "local" (dict "data_dir" "/data") -}}
{{- if eq .Values.backend.type "gitlab" -}}
{{- $_ := set $config "gitlab_url" (required "backend.gitlab.url is required when backend.type is gitlab" .Values.backend.gitlab.url) -}}
{{- if and (eq .Values.backend.gitlab.gitTransport "local") (not .Values.backend.gitlab.repositoriesClaim) -}}
{{- fail "backend.gitlab.gitTransport local runs git on a repository volume: set backend.gitlab.repositoriesClaim" -}}
{{- end -}}
{{- $_ := set $config "gitlab" (merge (dict "storages" .Values.backend.gitlab.storages "git_transport" .Values.backend.gitlab.gitTransport) (default dict $config.gitlab)) -}}
{{- end -}}
{{- if .Values.backend.local.users -}}
{{- $_ := set $config "local" (dict "data_dir" "/data" "users_file" "/etc/git-sshd/users/users.yml") -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
