"""Say in one line which service the tests need is not reachable, and the command that starts it."""
import os
import socket
import sys
from urllib.parse import urlparse

START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    db = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/adplatform"))
    broker = urlparse(os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"))
    missing = []
    if db.scheme.startswith("postgres") and not reachable(db.hostname or "127.0.0.1", db.port or 5432):
        missing.append(("PostgreSQL", f"{db.hostname}:{db.port or 5432}"))
    if broker.scheme.startswith("redis") and not reachable(broker.hostname or "127.0.0.1", broker.port or 6379):
        missing.append(("Redis", f"{broker.hostname}:{broker.port or 6379}"))
    for name, where in missing:
        print(f"{name} is not reachable at {where}; start it with: {START[name]}  (or `bash infra/start-services.sh`)", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
