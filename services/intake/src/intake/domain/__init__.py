"""Intake's pure rules: what makes a submission a valid request of a desk."""
