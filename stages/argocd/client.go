// Package argocd is Slipway's use of the Argo CD API (through Argo CD's
// own gRPC client): sync exactly one revision of an Application, wait
// until Argo CD reports it Synced and Healthy, and — when it does not get
// there — read the resource tree and the failing Pods and say why, in
// words an on-call engineer can act on. Stage kinds that sync (deploy,
// canary) share it.
package argocd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient"
	"github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slipwayci/slipway/stages/retry"
)

// Client talks to one Argo CD API server.
type Client struct {
	apps   application.ApplicationServiceClient
	closer io.Closer
	token  string
}

// Dial connects to server ("host:port") with an API token. plainText is
// for servers run with --insecure; insecure skips TLS verification. The
// client's config path is a file that does not exist in a directory of its
// own — never in a checkout, where a pushed file could configure it.
func Dial(server, token string, plainText, insecure bool) (*Client, error) {
	configDir, err := os.MkdirTemp("", "slipway-argocd-")
	if err != nil {
		return nil, fmt.Errorf("making the Argo CD client's config directory: %w", err)
	}
	defer os.RemoveAll(configDir) // read, if at all, while the client is made
	c, err := apiclient.NewClient(&apiclient.ClientOptions{ServerAddr: server, AuthToken: token, PlainText: plainText,
		Insecure: insecure, ConfigPath: filepath.Join(configDir, "none")})
	if err != nil {
		return nil, fmt.Errorf("Argo CD is unreachable at %s: %w", server, Redact(err, token))
	}
	closer, apps, err := c.NewApplicationClient()
	if err != nil {
		return nil, fmt.Errorf("Argo CD is unreachable at %s: %w", server, Redact(err, token))
	}
	return &Client{apps: apps, closer: closer, token: token}, nil
}

// Check makes sure Argo CD answers, accepts the token and has app —
// before anything is committed that Argo CD could not then sync.
func (c *Client) Check(ctx context.Context, app string) error {
	_, err := c.apps.Get(ctx, &application.ApplicationQuery{Name: &app})
	if err != nil {
		return fmt.Errorf("checking application %s in Argo CD: %s", app, explainRPC(Redact(err, c.token)))
	}
	return nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.closer.Close() }

// Result is how a sync ended.
type Result struct {
	Revision string // the revision Argo CD reports synced
	Health   string
	Took     time.Duration
}

// ErrUnhealthy is wrapped by SyncAndWait when the app synced but did not
// become Healthy in time (or degraded); the error text explains why.
var ErrUnhealthy = errors.New("the application did not become healthy")

// SyncAndWait syncs app at revision and waits (at most timeout) until Argo
// CD reports that revision Synced and Healthy. An operation already in
// progress is waited for, then the sync is retried. If ctx is cancelled,
// the operation this call started is terminated.
func (c *Client) SyncAndWait(ctx context.Context, app, revision string, timeout time.Duration, log func(string, ...any)) (Result, error) {
	began := time.Now()
	deadline := began.Add(timeout)
	if err := c.startSync(ctx, app, revision, deadline, log); err != nil {
		return Result{}, err
	}
	for {
		a, err := c.apps.Get(ctx, &application.ApplicationQuery{Name: &app})
		switch {
		case ctx.Err() != nil:
			c.terminate(app, log)
			return Result{}, fmt.Errorf("sync of %s at %.7s interrupted: %w", app, revision, ctx.Err())
		case err != nil:
			return Result{}, fmt.Errorf("reading application %s from Argo CD: %w", app, Redact(err, c.token))
		}
		st := a.Status
		op := st.OperationState
		if op != nil && op.SyncResult != nil && op.SyncResult.Revision == revision {
			switch op.Phase {
			case "Failed", "Error":
				return Result{}, fmt.Errorf("Argo CD failed to sync %s at %.7s: %s%s", app, revision, op.Message, c.Diagnose(ctx, app))
			case "Succeeded":
				if st.Sync.Status == v1alpha1.SyncStatusCodeSynced && st.Sync.Revision == revision && st.Health.Status == "Healthy" {
					return Result{Revision: revision, Health: "Healthy", Took: time.Since(began)}, nil
				}
				if st.Health.Status == "Degraded" {
					return Result{}, fmt.Errorf("%w: %s is Degraded at %.7s: %s%s", ErrUnhealthy, app, revision, st.Health.Message, c.Diagnose(ctx, app))
				}
			}
		}
		if time.Now().After(deadline) {
			return Result{}, fmt.Errorf("%w: %s did not become Synced and Healthy at %.7s within %s (sync %s, health %s)%s",
				ErrUnhealthy, app, revision, timeout, st.Sync.Status, st.Health.Status, c.Diagnose(ctx, app))
		}
		if retry.Sleep(ctx, 200*time.Millisecond) != nil {
			c.terminate(app, log)
			return Result{}, fmt.Errorf("sync of %s at %.7s interrupted: %w", app, revision, ctx.Err())
		}
	}
}

// startSync asks for the sync, waiting out another operation in progress.
func (c *Client) startSync(ctx context.Context, app, revision string, deadline time.Time, log func(string, ...any)) error {
	prune := true
	for {
		_, err := c.apps.Sync(ctx, &application.ApplicationSyncRequest{Name: &app, Revision: &revision, Prune: &prune})
		if err == nil {
			log("Argo CD is syncing %s to %.7s", app, revision)
			return nil
		}
		err = Redact(err, c.token)
		if !strings.Contains(err.Error(), "another operation is already in progress") {
			return fmt.Errorf("asking Argo CD to sync %s at %.7s: %s", app, revision, explainRPC(err))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("asking Argo CD to sync %s: another operation stayed in progress past the deadline", app)
		}
		log("another Argo CD operation on %s is in progress; waiting for it", app)
		if retry.Sleep(ctx, time.Second) != nil {
			return ctx.Err()
		}
	}
}

// terminate stops the operation this client started, on a context of its
// own. Right after a Sync call Argo CD may not show the operation yet
// ("No operation is in progress"): that answer is retried for a while.
func (c *Client) terminate(app string, log func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, err := c.apps.TerminateOperation(ctx, &application.OperationTerminateRequest{Name: &app})
		if err == nil {
			log("terminated the Argo CD operation on %s", app)
			return
		}
		if !strings.Contains(err.Error(), "No operation is in progress") || retry.Sleep(ctx, 250*time.Millisecond) != nil {
			log("could not terminate the Argo CD operation on %s: %v", app, Redact(err, c.token))
			return
		}
	}
}

// explainRPC turns Argo CD's gRPC errors into a sentence, by their status
// code (err has already been redacted).
func explainRPC(err error) string {
	msg := err.Error()
	switch status.Code(err) {
	case codes.Unauthenticated:
		return "Argo CD refused the token (Unauthenticated): check the deploy stage's argocd.token secret — " + msg
	case codes.PermissionDenied:
		return "the token is not allowed to sync this application (check Argo CD RBAC, or the app name) — " + msg
	case codes.NotFound:
		return "Argo CD has no such application — " + msg
	case codes.Unavailable:
		return "Argo CD is unreachable (is argocd.server right, and is it up?) — " + msg
	}
	return msg
}
