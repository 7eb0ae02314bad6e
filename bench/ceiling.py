"""The ceiling: a bare Flask endpoint under the same gunicorn settings.

It reads the same body, parses the JSON and returns one card of the size our service
returns (BENCH_CARD_BYTES), so the ratio isolates our own work.
"""

from __future__ import annotations

import os

from flask import Flask, jsonify, request

app = Flask(__name__)
_PADDING = "x" * max(0, int(os.environ.get("BENCH_CARD_BYTES", "2000")) - 200)


@app.post("/cds-services/<service_id>")
def hook(service_id: str):
    body = request.get_json()
    card = {
        "uuid": "00000000-0000-0000-0000-000000000000",
        "summary": f"ceiling for {service_id} ({body['hook']})",
        "indicator": "warning",
        "detail": _PADDING,
        "source": {"label": "ceiling"},
    }
    return jsonify({"cards": [card]})


@app.get("/healthz")
def alive():
    return jsonify({"status": "ok"})
