"""HTTP routes: thin — parse, call the domain, return."""
