"""The portal's edges: web pages, JSON API, SMTP, single sign-on."""
