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
	// Verify reports whether the request is authenticated by secret. It
	// runs before the body is parsed and compares in constant time.
	Verify(h http.Header, body []byte, secret string) bool
	// DeliveryID is the forge's ID of this delivery, or "".
	DeliveryID(h http.Header) string
	// Parse normalizes the payload of an authenticated delivery.
	Parse(h http.Header, body []byte) (*Event, error)
}

// Forges lists the supported forges by name.
func Forges() map[string]Forge {
	return map[string]Forge{"github": GitHub{}, "gitlab": GitLab{}, "gitea": Gitea{}}
}

// hmacSHA256Hex is the hex HMAC-SHA256 of body under secret.
func hmacSHA256Hex(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// equalConstantTime compares two strings without leaking where they differ.
func equalConstantTime(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
