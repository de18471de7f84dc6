"""The console: pages, routes and commands that span the apps (collections, overview, demo, runlomas)."""
