package triggers

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
)

// Forge is one git forge's webhook dialect.
type Forge interface {
	// Name is the forge's name in the engine config and the URL: github, gitlab, gitea.
	Name() string
	// Credential is what the request offers to authenticate itself: the
	// hex HMAC-SHA256 of the body it claims (signed true: GitHub, Gitea),
	// or a token compared with the secret as is (signed false: GitLab).
	// "" when it offers none — then the body is never read.
	Credential(h http.Header) (cred string, signed bool)
	// DeliveryID is the forge's ID of this delivery, or "".
	DeliveryID(h http.Header) string
	// Parse normalizes the payload of an authenticated delivery.
	Parse(h http.Header, body []byte) (*Event, error)
}

// Forges lists the supported forges by name.
func Forges() map[string]Forge {
	return map[string]Forge{"github": GitHub{}, "gitlab": GitLab{}, "gitea": Gitea{}}
}

// Verify reports whether a whole body is authenticated by secret, in
// constant time. (Intake verifies as the body streams; this is the same
// check for a body at hand.)
func Verify(f Forge, h http.Header, body []byte, secret string) bool {
	cred, signed := f.Credential(h)
	if cred == "" || secret == "" {
		return false
	}
	if !signed {
		return equalConstantTime(cred, secret)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return equalConstantTime(cred, hex.EncodeToString(m.Sum(nil)))
}

// equalConstantTime compares two strings without leaking where they differ.
func equalConstantTime(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
