package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/slipwayci/slipway/engineconfig"
	"github.com/slipwayci/slipway/forgestatus"
	"github.com/slipwayci/slipway/pipeline"
	"github.com/slipwayci/slipway/server"
	"github.com/slipwayci/slipway/server/auth"
	"github.com/slipwayci/slipway/server/hooks"
	"github.com/slipwayci/slipway/triggers"
)

// resolve maps the engine config onto what the server runs on: every
// secret it references read, its pipeline files loaded (both relative to
// the config file), its repositories made ready for intake, its tokens
// hashed.
func resolve(c *engineconfig.Config, lookupEnv func(string) (string, bool)) (*server.Resolved, error) {
	read := func(what string, r pipeline.SecretRef) (string, error) { return c.ReadSecret(what, r, lookupEnv) }
	out := &server.Resolved{URL: c.URL}
	seen := map[string]string{}
	for _, rc := range c.Repositories {
		repo := &triggers.Repo{Config: rc}
		var err error
		if repo.Secret, err = read("repository "+rc.Name+" webhook secret", rc.WebhookSecret); err != nil {
			return nil, err
		}
		token := ""
		if rc.Token != nil {
			if token, err = read("repository "+rc.Name+" token", *rc.Token); err != nil {
				return nil, err
			}
			repo.Token = token
		}
		if s := rc.Status; s != nil && s.GitHubApp != nil {
			if repo.StatusAppKey, err = read("repository "+rc.Name+" GitHub App private key", s.GitHubApp.PrivateKey); err != nil {
				return nil, err
			}
			if _, err := forgestatus.ParsePrivateKey([]byte(repo.StatusAppKey)); err != nil {
				return nil, fmt.Errorf("repository %s: %w", rc.Name, err)
			}
		} else if s != nil {
			if repo.StatusToken, err = read("repository "+rc.Name+" status token", s.Token); err != nil {
				return nil, err
			}
			if repo.StatusToken == "" {
				return nil, fmt.Errorf("repository %s status token is empty", rc.Name)
			}
		}
		repo.Config.Secrets = slices.Clone(rc.Secrets)
		for i, g := range rc.Secrets { // grant files are read at run time, relative to this config
			if g.From.File != "" {
				repo.Config.Secrets[i].From.File = c.Path(g.From.File)
			}
		}
		for _, pr := range rc.Pipelines {
			if pr.Path != "" {
				repo.Sources = append(repo.Sources, triggers.RepoFileSource{URL: rc.URL, Path: pr.Path, Token: token, Limits: rc.Limits})
				continue
			}
			file := c.Path(pr.File)
			p, err := pipeline.Load(file)
			if err != nil {
				return nil, fmt.Errorf("repository %s: %w", rc.Name, err)
			}
			if other, dup := seen[p.Metadata.Name]; dup {
				return nil, fmt.Errorf("pipeline name %s is used by both %s and %s", p.Metadata.Name, other, file)
			}
			seen[p.Metadata.Name] = file
			repo.Sources = append(repo.Sources, triggers.FileSource{P: p})
		}
		out.Repos = append(out.Repos, repo)
	}
	for _, tc := range c.Tokens {
		role, _ := auth.ParseRole(tc.Role)
		t := auth.Token{Name: tc.Name, Role: role, Apps: slices.Clone(tc.Apps)}
		if tc.Secret != nil {
			v, err := read("token "+tc.Name, *tc.Secret)
			if err != nil {
				return nil, err
			}
			if auth.Blank(v) {
				// An empty token would admit anyone who sends an empty
				// (or blank) credential.
				return nil, fmt.Errorf("token %s: its secret is empty", tc.Name)
			}
			t.Hash = sha256.Sum256([]byte(v))
		} else {
			b, _ := hex.DecodeString(tc.SHA256)
			copy(t.Hash[:], b)
		}
		out.Tokens = append(out.Tokens, t)
	}
	if a := c.Alertmanager; a != nil {
		out.Alertmanager = &hooks.AlertmanagerAuth{Username: a.Username, AppLabel: a.AppLabel}
		if out.Alertmanager.AppLabel == "" {
			out.Alertmanager.AppLabel = "app"
		}
		ref, what := a.Password, "alertmanager password"
		if a.BearerToken != nil {
			ref, what = a.BearerToken, "alertmanager bearer token"
		}
		v, err := read(what, *ref)
		if err != nil {
			return nil, err
		}
		if auth.Blank(v) {
			// An empty secret would admit anyone who sends empty credentials.
			return nil, fmt.Errorf("%s is empty: Alertmanager's credentials must not be empty", what)
		}
		if a.BearerToken != nil {
			out.Alertmanager.Bearer = v
		} else {
			out.Alertmanager.Password = v
		}
	}
	return out, nil
}
