"""The portal's use cases: the directory it owns, credentials, sessions, tokens."""
