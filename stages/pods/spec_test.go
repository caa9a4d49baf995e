package pods

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/slipwayci/slipway/pipeline"
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
	if *pod.Spec.AutomountServiceAccountToken || *pod.Spec.EnableServiceLinks || pod.Spec.RestartPolicy != "Never" ||
		pod.Spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod spec = %+v", pod.Spec)
	}
	if sc := pod.Spec.Containers[0].SecurityContext; *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		slices.Contains(sc.Capabilities.Add, "NET_RAW") || slices.Contains(sc.Capabilities.Add, "SYS_CHROOT") || len(sc.Capabilities.Add) != 8 {
		t.Errorf("main container's security context = %+v", sc)
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.ImagePullPolicy != corev1.PullAlways {
			t.Errorf("container %s pulls %s, want Always", c.Name, c.ImagePullPolicy)
		}
	}
	if pod.Spec.ImagePullSecrets != nil {
		t.Errorf("pull secrets %v without one set", pod.Spec.ImagePullSecrets)
	}
	r.PullSecret = "engine-registry"
	if got := r.pod(run, name, spec).Spec.ImagePullSecrets; len(got) != 1 || got[0].Name != "engine-registry" {
		t.Errorf("pull secrets = %v", got)
	}
	r.PullSecret = ""
	if l := pod.Labels; l[LabelRun] != "42" || l[LabelRole] != "build" || l[LabelStage] != stageHash("Build image!") || l[LabelManagedBy] != "slipway" {
		t.Errorf("labels = %v", l)
	}
	init := pod.Spec.InitContainers[0]
	if init.Image != "reg/slipway:1" || !strings.Contains(strings.Join(init.Args, " "), "--sha "+strings.Repeat("c", 40)) ||
		init.SecurityContext.Capabilities.Drop[0] != "ALL" || *init.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("checkout container = %+v", init)
	}
	// With a fence, every Pod first waits for its NetworkPolicies, as
	// nobody and with no capability, before the checkout.
	r.Fence = "api-server"
	fenced := r.pod(run, name, spec)
	if names := []string{fenced.Spec.InitContainers[0].Name, fenced.Spec.InitContainers[1].Name}; names[0] != "fence" || names[1] != "checkout" ||
		strings.Join(fenced.Spec.InitContainers[0].Args, " ") != "fence --refused api-server" || *fenced.Spec.InitContainers[0].SecurityContext.RunAsUser != 65534 ||
		!slices.Equal(r.initContainers(spec), names) {
		t.Errorf("init containers with a fence = %v, %+v", names, fenced.Spec.InitContainers[0])
	}
	noCheckout := spec
	noCheckout.Checkout = nil
	if got := r.pod(run, name, noCheckout).Spec.InitContainers; len(got) != 1 || got[0].Name != "fence" {
		t.Errorf("a Pod without a checkout, fenced: init containers %+v", got)
	}
	r.Fence = ""
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

// Reap deletes the Pods and Secrets of ended runs only, a Secret left
// without its Pod too.
func TestReapDeletesThePodsOfEndedRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := fake.NewClientset()
	r := &Runner{Client: client, Namespace: "builds"}
	for _, id := range []int64{1, 2} {
		run := &stages.Run{ID: id, Stage: "build"}
		name := PodName(id, "build")
		must(t, client.Tracker().Add(r.pod(run, name, Spec{Role: "build", Image: "kaniko"})))
		must(t, client.Tracker().Add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "builds", Labels: labels(run, "build")}}))
	}
	must(t, client.Tracker().Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "not-ours", Namespace: "builds"}}))
	// The Secret of an attempt whose engine died before it made the Pod.
	orphan := &stages.Run{ID: 3, Stage: "test"}
	must(t, client.Tracker().Add(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: PodName(3, "test"), Namespace: "builds", Labels: labels(orphan, "run")}}))
	n, err := r.Reap(ctx, func(_ context.Context, id int64) (bool, error) { return id != 2, nil })
	if err != nil || n != 2 {
		t.Fatalf("Reap = %d, %v", n, err)
	}
	pods, _ := client.CoreV1().Pods("builds").List(ctx, metav1.ListOptions{})
	secrets, _ := client.CoreV1().Secrets("builds").List(ctx, metav1.ListOptions{})
	var left []string
	for _, p := range pods.Items {
		left = append(left, "pod/"+p.Name)
	}
	for _, s := range secrets.Items {
		left = append(left, "secret/"+s.Name)
	}
	if want := "pod/not-ours pod/" + PodName(2, "build") + " secret/" + PodName(2, "build"); strings.Join(left, " ") != want {
		t.Errorf("left %v, want %s", left, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A pipeline may name a service account only from the engine's
// allow-list: the Pod then runs as it (with its token when asked), and
// any other is refused before anything is created.
func TestServiceAccountsComeFromTheEnginesList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := fake.NewClientset()
	r := &Runner{Client: client, Namespace: "builds", ServiceAccount: "slipway-stage", ServiceAccounts: []string{"image-pusher"}}
	run := &stages.Run{ID: 7, Stage: "build"}
	var spec Spec
	if err := spec.Place(pipeline.PodSettings{ServiceAccount: "image-pusher", MountServiceAccountToken: true}); err != nil {
		t.Fatal(err)
	}
	if pod := r.pod(run, "p", spec); pod.Spec.ServiceAccountName != "image-pusher" || !*pod.Spec.AutomountServiceAccountToken {
		t.Errorf("allowed account: %s, token %v", pod.Spec.ServiceAccountName, *pod.Spec.AutomountServiceAccountToken)
	}
	if pod := r.pod(run, "p", Spec{}); pod.Spec.ServiceAccountName != "slipway-stage" || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("default account: %s, token %v", pod.Spec.ServiceAccountName, *pod.Spec.AutomountServiceAccountToken)
	}
	_, err := r.Run(ctx, run, Spec{Role: "build", Image: "kaniko", ServiceAccount: "cluster-admin"})
	if err == nil || !strings.Contains(err.Error(), `service account "cluster-admin" is not one this engine lets stages use (SLIPWAY_POD_SERVICE_ACCOUNTS: image-pusher)`) {
		t.Errorf("an account off the list: %v", err)
	}
	if len(client.Actions()) != 0 {
		t.Errorf("the refused stage reached the API: %v", client.Actions())
	}
}
