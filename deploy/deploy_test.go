package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/usersvc/usersvc/internal/metrics"
)

// What the binary reads, learnt from its source and README so that the
// files here cannot drift from it.
type binary struct {
	port        int             // the default PORT
	env         map[string]bool // variables config.go reads
	documented  map[string]bool // variables in the README's configuration table
	healthPaths map[string]bool // GET routes under /health
}

// runtimeEnv are read by the Go runtime, not by config.go.
var runtimeEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true, "GODEBUG": true}

// hashMemory is what one password hash holds while it is computed.
const hashMemory = 19 << 20

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readBinary(t *testing.T) binary {
	t.Helper()
	b := binary{env: map[string]bool{}, documented: map[string]bool{}, healthPaths: map[string]bool{}}

	config := readFile(t, "../cmd/usersvc/config.go")
	m := regexp.MustCompile(`getenv\("PORT"\), "(\d+)"`).FindStringSubmatch(config)
	if m == nil {
		t.Fatal(`config.go: no default for PORT (getenv("PORT"), "…")`)
	}
	b.port, _ = strconv.Atoi(m[1])
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`getenv\("([A-Z][A-Z0-9_]*)"\)`),
		regexp.MustCompile(`\{"([A-Z][A-Z0-9_]*)", "[^"]*", &c\.`), // the durations table
		regexp.MustCompile(`\{"([A-Z][A-Z0-9_]*)", d\.\w+, &c\.`),  // the rate limits table
	} {
		for _, m := range re.FindAllStringSubmatch(config, -1) {
			b.env[m[1]] = true
		}
	}
	for _, name := range []string{"PORT", "DATA_DIR", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SHUTDOWN_TIMEOUT", "DRAIN_DELAY"} {
		if !b.env[name] {
			t.Fatalf("config.go: cannot find where %s is read; update this test", name)
		}
	}

	readme := readFile(t, "../README.md")
	_, section, ok := strings.Cut(readme, "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]*)`").FindAllStringSubmatch(cells[1], -1) {
			b.documented[m[1]] = true
		}
	}

	routes := readFile(t, "../internal/httpapi/routes.go")
	for _, m := range regexp.MustCompile(`"GET (/health[a-z/]*)"`).FindAllStringSubmatch(routes, -1) {
		b.healthPaths[m[1]] = true
	}
	for _, p := range []string{"/health/liveness", "/health/readiness"} {
		if !b.healthPaths[p] {
			t.Fatalf("routes.go: no GET %s", p)
		}
	}
	return b
}

// TestEveryVariableDocumented checks that every variable config.go reads
// is in the README's configuration table, and that the table names no
// variable that nothing reads.
func TestEveryVariableDocumented(t *testing.T) {
	bin := readBinary(t)
	for name := range bin.env {
		if !bin.documented[name] {
			t.Errorf("config.go reads %s, which the README's configuration table does not list", name)
		}
	}
	for name := range bin.documented {
		// OTEL_* are read by the OpenTelemetry SDK, the rest by the Go runtime.
		if !bin.env[name] && !runtimeEnv[name] && !strings.HasPrefix(name, "OTEL_") {
			t.Errorf("the README's configuration table lists %s, which config.go does not read", name)
		}
	}
	for _, name := range []string{"RATE_LIMIT_LOGIN_EMAIL", "RATE_LIMIT_LOGIN_ADDRESS", "RATE_LIMIT_REGISTER_EMAIL", "RATE_LIMIT_REGISTER_ADDRESS"} {
		if !bin.env[name] {
			t.Errorf("config.go: cannot find where %s is read; update this test", name)
		}
	}
}

// checkEnvName reports a variable the binary does not read.
func (b binary) checkEnvName(t *testing.T, where, name string) {
	t.Helper()
	switch {
	case runtimeEnv[name]:
	case !b.env[name]:
		t.Errorf("%s: %s is not a variable the binary reads", where, name)
	case !b.documented[name]:
		t.Errorf("%s: %s is not in the README's configuration table", where, name)
	}
}

// ---- Kubernetes ----

type meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	Exec any `yaml:"exec"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env            []envVar `yaml:"env"`
	StartupProbe   *probe   `yaml:"startupProbe"`
	LivenessProbe  *probe   `yaml:"livenessProbe"`
	ReadinessProbe *probe   `yaml:"readinessProbe"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
			Exec any `yaml:"exec"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []volumeMount `yaml:"volumeMounts"`
}

type envVar struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type volumeMount struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
}

type podTemplate struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		TerminationGracePeriodSeconds *int   `yaml:"terminationGracePeriodSeconds"`
		RestartPolicy                 string `yaml:"restartPolicy"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
			RunAsUser    *int  `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
	} `yaml:"spec"`
}

type object struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   meta              `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"` // a Kustomization's
	Images     []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"` // a Kustomization's
	Spec struct {
		Replicas *int        `yaml:"replicas"`
		Selector yaml.Node   `yaml:"selector"` // a label selector, or a Service's plain map
		Template podTemplate `yaml:"template"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
		MinReplicas    *int `yaml:"minReplicas"`
		MaxReplicas    int  `yaml:"maxReplicas"`
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		MinAvailable   any `yaml:"minAvailable"`
	} `yaml:"spec"`
	file string
}

// labels returns the labels a selector asks for, in either form.
func (o *object) selectorLabels(t *testing.T) map[string]string {
	t.Helper()
	var s selector
	if err := o.Spec.Selector.Decode(&s); err == nil && s.MatchLabels != nil {
		return s.MatchLabels
	}
	var m map[string]string
	if err := o.Spec.Selector.Decode(&m); err != nil {
		t.Fatalf("%s: selector: %v", o.file, err)
	}
	return m
}

// readManifests parses every YAML document under deploy/.
func readManifests(t *testing.T) []*object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var objs []*object
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, f))))
		for {
			var node yaml.Node
			err := dec.Decode(&node)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o := &object{file: f}
			if err := node.Decode(o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.APIVersion == "" || o.Kind == "" {
				t.Fatalf("%s: a document without apiVersion and kind", f)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func one(t *testing.T, objs []*object, kind string) *object {
	t.Helper()
	var found []*object
	for _, o := range objs {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s, have %d", kind, len(found))
	}
	return found[0]
}

func subset(sub, of map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

// duration parses a Go duration, failing the test.
func duration(t *testing.T, where, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %q: %v", where, s, err)
	}
	return d
}

// bytesOf parses a Kubernetes memory quantity (Ki, Mi, Gi) or a Go memory
// limit (KiB, MiB, GiB).
func bytesOf(t *testing.T, where, s string) int64 {
	t.Helper()
	for _, u := range []struct {
		suffix string
		scale  int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"", 1}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				break
			}
			return v * u.scale
		}
	}
	t.Fatalf("%s: %q is not a memory quantity this test reads", where, s)
	return 0
}

// portOf resolves a probe's or a Service's port, a number or a name of one
// of c's ports.
func portOf(t *testing.T, where string, p any, c container) int {
	t.Helper()
	switch p := p.(type) {
	case int:
		return p
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
		t.Errorf("%s: port %q is not a named port of container %s", where, p, c.Name)
	default:
		t.Errorf("%s: port %v is neither a number nor a name", where, p)
	}
	return 0
}

func TestKubernetes(t *testing.T) {
	bin := readBinary(t)
	objs := readManifests(t)
	for _, o := range objs {
		if o.Metadata.Namespace != "" {
			t.Errorf("%s: %s %s names namespace %q; the manifests are namespace-agnostic", o.file, o.Kind, o.Metadata.Name, o.Metadata.Namespace)
		}
	}
	cm := one(t, objs, "ConfigMap")
	secret := one(t, objs, "Secret")
	dep := one(t, objs, "Deployment")
	svc := one(t, objs, "Service")
	pdb := one(t, objs, "PodDisruptionBudget")
	hpa := one(t, objs, "HorizontalPodAutoscaler")
	job := one(t, objs, "Job")
	kust := one(t, objs, "Kustomization")

	// ConfigMap: only variables the binary reads; never a secret.
	for name, v := range cm.Data {
		bin.checkEnvName(t, cm.file, name)
		switch name {
		case "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DB_PASSWORD", "REDIS_PASSWORD", "SERVICE_API_KEYS":
			t.Errorf("%s: %s belongs in the Secret", cm.file, name)
		case "PORT":
			if v != strconv.Itoa(bin.port) {
				t.Errorf("%s: PORT %s, the binary's default is %d", cm.file, v, bin.port)
			}
		}
	}
	// The Secret is an example: placeholders only.
	if secret.file != "secret.example.yaml" {
		t.Errorf("the Secret is in %s, want secret.example.yaml", secret.file)
	}
	for k, v := range secret.StringData {
		bin.checkEnvName(t, secret.file, k)
		if !strings.Contains(v, "CHANGE-ME") {
			t.Errorf("%s: %s is not a placeholder", secret.file, k)
		}
	}

	// Deployment.
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Errorf("%s: want at least 2 replicas", dep.file)
	}
	pod := dep.Spec.Template
	if !subset(dep.selectorLabels(t), pod.Metadata.Labels) {
		t.Errorf("%s: the selector does not match the pod labels", dep.file)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container", dep.file)
	}
	c := pod.Spec.Containers[0]
	// The API on port http; with ADMIN_PORT, the metrics and the profiler
	// on port admin, which Prometheus scrapes and the Service leaves out.
	scrapePort := bin.port
	if len(c.Ports) == 0 || c.Ports[0].ContainerPort != bin.port || c.Ports[0].Name != "http" {
		t.Errorf("%s: container ports %+v, want the first named http on %d", dep.file, c.Ports, bin.port)
	}
	if v, ok := cm.Data["ADMIN_PORT"]; ok {
		admin, err := strconv.Atoi(v)
		if err != nil || admin < 1 || admin == bin.port {
			t.Fatalf("%s: ADMIN_PORT %q, want a fixed port other than %d", cm.file, v, bin.port)
		}
		if len(c.Ports) != 2 || c.Ports[1].ContainerPort != admin || c.Ports[1].Name != "admin" {
			t.Errorf("%s: container ports %+v, want http on %d and admin on %d", dep.file, c.Ports, bin.port, admin)
		}
		scrapePort = admin
	} else if len(c.Ports) != 1 {
		t.Errorf("%s: container ports %+v, want one named http (ADMIN_PORT is not set)", dep.file, c.Ports)
	}
	if p := pod.Metadata.Annotations["prometheus.io/port"]; p != "" && p != strconv.Itoa(scrapePort) {
		t.Errorf("%s: prometheus.io/port %s, want %d (where /metrics is served)", dep.file, p, scrapePort)
	}
	for _, p := range []struct {
		name string
		p    *probe
		path string // "" means any health route
	}{
		{"startupProbe", c.StartupProbe, ""},
		{"livenessProbe", c.LivenessProbe, "/health/liveness"}, // no dependency: a database outage must not restart pods
		{"readinessProbe", c.ReadinessProbe, "/health/readiness"},
	} {
		where := dep.file + ": " + p.name
		if p.p == nil || p.p.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe", where)
			continue
		}
		if !bin.healthPaths[p.p.HTTPGet.Path] || (p.path != "" && p.p.HTTPGet.Path != p.path) {
			t.Errorf("%s: path %s", where, p.p.HTTPGet.Path)
		}
		if port := portOf(t, where, p.p.HTTPGet.Port, c); port != bin.port {
			t.Errorf("%s: port %d, want %d", where, port, bin.port)
		}
	}
	checkEnv(t, bin, dep.file, c, cm, secret)
	for _, name := range []string{"SECRET_KEY", "DATABASE_URL", "REDIS_URL"} {
		if !slices.ContainsFunc(c.Env, func(e envVar) bool {
			return e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		}) {
			t.Errorf("%s: %s does not come from the Secret", dep.file, name)
		}
	}
	checkSecurity(t, dep.file, pod, c)

	// Stopping: preStop pause, then DRAIN_DELAY, then SHUTDOWN_TIMEOUT, all
	// within the grace period. The image has no shell: no exec hook.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Fatalf("%s: want a preStop sleep", dep.file)
	}
	if c.Lifecycle.PreStop.Exec != nil {
		t.Errorf("%s: a preStop exec hook cannot run in an image with no shell", dep.file)
	}
	pause := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	drain := duration(t, cm.file+": DRAIN_DELAY", cm.Data["DRAIN_DELAY"])
	shutdown := duration(t, cm.file+": SHUTDOWN_TIMEOUT", cm.Data["SHUTDOWN_TIMEOUT"])
	if drain != pause {
		t.Errorf("DRAIN_DELAY %v does not match the preStop pause %v", drain, pause)
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil {
		t.Fatalf("%s: no terminationGracePeriodSeconds", dep.file)
	}
	grace := time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	if pause >= grace || pause+drain+shutdown >= grace {
		t.Errorf("%s: preStop %v + DRAIN_DELAY %v + SHUTDOWN_TIMEOUT %v does not fit in terminationGracePeriodSeconds %v", dep.file, pause, drain, shutdown, grace)
	}

	// Memory: PASSWORD_HASH_CONCURRENCY hashes at once, plus the rest.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("%s: no %s request", dep.file, r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Fatalf("%s: no memory limit", dep.file)
	}
	limit := bytesOf(t, dep.file, c.Resources.Limits["memory"])
	conc, err := strconv.Atoi(cm.Data["PASSWORD_HASH_CONCURRENCY"])
	if err != nil || conc < 1 {
		t.Fatalf("%s: PASSWORD_HASH_CONCURRENCY %q", cm.file, cm.Data["PASSWORD_HASH_CONCURRENCY"])
	}
	if need := int64(conc)*hashMemory + 128<<20; limit < need {
		t.Errorf("%s: memory limit %d MiB is below %d hashes at once plus 128 MiB (%d MiB)", dep.file, limit>>20, conc, need>>20)
	}
	if request := bytesOf(t, dep.file, c.Resources.Requests["memory"]); request > limit {
		t.Errorf("%s: memory request above the limit", dep.file)
	}
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" && (e.Value == nil || bytesOf(t, dep.file+": GOMEMLIMIT", *e.Value) >= limit) {
			t.Errorf("%s: GOMEMLIMIT must be a value below the memory limit", dep.file)
		}
	}
	// DATA_DIR must be writable on a read-only root filesystem.
	if dir := cm.Data["DATA_DIR"]; dir == "" || !slices.ContainsFunc(c.VolumeMounts, func(m volumeMount) bool {
		return m.MountPath == dir
	}) {
		t.Errorf("%s: DATA_DIR %q is not a mounted volume", dep.file, dir)
	}

	// Service, PodDisruptionBudget, HorizontalPodAutoscaler point at the pods.
	if !subset(svc.selectorLabels(t), pod.Metadata.Labels) {
		t.Errorf("%s: the selector does not match the Deployment's pods", svc.file)
	}
	if len(svc.Spec.Ports) == 0 {
		t.Errorf("%s: no ports", svc.file)
	}
	for _, p := range svc.Spec.Ports {
		if port := portOf(t, svc.file, p.TargetPort, c); port != bin.port {
			t.Errorf("%s: targetPort %v is %d, want %d", svc.file, p.TargetPort, port, bin.port)
		}
	}
	if pdb.APIVersion != "policy/v1" || !subset(pdb.selectorLabels(t), pod.Metadata.Labels) {
		t.Errorf("%s: want policy/v1 selecting the Deployment's pods", pdb.file)
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Errorf("%s: neither maxUnavailable nor minAvailable", pdb.file)
	}
	ref := hpa.Spec.ScaleTargetRef
	if hpa.APIVersion != "autoscaling/v2" || ref.Kind != "Deployment" || ref.Name != dep.Metadata.Name || ref.APIVersion != "apps/v1" {
		t.Errorf("%s: want autoscaling/v2 scaling Deployment %s", hpa.file, dep.Metadata.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
		t.Errorf("%s: want minReplicas of at least 2, below maxReplicas", hpa.file)
	}

	// The migration Job: the same image, the migrate command, outside the
	// Service and the budget.
	jpod := job.Spec.Template
	if len(jpod.Spec.Containers) != 1 {
		t.Fatalf("%s: want one container", job.file)
	}
	jc := jpod.Spec.Containers[0]
	if jc.Image != c.Image || !slices.Equal(jc.Args, []string{"migrate"}) {
		t.Errorf("%s: want image %s with args [migrate], have %s %v", job.file, c.Image, jc.Image, jc.Args)
	}
	if jpod.Spec.RestartPolicy != "Never" && jpod.Spec.RestartPolicy != "OnFailure" {
		t.Errorf("%s: restartPolicy %q", job.file, jpod.Spec.RestartPolicy)
	}
	if subset(svc.selectorLabels(t), jpod.Metadata.Labels) || subset(pdb.selectorLabels(t), jpod.Metadata.Labels) {
		t.Errorf("%s: the Service or the budget selects the migration pod", job.file)
	}
	checkEnv(t, bin, job.file, jc, cm, secret)
	checkSecurity(t, job.file, jpod, jc)

	// The Kustomization lists existing files, not the example Secret; the
	// migration Job is in it, so that a release migrates with its own
	// image: one images entry sets the Deployment's and the Job's.
	for _, r := range kust.Resources {
		if _, err := os.Stat(r); err != nil {
			t.Errorf("%s: %v", kust.file, err)
		}
		if r == secret.file {
			t.Errorf("%s: lists %s", kust.file, r)
		}
	}
	for _, o := range []*object{cm, dep, svc, pdb, hpa, job} {
		if !slices.Contains(kust.Resources, o.file) {
			t.Errorf("%s: does not list %s", kust.file, o.file)
		}
	}
	imageName, _, _ := strings.Cut(c.Image, ":")
	if len(kust.Images) != 1 || kust.Images[0].Name != imageName || kust.Images[0].NewTag == "" {
		t.Errorf("%s: images %+v, want one entry for %s with newTag (the release)", kust.file, kust.Images, imageName)
	}
}

// checkEnv checks a container's variables and where they come from.
func checkEnv(t *testing.T, bin binary, file string, c container, cm, secret *object) {
	t.Helper()
	for _, e := range c.Env {
		bin.checkEnvName(t, file, e.Name)
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			if _, ok := secret.StringData[ref.Key]; ref.Name != secret.Metadata.Name || !ok {
				t.Errorf("%s: %s refers to %s/%s, which %s does not have", file, e.Name, ref.Name, ref.Key, secret.file)
			}
		}
		switch e.Name {
		case "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DB_PASSWORD", "REDIS_PASSWORD", "SERVICE_API_KEYS":
			if e.Value != nil {
				t.Errorf("%s: %s is inlined; reference the Secret", file, e.Name)
			}
		}
	}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef != nil && ef.ConfigMapRef.Name != cm.Metadata.Name {
			t.Errorf("%s: envFrom ConfigMap %s, have %s", file, ef.ConfigMapRef.Name, cm.Metadata.Name)
		}
		if ef.SecretRef != nil && ef.SecretRef.Name != secret.Metadata.Name {
			t.Errorf("%s: envFrom Secret %s, have %s", file, ef.SecretRef.Name, secret.Metadata.Name)
		}
	}
}

// checkSecurity checks the pod runs as a non-root user with nothing extra.
func checkSecurity(t *testing.T, file string, pod podTemplate, c container) {
	t.Helper()
	nonRoot := pod.Spec.SecurityContext.RunAsNonRoot
	if c.SecurityContext.RunAsNonRoot != nil {
		nonRoot = c.SecurityContext.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: runAsNonRoot is not set", file)
	}
	if u := pod.Spec.SecurityContext.RunAsUser; u != nil && *u == 0 {
		t.Errorf("%s: runAsUser 0", file)
	}
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: the root filesystem is writable", file)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: privilege escalation is allowed", file)
	}
	if !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: capabilities are not all dropped", file)
	}
}

// ---- docker-compose.yml ----

type composeService struct {
	Image       string         `yaml:"image"`
	Build       any            `yaml:"build"`
	Command     any            `yaml:"command"`
	Environment any            `yaml:"environment"`
	Ports       []string       `yaml:"ports"`
	Healthcheck map[string]any `yaml:"healthcheck"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

// env returns a service's environment in either of its forms.
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch e := s.Environment.(type) {
	case nil:
	case map[string]any:
		for k, v := range e {
			out[k] = toString(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(toString(kv), "=")
			out[k] = v
		}
	default:
		t.Fatalf("docker-compose.yml: environment of type %T", e)
	}
	return out
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

func commandOf(c any) []string {
	switch c := c.(type) {
	case string:
		return strings.Fields(c)
	case []any:
		var out []string
		for _, a := range c {
			out = append(out, toString(a))
		}
		return out
	}
	return nil
}

func TestCompose(t *testing.T) {
	bin := readBinary(t)
	var compose struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "../docker-compose.yml")), &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	svc := func(name string) composeService {
		t.Helper()
		s, ok := compose.Services[name]
		if !ok {
			t.Fatalf("docker-compose.yml: no %s service", name)
		}
		return s
	}
	pg, redis, migrate, app := svc("postgres"), svc("redis"), svc("migrate"), svc("usersvc")
	if !strings.HasPrefix(pg.Image, "postgres:16") || pg.Healthcheck == nil {
		t.Errorf("postgres: image %q, want postgres:16 with a healthcheck", pg.Image)
	}
	if !strings.HasPrefix(redis.Image, "redis:7") {
		t.Errorf("redis: image %q, want redis:7", redis.Image)
	}
	if !slices.Equal(commandOf(migrate.Command), []string{"migrate"}) {
		t.Errorf("migrate: command %v, want [migrate]", commandOf(migrate.Command))
	}
	if migrate.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("migrate: does not wait for a healthy postgres")
	}
	if app.DependsOn["migrate"].Condition != "service_completed_successfully" {
		t.Errorf("usersvc: does not wait for the migrations")
	}
	if cmd := commandOf(app.Command); cmd != nil && !slices.Equal(cmd, []string{"serve"}) {
		t.Errorf("usersvc: command %v", cmd)
	}
	if migrate.Image != app.Image || migrate.Build == nil || app.Build == nil {
		t.Errorf("migrate and usersvc: want the same image, built here")
	}

	for name, s := range map[string]composeService{"migrate": migrate, "usersvc": app} {
		env := s.env(t)
		for k := range env {
			bin.checkEnvName(t, "docker-compose.yml: "+name, k)
		}
		if u := env["DATABASE_URL"]; !strings.HasPrefix(u, "postgres://") || !strings.Contains(u, "@postgres:5432/") {
			t.Errorf("%s: DATABASE_URL %q does not name the postgres service", name, u)
		}
		if !strings.HasPrefix(env["SECRET_KEY"], "${SECRET_KEY:?") {
			t.Errorf("%s: SECRET_KEY %q, want it required from the environment (${SECRET_KEY:?…})", name, env["SECRET_KEY"])
		}
		if p, ok := env["PORT"]; ok && p != strconv.Itoa(bin.port) {
			t.Errorf("%s: PORT %s, want %d", name, p, bin.port)
		}
	}
	env := app.env(t)
	if !strings.HasPrefix(env["REDIS_URL"], "redis://redis:6379") {
		t.Errorf("usersvc: REDIS_URL %q does not name the redis service", env["REDIS_URL"])
	}
	if len(app.Ports) == 0 {
		t.Errorf("usersvc: no published port")
	}
	for _, p := range app.Ports {
		if i := strings.LastIndex(p, ":"); p[i+1:] != strconv.Itoa(bin.port) {
			t.Errorf("usersvc: port %q does not publish container port %d", p, bin.port)
		}
	}
	shutdown, drain := 25*time.Second, time.Duration(0)
	if v, ok := env["SHUTDOWN_TIMEOUT"]; ok {
		shutdown = duration(t, "usersvc: SHUTDOWN_TIMEOUT", v)
	}
	if v, ok := env["DRAIN_DELAY"]; ok {
		drain = duration(t, "usersvc: DRAIN_DELAY", v)
	}
	if grace := duration(t, "usersvc: stop_grace_period", app.StopGracePeriod); grace <= shutdown+drain {
		t.Errorf("usersvc: stop_grace_period %v, want more than DRAIN_DELAY + SHUTDOWN_TIMEOUT (%v)", grace, shutdown+drain)
	}
}

// ---- Dockerfile ----

type instruction struct {
	cmd  string // upper case
	args string
}

// parseDockerfile returns the instructions of each stage, continuation
// lines joined and comments dropped.
func parseDockerfile(t *testing.T, text string) [][]instruction {
	t.Helper()
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %s before FROM", in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// execForm parses a JSON exec form such as ["/usersvc", "serve"].
func execForm(t *testing.T, what, args string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		t.Errorf("Dockerfile: %s %s is not the exec form (the image has no shell)", what, args)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	bin := readBinary(t)
	stages := parseDockerfile(t, readFile(t, "../Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a final one", len(stages))
	}
	build, versionArg := "", false
	for _, stage := range stages[:len(stages)-1] {
		for _, in := range stage {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build = in.args
			}
			if in.cmd == "ARG" && strings.HasPrefix(in.args, "VERSION") {
				versionArg = true
			}
		}
	}
	// The version is stamped from the VERSION build argument (the context
	// has no .git for Go to stamp it from).
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w `, "-X main.buildVersion=${VERSION}", "./cmd/usersvc"} {
		if !strings.Contains(build, want) {
			t.Errorf("Dockerfile: the go build step has no %s", want)
		}
	}
	if !versionArg {
		t.Errorf("Dockerfile: the build stage has no ARG VERSION")
	}
	if !strings.Contains(readFile(t, "../cmd/usersvc/version.go"), "var buildVersion string") {
		t.Errorf("cmd/usersvc/version.go: no buildVersion for -X main.buildVersion to set")
	}

	final := stages[len(stages)-1]
	base := strings.Fields(final[0].args)[0]
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("Dockerfile: final stage FROM %s, want a static image with no shell", base)
	}
	got := map[string][]string{}
	env := map[string]string{}
	binPath := ""
	for _, in := range final {
		got[in.cmd] = append(got[in.cmd], in.args)
		switch in.cmd {
		case "ENV":
			for kv := range strings.FieldsSeq(in.args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Errorf("Dockerfile: ENV %s: want NAME=value", in.args)
				}
				env[k] = v
			}
		case "COPY":
			if f := strings.Fields(in.args); strings.Contains(in.args, "usersvc ") {
				binPath = f[len(f)-1]
			}
		}
	}
	single := func(cmd string) string {
		t.Helper()
		if len(got[cmd]) != 1 {
			t.Fatalf("Dockerfile: final stage has %d %s, want 1", len(got[cmd]), cmd)
		}
		return got[cmd][0]
	}
	user, _, _ := strings.Cut(single("USER"), ":")
	if uid, err := strconv.Atoi(user); err != nil || uid == 0 {
		t.Errorf("Dockerfile: USER %s, want a numeric non-root user (Kubernetes can then verify runAsNonRoot)", user)
	}
	if single("EXPOSE") != strconv.Itoa(bin.port) {
		t.Errorf("Dockerfile: EXPOSE %s, want %d", single("EXPOSE"), bin.port)
	}
	for k, v := range env {
		bin.checkEnvName(t, "Dockerfile", k)
		if k == "PORT" && v != strconv.Itoa(bin.port) {
			t.Errorf("Dockerfile: PORT %s, want %d", v, bin.port)
		}
	}
	if env["DATA_DIR"] == "" || !slices.Contains(execForm(t, "VOLUME", single("VOLUME")), env["DATA_DIR"]) {
		t.Errorf("Dockerfile: DATA_DIR %q is not a VOLUME", env["DATA_DIR"])
	}
	entry := execForm(t, "ENTRYPOINT", single("ENTRYPOINT"))
	if len(entry) != 1 || entry[0] != binPath {
		t.Errorf("Dockerfile: ENTRYPOINT %v, want [%s] (where the binary is copied)", entry, binPath)
	}
	if cmd := execForm(t, "CMD", single("CMD")); !slices.Equal(cmd, []string{"serve"}) {
		t.Errorf("Dockerfile: CMD %v, want [serve]", cmd)
	}
	hc := single("HEALTHCHECK")
	_, hcCmd, ok := strings.Cut(hc, "CMD ")
	if !ok || !slices.Equal(execForm(t, "HEALTHCHECK", hcCmd), []string{binPath, "healthcheck"}) {
		t.Errorf("Dockerfile: HEALTHCHECK %s, want CMD [\"%s\", \"healthcheck\"]", hc, binPath)
	}

	// The Deployment runs the image as its USER.
	dep := one(t, readManifests(t), "Deployment")
	if u := dep.Spec.Template.Spec.SecurityContext.RunAsUser; u != nil && strconv.Itoa(*u) != user {
		t.Errorf("deployment runAsUser %d, Dockerfile USER %s", *u, user)
	}
}

// ---- monitoring/: the Grafana dashboard and the Prometheus rules ----

// descRecorder is a prometheus.Registerer that keeps the names of the
// metrics registered on it, as the binary's registry would hold them.
type descRecorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			// A histogram or summary is exported as these series.
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				d.names[m[1]+suffix] = true
			}
		}
	}
	return nil
}

func (d *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *descRecorder) Unregister(prometheus.Collector) bool { return false }

// exportedMetrics returns the names of the metrics the binary exports: what
// metrics.New and WatchPool register, as cmd/usersvc calls them.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	d := &descRecorder{names: map[string]bool{}}
	m := metrics.New(d, "test")
	if err := m.WatchPool(func() metrics.PoolStats { return metrics.PoolStats{} }); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"usersvc_http_requests_total", "usersvc_db_pool_in_use_connections", "usersvc_redis_breaker_open", "go_goroutines"} {
		if !d.names[name] {
			t.Fatalf("the recorded registry has no %s; update this test", name)
		}
	}
	return d.names
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^{}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression selects. Grafana's
// variables are replaced by values first.
func metricNames(expr string) []string {
	expr = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$job", ".*").Replace(expr)
	expr = promString.ReplaceAllString(expr, `""`)
	expr = promMatchers.ReplaceAllString(expr, " ")
	expr = promRange.ReplaceAllString(expr, " ")
	expr = promGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range promIdent.FindAllStringIndex(expr, -1) {
		name, rest := expr[loc[0]:loc[1]], strings.TrimLeft(expr[loc[1]:], " \t\n")
		if loc[0] > 0 && (expr[loc[0]-1] >= '0' && expr[loc[0]-1] <= '9' || expr[loc[0]-1] == '.') {
			continue // the unit of a number or duration (5m, 1e3)
		}
		if promKeywords[strings.ToLower(name)] || strings.HasPrefix(rest, "(") {
			continue // a keyword or a function
		}
		names = append(names, name)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (route) (rate(usersvc_http_requests_total{job=~"$job", route!~"GET /(health|metrics).*"}[$__rate_interval]))`: {"usersvc_http_requests_total"},
		`histogram_quantile(0.99, sum by (le) (rate(x_bucket{le="0.5"}[5m]))) > 14.4 * 0.001 and y:ratio_rate1h offset 1h`:    {"x_bucket", "y:ratio_rate1h"},
		`1 - a / on (instance) group_left(version) b`: {"a", "b"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string            `yaml:"record"`
			Alert  string            `yaml:"alert"`
			Expr   string            `yaml:"expr"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboardQueries returns the expr of every target of every panel, nested
// rows included, and of every query variable.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	var dash struct {
		UID        string            `json:"uid"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal([]byte(readFile(t, "monitoring/dashboard.json")), &dash); err != nil {
		t.Fatalf("monitoring/dashboard.json: %v", err)
	}
	if dash.UID == "" {
		t.Error("monitoring/dashboard.json: no uid")
	}
	out := map[string]string{}
	var walk func(raw []json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p struct {
				Title   string            `json:"title"`
				Panels  []json.RawMessage `json:"panels"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			}
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			for i, tg := range p.Targets {
				out[fmt.Sprintf("panel %q target %d", p.Title, i)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(map[string]any); ok && v.Type == "query" {
			if s, ok := q["query"].(string); ok {
				out["variable "+v.Name] = strings.NewReplacer("label_values(", "", ", job)", "").Replace(s)
			}
		}
	}
	return out
}

// TestMonitoringNamesExportedMetrics checks that every query of the
// dashboard and of the rules names a metric the binary exports, or a
// recording rule of alerts.yaml; and that the dashboard and the alerts cover
// what an operator needs.
func TestMonitoringNamesExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	var rules ruleFile
	if err := yaml.Unmarshal([]byte(readFile(t, "monitoring/alerts.yaml")), &rules); err != nil {
		t.Fatalf("monitoring/alerts.yaml: %v", err)
	}
	recorded, alerts := map[string]bool{}, map[string]bool{}
	queries := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
				queries["alerts.yaml: record "+r.Record] = r.Expr
			} else {
				alerts[r.Alert] = true
				queries["alerts.yaml: alert "+r.Alert] = r.Expr
				if r.Labels["severity"] == "" {
					t.Errorf("alerts.yaml: %s has no severity", r.Alert)
				}
			}
		}
	}
	dash := dashboardQueries(t)
	if len(dash) < 20 {
		t.Errorf("monitoring/dashboard.json: %d queries found; the walk over panels is broken", len(dash))
	}
	for k, v := range dash {
		queries["dashboard.json: "+k] = v
	}
	used := map[string]bool{}
	for where, expr := range queries {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, name := range names {
			used[name] = true
			if !exported[name] && !recorded[name] {
				t.Errorf("%s: %s is neither a metric the binary exports nor a recording rule", where, name)
			}
		}
	}

	for _, name := range []string{
		"usersvc_http_requests_total", "usersvc_http_request_duration_seconds_bucket",
		"usersvc_cache_hits_total", "usersvc_cache_misses_total", "usersvc_password_hash_duration_seconds_bucket",
		"usersvc_rate_limit_rejections_total", "usersvc_security_events_total", "usersvc_refresh_reuse_total",
		"usersvc_db_pool_in_use_connections", "usersvc_db_pool_wait_duration_seconds_total",
		"usersvc_redis_breaker_open", "usersvc_redis_call_duration_seconds_bucket", "usersvc_build_info",
	} {
		found := false
		for k, v := range dash {
			if slices.Contains(metricNames(v), name) && !strings.HasPrefix(k, "variable") {
				found = true
			}
		}
		if !found {
			t.Errorf("monitoring/dashboard.json: no panel shows %s", name)
		}
	}
	for _, a := range []string{"UsersvcAvailabilityBurnFast", "UsersvcAvailabilityBurnSlow", "UsersvcLatencyBurnFast",
		"UsersvcLatencyBurnSlow", "UsersvcLoginFailureSpike", "UsersvcRefreshReuseSpike", "UsersvcRedisDown"} {
		if !alerts[a] {
			t.Errorf("monitoring/alerts.yaml: no alert %s", a)
		}
	}
	// The metric names used in the rules' labels exist too: the security
	// event the login alert counts is one the service emits.
	if !strings.Contains(readFile(t, "../internal/account/service.go"), `EventLoginFailed   = "login_failed"`) {
		t.Error(`internal/account: the event "login_failed" that UsersvcLoginFailureSpike counts is gone`)
	}
}

// TestPromtool runs promtool over the rules and their tests, and over the
// dashboard's queries (as recording rules, so that promtool parses them).
// CI installs promtool; elsewhere the test is skipped without it.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("USERSVC_REQUIRE_INTEGRATION") != "" {
			t.Fatalf("promtool not found and USERSVC_REQUIRE_INTEGRATION is set: %v", err)
		}
		t.Skipf("promtool not found: %v", err)
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts.test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "monitoring"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	i := 0
	for where, expr := range dashboardQueries(t) {
		if strings.HasPrefix(where, "variable") {
			continue
		}
		expr = strings.NewReplacer("$__rate_interval", "5m", "$job", ".*").Replace(expr)
		q, _ := json.Marshal(expr)
		fmt.Fprintf(&b, "      - record: dashboard_query_%d\n        expr: %s\n", i, q)
		i++
	}
	f := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's queries do not parse: %v\n%s", err, out)
	}
}
