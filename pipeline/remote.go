package pipeline

import (
	"fmt"
	"regexp"
	"strings"
)

// scpLike is the short form of an ssh remote, [user@]host:path, as git and
// go-git both read it: a plain user and host, no port, no brackets.
var scpLike = regexp.MustCompile(`^([A-Za-z0-9._~-]+@)?[A-Za-z0-9.-]+:[^:]`)

// CheckRemoteForm refuses a repository address that git's command line and
// go-git (which the engine's checks use) would read as different hosts:
// an scp-style address ([user@]host:path) with a colon, bracket or other
// character of a URL in its user or host part ("[evil:2222]:@forge:org/repo"
// is a user of forge to go-git and host evil, port 2222 to git), and
// brackets anywhere outside a URL's host.
func CheckRemoteForm(raw string) error {
	if strings.Contains(raw, "://") {
		return nil // a URL: git and go-git parse these alike
	}
	if !scpLike.MatchString(raw) {
		return fmt.Errorf("%q is neither a URL (https://, ssh://) nor a plain user@host:path", raw)
	}
	return nil
}
