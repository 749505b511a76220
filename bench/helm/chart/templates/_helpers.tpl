{{- define "hello.env" -}}
- name: MOORAGE_RELEASE
  value: "r{{ .Release.Revision }}"
- name: MOORAGE_VOLUME_DATA
  value: /app/data
- name: MOORAGE_INSTANCE
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{- range $k, $v := .Values.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{- define "hello.volume" -}}
- name: data
  hostPath:
    path: {{ .Values.dataDir }}
    type: Directory
{{- end -}}

{{- define "hello.pod" -}}
metadata:
  labels:
    app.kubernetes.io/name: hello
    app.kubernetes.io/instance: {{ .root.Release.Name }}
    app.kubernetes.io/component: {{ .component }}
    bench/rev: "{{ .root.Release.Revision }}"
  annotations:
    checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
spec:
  containers:
    - name: {{ .component }}
      image: "{{ .root.Values.image.repository }}:{{ .root.Values.image.tag }}"
      command: ["./hello", "{{ .command }}"]
      envFrom:
        - configMapRef:
            name: {{ .root.Release.Name }}-config
      env:
        - name: MOORAGE_SERVICE
          value: {{ .component }}
        {{- include "hello.env" .root | nindent 8 }}
      {{- if eq .component "web" }}
      ports:
        - containerPort: 8080
      readinessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
      {{- end }}
      volumeMounts:
      {{- if and (eq .component "beat") (not .root.Values.beat.sharedLock) }}
        # celery beat keeps no lock shared between pods: the scheduler's
        # lock file ($DATA/scheduler.lock) is the pod's own here, its jobs
        # go to the shared queue.
        - {name: beat-local, mountPath: /app/data}
        - {name: data, mountPath: /app/data/queue, subPath: queue}
      {{- else }}
        - {name: data, mountPath: /app/data}
      {{- end }}
  volumes:
    {{- include "hello.volume" .root | nindent 4 }}
    {{- if eq .component "beat" }}
    - name: beat-local
      emptyDir: {}
    {{- end }}
{{- end -}}
