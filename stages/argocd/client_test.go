package argocd

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refusingApps is an Argo CD application service that refuses each app
// the way its name says, quoting the token it was given (as a careless
// server might).
type refusingApps struct {
	application.UnimplementedApplicationServiceServer
}

func (*refusingApps) answer(name string) error {
	codeOf := map[string]codes.Code{"locked": codes.Unauthenticated, "forbidden": codes.PermissionDenied,
		"missing": codes.NotFound, "down": codes.Unavailable, "odd": codes.Internal}
	return status.Errorf(codeOf[name], "refused app %s for token tok-s3cret-argocd", name)
}

func (s *refusingApps) Get(_ context.Context, q *application.ApplicationQuery) (*v1alpha1.Application, error) {
	return nil, s.answer(q.GetName())
}

func (s *refusingApps) Sync(_ context.Context, q *application.ApplicationSyncRequest) (*v1alpha1.Application, error) {
	return nil, s.answer(q.GetName())
}

// Argo CD's refusals are explained by their gRPC code, never show the
// token, and keep their status through redaction.
func TestClientExplainsRefusalsByStatusCode(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	application.RegisterApplicationServiceServer(srv, &refusingApps{})
	go srv.Serve(ln)
	defer srv.Stop()
	c, err := Dial(ln.Addr().String(), "tok-s3cret-argocd", true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for app, want := range map[string]string{
		"locked": "refused the token (Unauthenticated)", "forbidden": "not allowed to sync",
		"missing": "no such application", "down": "unreachable", "odd": "refused app odd",
	} {
		_, err := c.SyncAndWait(ctx, app, strings.Repeat("a", 40), time.Second, func(string, ...any) {})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "tok-s3cret-argocd") {
			t.Errorf("sync of %s: %v; want %q and no token", app, err, want)
		}
		if err := c.Check(ctx, app); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check of %s: %v; want %q", app, err, want)
		}
	}
	raw := status.Error(codes.NotFound, "app x for tok-s3cret-argocd")
	red := Redact(raw, "tok-s3cret-argocd")
	if status.Code(red) != codes.NotFound || !errors.Is(red, raw) || strings.Contains(red.Error(), "tok-s3cret") ||
		strings.Contains(status.Convert(red).Message(), "tok-s3cret") {
		t.Errorf("redacted error: code %v, is %v, text %q", status.Code(red), errors.Is(red, raw), red)
	}
}
