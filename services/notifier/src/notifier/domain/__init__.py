"""The notifier's pure rules: who is told what about an event, in which language."""
