"""The portal's pure rules: accounts and who administers them, sign-in throttling, tokens."""
