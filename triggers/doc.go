// Package triggers turns events into runs: verified webhooks from git
// forges (GitHub, GitLab, Gitea/Forgejo) with delivery deduplication, cron
// schedules and manual requests. It decides with pipeline.MatchPush which
// pipelines a push starts and records why a push started nothing, and it
// hands runs to the runner. (Arrives with the engine server.)
package triggers
