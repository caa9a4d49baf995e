package forgeapi

import (
	"strings"
	"testing"
)

func TestLocate(t *testing.T) {
	for _, tt := range []struct {
		forge, url, api  string
		base, repo, fail string
	}{
		{"github", "https://github.com/acme/shop.git", "", "https://api.github.com", "acme/shop", ""},
		{"github", "https://GitHub.com/acme/shop", "", "https://api.github.com", "acme/shop", ""},
		{"github", "https://ghe.example.com/acme/shop.git", "", "https://ghe.example.com/api/v3", "acme/shop", ""},
		{"gitlab", "https://gitlab.example.com/group/sub/shop.git", "", "https://gitlab.example.com/api/v4", "group/sub/shop", ""},
		{"gitea", "http://127.0.0.1:3000/shop/order-service.git", "", "http://127.0.0.1:3000/api/v1", "shop/order-service", ""},
		{"gitea", "git@gitea.example.com:shop/app.git", "https://gitea.example.com/api/v1/", "https://gitea.example.com/api/v1", "shop/app", ""},
		// scp-style URLs say nothing about the API's scheme: api must be written.
		{"gitea", "git@gitea.example.com:shop/app.git", "", "", "", "need an http(s) repository URL"},
		{"github", "ssh://git@github.com/acme/shop.git", "", "", "", "need an http(s) repository URL"},
		{"github", "/srv/git/shop.git", "", "", "", "need an http(s) repository URL"},
		{"github", "https://github.com/shop.git", "", "", "", "does not name an owner/repository"},
		{"github", "https://github.com/acme/../../admin", "", "", "", "does not name an owner/repository"},
		{"github", "https://github.com/acme//shop", "", "", "", "does not name an owner/repository"},
	} {
		base, repo, err := Locate(tt.forge, tt.url, tt.api)
		switch {
		case tt.fail != "" && (err == nil || !strings.Contains(err.Error(), tt.fail)):
			t.Errorf("Locate(%s, %q, %q) = %q, %q, %v; want an error saying %q", tt.forge, tt.url, tt.api, base, repo, err, tt.fail)
		case tt.fail == "" && (err != nil || base != tt.base || repo != tt.repo):
			t.Errorf("Locate(%s, %q, %q) = %q, %q, %v; want %q, %q", tt.forge, tt.url, tt.api, base, repo, err, tt.base, tt.repo)
		}
	}
}
