"""Response: what KeyWatch does about an incident, and the messages it sends about it."""
