"""One set of browser security headers on every response the app sends.

The preview page (`/`) had its policy set by its own route, so the same file served as
`/static/preview.html`, and every other answer, went out without it: framable, and
without nosniff (issue 27.4). Set here, after every handler, nothing can miss it.
"""

from __future__ import annotations

from flask import Flask, Response

# The page runs only its own script and styles and talks only to this service, so card
# text that somehow slipped past the page's escaping still could not load or send anything.
# For a JSON answer the same policy forbids everything a browser could do with it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # frame-ancestors for browsers that predate it (clickjacking on the preview page).
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response
