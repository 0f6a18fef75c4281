"""``python -m spanledger.exporter``: run the OTLP receiver configured by ``SPANLEDGER_*`` variables."""

from __future__ import annotations

import logging

from spanledger.exporter.server import serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve()
