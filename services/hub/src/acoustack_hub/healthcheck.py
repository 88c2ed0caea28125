"""`python -m acoustack_hub.healthcheck [PORT]`: exit 0 when the hub on 127.0.0.1 answers that
its database is reachable, 1 otherwise (the containers' health check; PORT: HUB_HTTP_PORT)."""

from __future__ import annotations

import os
import sys
import urllib.request


def main(argv: list[str]) -> int:
    port = argv[0] if argv else os.environ.get("HUB_HTTP_PORT", "8090")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as exc:
        print(f"hub not healthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
