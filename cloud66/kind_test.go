package cloud66

import (
	"errors"
	"testing"
)

func TestStackKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		framework, backend, language string
		want                         StackKind
		onKubernetes                 bool
	}{
		{"rails", "", "ruby", KindRails, false},
		{"Rails", "", "ruby", KindRails, false},
		{"rack", "", "ruby", KindRack, false},
		{"sinatra", "", "ruby", KindRack, false},
		{"Padrino", "", "ruby", KindRack, false},
		{"docker", "", "docker", KindDocker, false},          // Maestro v1
		{"docker", "kubernetes", "docker", KindDocker, true}, // Maestro v2
		{" DOCKER ", "Kubes", "", KindDocker, true},          // odd case and spacing
		{"maestro", "", "", KindDocker, false},
		{"nodejs", "kubernetes", "node", KindKubernetes, true},
		{"kubernetes", "", "", KindKubernetes, true},
		{"skycap", "k8s", "", KindKubernetes, true},
		{"nodejs", "", "node", KindOther, false},
		{"skycap", "", "", KindOther, false},
		{"", "", "ruby", KindOther, false},
		{"", "", "", KindOther, false},
	}
	for _, tt := range tests {
		s := Stack{Framework: tt.framework, Backend: tt.backend, Language: tt.language}
		if got := s.Kind(); got != tt.want {
			t.Errorf("Kind(framework %q, backend %q) = %v, want %v", tt.framework, tt.backend, got, tt.want)
		}
		if got := s.OnKubernetes(); got != tt.onKubernetes {
			t.Errorf("OnKubernetes(framework %q, backend %q) = %v", tt.framework, tt.backend, got)
		}
	}
	for k, want := range map[StackKind]string{
		KindDocker: "a Docker stack", KindKubernetes: "a Kubernetes stack", KindRails: "a Rails stack",
		KindRack: "a Rack stack", KindOther: "a stack of another kind", StackKind(42): "a stack of another kind",
	} {
		if got := k.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", k, got, want)
		}
	}
}

// TestCheckRedeploy is the table of Cloud 66's CLI rules (reference §5.1).
func TestCheckRedeploy(t *testing.T) {
	t.Parallel()
	var (
		rails   = Stack{Framework: "rails"}
		rack    = Stack{Framework: "rack"}
		maestro = Stack{Framework: "docker"}
		onKube  = Stack{Framework: "docker", Backend: "kubernetes"}
		kube    = Stack{Framework: "nodejs", Backend: "kubernetes"}
		node    = Stack{Framework: "nodejs"}
	)
	services := RedeployRequest{Services: []string{"web:1.4.2"}}
	ref := RedeployRequest{GitRef: "v2.1"}
	rolling := RedeployRequest{DeployStrategy: "rolling"}
	fast := RedeployRequest{DeployStrategy: "Fast"}
	tests := []struct {
		name    string
		stack   Stack
		req     RedeployRequest
		wantErr string // "" = allowed
	}{
		{"nothing on anything", node, RedeployRequest{}, ""},
		{"profile and serial anywhere", node, RedeployRequest{DeploymentProfile: "p", DeployStrategy: "serial"}, ""},
		{"parallel on Docker", maestro, RedeployRequest{DeployStrategy: "parallel"}, ""},
		{"services on Docker", maestro, services, ""},
		{"services on Docker on Kubernetes", onKube, services, ""},
		{"services on Rails", rails, services, "cloud66: services applies only to Docker stacks, and this is a Rails stack"},
		{"services on Kubernetes", kube, services, "cloud66: services applies only to Docker stacks, and this is a Kubernetes stack"},
		{"ref on Rails", rails, ref, ""},
		{"ref on Node", node, ref, ""},
		{"ref on Docker", onKube, ref, "cloud66: git_ref applies only to stacks that are not Docker stacks, and this is a Docker stack"},
		{"rolling on Rails", rails, rolling, ""},
		{"rolling on Rack", rack, rolling, ""},
		{"rolling on Docker", maestro, rolling, "cloud66: deploy_strategy rolling applies only to Rails and Rack stacks, and this is a Docker stack"},
		{"rolling on Node", node, rolling, "cloud66: deploy_strategy rolling applies only to Rails and Rack stacks, and this is a stack of another kind"},
		{"fast on Kubernetes", kube, fast, ""},
		{"fast on Docker on Kubernetes", onKube, fast, ""},
		{"fast on Maestro v1", maestro, fast, "cloud66: deploy_strategy fast applies only to stacks on Kubernetes, and this is a Docker stack"},
		{"fast on Rails", rails, fast, "cloud66: deploy_strategy fast applies only to stacks on Kubernetes, and this is a Rails stack"},
		{"the help's old example", onKube, RedeployRequest{Services: []string{"web:1.4.2"}, DeployStrategy: "rolling"},
			"cloud66: deploy_strategy rolling applies only to Rails and Rack stacks, and this is a Docker stack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.stack.CheckRedeploy(tt.req)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var oe *DeployOptionError
			if !errors.As(err, &oe) || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if oe.Kind != tt.stack.Kind() {
				t.Errorf("Kind = %v", oe.Kind)
			}
		})
	}
}
