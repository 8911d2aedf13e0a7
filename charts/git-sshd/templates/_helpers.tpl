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

{{/*
Checks made before anything is applied, so that a release never ends half-upgraded.
The ones that read the cluster (`lookup`) are skipped where there is none (`helm template`).
*/}}
{{- define "git-sshd.checks" -}}
{{- include "git-sshd.checkKubeVersion" . -}}
{{- include "git-sshd.checkReplicas" . -}}
{{- include "git-sshd.checkClaim" . -}}
{{- include "git-sshd.checkStorageClass" . -}}
{{- end -}}

{{/*
The preStop `sleep` action is on by default from Kubernetes 1.30. Without a cluster
(`helm template`, `helm lint`) Helm reports its built-in v1.20.0, which is no cluster at
all: the render goes on; `--kube-version` and a real install are checked.
*/}}
{{- define "git-sshd.checkKubeVersion" -}}
{{- $version := .Capabilities.KubeVersion.Version -}}
{{- if and (ne $version "v1.20.0") (semverCompare "<1.30.0-0" $version) -}}
{{- fail (printf "git-sshd needs Kubernetes 1.30 or later (the preStop sleep action); this cluster is %s" $version) -}}
{{- end -}}
{{- end -}}

{{- define "git-sshd.manyReplicas" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}true{{ end -}}
{{- end -}}

{{- define "git-sshd.claimName" -}}
{{- default (include "git-sshd.fullname" .) .Values.backend.local.persistence.existingClaim -}}
{{- end -}}

{{- define "git-sshd.usesClaim" -}}
{{- if and (eq .Values.backend.type "local") .Values.backend.local.persistence.enabled }}true{{ end -}}
{{- end -}}

{{/* Fails the render when replicas would share a volume only one node can mount. */}}
{{- define "git-sshd.checkReplicas" -}}
{{- $p := .Values.backend.local.persistence -}}
{{- if and (include "git-sshd.usesClaim" .) (include "git-sshd.manyReplicas" .) (not (has "ReadWriteMany" $p.accessModes)) (not $p.existingClaim) -}}
{{- fail "backend local keeps its users and repositories on one volume: more than one replica (or autoscaling) needs backend.local.persistence.accessModes [ReadWriteMany], or backend.type gitlab (see `From one replica to several` in the chart's README)" -}}
{{- end -}}
{{- end -}}

{{/*
The claim in the cluster, when there is one: its access modes and class cannot change,
and several replicas need it ReadWriteMany. Checked here, before Helm applies anything:
otherwise the Deployment is scaled and then the claim's update is refused.
*/}}
{{- define "git-sshd.checkClaim" -}}
{{- if include "git-sshd.usesClaim" . -}}
{{- $p := .Values.backend.local.persistence -}}
{{- $name := include "git-sshd.claimName" . -}}
{{- $claim := lookup "v1" "PersistentVolumeClaim" .Release.Namespace $name -}}
{{- if $claim -}}
{{- $modes := default (list) $claim.spec.accessModes -}}
{{- $where := printf "PersistentVolumeClaim %s/%s" .Release.Namespace $name -}}
{{- $howTo := "a claim's access modes and class cannot change: make a new ReadWriteMany claim, copy the data, and set backend.local.persistence.existingClaim (see `From one replica to several` in the chart's README)" -}}
{{- if and (not $p.existingClaim) (ne (toJson (sortAlpha $modes)) (toJson (sortAlpha $p.accessModes))) -}}
{{- fail (printf "%s exists with accessModes %s, and the values ask for %s: %s" $where (toJson $modes) (toJson $p.accessModes) $howTo) -}}
{{- end -}}
{{- if and (not $p.existingClaim) $p.storageClass $claim.spec.storageClassName (ne $p.storageClass $claim.spec.storageClassName) -}}
{{- fail (printf "%s exists with storageClassName %s, and the values ask for %s: %s" $where $claim.spec.storageClassName $p.storageClass $howTo) -}}
{{- end -}}
{{- if and (include "git-sshd.manyReplicas" .) (not (has "ReadWriteMany" $modes)) -}}
{{- fail (printf "%s is %s: more than one replica (or autoscaling) needs a ReadWriteMany claim; %s" $where (toJson $modes) $howTo) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A new claim needs a StorageClass that can provision it: the named one, or the cluster's
default. Without one the claim stays Pending and `helm install --wait` only times out.
Reading StorageClasses needs cluster-scope read access: `checkStorageClass: false` skips it.
*/}}
{{- define "git-sshd.checkStorageClass" -}}
{{- $p := .Values.backend.local.persistence -}}
{{- if and (include "git-sshd.usesClaim" .) (not $p.existingClaim) $p.checkStorageClass -}}
{{- $claim := lookup "v1" "PersistentVolumeClaim" .Release.Namespace (include "git-sshd.fullname" .) -}}
{{- $classes := lookup "storage.k8s.io/v1" "StorageClass" "" "" -}}
{{- /* An empty answer is no cluster (`helm template`); a cluster answers with a list, perhaps empty. */ -}}
{{- if and (not $claim) (hasKey $classes "items") -}}
{{- $names := list -}}
{{- $default := "" -}}
{{- range $classes.items -}}
{{- $names = append $names .metadata.name -}}
{{- $annotations := default dict .metadata.annotations -}}
{{- if or (eq (get $annotations "storageclass.kubernetes.io/is-default-class") "true") (eq (get $annotations "storageclass.beta.kubernetes.io/is-default-class") "true") -}}
{{- $default = .metadata.name -}}
{{- end -}}
{{- end -}}
{{- $options := "set backend.local.persistence.storageClass to a class that can provision it, existingClaim to a claim you made, or persistence.enabled=false for a trial (repositories are then lost with the pod); see `Storage` in the chart's README" -}}
{{- if and $p.storageClass (not (has $p.storageClass $names)) -}}
{{- fail (printf "backend.local.persistence.storageClass %s does not exist (this cluster has: %s): %s" $p.storageClass (join ", " $names | default "none") $options) -}}
{{- end -}}
{{- if and (not $p.storageClass) (not $default) -}}
{{- fail (printf "the repositories' PersistentVolumeClaim would stay Pending: this cluster has no default StorageClass (it has: %s): %s" (join ", " $names | default "none") $options) -}}
{{- end -}}
{{- end -}}
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
