// Package triggers turns events into runs: verified webhooks from git
// forges (GitHub, GitLab, Gitea/Forgejo), cron schedules, and manual
// requests.
//
// A webhook delivery is authenticated by its signature before its body is
// parsed, persisted before it is answered, deduplicated by the forge's
// delivery ID (a redelivery gets the original runs), matched against each
// pipeline of its repository with pipeline.MatchPush — the reason a push
// started nothing is recorded — and turned into runs by the runner, whose
// dedup keys make "one delivery, one run per pipeline" hold even across
// crashes. The answer never waits for a pipeline to run.
package triggers
