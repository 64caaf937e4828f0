package main

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The high-availability examples say what docs/high-availability.md says:
// two replicas on one PostgreSQL, each with its own name, the key from a
// secret, and a disruption budget that keeps one up.
func TestHighAvailabilityExamples(t *testing.T) {
	t.Parallel()
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			EnvFile     string            `yaml:"env_file"`
		} `yaml:"services"`
	}
	raw, err := os.ReadFile("../../contrib/ha/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	replicas := 0
	names := map[string]bool{}
	for name, svc := range compose.Services {
		if !strings.HasPrefix(name, "c66bot") {
			continue
		}
		replicas++
		if !strings.HasPrefix(svc.Environment["C66BOT_DATABASE_URL"], "postgres://") || svc.EnvFile != "c66bot.env" {
			t.Errorf("%s: database %q, env file %q", name, svc.Environment["C66BOT_DATABASE_URL"], svc.EnvFile)
		}
		names[svc.Environment["C66BOT_REPLICA"]] = true
	}
	if _, ok := compose.Services["postgres"]; replicas != 2 || len(names) != 2 || !ok {
		t.Errorf("compose has %d replicas named %v and postgres %v; want 2 named apart, and postgres", replicas, names, ok)
	}

	raw, err = os.ReadFile("../../contrib/kubernetes/c66bot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		kinds[doc["kind"].(string)] = doc
	}
	dep := kinds["Deployment"]
	spec, _ := dep["spec"].(map[string]any)
	if spec["replicas"] != 2 {
		t.Errorf("Deployment replicas %v, want 2", spec["replicas"])
	}
	pdb, _ := kinds["PodDisruptionBudget"]["spec"].(map[string]any)
	if pdb["minAvailable"] != 1 {
		t.Errorf("PodDisruptionBudget %v, want minAvailable 1", pdb)
	}
	secret, _ := kinds["Secret"]["stringData"].(map[string]any)
	for _, k := range []string{"C66BOT_SECRET_KEY", "C66BOT_DATABASE_URL", "SLACK_APP_TOKEN"} {
		if v, ok := secret[k]; !ok || v != "" {
			t.Errorf("Secret %s = %v, want an empty placeholder", k, v)
		}
	}
	if !strings.Contains(string(raw), "secretRef: {name: c66bot}") || !strings.Contains(string(raw), "path: /readyz") {
		t.Error("the Deployment does not take its settings from the Secret, or has no readiness probe on /readyz")
	}
}
