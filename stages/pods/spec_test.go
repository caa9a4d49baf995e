package pods

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/stages"
)

func TestPodSpecHoldsNoSecretAndNoToken(t *testing.T) {
	t.Parallel()
	r := &Runner{Namespace: "builds", HelperImage: "reg/slipway:1"}
	run := &stages.Run{ID: 42, Stage: "Build image!"}
	spec := Spec{
		Role: "build", Image: "reg/kaniko:1", Args: []string{"--context=dir:///workspace/src"},
		Env:      map[string]string{"PLAIN": "visible"},
		Secrets:  map[string]string{"API_KEY": "s3cret-env"},
		Files:    map[string][]byte{"/kaniko/.docker/config.json": []byte("s3cret-file")},
		Checkout: &Checkout{URL: "https://git.example.com/shop.git", Ref: "refs/heads/main", SHA: strings.Repeat("c", 40), Username: "bot", Token: "s3cret-token"},
	}
	name := PodName(run.ID, run.Stage)
	if !strings.HasPrefix(name, "slipway-42-build-image-") || len(name) > 63 || name != PodName(42, "Build image!") || name == PodName(42, "Build image") {
		t.Errorf("pod name %q: not a stable DNS label unique to the stage", name)
	}
	pod := r.pod(run, name, spec)
	raw, _ := json.Marshal(pod)
	for _, secret := range []string{"s3cret-env", "s3cret-file", "s3cret-token", "bot"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the pod spec holds %q:\n%s", secret, raw)
		}
	}
	if *pod.Spec.AutomountServiceAccountToken || *pod.Spec.EnableServiceLinks || pod.Spec.RestartPolicy != "Never" {
		t.Errorf("pod spec = %+v", pod.Spec)
	}
	if l := pod.Labels; l[LabelRun] != "42" || l[LabelRole] != "build" || l[LabelStage] != stageHash("Build image!") || l[LabelManagedBy] != "slipway" {
		t.Errorf("labels = %v", l)
	}
	init := pod.Spec.InitContainers[0]
	if init.Image != "reg/slipway:1" || !strings.Contains(strings.Join(init.Args, " "), "--sha "+strings.Repeat("c", 40)) ||
		init.SecurityContext.Capabilities.Drop[0] != "ALL" || *init.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("checkout container = %+v", init)
	}
	main := pod.Spec.Containers[0]
	if main.WorkingDir != "/workspace/src" || main.Env[0].Value != "visible" || main.Env[1].ValueFrom.SecretKeyRef.Key != "env-API_KEY" ||
		main.VolumeMounts[1].MountPath != "/kaniko/.docker/config.json" || main.VolumeMounts[1].SubPath != "file-0" {
		t.Errorf("main container = %+v", main)
	}
	data := secretData(spec)
	if string(data["env-API_KEY"]) != "s3cret-env" || string(data["file-0"]) != "s3cret-file" || string(data["git-token"]) != "s3cret-token" {
		t.Errorf("secret data = %v", data)
	}
	spec.MountServiceAccount = true
	if pod := r.pod(run, name, spec); !*pod.Spec.AutomountServiceAccountToken {
		t.Error("a spec asking for the token did not get it")
	}
}

func TestCheckoutComesFromTheCloneStage(t *testing.T) {
	t.Parallel()
	src := stages.Source{Repo: "https://git.example.com/shop.git", Ref: "refs/heads/main", SHA: strings.Repeat("d", 40), Username: "bot", TokenSecret: "GIT_TOKEN"}
	run := &stages.Run{Secrets: map[string]string{"GIT_TOKEN": "t0ken"}, Outputs: map[string]map[string]string{"clone": src.Outputs(), "build": {"ref": "x@sha256:1"}}}
	c, err := CheckoutOf(run)
	if err != nil || c.URL != src.Repo || c.SHA != src.SHA || c.Username != "bot" || c.Token != "t0ken" {
		t.Errorf("CheckoutOf = %+v, %v", c, err)
	}
	run.Outputs = map[string]map[string]string{}
	if _, err := CheckoutOf(run); err == nil || !strings.Contains(err.Error(), "clone stage") {
		t.Errorf("no clone stage: %v", err)
	}
}
