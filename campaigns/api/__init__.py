"""The JSON API (v1) that apps and automation are written against; see shared API.md."""
