package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayci/slipway/integration/demoapp"
	"github.com/slipwayci/slipway/integration/gitea"
	"github.com/slipwayci/slipway/integration/gitserver"
	"github.com/slipwayci/slipway/integration/incluster"
	"github.com/slipwayci/slipway/integration/loadgen"
	"github.com/slipwayci/slipway/integration/localenv"
	"github.com/slipwayci/slipway/server/view"
	"github.com/slipwayci/slipway/stages/argocd"
	"github.com/slipwayci/slipway/stages/relay"
)

// demoEnv is the running demo: the local environment, the demo service's
// repositories, Slipway deployed in the cluster by Argo CD with a local
// port forwarded to its Service, a notification receiver, steady load.
type demoEnv struct {
	env                 *localenv.Env
	slipway             *incluster.Slipway
	data, url, token    string
	bin                 string // the slipway binary: in Slipway's image, and the CLI here
	appRepo, configRepo string
	app                 *gitserver.WorkTree
	out                 io.Writer
	stops               []func() // in reverse order of start
}

const demoWebhookSecret = "demo-webhook-secret"

func startDemoEnv(ctx context.Context, data, listen, bin, source string, out io.Writer) (d *demoEnv, err error) {
	d = &demoEnv{data: data, out: out, bin: bin}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.env, err = localenv.Start(ctx, filepath.Join(data, "env"), localenv.Options{Mesh: true, ArgoCD: true, Gitea: true}); err != nil {
		return nil, err
	}
	d.stops = append(d.stops, d.env.Close)
	if err := d.repositories(ctx); err != nil {
		return nil, err
	}
	notify, err := d.notificationReceiver()
	if err != nil {
		return nil, err
	}
	if err := d.deploy(ctx, source, notify); err != nil {
		return nil, err
	}
	if err := d.forward(listen); err != nil {
		return nil, err
	}
	// Gitea sends the repository's pushes to Slipway's Service through the
	// forwarded port, signed.
	if _, err := d.env.Gitea.AddWebhook(ctx, "shop", "order-service", d.url+"/hooks/gitea", demoWebhookSecret, "push"); err != nil {
		return nil, err
	}
	d.steadyLoad()
	return d, nil
}

// repositories creates the service's repository on Gitea and the config
// repository, whose order-service runs v1 (stable and canary slot, all
// traffic on stable), synced by Argo CD.
func (d *demoEnv) repositories(ctx context.Context) error {
	g := d.env.Gitea
	if err := g.CreateOrg(ctx, "shop"); err != nil {
		return err
	}
	var err error
	if d.appRepo, err = g.CreateRepo(ctx, "shop", "order-service"); err != nil {
		return err
	}
	if d.app, err = gitserver.Clone(g.CloneURLWithToken(d.appRepo), filepath.Join(d.data, "order-service")); err != nil {
		return err
	}
	if d.configRepo, err = d.env.Git.CreateRepo("gitops"); err != nil {
		return err
	}
	config, err := gitserver.Clone(d.configRepo, filepath.Join(d.data, "gitops"))
	if err != nil {
		return err
	}
	v1, err := demoapp.Push(ctx, d.env.Registry.Addr, "order-service:v1", demoapp.Behaviour("v1", 0, 0))
	if err != nil {
		return fmt.Errorf("pushing order-service v1: %w", err)
	}
	rev, err := config.Commit("main", "order-service v1", demoapp.Manifests(v1, v1, 100, 0))
	if err == nil {
		err = config.Push("main")
	}
	if err != nil {
		return err
	}
	if err := d.env.ArgoCD.CreateApp(ctx, d.data, "order-service", d.configRepo, "apps/order-service", "shop"); err != nil {
		return err
	}
	client, err := argocd.Dial(d.env.ArgoCD.Server, d.env.ArgoCD.Token, true, false)
	if err != nil {
		return err
	}
	defer client.Close()
	if _, err := client.SyncAndWait(ctx, "order-service", rev, 3*time.Minute, func(string, ...any) {}); err != nil {
		return fmt.Errorf("syncing order-service v1: %w", err)
	}
	fmt.Fprintf(d.out, "order-service v1 runs on the local cluster (Argo CD synced %.7s of %s)\n", rev, d.configRepo)
	return nil
}

// notificationReceiver prints the release notifications Slipway sends;
// it returns the receiver's URL as Pods reach it.
func (d *demoEnv) notificationReceiver() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Event, Text string }
		json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ev)
		fmt.Fprintf(d.out, "  >> notification (%s): %s\n", ev.Event, ev.Text)
	})}
	go srv.Serve(ln)
	d.stops = append(d.stops, func() { srv.Close() })
	at, err := d.env.Node.Expose(ln.Addr().String())
	return "http://" + at + "/releases", err
}

// The engine's config: the service's repository as Gitea names it in its
// webhooks, its commit statuses sent to Gitea as Pods reach it.
const engineConfig = `apiVersion: slipway.dev/v1
kind: EngineConfig
listen: 0.0.0.0:8080
data: /var/lib/slipway
repositories:
  - {name: order-service, url: %q, forge: gitea, webhookSecret: {env: WEBHOOK_SECRET}, pipelines: [{file: order-service.yaml}],
     status: {api: %q, token: {env: GITEA_TOKEN}}}
tokens:
  - {name: demo, role: admin, secret: {env: SLIPWAY_ADMIN_TOKEN}}
`

// deploy deploys Slipway into the cluster (package incluster): its image
// built by Kaniko from source's Dockerfile with the slipway binary, and
// synced by Argo CD from deploy/ with the demo's engine config and
// pipeline, whose addresses are the ones Pods reach.
func (d *demoEnv) deploy(ctx context.Context, source, notify string) error {
	token := make([]byte, 12)
	rand.Read(token)
	d.token = "slw_demo_" + hex.EncodeToString(token)
	pod := map[string]string{}
	for name, addr := range map[string]string{"argocd": d.env.ArgoCD.Server, "prometheus": strings.TrimPrefix(d.env.Prometheus.URL, "http://"),
		"gitea": strings.TrimPrefix(d.env.Gitea.URL, "http://")} {
		at, err := d.env.Node.Expose(addr)
		if err != nil {
			return err
		}
		pod[name] = at
	}
	giteaForPods := func(url string) string { return strings.Replace(url, d.env.Gitea.URL, "http://"+pod["gitea"], 1) }
	pipe := strings.NewReplacer("__REPO__", giteaForPods(d.appRepo), "__REGISTRY__", d.env.PodRegistry, "__BASE__", d.env.PodBase,
		"__CONFIG__", strings.Replace(d.configRepo, d.env.Git.URL, d.env.PodGit, 1), "__ARGOCD__", pod["argocd"],
		"__PROMETHEUS__", "http://"+pod["prometheus"], "__NOTIFY__", notify).Replace(demoPipeline)
	var err error
	d.slipway, err = incluster.Deploy(ctx, d.env, filepath.Join(d.data, "in-cluster"), incluster.Options{
		Source: source, Slipway: d.bin, AdminToken: d.token,
		Reach:  []string{pod["gitea"], strings.TrimPrefix(d.env.PodGit, "http://"), d.env.PodRegistry},
		Engine: fmt.Sprintf(engineConfig, d.appRepo, "http://"+pod["gitea"]+"/api/v1"),
		Files:  map[string]string{"order-service.yaml": pipe},
		Env:    map[string]string{"WEBHOOK_SECRET": demoWebhookSecret, "GITEA_TOKEN": d.env.Gitea.Token, "ARGOCD_TOKEN": d.env.ArgoCD.Token},
		Log:    func(format string, args ...any) { fmt.Fprintf(d.out, format+"\n", args...) },
	})
	return err
}

// forward relays listen (a port of this machine's loopback) to Slipway's
// Service, as kubectl port-forward would: the UI, the API and Gitea's
// webhooks go through it.
func (d *demoEnv) forward(listen string) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil && strings.Contains(err.Error(), "address already in use") && listen != "127.0.0.1:0" {
		fmt.Fprintf(d.out, "%s is taken; Slipway is forwarded from a port of this machine's choosing instead\n", listen)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("listening at %s for Slipway's Service: %w", listen, err)
	}
	d.stops = append(d.stops, relay.Start(ln, strings.TrimPrefix(d.slipway.URL, "http://")+":80"))
	d.url = "http://" + ln.Addr().String()
	return nil
}

// steadyLoad sends 20 requests a second through the mesh until close.
func (d *demoEnv) steadyLoad() {
	d.stops = append(d.stops, loadgen.Steady("http://"+d.env.Proxy.Addr+"/", "order-service.shop", 20))
}

// push commits a change to the service's repository and pushes it to
// Gitea; it returns the commit.
func (d *demoEnv) push(ctx context.Context, c demoChange) (string, error) {
	bin, err := demoapp.Build(ctx, c.vulnerable)
	if err != nil {
		return "", err
	}
	sha, err := d.app.Commit("main", c.title, map[string]string{"Dockerfile": demoapp.Dockerfile(d.env.PodBase), "app": string(bin),
		"behaviour.json": c.behaviour})
	if err == nil {
		err = d.app.Push("main")
	}
	return sha, err
}

// release pushes a change to Gitea, finds the run Gitea's webhook
// started, follows it and returns how it ended.
func (d *demoEnv) release(ctx context.Context, c demoChange) (string, error) {
	sha, err := d.push(ctx, c)
	if err != nil {
		return "", err
	}
	id, err := d.runOf(ctx, sha)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(d.out, "pushed %.7s to Gitea; its webhook started run %d\n", sha, id)
	// Follow the run the way a developer would, with the CLI.
	logs := exec.CommandContext(ctx, d.bin, "logs", "-f", fmt.Sprint(id))
	logs.Env = append(os.Environ(), "SLIPWAY_SERVER="+d.url, "SLIPWAY_TOKEN="+d.token)
	logs.Stdout, logs.Stderr = d.out, d.out
	if err := logs.Run(); err != nil {
		return "", fmt.Errorf("following run %d with slipway logs -f: %w", id, err)
	}
	var run view.RunView
	if err := d.get(ctx, fmt.Sprintf("/api/v1/runs/%d", id), &run); err != nil {
		return "", err
	}
	d.showStatus(ctx, sha, run.Status)
	return run.Status, nil
}

// runOf waits (at most a minute) for the run Gitea's webhook starts for
// commit sha.
func (d *demoEnv) runOf(ctx context.Context, sha string) (int64, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var list struct{ Runs []view.RunView }
		if err := d.get(ctx, "/api/v1/runs?limit=10", &list); err != nil {
			return 0, err
		}
		for _, r := range list.Runs {
			if r.Trigger.SHA == sha {
				return r.ID, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("no run started for %.7s within a minute of its push: is Gitea's webhook reaching %s?", sha, d.url)
}

// showStatus prints what Gitea shows on the commit once the run's final
// status has reached it (bounded: the report is sent in the background).
func (d *demoEnv) showStatus(ctx context.Context, sha, runStatus string) {
	want := map[string]string{"succeeded": "success", "failed": "failure"}[runStatus]
	var last []gitea.Status
	for range 100 {
		last, _ = d.env.Gitea.Statuses(ctx, "shop", "order-service", sha)
		if len(last) > 0 && last[0].State == want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(last) == 0 {
		fmt.Fprintf(d.out, "Gitea shows no status on %.7s yet\n", sha)
		return
	}
	fmt.Fprintf(d.out, "Gitea shows on %.7s: %s %s — %s\n", sha, last[0].Context, last[0].State, last[0].Description)
}

// lastRollback reads the newest rollback, with its measurements.
func (d *demoEnv) lastRollback(ctx context.Context) (view.RollbackView, error) {
	var list []view.RollbackView
	var v view.RollbackView
	if err := d.get(ctx, "/api/v1/rollbacks?limit=1", &list); err != nil {
		return v, err
	}
	if len(list) == 0 {
		return v, fmt.Errorf("the engine recorded no rollback")
	}
	err := d.get(ctx, fmt.Sprintf("/api/v1/rollbacks/%d", list[0].ID), &v)
	return v, err
}

// get reads one JSON answer of the demo's engine, with the demo's token.
func (d *demoEnv) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking the engine for %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("asking the engine for %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("reading the engine's answer to %s: %w", path, err)
	}
	return nil
}

func (d *demoEnv) close() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
}
