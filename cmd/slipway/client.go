package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// clientFlags are the flags of the commands that talk to `slipway serve`.
type clientFlags struct {
	server string
	token  string
	output string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "", "engine URL (default $SLIPWAY_SERVER, else http://127.0.0.1:8080)")
	cmd.Flags().StringVar(&f.token, "token", "", "API token (default $SLIPWAY_TOKEN)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
}

// forRun is client for the commands that take a run ID argument.
func (f *clientFlags) forRun(arg string) (*client, string, error) {
	c, err := f.client()
	if err != nil {
		return nil, "", err
	}
	id, err := runID(arg)
	return c, id, err
}

// client talks to the engine's JSON API.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
	json  bool
}

func (f *clientFlags) client() (*client, error) {
	server := f.server
	if server == "" {
		server = os.Getenv("SLIPWAY_SERVER")
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, exitCode{code: 2, err: fmt.Errorf("--server %q is not an http(s) URL", server)}
	}
	token := f.token
	if token == "" {
		token = os.Getenv("SLIPWAY_TOKEN")
	}
	if f.output != "table" && f.output != "json" {
		return nil, exitCode{code: 2, err: fmt.Errorf("-o %q: use table or json", f.output)}
	}
	return &client{base: u, token: token, http: &http.Client{}, json: f.output == "json"}, nil
}

// apiError is an error answer of the engine.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("the engine answered %d: %s", e.status, e.msg) }

// do sends a request and decodes the JSON answer into out (when not nil).
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
		return fmt.Errorf("reading the engine's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns a 2xx response; others become apiError.
func (c *client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	return c.sendWith(ctx, method, path, body, nil)
}

// sendWith is send with extra request headers.
func (c *client) sendWith(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	p, query, _ := strings.Cut(path, "?")
	u := c.base.JoinPath(p)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the engine at %s: %w", c.base.Redacted(), err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e)
		if e.Error == "" {
			e.Error = http.StatusText(resp.StatusCode)
		}
		return nil, &apiError{status: resp.StatusCode, msg: e.Error}
	}
	return resp, nil
}

// printJSON prints v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// ago prints a time relative to now, or "-".
func ago(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return time.Since(*t).Round(time.Second).String() + " ago"
}

func span(from, to *time.Time) string {
	if from == nil || to == nil {
		return "-"
	}
	return duration(*from, *to)
}
