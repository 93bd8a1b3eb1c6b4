"""A deployment is a built wheel, not the source tree: built here, installed into a fresh
virtual environment and run from elsewhere, it holds a French conversation about the
example assembly; with no assembly configured it serves the demo on the example bundled
inside it. Catalogs, migrations, the simulator's files and the demo's example must all ship
inside it.

pip runs offline from a wheel cache kept in pytest's cache folder; on a miss (the first
run, or a new dependency) it downloads what is missing once and tries again."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tests.telegram_peer import stop

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "citizens-jury" / "assembly.toml"
# What a build needs is the source tree without the tests, caches and local state.
NOT_SOURCE = shutil.ignore_patterns(
    ".*",
    "tests",
    "bench",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "node_modules",
    "*.db",
    "*.db-*",
)
PHONE = "+447700900123"


def _pip(python: Path | str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _pip_from_cache(
    python: Path | str, args: list[str], cache: Path, missing: list[str], cwd: Path
) -> None:
    """`pip args` with only the cached wheels; on a miss, `pip download missing` into the
    cache and run it again."""
    offline = ["--no-index", "--find-links", str(cache)]
    done = _pip(python, *args, *offline, cwd=cwd)
    if done.returncode != 0:
        fetched = _pip(sys.executable, "download", "--dest", str(cache), *missing, cwd=cwd)
        assert fetched.returncode == 0, fetched.stderr[-3000:]
        for ours in cache.glob("concorder_relay-*"):
            ours.unlink()  # only dependencies belong in the cache
        done = _pip(python, *args, *offline, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]


def _clean_env(**values: str) -> dict[str, str]:
    """This environment without anything that points at the checkout or configures the
    service, plus `values`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        and not k.startswith(("CONCORDER_", "TELEGRAM_", "TWILIO_"))
    }
    return {**env, **values}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _say(base: str, text: str) -> list[str]:
    """Send `text` as the simulated SMS sender; the replies it brought, once delivered."""
    query = urllib.parse.urlencode({"channel": "sms", "address": PHONE})
    before = len(json.loads(_get(f"{base}/simulator/api/messages?{query}")[1])["messages"])
    body = json.dumps({"channel": "sms", "address": PHONE, "text": text}).encode()
    request = urllib.request.Request(
        f"{base}/simulator/api/messages", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        queued = json.loads(response.read())["queued"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listing = json.loads(_get(f"{base}/simulator/api/messages?{query}")[1])
        replies = listing["messages"][before:]
        if len(replies) >= queued and not listing["pending"]:
            return [reply["text"] for reply in replies]
        time.sleep(0.2)
    raise AssertionError(f"no reply to {text!r} within 30 s")


def test_an_installed_wheel_speaks_french_with_the_example_assembly(tmp_path, request):
    cache = request.config.cache.mkdir("wheels")
    source, dist, run = tmp_path / "source", tmp_path / "dist", tmp_path / "run"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    run.mkdir()

    build_requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    _pip_from_cache(
        sys.executable,
        ["wheel", "--no-deps", "--wheel-dir", str(dist), str(source)],
        cache,
        build_requires["requires"],
        cwd=run,
    )
    (wheel,) = dist.glob("concorder_relay-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python, concorder = venv / "bin" / "python", venv / "bin" / "concorder"
    # The dependencies are this environment's (resolved from the same pyproject by the
    # suite's own install): installing numpy, scipy and the rest again would double the
    # run. Only the path is shared: the .pth files there (this checkout's editable
    # install among them) are not read, and the wheel's own packages come first.
    inner = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(inner, "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _pip_from_cache(python, ["install", "--no-deps", str(wheel)], cache, [str(wheel)], cwd=run)

    env = _clean_env(
        CONCORDER_ASSEMBLY=str(EXAMPLE),
        CONCORDER_DATABASE_URL=f"sqlite+aiosqlite:///{run / 'relay.db'}",
    )
    where = subprocess.run(
        [str(python), "-c", "import flows; print(flows.__file__)"],
        cwd=run,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), "the checkout was imported"

    server, base, log = _serve(concorder, run, env)
    try:
        # The simulator's page and files, and every catalog.
        assert _get(f"{base}/simulator")[0] == 200
        assert _get(f"{base}/simulator/static/simulator.js")[0] == 200
        config = json.loads(_get(f"{base}/simulator/api/config")[1])
        assert [language["code"] for language in config["languages"]] == ["en", "es", "fr"]

        replies = _say(base, "Français")
        assert replies[0] == "Désormais, je vous écrirai en français."
        assert replies[1].endswith("1 À propos\n2 Langue\nRépondez 1 ou 2.")
        about = _say(base, "1")[0]
        assert about.startswith(
            "Ici Concorder Relay, le service de messagerie du Jury citoyen de Riverside sur les "
            "transports."
        )
        assert "Répondez STOP à tout moment" in about
    finally:
        stop(server, timeout=30)
        log.close()

    # With no assembly configured, the first run is the demo on the bundled example.
    demo = tmp_path / "demo"
    demo.mkdir()
    env = _clean_env(CONCORDER_DATABASE_URL=f"sqlite+aiosqlite:///{demo / 'concorder.db'}")
    server, base, log = _serve(concorder, demo, env)
    try:
        tour = json.loads(_get(f"{base}/simulator/api/demo")[1])
        assert tour["demo"] is True and tour["stage"] == "join"
        request = urllib.request.Request(
            f"{base}/simulator/api/demo/join",
            data=json.dumps({"channel": "sms", "language": "es"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            visitor = json.loads(response.read())["visitor"]
        query = urllib.parse.urlencode({"channel": "sms", "address": visitor["address"]})
        deadline = time.monotonic() + 30
        while not json.loads(_get(f"{base}/simulator/api/messages?{query}")[1])["messages"]:
            assert time.monotonic() < deadline, "no invitation within 30 s"
            time.sleep(0.2)
        invitation = json.loads(_get(f"{base}/simulator/api/messages?{query}")[1])["messages"]
        # The bundled example names itself in the visitor's language.
        assert "Jurado ciudadano de Riverside sobre el transporte" in invitation[0]["text"]
    finally:
        stop(server, timeout=30)
        log.close()
    assert "Demo mode" in (demo / "serve.log").read_text()


def _serve(concorder: Path, where: Path, env: dict[str, str]):
    """`concorder serve` in `where`, once it answers: (process, base URL, log file)."""
    port = _free_port()
    log = (where / "serve.log").open("w")
    server = subprocess.Popen(
        [str(concorder), "serve", "--port", str(port)],
        cwd=where,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            log.close()
            raise AssertionError((where / "serve.log").read_text()[-3000:])
        if time.monotonic() > deadline:
            stop(server, timeout=30)
            log.close()
            raise AssertionError("the service did not start within 60 s")
        try:
            if _get(f"{base}/healthz")[0] == 200:
                return server, base, log
        except OSError:
            time.sleep(0.2)
