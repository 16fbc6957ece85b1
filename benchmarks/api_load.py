"""The REST API under concurrent clients, on SQLite and on PostgreSQL, side by side.

Starts real ``openlfr serve`` processes on a fresh data folder each: one on SQLite (the embedded
default), one on a fresh PostgreSQL database, and ``--pg-processes`` of them on one more PostgreSQL
database (several server processes behind a proxy, as a force's central server runs; the clients
take turns between them). ``--clients`` threads, each with its own keep-alive connection, send
``--requests`` requests per scenario, after a warm-up, and the figures are printed side by side:

- ``read``: ``GET /api/v1/deployments`` (authenticate a bearer token, read 20 deployments);
- ``audited``: ``GET /api/v1/audit?limit=1`` (authenticate, read, and append one audit event: appends
  are serialised by the trail's lock, in the database on PostgreSQL);
- ``mixed``: three reads to one audited request.

    python benchmarks/api_load.py --postgres postgresql+psycopg://USER@/postgres?host=SOCKETDIR&port=PORT

(``--postgres`` defaults to ``$OPENLFR_TEST_POSTGRES_URL``: a server where the user may create databases;
the benchmark creates its databases and drops them afterwards.) Everything runs on this machine, so
the clients take CPU from the servers: compare columns with each other, not with another machine.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from openlfr.services import deployments, users
from openlfr.storage import Store
from openlfr.storage.crypto import ENV_KEY
from openlfr.storage.store import ENV_DATABASE_URL

PASSWORD = "benchmark password, long enough"
SCENARIOS: dict[str, list[tuple[str, dict]]] = {
    "read": [("/api/v1/deployments", {})],
    "audited": [("/api/v1/audit", {"limit": 1})],
    "mixed": [("/api/v1/deployments", {})] * 3 + [("/api/v1/audit", {"limit": 1})],
}


@dataclass
class Result:
    seconds: float
    latencies_ms: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openlfr() -> list[str]:
    found = Path(sys.executable).with_name("openlfr")
    return [str(found)] if found.exists() else [shutil.which("openlfr") or "openlfr"]


@contextmanager
def pg_database(server: str) -> Iterator[str]:
    """A fresh database on ``server``, dropped afterwards."""
    name = f"openlfr_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(home: Path, database_url: str | None) -> dict[str, str]:
    """Accounts (an operator and an auditor, one bearer token each) and 20 planned deployments."""
    store = Store(home, database_url=database_url)
    tokens = {}
    for role in ("operator", "auditor"):
        user = users.create_user(store, f"bench-{role}", role, role, PASSWORD, "benchmark")
        tokens[role] = users.create_token(store, user.id, "benchmark", created_by="benchmark")
    now = datetime.now(UTC)
    for i in range(20):
        camera = deployments.CameraSpec("north", f"rtsp://camera-{i}.invalid/stream")
        deployments.plan(store, f"Bench {i}", f"Street {i}", "crime-hotspot", now + timedelta(hours=1),
                         now + timedelta(hours=5), 0.75, [camera], "bench-operator")  # fmt: skip
    store.close()
    return tokens


@contextmanager
def servers(home: Path, env: dict[str, str], count: int, log: Path) -> Iterator[list[str]]:
    procs, urls = [], []
    try:
        for i in range(count):
            port = _free_port()
            with log.with_suffix(f".{i}.log").open("w") as out:
                command = [*_openlfr(), "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)]
                procs.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url in zip(procs, urls, strict=True):
            deadline = time.monotonic() + 180
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"openlfr serve exited; see {log.parent}")
                try:
                    if httpx.get(f"{url}/api/v1/public/deployments", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"openlfr serve did not start; see {log.parent}")
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def load(urls: list[str], tokens: dict[str, str], scenario: str, requests: int, clients: int) -> Result:
    """``requests`` requests from ``clients`` threads at once, client i on server i mod len(urls)."""
    plan = SCENARIOS[scenario]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        with httpx.Client(base_url=urls[i % len(urls)], timeout=60) as http:
            http.headers["Authorization"] = f"Bearer {tokens['auditor']}"
            share = requests // clients + (1 if i < requests % clients else 0)
            start.wait()
            for n in range(share):
                path, params = plan[(n + i) % len(plan)]
                t0 = time.perf_counter()
                response = http.get(path, params=params)
                latencies[i].append((time.perf_counter() - t0) * 1000)
                errors[i] += response.status_code != 200

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return Result(time.perf_counter() - t0, [x for xs in latencies for x in xs], sum(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=os.environ.get("OPENLFR_TEST_POSTGRES_URL"),
                        help="SQLAlchemy URL of a PostgreSQL server where the user may create databases")  # fmt: skip
    parser.add_argument("--requests", type=int, default=2000, help="requests per scenario and backend")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pg-processes", type=int, default=4, help="server processes in the last column (0: none)")
    args = parser.parse_args()
    if not args.postgres:
        raise SystemExit("give --postgres URL (or set OPENLFR_TEST_POSTGRES_URL)")
    backends: list[tuple[str, Callable[[ExitStack], str | None], int]] = [
        ("SQLite", lambda _stack: None, 1),
        ("PostgreSQL", lambda stack: stack.enter_context(pg_database(args.postgres)), 1),
    ]
    if args.pg_processes > 1:
        backends.append(
            (f"PostgreSQL ×{args.pg_processes}", lambda stack: stack.enter_context(pg_database(args.postgres)), args.pg_processes)
        )
    results: dict[tuple[str, str], Result] = {}
    os.environ[ENV_KEY] = base64.urlsafe_b64encode(os.urandom(32)).decode()  # the servers of a column share it
    with tempfile.TemporaryDirectory(prefix="openlfr-api-load-") as tmp:
        for name, make_db, processes in backends:
            with ExitStack() as stack:
                url = make_db(stack)
                home = Path(tmp) / name.replace(" ", "-").replace("×", "x")
                env = {k: v for k, v in os.environ.items() if k != ENV_DATABASE_URL} | {"OPENLFR_HOME": str(home)}
                if url:
                    env[ENV_DATABASE_URL] = url
                tokens = seed(home, url)
                with servers(home, env, processes, Path(tmp) / f"{home.name}-serve") as urls:
                    for scenario in SCENARIOS:
                        load(urls, tokens, scenario, max(args.clients * 10, args.requests // 10), args.clients)  # warm-up
                        results[(name, scenario)] = result = load(urls, tokens, scenario, args.requests, args.clients)
                        line = f"  {name:<16} {scenario:<8} {result.rate:7.0f} req/s  p50 {result.percentile(50):6.1f} ms"
                        line += f"  p95 {result.percentile(95):6.1f} ms  errors {result.errors}"
                        print(line, file=sys.stderr, flush=True)
    names = [b[0] for b in backends]
    print(f"\nAPI under {args.clients} concurrent clients, {args.requests} requests per cell "
          f"(requests/s; p50 / p95 latency in ms; {os.cpu_count()} CPU cores shared by clients and servers)\n")  # fmt: skip
    print(f"| Scenario | {' | '.join(names)} |")
    print(f"|---|{'---|' * len(names)}")
    for scenario in SCENARIOS:
        cells = []
        for name in names:
            r = results[(name, scenario)]
            cell = f"{r.rate:.0f} req/s; {r.percentile(50):.1f} / {r.percentile(95):.1f} ms"
            cells.append(cell + (f" ({r.errors} errors)" if r.errors else ""))
        print(f"| {scenario} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
