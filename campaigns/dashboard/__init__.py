"""The web dashboard for marketers and reviewers (server-rendered pages)."""
